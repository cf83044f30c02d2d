"""Emulator of a desk document reader on a pseudo-terminal.

The driver opens :attr:`DocumentReaderEmulator.port` exactly as it opens a
real reader. The emulator writes the bytes a reader sends: MRZ lines in one
of three framings, torn frames (:meth:`send_raw` with a cut frame from
:func:`encode_frame`) and line noise. :meth:`unplug` closes the emulator's
side of the pseudo-terminal and removes the stable link, as udev does when a
USB reader is pulled; :meth:`replug` opens a new pseudo-terminal under the
same link. Every action is recorded in :attr:`events` with its monotonic
time.
"""

from __future__ import annotations

import errno
import logging
import os
import pty
import select
import tempfile
import time
import tty
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from edge_gate._closing import Closing
from edge_gate.document._framing import ETX, SOH, STX, checksum
from edge_gate.errors import DeviceIOError

logger = logging.getLogger(__name__)

FrameKind = Literal["lines", "stx_etx", "length_checksum"]
LineEnd = Literal["\r", "\r\n"]

# Longest wait for the driver to drain the pseudo-terminal during a write.
_WRITE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class EmulatorEvent:
    """One emulator action: its monotonic time (s), kind and byte count."""

    time_s: float
    kind: str
    byte_count: int = 0


def encode_frame(
    lines: Sequence[str], framing: FrameKind = "lines", line_end: LineEnd = "\r"
) -> bytes:
    """Encode MRZ lines as a reader sends them.

    ``length_checksum`` follows the 3M RTE6701 layout: three lines, the
    bottom document line always third (missing upper lines as a bare CR),
    each padded with ``_`` to 30 characters (three-line documents) or 44.
    """
    end = line_end.encode("ascii")
    if framing == "lines":
        return b"".join(line.encode("ascii") + end for line in lines)
    if framing == "stx_etx":
        body = b"".join(line.encode("ascii") + end for line in lines)
        return bytes([STX]) + body + bytes([ETX])

    width = 30 if len(lines) == 3 else 44
    slots = ["" for _ in range(3 - len(lines))] + list(lines)
    data = b"".join(
        slot.ljust(width, "_").encode("ascii") + b"\r" if slot else b"\r"
        for slot in slots
    )
    body = b"OU" + bytes([STX]) + b"0" + data + bytes([ETX])
    length_and_body = bytes([len(body)]) + body
    return bytes([SOH]) + length_and_body + bytes([checksum(length_and_body)])


class DocumentReaderEmulator(Closing):
    """A desk document reader on a pseudo-terminal, with unplug and replug.

    Args:
        link_path: Where to keep a stable symlink to the current
            pseudo-terminal. Without it :attr:`port` is the pseudo-terminal
            itself, which changes at every replug.
    """

    def __init__(self, link_path: Path | None = None) -> None:
        self._link_path = link_path
        self._master_fd: int | None = None
        self._device_path = ""
        self.events: list[EmulatorEvent] = []
        self._open()

    @property
    def port(self) -> str:
        """The path the driver opens."""
        if self._link_path is not None:
            return str(self._link_path)
        return self._device_path

    @property
    def is_plugged(self) -> bool:
        """Whether the emulated reader is connected."""
        return self._master_fd is not None

    def present(
        self,
        lines: Sequence[str],
        framing: FrameKind = "lines",
        line_end: LineEnd = "\r",
    ) -> None:
        """Send one document's MRZ lines in ``framing``."""
        self._write(encode_frame(lines, framing, line_end), "present")

    def inject_noise(self, data: bytes) -> None:
        """Send raw bytes that are no frame (line noise, garbage)."""
        self._write(data, "noise")

    def send_raw(self, data: bytes) -> None:
        """Send raw bytes, for example the first part of a torn frame."""
        self._write(data, "raw")

    def unplug(self) -> None:
        """Disconnect: close the pseudo-terminal and remove the stable link."""
        if self._master_fd is None:
            return
        os.close(self._master_fd)
        self._master_fd = None
        if self._link_path is not None:
            self._link_path.unlink(missing_ok=True)
        self._record("unplug")

    def replug(self) -> None:
        """Connect again on a new pseudo-terminal under the same link."""
        if self._master_fd is None:
            self._open()
            self._record("replug")

    def close(self) -> None:
        """Unplug and release everything; idempotent."""
        if self._master_fd is not None:
            self.unplug()
            self._record("close")

    def is_port_open(self) -> bool:
        """Whether a driver holds the pseudo-terminal open right now."""
        if self._master_fd is None:
            return False
        poller = select.poll()
        poller.register(self._master_fd, select.POLLHUP)
        # The master reports POLLHUP while no process has the slave open.
        return not poller.poll(0)

    def _open(self) -> None:
        master_fd, slave_fd = pty.openpty()
        try:
            tty.setraw(slave_fd)
            self._device_path = os.ttyname(slave_fd)
        finally:
            os.close(slave_fd)
        os.set_blocking(master_fd, False)
        self._master_fd = master_fd
        if self._link_path is not None:
            self._replace_link(self._link_path, self._device_path)

    @staticmethod
    def _replace_link(link_path: Path, target: str) -> None:
        """Point ``link_path`` at ``target`` atomically, as udev does."""
        with tempfile.TemporaryDirectory(dir=link_path.parent) as scratch:
            temporary = Path(scratch) / "link"
            temporary.symlink_to(target)
            os.replace(temporary, link_path)

    def _write(self, data: bytes, kind: str) -> None:
        if self._master_fd is None:
            raise DeviceIOError("the emulated document reader is unplugged")
        deadline_s = time.monotonic() + _WRITE_TIMEOUT_S
        view = memoryview(data)
        while view:
            try:
                written = os.write(self._master_fd, view)
            except BlockingIOError:
                written = 0
            except OSError as err:
                if err.errno != errno.EIO:
                    raise
                raise DeviceIOError("pseudo-terminal write failed") from err
            view = view[written:]
            if view and time.monotonic() > deadline_s:
                raise DeviceIOError(
                    f"no driver drained the pseudo-terminal in {_WRITE_TIMEOUT_S} s"
                )
            if view:
                time.sleep(0.005)
        self._record(kind, len(data))

    def _record(self, kind: str, byte_count: int = 0) -> None:
        self.events.append(EmulatorEvent(time.monotonic(), kind, byte_count))
