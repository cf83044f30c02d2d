"""Packet codec of the EF01 module family: byte-exact packets, parser recovery."""

from __future__ import annotations

import numpy as np
import pytest

from edge_gate.errors import DeviceProtocolError
from edge_gate.fingerprint._protocol import (
    CONFIRMATION_CODES,
    Instruction,
    PacketParser,
    Pid,
    build_command,
    build_packet,
    describe_code,
    pack_pixels,
    unpack_pixels,
)


@pytest.mark.parametrize(
    ("instruction", "params", "expected"),
    [
        pytest.param(
            Instruction.VFY_PWD,
            b"\x00\x00\x00\x00",
            "EF 01 FF FF FF FF 01 00 07 13 00 00 00 00 00 1B",
            id="vfypwd-default-password",
        ),
        pytest.param(
            Instruction.GEN_IMG, b"", "EF 01 FF FF FF FF 01 00 03 01 00 05", id="genimg"
        ),
        pytest.param(
            Instruction.UP_IMAGE,
            b"",
            "EF 01 FF FF FF FF 01 00 03 0A 00 0E",
            id="upimage",
        ),
        pytest.param(
            Instruction.READ_SYS_PARA,
            b"",
            "EF 01 FF FF FF FF 01 00 03 0F 00 13",
            id="readsyspara",
        ),
        pytest.param(
            Instruction.AURA_LED_CONFIG,
            b"\x03\x80\x01\x00",
            "EF 01 FF FF FF FF 01 00 07 35 03 80 01 00 00 C1",
            id="aura-red-on",
        ),
    ],
)
def test_command_bytes_match_the_datasheet_examples(
    instruction: int, params: bytes, expected: str
) -> None:
    assert build_command(instruction, params) == bytes.fromhex(
        expected.replace(" ", "")
    )


def test_acknowledge_examples_parse() -> None:
    parser = PacketParser()
    parser.feed(bytes.fromhex("EF01FFFFFFFF07000300000AEF01FFFFFFFF07000302000C"))
    first, second = parser.next(), parser.next()
    assert first is not None and first.pid == Pid.ACK and first.code == 0x00
    assert second is not None and second.code == 0x02
    assert parser.next() is None


@pytest.mark.parametrize("size", [1, 61, 62, 128, 256], ids=lambda n: f"payload-{n}")
def test_payload_sizes_round_trip(size: int) -> None:
    payload = bytes(range(256))[:size]
    parser = PacketParser()
    parser.feed(build_packet(Pid.DATA, payload))
    packet = parser.next()
    assert packet is not None and packet.payload == payload


def test_largest_packet_checksum_does_not_overflow() -> None:
    packet = build_packet(Pid.DATA, b"\xff" * 256)
    assert int.from_bytes(packet[-2:], "big") == (2 + 1 + 2 + 255 * 256) & 0xFFFF


def test_parser_skips_garbage_and_counts_ready_bytes() -> None:
    parser = PacketParser()
    parser.feed(b"\x55\x00\x13\xef" + build_command(Instruction.GEN_IMG))
    packet = parser.next()
    assert packet is not None and packet.payload == b"\x01"
    assert parser.skipped_bytes == 4 and parser.ready_bytes == 1


def test_parser_assembles_a_packet_fed_byte_by_byte() -> None:
    parser = PacketParser()
    data = build_packet(Pid.END_DATA, b"abc")
    for byte in data[:-1]:
        parser.feed(bytes([byte]))
        assert parser.next() is None
    parser.feed(data[-1:])
    packet = parser.next()
    assert packet is not None and packet.pid == Pid.END_DATA


def test_bad_checksum_raises_then_the_next_packet_parses() -> None:
    broken = bytearray(build_packet(Pid.ACK, b"\x00"))
    broken[-1] ^= 0x01
    parser = PacketParser()
    parser.feed(bytes(broken) + build_packet(Pid.ACK, b"\x02"))
    with pytest.raises(DeviceProtocolError, match="checksum"):
        parser.next()
    packet = parser.next()
    assert packet is not None and packet.code == 0x02


def test_impossible_length_resynchronises() -> None:
    parser = PacketParser()
    parser.feed(
        b"\xef\x01\xff\xff\xff\xff\x07\xff\xff" + build_packet(Pid.ACK, b"\x00")
    )
    with pytest.raises(DeviceProtocolError, match="LEN"):
        parser.next()
    packet = parser.next()
    assert packet is not None and packet.code == 0x00


def test_build_rejects_oversized_payload() -> None:
    with pytest.raises(ValueError, match=r"1\.\.256"):
        build_packet(Pid.DATA, b"\x00" * 257)


def test_pixels_round_trip_high_nibble_first() -> None:
    rng = np.random.default_rng(1)
    image = (rng.integers(0, 16, (6, 8)) * 17).astype(np.uint8)
    packed = pack_pixels(image)
    assert packed[0] == (image[0, 0] >> 4) << 4 | (image[0, 1] >> 4)
    assert np.array_equal(unpack_pixels(packed, 8, 6), image)


def test_unpack_rejects_a_wrong_byte_count() -> None:
    with pytest.raises(DeviceProtocolError, match="needs 24"):
        unpack_pixels(b"\x00" * 23, 8, 6)


def test_every_confirmation_code_has_a_distinct_meaning() -> None:
    texts = [describe_code(code) for code in CONFIRMATION_CODES]
    assert len(set(texts)) == len(texts)
    assert describe_code(0x35) == "unknown confirmation code 0x35"
