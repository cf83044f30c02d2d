"""Turn the byte stream of a desk document reader into documents (MRZ lines).

Framings (``DocumentReaderConfig.framing``):

* ``lines``: lines ended by CR, LF or CR LF. A document is complete when the
  lines form an ICAO shape (2 x 44, 2 x 36 or 3 x 30). Complete lines that
  form no shape are delivered as a document once the link has been quiet
  for ``frame_timeout_s``, so that the parser reports what is wrong. A line
  still incomplete at that time drops the whole document.
* ``stx_etx``: ``STX line CR line CR [line CR] ETX`` (DESKO-style; bytes
  outside the frame, such as DESKO's start and end markers, are skipped).
* ``length_checksum``: ``SOH len "OU" STX flag data ETX BCC`` (3M
  RTE6701-style). ``len`` is one byte counting the bytes from ``"OU"``
  through ``ETX``; ``BCC`` is the XOR of the bytes from ``len`` through
  ``ETX``. The data holds three lines each ended by CR; missing upper lines
  are a bare CR, and lines are padded with ``_``.
* ``auto``: each frame is recognised by its first byte (SOH, STX, or
  anything else for lines).

Invariants: a frame never grows past ``max_frame_bytes`` (it is dropped and
the decoder resynchronises); a partial frame older than ``frame_timeout_s``
is dropped; bytes that are neither frame markers nor printable ASCII (line
noise) cut a line, and only what follows them is kept.

NOTE: the byte layout of ``len`` and ``BCC`` is our reading of the 3M
RTE6701 notes, not a checked vendor document; verify it on the rig with a
real reader before relying on that framing.
"""

from __future__ import annotations

import logging
from typing import Literal

logger = logging.getLogger(__name__)

Framing = Literal["auto", "lines", "stx_etx", "length_checksum"]

SOH = 0x01
STX = 0x02
ETX = 0x03
CR = 0x0D
LF = 0x0A

_MRZ_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789<")
# Line lengths of complete documents, by line count (ICAO 9303 layouts).
_SHAPES = ((44, 44), (36, 36), (30, 30, 30))
# A line shorter than this, or with fewer MRZ characters than this share, is
# noise. DESKO readers send lines of 7 to 44 characters.
_MIN_LINE_CHARS = 7
_MIN_MRZ_SHARE = 0.8


def checksum(data: bytes) -> int:
    """Return the XOR of ``data`` (the BCC of ``length_checksum`` frames)."""
    value = 0
    for byte in data:
        value ^= byte
    return value


def clean_line(raw: bytes) -> str | None:
    """Repair one received line, or return None when it is noise.

    Keeps what follows the last noise byte (control or non-ASCII), strips
    spaces at both ends and the ``_`` padding some readers add, and rejects
    lines too short or with too few MRZ characters to be part of an MRZ.
    """
    start = 0
    for index, byte in enumerate(raw):
        if byte < 0x20 or byte > 0x7E:
            start = index + 1
    text = raw[start:].decode("ascii").strip(" ").rstrip("_").rstrip(" ")
    if len(text) < _MIN_LINE_CHARS:
        return None
    mrz_chars = sum(1 for byte in text.encode("ascii") if byte in _MRZ_BYTES)
    if mrz_chars < _MIN_MRZ_SHARE * len(text):
        return None
    return text


def _split_lines(data: bytes) -> list[str]:
    """Split frame data on CR, LF or CR LF into cleaned lines, dropping blanks."""
    lines = []
    for raw in data.replace(b"\r\n", b"\r").replace(b"\n", b"\r").split(b"\r"):
        line = clean_line(raw)
        if line is not None:
            lines.append(line)
    return lines


