"""Contract of ``MrzReader`` over a real pseudo-terminal.

Framings, line ends, noise, torn frames, timeouts, unplug and replug.
"""

from __future__ import annotations

import contextlib
import os
import time

import pytest

from edge_gate.config import DocumentReaderConfig
from edge_gate.document import MrzReader, SerialMrzReader, build_mrz
from edge_gate.errors import DeviceIOError
from edge_gate.rig.document_reader import DocumentReaderEmulator, encode_frame

TD3 = build_mrz(
    "TD3",
    document_number="L898902C3",
    surname="ERIKSSON",
    given_names="ANNA MARIA",
    birth_date="740812",
    sex="F",
    expiry_date="340415",
)
TD1 = build_mrz(
    "TD1",
    document_number="D23145890734",
    surname="STEVENSON",
    given_names="PETER JOHN",
    birth_date="340712",
    sex="M",
    expiry_date="350712",
)
TD2 = build_mrz("TD2", document_number="D23145890", surname="ERIKSSON", sex="F")


def _wait_connected(reader: SerialMrzReader, timeout_s: float = 5.0) -> None:
    """Call the driver until it has reopened the port."""
    deadline_s = time.monotonic() + timeout_s
    while not reader.is_connected:
        assert time.monotonic() < deadline_s, "driver did not reconnect"
        with contextlib.suppress(DeviceIOError):
            reader.read_document(0.02)


def test_serial_reader_is_mrz_reader(reader: SerialMrzReader) -> None:
    assert isinstance(reader, MrzReader)
    assert reader.is_connected


@pytest.mark.parametrize("framing", ["lines", "stx_etx", "length_checksum"])
@pytest.mark.parametrize("line_end", ["\r", "\r\n"], ids=["cr", "crlf"])
@pytest.mark.parametrize("lines", [TD3, TD1, TD2], ids=["td3", "td1", "td2"])
def test_document_read_in_each_framing(
    emulator: DocumentReaderEmulator,
    reader: SerialMrzReader,
    framing: str,
    line_end: str,
    lines: list[str],
) -> None:
    emulator.present(lines, framing=framing, line_end=line_end)  # type: ignore[arg-type]

    assert reader.read_document(2.0) == lines


def test_timeout_returns_none(reader: SerialMrzReader) -> None:
    started_s = time.monotonic()

    assert reader.read_document(0.1) is None
    assert time.monotonic() - started_s < 1.0


def test_noise_between_frames_tolerated(
    emulator: DocumentReaderEmulator, reader: SerialMrzReader
) -> None:
    for framing in ("lines", "stx_etx", "length_checksum"):
        emulator.inject_noise(bytes([0x00, 0xFF, 0x7F, 0x91, 0x13]))
        emulator.present(TD3, framing=framing)  # type: ignore[arg-type]
        emulator.inject_noise(b"\xfe\xfe garbage \r\n")

        assert reader.read_document(2.0) == TD3, framing
    assert reader.read_document(0.3) is None


def test_torn_frame_dropped_next_read(
    emulator: DocumentReaderEmulator, reader: SerialMrzReader
) -> None:
    frame = encode_frame(TD3, "lines")
    emulator.send_raw(frame[:50])

    assert reader.read_document(0.5) is None
    emulator.present(TD3)
    assert reader.read_document(2.0) == TD3


def test_oversized_frame_dropped(
    emulator: DocumentReaderEmulator, reader_config: DocumentReaderConfig
) -> None:
    with SerialMrzReader(reader_config) as reader:
        emulator.send_raw(b"\x02" + b"A" * 2000)

        assert reader.read_document(0.5) is None
        emulator.present(TD1, framing="stx_etx")
        assert reader.read_document(2.0) == TD1


def test_unplug_raises_device_io_error(
    emulator: DocumentReaderEmulator, reader: SerialMrzReader
) -> None:
    emulator.unplug()

    with pytest.raises(DeviceIOError):
        reader.read_document(0.5)
    assert not reader.is_connected
    with pytest.raises(DeviceIOError, match="not connected"):
        reader.read_document(0.1)


def test_reader_absent_at_start_connects_later(
    emulator: DocumentReaderEmulator, reader_config: DocumentReaderConfig
) -> None:
    emulator.unplug()
    with SerialMrzReader(reader_config) as reader:
        assert not reader.is_connected
        emulator.replug()
        _wait_connected(reader)
        emulator.present(TD2)

        assert reader.read_document(2.0) == TD2


@pytest.mark.slow
def test_hundred_unplug_cycles_lose_nothing(
    emulator: DocumentReaderEmulator, reader: SerialMrzReader
) -> None:
    open_fds = len(os.listdir("/proc/self/fd"))
    received = 0

    for cycle in range(100):
        emulator.present(TD3 if cycle % 2 else TD1, framing="stx_etx")
        assert reader.read_document(2.0) == (TD3 if cycle % 2 else TD1), cycle
        received += 1
        emulator.unplug()
        with pytest.raises(DeviceIOError):
            reader.read_document(1.0)
        emulator.replug()
        _wait_connected(reader)

    emulator.present(TD2)
    assert reader.read_document(2.0) == TD2
    assert received == 100
    assert len(os.listdir("/proc/self/fd")) == open_fds
    assert [e.kind for e in emulator.events].count("unplug") == 100


def test_close_is_idempotent(reader: SerialMrzReader) -> None:
    reader.close()
    reader.close()

    assert not reader.is_connected
    with pytest.raises(DeviceIOError, match="closed"):
        reader.read_document(0.1)


def test_emulator_records_events(emulator: DocumentReaderEmulator) -> None:
    emulator.inject_noise(b"\x00")
    emulator.unplug()
    emulator.replug()

    kinds = [event.kind for event in emulator.events]
    times = [event.time_s for event in emulator.events]
    assert kinds == ["noise", "unplug", "replug"]
    assert times == sorted(times)
