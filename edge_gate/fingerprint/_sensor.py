"""Capture interface and the driver for UART fingerprint modules (EF01).

The gate downloads the image and matches on the board, never on the module.
Each command is one transaction with its own deadline: write the command
packet, then read whatever arrives (``read(in_waiting or 1)`` with a short
serial timeout) into a resynchronising parser until the acknowledge packet
comes or the deadline passes. Stray bytes (an R5xx ready byte 0x55, leftovers
of an aborted upload, line noise) are skipped; packets for another address,
or of the wrong kind, are dropped; a packet with a bad checksum makes the
driver flush the line and repeat the command once.

Image upload reads data packets until the end packet (PID 0x08), checks every
checksum and the total byte count against the image size (never the packet
size), and restarts the whole upload after a corrupt or lost packet.
"""

from __future__ import annotations

import abc
import logging
import time
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from edge_gate._closing import Closing
from edge_gate.config import FingerprintConfig
from edge_gate.errors import (
    CaptureError,
    DeviceInitError,
    DeviceIOError,
    DeviceProtocolError,
    DeviceTimeoutError,
)
from edge_gate.fingerprint._profiles import ModuleProfile, get_profile
from edge_gate.fingerprint._protocol import (
    PACKET_SIZES,
    Instruction,
    Packet,
    PacketParser,
    Pid,
    build_command,
    describe_code,
    unpack_pixels,
)

logger = logging.getLogger(__name__)

# Baud rates tried after the configured one (ZFM: 9600 x N).
PROBE_BAUDRATES: Final = (57600, 115200, 9600, 19200, 38400)
READ_SLICE_S: Final = 0.05
CODE_OK: Final = 0x00
CODE_NOT_RECEIVED: Final = 0x01
CODE_NO_FINGER: Final = 0x02
CODE_CAPTURE_FAILED: Final = 0x03
CODE_POOR_IMAGE: Final = 0x07
CODE_WRONG_PASSWORD: Final = 0x13
CODE_PASSWORD_REQUIRED: Final = 0x21
# Aura LED (R5xx): control 3 = always on, 4 = off; colour 2 = blue.
AURA_ON: Final = bytes([0x03, 0x80, 0x02, 0x00])
AURA_OFF: Final = bytes([0x04, 0x80, 0x02, 0x00])


class ModuleRejectedError(DeviceProtocolError):
    """The module responded to a command with a confirmation code other than OK.

    Attributes:
        code: the confirmation code byte.
        instruction: the instruction code it responded to.
    """

    def __init__(self, instruction: int, code: int) -> None:
        """Build the message from the code table."""
        super().__init__(
            f"fingerprint module responded to instruction 0x{instruction:02X} with "
            f"0x{code:02X}: {describe_code(code)}"
        )
        self.code = code
        self.instruction = instruction


class FingerprintSensor(Closing, abc.ABC):
    """A fingerprint capture device seen by the lane."""

    @abc.abstractmethod
    def capture_image(self, timeout_s: float) -> npt.NDArray[np.uint8]:
        """Wait for a finger and return its image (uint8, dark ridges).

        Raises:
            CaptureError: no finger by the deadline.
            DeviceIOError: the link failed (unplugged).
            DeviceTimeoutError: the module stopped responding.
            DeviceProtocolError: the module kept sending broken packets.
        """

    @abc.abstractmethod
    def set_led(self, on: bool) -> None:
        """Switch the module's light where it has one (no-op otherwise)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the device; idempotent."""