class FrameDecoder:
    """Incremental decoder from reader bytes to documents; pure, time passed in.

    Args:
        framing: The framing to accept (``auto`` accepts all three).
        max_frame_bytes: Largest frame (or pending line) kept, in bytes.
        frame_timeout_s: A partial frame quiet for longer is dropped, and
            pending lines are delivered.
    """

    def __init__(
        self, framing: Framing, max_frame_bytes: int, frame_timeout_s: float
    ) -> None:
        self._framing = framing
        self._max_frame_bytes = max_frame_bytes
        self._frame_timeout_s = frame_timeout_s
        self._buffer = bytearray()
        self._pending_lines: list[str] = []
        self._last_byte_s = 0.0
        self.dropped_frames = 0

    def reset(self) -> None:
        """Forget every partial frame and pending line (after a reconnect)."""
        self._buffer.clear()
        self._pending_lines.clear()

    def feed(self, data: bytes, now_s: float) -> list[list[str]]:
        """Add received bytes and return the documents they complete.

        Args:
            data: Bytes as read from the link.
            now_s: The monotonic time of the read, in seconds.
        """
        documents = self.poll(now_s)
        if data:
            self._buffer.extend(data)
            self._last_byte_s = now_s
        while self._buffer:
            consumed = self._decode_one(documents)
            if consumed == 0:
                break
            del self._buffer[:consumed]
        if len(self._buffer) > self._max_frame_bytes:
            self._drop(f"longer than {self._max_frame_bytes} bytes")
        return documents

    def poll(self, now_s: float) -> list[list[str]]:
        """Apply the frame timeout and return documents it completes."""
        documents: list[list[str]] = []
        if now_s - self._last_byte_s <= self._frame_timeout_s:
            return documents
        if self._buffer:
            # A torn line also tears the document its earlier lines began.
            self._drop(f"incomplete after {self._frame_timeout_s} s")
            self._pending_lines = []
        if self._pending_lines:
            documents.append(self._pending_lines)
            self._pending_lines = []
        return documents

    def _drop(self, reason: str) -> None:
        logger.warning(
            "dropped %d bytes of a partial document-reader frame: %s",
            len(self._buffer),
            reason,
        )
        self.dropped_frames += 1
        self._buffer.clear()

    def _drop_frame(self, byte_count: int, reason: str) -> int:
        """Count and log a dropped frame; return the bytes to skip."""
        logger.warning("dropped a document-reader frame: %s", reason)
        self.dropped_frames += 1
        return byte_count

    def _accepts(self, framing: Framing) -> bool:
        return self._framing in ("auto", framing)

    def _decode_one(self, documents: list[list[str]]) -> int:
        """Decode from the start of the buffer; return the bytes consumed.

        Returns 0 when more bytes are needed.
        """
        first = self._buffer[0]
        if first == SOH and self._accepts("length_checksum"):
            return self._decode_length_checksum(documents)
        if first == STX and self._accepts("stx_etx"):
            return self._decode_stx_etx(documents)
        if self._accepts("lines"):
            return self._decode_line(documents)
        # A framed mode: skip noise up to the next frame start.
        marker = SOH if self._framing == "length_checksum" else STX
        index = self._buffer.find(marker)
        return len(self._buffer) if index < 0 else index

    def _deliver(self, documents: list[list[str]], lines: list[str]) -> None:
        if self._pending_lines:
            documents.append(self._pending_lines)
            self._pending_lines = []
        if lines:
            documents.append(lines)

    def _decode_length_checksum(self, documents: list[list[str]]) -> int:
        buffer = self._buffer
        if len(buffer) < 2:
            return 0
        length = buffer[1]
        total = 2 + length + 1
        if length < 5:
            return self._drop_frame(1, f"length {length} is too short")
        if len(buffer) < total:
            return 0
        if total > self._max_frame_bytes:
            return self._drop_frame(1, f"longer than {self._max_frame_bytes} bytes")
        body = bytes(buffer[2 : 2 + length])
        if checksum(bytes(buffer[1 : 2 + length])) != buffer[2 + length]:
            # The length held, so the whole frame is skipped, not re-read as lines.
            return self._drop_frame(total, "checksum failed")
        if body[2] != STX or body[-1] != ETX:
            return self._drop_frame(1, "STX or ETX missing")
        # body: "OU" STX flag data ETX
        self._deliver(documents, _split_lines(body[4:-1]))
        return total

    def _decode_stx_etx(self, documents: list[list[str]]) -> int:
        buffer = self._buffer
        end = buffer.find(ETX, 1)
        restart = buffer.find(STX, 1)
        if restart >= 0 and (end < 0 or restart < end):
            # A new frame began before this one ended: the first was torn.
            return self._drop_frame(restart, "torn by the next STX")
        if end < 0:
            return 0
        if end + 1 > self._max_frame_bytes:
            return self._drop_frame(
                end + 1, f"longer than {self._max_frame_bytes} bytes"
            )
        self._deliver(documents, _split_lines(bytes(buffer[1:end])))
        return end + 1

    def _decode_line(self, documents: list[list[str]]) -> int:
        buffer = self._buffer
        end = -1
        for index, byte in enumerate(buffer):
            if byte in (CR, LF):
                end = index
                break
            if byte in (SOH, STX) and self._framing == "auto" and index > 0:
                # A framed document starts: what came before was noise.
                return index
        if end < 0:
            return 0
        line = clean_line(bytes(buffer[:end]))
        if line is not None:
            self._pending_lines.append(line)
            shape = tuple(len(pending) for pending in self._pending_lines)
            if shape in _SHAPES or len(shape) >= 3:
                documents.append(self._pending_lines)
                self._pending_lines = []
        return end + 1
