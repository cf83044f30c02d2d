"""Frame decoder: framings, torn frames, noise, size bound, timeout."""

from __future__ import annotations

import pytest

from edge_gate.document._framing import FrameDecoder, clean_line
from edge_gate.rig.document_reader import encode_frame

TD3 = [
    "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
    "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
]
TD1 = [
    "I<UTOD23145890<7349<<<<<<<<<<<",
    "3407127M9507122UTO<<<<<<<<<<<2",
    "STEVENSON<<PETER<JOHN<<<<<<<<<",
]
TD2 = ["I<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<", "D231458907UTO7408122F1204159<<<<<<<6"]


def _decoder(framing: str = "auto") -> FrameDecoder:
    return FrameDecoder(framing, max_frame_bytes=512, frame_timeout_s=0.5)  # type: ignore[arg-type]


@pytest.mark.parametrize("framing", ["lines", "stx_etx", "length_checksum"])
@pytest.mark.parametrize("line_end", ["\r", "\r\n"], ids=["cr", "crlf"])
@pytest.mark.parametrize("lines", [TD3, TD1, TD2], ids=["td3", "td1", "td2"])
def test_each_framing_yields_document(
    framing: str, line_end: str, lines: list[str]
) -> None:
    for decoder in (_decoder("auto"), _decoder(framing)):
        frame = encode_frame(lines, framing, line_end)  # type: ignore[arg-type]

        assert decoder.feed(frame, 1.0) == [lines]


def test_byte_by_byte_delivery() -> None:
    decoder = _decoder()
    documents = []
    for index, byte in enumerate(encode_frame(TD3, "stx_etx")):
        documents += decoder.feed(bytes([byte]), 1.0 + index * 0.001)

    assert documents == [TD3]


def test_length_checksum_bad_bcc_dropped() -> None:
    decoder = _decoder()
    frame = bytearray(encode_frame(TD3, "length_checksum"))
    frame[-1] ^= 0x55

    assert decoder.feed(bytes(frame), 1.0) == []
    assert decoder.dropped_frames >= 1
    assert decoder.feed(encode_frame(TD3, "length_checksum"), 1.1) == [TD3]


def test_3m_padding_and_missing_upper_line() -> None:
    frame = encode_frame(TD2, "length_checksum")

    assert b"_" in frame
    assert _decoder().feed(frame, 1.0) == [TD2]


def test_noise_before_frame_ignored() -> None:
    decoder = _decoder()
    noise = bytes([0x00, 0xFF, 0x13, 0x80, 0xFE])

    for framing in ("lines", "stx_etx", "length_checksum"):
        documents = decoder.feed(noise + encode_frame(TD3, framing), 1.0)  # type: ignore[arg-type]

        assert documents == [TD3], framing


def test_noise_line_between_documents_dropped() -> None:
    decoder = _decoder("lines")

    documents = decoder.feed(b"hello\r\n" + encode_frame(TD1, "lines"), 1.0)

    assert documents == [TD1]


def test_torn_frame_dropped_after_timeout() -> None:
    decoder = _decoder()
    frame = encode_frame(TD3, "stx_etx")

    assert decoder.feed(frame[:30], 1.0) == []
    assert decoder.feed(b"", 1.6) == []
    assert decoder.dropped_frames == 1
    assert decoder.feed(frame, 2.0) == [TD3]


def test_torn_stx_frame_restarted_by_next_stx() -> None:
    decoder = _decoder()
    frame = encode_frame(TD3, "stx_etx")

    assert decoder.feed(frame[:30] + frame, 1.0) == [TD3]
    assert decoder.dropped_frames == 1


def test_torn_line_dropped_after_timeout() -> None:
    decoder = _decoder("lines")

    assert decoder.feed(TD3[0][:20].encode(), 1.0) == []
    assert decoder.feed(encode_frame(TD3, "lines"), 2.0) == [TD3]


def test_incomplete_lines_delivered_after_timeout() -> None:
    decoder = _decoder("lines")

    assert decoder.feed(encode_frame(TD3[:1], "lines"), 1.0) == []
    assert decoder.poll(1.6) == [TD3[:1]]


def test_oversized_frame_dropped() -> None:
    decoder = FrameDecoder("stx_etx", max_frame_bytes=64, frame_timeout_s=0.5)

    assert decoder.feed(b"\x02" + b"A" * 100, 1.0) == []
    assert decoder.dropped_frames == 1
    assert decoder.feed(encode_frame(TD2, "stx_etx"), 1.1) == []
    # TD2 in STX/ETX is 77 bytes, over the 64-byte bound.
    assert decoder.dropped_frames == 2


def test_clean_line_strips_padding_and_noise() -> None:
    assert clean_line(b"\xff\x00" + TD1[0].encode() + b"____") == TD1[0]
    assert clean_line(b"abc") is None


def test_torn_second_line_drops_document() -> None:
    decoder = _decoder("lines")
    frame = encode_frame(TD3, "lines")

    assert decoder.feed(frame[:60], 1.0) == []
    assert decoder.poll(1.6) == []
    assert decoder.feed(frame, 2.0) == [TD3]
