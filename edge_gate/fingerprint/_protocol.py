"""Packet codec of the UART fingerprint module family (header EF01).

Pure functions and a resynchronising parser; no I/O. Packet layout (all
multi-byte fields big-endian)::

    EF 01 | address (4) | PID (1) | LEN (2) | payload (LEN - 2) | checksum (2)

LEN counts the payload and the checksum. The checksum is the low 16 bits of
the sum of PID, both LEN bytes and every payload byte. Data payloads hold at
most 256 bytes, so LEN is at most 258.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from edge_gate.errors import DeviceProtocolError

HEADER: Final = b"\xef\x01"
DEFAULT_ADDRESS: Final = 0xFFFFFFFF
MAX_LEN: Final = 258
HEADER_SIZE: Final = 9
READY_BYTE: Final = 0x55
PACKET_SIZES: Final = (32, 64, 128, 256)


class Pid(enum.IntEnum):
    """Packet identifiers."""

    COMMAND = 0x01
    DATA = 0x02
    ACK = 0x07
    END_DATA = 0x08


class Instruction(enum.IntEnum):
    """Instruction codes the gate and the emulator use."""

    GEN_IMG = 0x01
    IMG2TZ = 0x02
    UP_IMAGE = 0x0A
    DOWN_IMAGE = 0x0B
    READ_SYS_PARA = 0x0F
    VFY_PWD = 0x13
    TEMPLATE_NUM = 0x1D
    GET_IMAGE_EX = 0x28
    AURA_LED_CONFIG = 0x35
    READ_PROD_INFO = 0x3C
    SOFT_RESET = 0x3D
    HANDSHAKE = 0x40
    LED_ON = 0x50
    LED_OFF = 0x51


# Confirmation codes (ZhianTec ZFM datasheet, Grow R503 manual).
CONFIRMATION_CODES: Final[dict[int, str]] = {
    0x00: "OK",
    0x01: "the module did not receive the command packet (bad checksum or length)",
    0x02: "no finger on the sensor",
    0x03: "image capture failed",
    0x04: "image too disordered",
    0x05: "image too wet",
    0x06: "image too messy to extract features",
    0x07: "too few minutiae, or a poor image",
    0x08: "fingerprints do not match",
    0x09: "no matching template in the library",
    0x0A: "cannot merge the character buffers",
    0x0B: "page number outside the library",
    0x0C: "template read failed or template invalid",
    0x0D: "template upload failed",
    0x0E: "the module cannot receive data packets",
    0x0F: "image upload failed",
    0x10: "template delete failed",
    0x11: "clearing the library failed",
    0x13: "wrong password",
    0x15: "no valid image in the image buffer",
    0x18: "flash read or write error",
    0x19: "undefined error",
    0x1A: "invalid register number",
    0x1B: "bad register configuration",
    0x1C: "wrong notepad page",
    0x1D: "port operation failed",
    0x1F: "fingerprint library full",
    0x20: "address error",
    0x21: "the password must be verified first",
    0x22: "template empty",
    0x24: "fingerprint library empty",
    0x26: "timeout",
    0x27: "fingerprint already enrolled",
    0x29: "sensor hardware error",
    0xFC: "unsupported command",
    0xFD: "hardware error",
    0xFE: "command execution failed",
}


def describe_code(code: int) -> str:
    """Return the meaning of a confirmation code, naming unknown ones."""
    return CONFIRMATION_CODES.get(code, f"unknown confirmation code 0x{code:02X}")


def checksum(pid: int, payload: bytes) -> int:
    """Return the packet checksum over PID, LEN and payload."""
    length = len(payload) + 2
    return (pid + (length >> 8) + (length & 0xFF) + sum(payload)) & 0xFFFF


def build_packet(pid: int, payload: bytes, address: int = DEFAULT_ADDRESS) -> bytes:
    """Encode one packet.

    Raises:
        ValueError: the payload is empty or longer than 256 bytes, or the
            address or PID is out of range.
    """
    if not 1 <= len(payload) <= MAX_LEN - 2:
        raise ValueError(f"payload of {len(payload)} bytes is outside 1..256")
    if not 0 <= address <= 0xFFFFFFFF or not 0 <= pid <= 0xFF:
        raise ValueError(f"address 0x{address:X} or PID 0x{pid:X} out of range")
    length = len(payload) + 2
    return (
        HEADER
        + address.to_bytes(4, "big")
        + bytes([pid])
        + length.to_bytes(2, "big")
        + payload
        + checksum(pid, payload).to_bytes(2, "big")
    )


def build_command(
    instruction: int, params: bytes = b"", address: int = DEFAULT_ADDRESS
) -> bytes:
    """Encode a command packet: instruction code followed by its parameters."""
    return build_packet(Pid.COMMAND, bytes([instruction]) + params, address)


@dataclass(frozen=True)
class Packet:
    """One decoded packet with a verified checksum."""

    address: int
    pid: int
    payload: bytes

    @property
    def code(self) -> int:
        """The confirmation code of an acknowledge packet (first payload byte)."""
        return self.payload[0]


class PacketParser:
    """Incremental parser that survives garbage and partial reads.

    Bytes go in with :meth:`feed`; whole packets come out of :meth:`next`.
    Bytes before a header are skipped and counted; a packet with a bad
    checksum or an impossible LEN raises after its bytes are dropped, so the
    next call resumes at the following header.
    """

    def __init__(self) -> None:
        """Start with an empty buffer."""
        self._buffer = bytearray()
        self.skipped_bytes = 0
        self.ready_bytes = 0

    def feed(self, data: bytes) -> None:
        """Append received bytes."""
        self._buffer += data

    def clear(self) -> None:
        """Drop everything buffered (after an aborted transfer)."""
        self._buffer.clear()

    def next(self) -> Packet | None:
        """Return the next complete packet, or None if more bytes are needed.

        Raises:
            DeviceProtocolError: a packet had a bad checksum or LEN; its bytes
                have been dropped.
        """
        start = self._buffer.find(HEADER)
        if start < 0:
            # Keep a trailing 0xEF: it may be the first half of a header.
            keep = 1 if self._buffer[-1:] == HEADER[:1] else 0
            self._skip(len(self._buffer) - keep)
            return None
        self._skip(start)
        if len(self._buffer) < HEADER_SIZE:
            return None
        length = int.from_bytes(self._buffer[7:9], "big")
        if not 3 <= length <= MAX_LEN:
            del self._buffer[:2]
            raise DeviceProtocolError(
                f"fingerprint module packet with impossible LEN {length}; "
                "resynchronising"
            )
        total = HEADER_SIZE + length
        if len(self._buffer) < total:
            return None
        raw = bytes(self._buffer[:total])
        del self._buffer[:total]
        pid = raw[6]
        payload = raw[HEADER_SIZE : total - 2]
        received = int.from_bytes(raw[total - 2 :], "big")
        if received != checksum(pid, payload):
            raise DeviceProtocolError(
                f"fingerprint module packet checksum 0x{received:04X}, expected "
                f"0x{checksum(pid, payload):04X}; packet dropped"
            )
        return Packet(int.from_bytes(raw[2:6], "big"), pid, payload)

    def _skip(self, count: int) -> None:
        if count <= 0:
            return
        skipped = self._buffer[:count]
        self.ready_bytes += skipped.count(READY_BYTE)
        self.skipped_bytes += count
        del self._buffer[:count]


def unpack_pixels(data: bytes, width: int, height: int) -> npt.NDArray[np.uint8]:
    """Expand 4-bit pixels (two per byte, high nibble first) to 0..255.

    Raises:
        DeviceProtocolError: the byte count is not width * height / 2.
    """
    expected = width * height // 2
    if len(data) != expected:
        raise DeviceProtocolError(
            f"fingerprint image has {len(data)} bytes, a {width}x{height} image "
            f"at 4 bits per pixel needs {expected}; check the module profile"
        )
    packed = np.frombuffer(data, dtype=np.uint8)
    pixels = np.empty(expected * 2, dtype=np.uint8)
    pixels[0::2] = packed >> 4
    pixels[1::2] = packed & 0x0F
    return (pixels * 17).reshape(height, width)


def pack_pixels(image: npt.NDArray[np.uint8]) -> bytes:
    """Pack an 8-bit image as 4-bit pixels, two per byte (high nibble even x)."""
    if image.ndim != 2 or image.shape[1] % 2:
        raise ValueError(f"image shape {image.shape} needs an even width")
    nibbles = (image >> 4).reshape(-1)
    return ((nibbles[0::2] << 4) | nibbles[1::2]).astype(np.uint8).tobytes()