class SerialFingerprintSensor(FingerprintSensor):
    """Driver for the R30x / AS608 / ZFM / R503 module family over a serial port.

    Opening runs the connect sequence: open 8N1, drain the input, VfyPwd
    (probing other baud rates on silence), ReadSysPara, and ReadProdInfo on
    modules that have it. A later I/O failure closes the port; the next call
    reopens it and repeats the sequence, so an unplugged and replugged module
    comes back without a restart.
    """

    def __init__(self, config: FingerprintConfig) -> None:
        """Open the port and run the connect sequence.

        Raises:
            ValueError: unknown profile in the configuration.
            DeviceInitError: the port cannot be opened, the module stays
                silent at every baud rate, or the password is wrong.
        """
        self._config = config
        self._profile: ModuleProfile = get_profile(config.profile)
        self._width = self._profile.width
        self._height = self._profile.height
        self._packet_size = 128
        self._baudrate = config.baudrate
        self._serial: Any = None
        self._parser = PacketParser()
        self.checksum_errors = 0
        self.dropped_packets = 0
        try:
            self._connect()
        except BaseException:
            self.close()
            raise

    @property
    def is_open(self) -> bool:
        """Whether the port is open and the module responded to its handshake."""
        return self._serial is not None

    @property
    def image_size(self) -> tuple[int, int]:
        """(width, height) of the module's images in pixels."""
        return self._width, self._height

    @property
    def skipped_bytes(self) -> int:
        """Bytes skipped before packet headers since opening (garbage, 0x55)."""
        return self._parser.skipped_bytes

    # Connection

    def _open_port(self, baudrate: int) -> None:
        import serial

        try:
            self._serial = serial.Serial(
                self._config.port,
                baudrate=baudrate,
                bytesize=serial.EIGHTBITS,
                parity=serial.PARITY_NONE,
                stopbits=serial.STOPBITS_ONE,
                timeout=READ_SLICE_S,
                write_timeout=self._config.reply_timeout_s,
                exclusive=True,
            )
        except (serial.SerialException, OSError, ValueError) as err:
            self._serial = None
            raise DeviceInitError(
                f"cannot open fingerprint module port {self._config.port}: {err}; "
                "check the cable and the udev rule"
            ) from err
        self._parser.clear()
        self._baudrate = baudrate

    def _connect(self) -> None:
        """Open, handshake (probing baud rates), read the system parameters."""
        rates = [self._config.baudrate]
        if self._config.probe_baudrates:
            rates += [r for r in PROBE_BAUDRATES if r != self._config.baudrate]
        for rate in rates:
            self._open_port(rate)
            self._drain()
            try:
                self._verify_password()
            except DeviceTimeoutError:
                logger.debug("no response at %d baud", rate)
                self._close_port()
                continue
            except BaseException:
                self._close_port()
                raise
            logger.info("fingerprint module responded at %d baud", rate)
            break
        else:
            raise DeviceInitError(
                f"fingerprint module on {self._config.port} does not respond at "
                f"{', '.join(map(str, rates))} baud; check power and wiring (TX/RX)"
            )
        self._read_parameters()

    def _verify_password(self) -> None:
        params = self._config.password.to_bytes(4, "big")
        try:
            self._command(Instruction.VFY_PWD, params, retry=False)
        except ModuleRejectedError as err:
            if err.code == CODE_WRONG_PASSWORD:
                raise DeviceInitError(
                    "fingerprint module rejected the configured password "
                    "([fingerprint] password); provision it again"
                ) from err
            raise DeviceInitError(
                f"fingerprint module handshake failed: {err}"
            ) from err

    def _read_parameters(self) -> None:
        """Learn the packet size (ReadSysPara) and image size (ReadProdInfo)."""
        reply = self._command(Instruction.READ_SYS_PARA)
        if len(reply.payload) < 17:
            raise DeviceProtocolError(
                f"ReadSysPara reply has {len(reply.payload) - 1} bytes, expected 16"
            )
        size_code = int.from_bytes(reply.payload[13:15], "big")
        if size_code >= len(PACKET_SIZES):
            raise DeviceProtocolError(f"module reports packet size code {size_code}")
        self._packet_size = PACKET_SIZES[size_code]
        if self._profile.has_product_info:
            info = self._command(Instruction.READ_PROD_INFO).payload[1:]
            if len(info) >= 46:
                self._width = int.from_bytes(info[38:40], "big")
                self._height = int.from_bytes(info[40:42], "big")
        logger.info(
            "fingerprint module ready: %dx%d images, %d-byte packets",
            self._width,
            self._height,
            self._packet_size,
        )

    def _ensure_open(self) -> None:
        if self._serial is None:
            try:
                self._connect()
            except DeviceInitError as err:
                raise DeviceIOError(f"fingerprint module unavailable: {err}") from err

    def _close_port(self) -> None:
        port, self._serial = self._serial, None
        if port is not None:
            try:
                port.close()
            except Exception as err:  # closing a vanished port may fail
                logger.debug("closing the fingerprint port failed: %s", err)

    def close(self) -> None:
        """Close the port; idempotent."""
        self._close_port()

    # Byte I/O

    def _write(self, data: bytes) -> None:
        import serial

        try:
            self._serial.write(data)
        except (serial.SerialException, OSError) as err:
            self._close_port()
            raise DeviceIOError(
                f"writing to the fingerprint module failed: {err}"
            ) from err

    def _read_some(self) -> bytes:
        import serial

        try:
            waiting = self._serial.in_waiting
            data: bytes = self._serial.read(waiting or 1)
        except (serial.SerialException, OSError) as err:
            self._close_port()
            raise DeviceIOError(
                f"reading from the fingerprint module failed: {err}"
            ) from err
        return data

    def _drain(self) -> None:
        """Drop bytes already waiting (a 0x55 ready byte, an aborted upload)."""
        self._parser.clear()
        try:
            self._serial.reset_input_buffer()
        except Exception as err:  # a vanished port fails here first
            self._close_port()
            raise DeviceIOError(f"fingerprint module port failed: {err}") from err

    def _next_packet(self, deadline: float) -> Packet:
        """Return the next well-formed packet for our address before ``deadline``.

        Raises:
            DeviceTimeoutError: nothing complete arrived in time.
            DeviceProtocolError: a packet failed its checksum or LEN check.
        """
        while True:
            packet = self._parser.next()
            if packet is not None:
                if packet.address == self._config.address:
                    return packet
                self.dropped_packets += 1
                continue
            if time.monotonic() >= deadline:
                raise DeviceTimeoutError(
                    "fingerprint module response timed out; check the link"
                )
            self._parser.feed(self._read_some())

    # Commands

    def _command(
        self, instruction: int, params: bytes = b"", retry: bool = True
    ) -> Packet:
        """Send one command and return its acknowledge packet (code OK).

        Bad checksums, a "command not received" response or silence get one
        repeat when ``retry`` is set.

        Raises:
            ModuleRejectedError: the module responded with an error code.
            DeviceTimeoutError: no acknowledge before the reply deadline.
            DeviceProtocolError: broken packets on the repeat too.
            DeviceIOError: the port failed.
        """
        attempts = 2 if retry else 1
        for attempt in range(attempts):
            is_last = attempt == attempts - 1
            self._write(build_command(instruction, params, self._config.address))
            try:
                reply = self._await_ack(time.monotonic() + self._config.reply_timeout_s)
            except DeviceProtocolError as err:
                if is_last:
                    raise
                logger.warning("fingerprint module reply corrupt (%s); repeating", err)
                self._drain()
                continue
            except DeviceTimeoutError:
                if is_last:
                    raise
                # A late reply must not pass as the reply to the repeat, so wait
                # another reply period and drop whatever arrives in it.
                logger.warning("fingerprint module reply late or lost; repeating")
                self._discard_for(self._config.reply_timeout_s)
                continue
            if reply.code == CODE_NOT_RECEIVED and not is_last:
                logger.warning("fingerprint module missed a command; repeating")
                continue
            if reply.code != CODE_OK:
                raise ModuleRejectedError(instruction, reply.code)
            return reply
        raise AssertionError("unreachable")  # pragma: no cover

    def _await_ack(self, deadline: float) -> Packet:
        while True:
            try:
                packet = self._next_packet(deadline)
            except DeviceProtocolError:
                self.checksum_errors += 1
                raise
            if packet.pid == Pid.ACK and packet.payload:
                return packet
            # Stale data packets of an aborted upload: skip them.
            self.dropped_packets += 1

    def set_led(self, on: bool) -> None:
        """Switch the ring light (R5xx) or backlight (AS608); no-op without one.

        Raises:
            DeviceIOError, DeviceTimeoutError, DeviceProtocolError: link faults.
        """
        self._ensure_open()
        if self._profile.led == "aura":
            self._command(Instruction.AURA_LED_CONFIG, AURA_ON if on else AURA_OFF)
        elif self._profile.led == "backlight":
            self._command(Instruction.LED_ON if on else Instruction.LED_OFF)
        else:
            logger.debug("profile %s has no LED to switch", self._profile.name)

    def capture_image(self, timeout_s: float) -> npt.NDArray[np.uint8]:
        """Poll for a finger until ``timeout_s`` passes, then upload its image.

        Returns:
            uint8 array (height, width), 16 grey levels expanded to 0..255.

        Raises:
            CaptureError: no finger (or only poor images) by the deadline.
            DeviceIOError: the port failed.
            DeviceTimeoutError: the module stopped responding.
            DeviceProtocolError: broken packets or an unexpected error code.
        """
        self._ensure_open()
        deadline = time.monotonic() + timeout_s
        instruction = (
            Instruction.GET_IMAGE_EX
            if self._profile.has_get_image_ex
            else Instruction.GEN_IMG
        )
        while True:
            try:
                self._command(instruction)
                break
            except ModuleRejectedError as err:
                if err.code not in (
                    CODE_NO_FINGER,
                    CODE_CAPTURE_FAILED,
                    CODE_POOR_IMAGE,
                ):
                    raise
                logger.debug("no usable finger yet: %s", describe_code(err.code))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CaptureError(f"no finger on the sensor within {timeout_s:.1f} s")
            time.sleep(min(self._config.poll_interval_s, remaining))
        return self._upload_image()

    def _upload_image(self) -> npt.NDArray[np.uint8]:
        """Run UpImage, restarting after a corrupt or lost data packet."""
        expected = self._width * self._height // 2
        # Wire time at 10 bits per byte plus 11 bytes per packet, doubled
        # for inter-packet gaps, plus the reply timeout.
        packets = -(-expected // self._packet_size)
        wire_s = (expected + 11 * packets) * 10 / self._baudrate
        budget_s = 2 * wire_s + self._config.reply_timeout_s
        for attempt in range(self._config.upload_retries + 1):
            self._command(Instruction.UP_IMAGE)
            try:
                data = self._read_data(expected, time.monotonic() + budget_s)
            except (DeviceProtocolError, DeviceTimeoutError) as err:
                if attempt == self._config.upload_retries:
                    raise
                logger.warning("image upload failed (%s); restarting it", err)
                self._drain_until_quiet()
                continue
            return unpack_pixels(data, self._width, self._height)
        raise AssertionError("unreachable")  # pragma: no cover

    def _read_data(self, expected: int, deadline: float) -> bytes:
        """Collect data packets until the end packet; check the byte count."""
        data = bytearray()
        while True:
            try:
                packet = self._next_packet(deadline)
            except DeviceProtocolError:
                self.checksum_errors += 1
                raise
            if packet.pid not in (Pid.DATA, Pid.END_DATA):
                raise DeviceProtocolError(
                    f"packet with PID 0x{packet.pid:02X} inside an image upload"
                )
            data += packet.payload
            if len(data) > expected:
                raise DeviceProtocolError(
                    f"image upload exceeds the {expected} bytes of a "
                    f"{self._width}x{self._height} image"
                )
            if packet.pid == Pid.END_DATA:
                if len(data) != expected:
                    raise DeviceProtocolError(
                        f"image upload ended after {len(data)} of {expected} bytes"
                    )
                return bytes(data)

    def _discard_for(self, duration_s: float) -> None:
        """Read and drop everything that arrives within ``duration_s``."""
        deadline = time.monotonic() + duration_s
        while time.monotonic() < deadline:
            self._read_some()
        self._parser.clear()

    def _drain_until_quiet(self) -> None:
        """Discard input until the line has been quiet for a read slice."""
        deadline = time.monotonic() + self._config.reply_timeout_s
        self._parser.clear()
        while time.monotonic() < deadline:
            if not self._read_some():
                break
        self._parser.clear()
