"""Emulator of a UART fingerprint module (header EF01) on a pseudo-terminal.

The emulator owns the master side of a pty pair and answers the packet
protocol as the real module family does (see
``edge_gate.fingerprint._protocol``); the driver opens ``.port`` with
pyserial exactly as it opens a real device. Images placed on it are shown as
the module would deliver them: cropped or padded to the profile's size and
quantised to 16 grey levels.

Behaviour, in the order a command meets it:

1. Bytes before ``EF 01`` are skipped; packets for another address get no reply.
2. A bad checksum or LEN gets confirmation code 0x01; an unknown instruction
   gets 0xFC on R5xx profiles and silence on the older ones.
3. With a password set and not yet verified, everything but VfyPwd gets 0x21.
4. GenImg / GetImageEx: 0x02 without a finger; with one, 0x00 and the image
   goes to the image buffer. UpImage without a valid image: 0x15; otherwise
   an acknowledge and W*H/2 bytes in packet-size chunks, the last with PID 0x08.

Fault knobs (each applies to the next matching event only, except the
persistent ``reply_delay_s`` and ``split_writes``): ``corrupt_next_reply``,
``corrupt_next_image_packet``, ``drop_next_reply``, ``stall_next_upload``,
``inject_garbage``, plus ``unplug`` and ``replug``. Every event is recorded
in ``events`` with a monotonic timestamp.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pty
import select
import threading
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from edge_gate._closing import Closing
from edge_gate.errors import DeviceProtocolError
from edge_gate.fingerprint._image import emulate_sensor_image, load_fingerprint_image
from edge_gate.fingerprint._profiles import ModuleProfile, get_profile
from edge_gate.fingerprint._protocol import (
    DEFAULT_ADDRESS,
    PACKET_SIZES,
    READY_BYTE,
    Instruction,
    PacketParser,
    Pid,
    build_packet,
    pack_pixels,
)

logger = logging.getLogger(__name__)

JOIN_TIMEOUT_S: Final = 2.0
POLL_S: Final = 0.02
CODE_OK: Final = 0x00
CODE_BAD_PACKET: Final = 0x01
CODE_NO_FINGER: Final = 0x02
CODE_WRONG_PASSWORD: Final = 0x13
CODE_NO_IMAGE: Final = 0x15
CODE_PASSWORD_REQUIRED: Final = 0x21
CODE_UNSUPPORTED: Final = 0xFC


@dataclass(frozen=True)
class EmulatorEvent:
    """One thing the emulator saw or did."""

    time_s: float
    kind: str
    detail: str = ""


class FingerprintModuleEmulator(Closing):
    """A fingerprint module on a pty, for tests, the rig and ``simulate``."""

    def __init__(
        self,
        profile: str = "r307",
        link_path: Path | None = None,
        *,
        password: int = 0,
        address: int = DEFAULT_ADDRESS,
        packet_size: int = 128,
    ) -> None:
        """Create the pty pair and start serving the protocol.

        Args:
            profile: module profile name (``r307``, ``zfm20``, ``as608``, ``r503``).
            link_path: if given, a symlink to the pty that survives replugs.
            password: the module's stored password (0 = none required).
            address: the module's address.
            packet_size: data packet size, one of 32, 64, 128, 256.

        Raises:
            ValueError: unknown profile or packet size.
        """
        self.profile: ModuleProfile = get_profile(profile)
        if packet_size not in PACKET_SIZES:
            raise ValueError(f"packet size {packet_size} is not one of {PACKET_SIZES}")
        self._link_path = link_path
        self._password = password
        self._address = address
        self._packet_size = packet_size
        self._verified = password == 0
        self._finger: npt.NDArray[np.uint8] | None = None
        self._image_buffer: npt.NDArray[np.uint8] | None = None
        self.led_on = False
        self.events: list[EmulatorEvent] = []
        self.reply_delay_s = 0.0
        self.split_writes = False
        self._faults: set[str] = set()
        self._lock = threading.Lock()
        self._master = -1
        self._slave = -1
        self._port = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._plug_in()

    # Lifecycle

    @property
    def port(self) -> str:
        """The path the driver opens (the stable link when one was given)."""
        return str(self._link_path) if self._link_path else self._port

    @property
    def is_plugged(self) -> bool:
        """Whether the pty is present."""
        return self._thread is not None

    def _plug_in(self) -> None:
        self._master, self._slave = pty.openpty()
        tty.setraw(self._master)
        tty.setraw(self._slave)
        self._port = os.ttyname(self._slave)
        if self._link_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self._link_path.unlink()
            self._link_path.symlink_to(self._port)
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._serve, name="fingerprint-module-emulator", daemon=True
        )
        self._thread.start()
        self._record("plugged", self._port)
        if self.profile.ready_byte:
            self._send(bytes([READY_BYTE]))

    def unplug(self) -> None:
        """Stop serving and close the pty, as pulling the cable does."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        thread.join(JOIN_TIMEOUT_S)
        if thread.is_alive():
            raise RuntimeError("fingerprint module emulator thread did not stop")
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._master = self._slave = -1
        if self._link_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self._link_path.unlink()
        self._verified = self._password == 0
        self._image_buffer = None
        self._record("unplugged")

    def replug(self) -> None:
        """Plug back in: a new pty under the same link path, fresh power-up."""
        if self._thread is None:
            self._plug_in()

    def close(self) -> None:
        """Stop and release everything; idempotent."""
        self.unplug()

    # Finger and faults

    def place_finger(self, image: npt.NDArray[np.uint8]) -> None:
        """Put a finger on the sensor: the image as the module would see it."""
        width, height = self.profile.width, self.profile.height
        sensor_view = emulate_sensor_image(image, width, height)
        with self._lock:
            self._finger = sensor_view
        self._record("finger_placed", f"{width}x{height}")

    def place_finger_file(self, path: Path) -> None:
        """Put the finger of an image file on the sensor (see ``place_finger``).

        Raises:
            ImageError: the file is missing or not a usable greyscale image.
        """
        self.place_finger(load_fingerprint_image(path))

    def lift_finger(self) -> None:
        """Take the finger off the sensor."""
        with self._lock:
            self._finger = None
        self._record("finger_lifted")

    def corrupt_next_reply(self) -> None:
        """Flip one checksum byte of the next acknowledge packet."""
        self._arm("corrupt_reply")

    def corrupt_next_image_packet(self) -> None:
        """Flip one payload byte in a data packet of the next image upload."""
        self._arm("corrupt_image")

    def drop_next_reply(self) -> None:
        """Answer the next command with silence (the host sees a timeout)."""
        self._arm("drop_reply")

    def stall_next_upload(self) -> None:
        """Stop the next image upload halfway, never sending the end packet."""
        self._arm("stall_upload")

    def inject_garbage(self, data: bytes) -> None:
        """Send raw bytes to the host now (noise, a stray 0x55, a stale packet)."""
        self._send(data)
        self._record("garbage", data[:16].hex())

    def _arm(self, fault: str) -> None:
        with self._lock:
            self._faults.add(fault)
        self._record("fault_armed", fault)

    def _take(self, fault: str) -> bool:
        with self._lock:
            if fault in self._faults:
                self._faults.discard(fault)
                return True
            return False

    def _record(self, kind: str, detail: str = "") -> None:
        self.events.append(EmulatorEvent(time.monotonic(), kind, detail))

    # Serving

    def _serve(self) -> None:
        parser = PacketParser()
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._master], [], [], POLL_S)
                if not ready:
                    continue
                parser.feed(os.read(self._master, 4096))
            except OSError as err:
                logger.debug("fingerprint emulator read stopped: %s", err)
                return
            while True:
                try:
                    packet = parser.next()
                except DeviceProtocolError:
                    self._record("bad_packet")
                    self._reply(CODE_BAD_PACKET)
                    continue
                if packet is None:
                    break
                if packet.address != self._address:
                    self._record("other_address", f"0x{packet.address:08X}")
                    continue
                if packet.pid != Pid.COMMAND or not packet.payload:
                    continue
                self._handle(packet.payload[0], packet.payload[1:])

    def _handle(self, instruction: int, params: bytes) -> None:
        self._record("command", f"0x{instruction:02X}")
        if self._take("drop_reply"):
            self._record("reply_dropped")
            return
        if self.reply_delay_s:
            time.sleep(self.reply_delay_s)
        if not self._verified and instruction != Instruction.VFY_PWD:
            self._reply(CODE_PASSWORD_REQUIRED)
            return
        handler = self._handlers().get(instruction)
        if handler is None:
            self._record("unsupported", f"0x{instruction:02X}")
            if self.profile.has_product_info:
                self._reply(CODE_UNSUPPORTED)
            return
        handler(params)

    def _handlers(self) -> dict[int, Callable[[bytes], None]]:
        """Instruction code to handler, for the commands this profile has."""
        handlers: dict[int, Callable[[bytes], None]] = {
            Instruction.VFY_PWD: self._vfy_pwd,
            Instruction.READ_SYS_PARA: self._read_sys_para,
            Instruction.GEN_IMG: self._gen_img,
            Instruction.UP_IMAGE: self._up_image,
            Instruction.HANDSHAKE: lambda _: self._reply(CODE_OK),
            Instruction.TEMPLATE_NUM: lambda _: self._reply(CODE_OK, b"\x00\x00"),
        }
        if self.profile.has_get_image_ex:
            handlers[Instruction.GET_IMAGE_EX] = self._gen_img
        if self.profile.has_product_info:
            handlers[Instruction.READ_PROD_INFO] = self._prod_info
            handlers[Instruction.SOFT_RESET] = self._soft_reset
        if self.profile.led == "aura":
            handlers[Instruction.AURA_LED_CONFIG] = self._aura
        if self.profile.led == "backlight":
            handlers[Instruction.LED_ON] = lambda _: self._backlight(True)
            handlers[Instruction.LED_OFF] = lambda _: self._backlight(False)
        return handlers

    def _vfy_pwd(self, params: bytes) -> None:
        if len(params) == 4 and int.from_bytes(params, "big") == self._password:
            self._verified = True
            self._reply(CODE_OK)
        else:
            self._reply(CODE_WRONG_PASSWORD)

    def _read_sys_para(self, _params: bytes) -> None:
        words = [
            0x0004 if self._verified else 0,
            0,
            200 if self.profile.has_product_info else 162,
            3,
            self._address >> 16,
            self._address & 0xFFFF,
            PACKET_SIZES.index(self._packet_size),
            6,
        ]
        self._reply(CODE_OK, b"".join(w.to_bytes(2, "big") for w in words))

    def _gen_img(self, _params: bytes) -> None:
        with self._lock:
            finger = self._finger
        if finger is None:
            self._reply(CODE_NO_FINGER)
            return
        self._image_buffer = finger
        self._reply(CODE_OK)

    def _up_image(self, _params: bytes) -> None:
        if self._image_buffer is None:
            self._reply(CODE_NO_IMAGE)
            return
        self._reply(CODE_OK)
        data = pack_pixels(self._image_buffer)
        chunks = [
            data[i : i + self._packet_size]
            for i in range(0, len(data), self._packet_size)
        ]
        corrupt_at = len(chunks) // 3 if self._take("corrupt_image") else -1
        stall_at = len(chunks) // 2 if self._take("stall_upload") else -1
        for index, chunk in enumerate(chunks):
            if index == stall_at:
                self._record("upload_stalled", str(index))
                return
            pid = Pid.END_DATA if index == len(chunks) - 1 else Pid.DATA
            packet = bytearray(build_packet(pid, chunk, self._address))
            if index == corrupt_at:
                packet[12] ^= 0xFF
                self._record("image_packet_corrupted", str(index))
            self._send(bytes(packet))
        self._record("image_uploaded", f"{len(chunks)} packets")

    def _aura(self, params: bytes) -> None:
        self.led_on = bool(params) and params[0] in (1, 2, 3, 5)
        self._record("led", "on" if self.led_on else "off")
        self._reply(CODE_OK)

    def _backlight(self, on: bool) -> None:
        self.led_on = on
        self._record("led", "on" if self.led_on else "off")
        self._reply(CODE_OK)

    def _prod_info(self, _params: bytes) -> None:
        info = bytearray(46)
        info[0:16] = self.profile.name.upper().encode().ljust(16, b"\x00")
        info[38:40] = self.profile.width.to_bytes(2, "big")
        info[40:42] = self.profile.height.to_bytes(2, "big")
        self._reply(CODE_OK, bytes(info))

    def _soft_reset(self, _params: bytes) -> None:
        self._reply(CODE_OK)
        self._verified = self._password == 0
        self._image_buffer = None
        time.sleep(self.profile.startup_s)
        self._send(bytes([READY_BYTE]))

    def _reply(self, code: int, values: bytes = b"") -> None:
        packet = bytearray(build_packet(Pid.ACK, bytes([code]) + values, self._address))
        if self._take("corrupt_reply"):
            packet[-1] ^= 0xFF
            self._record("reply_corrupted")
        self._record("reply", f"0x{code:02X}")
        self._send(bytes(packet))

    def _send(self, data: bytes) -> None:
        try:
            if self.split_writes:
                for i in range(0, len(data), 5):
                    os.write(self._master, data[i : i + 5])
                    time.sleep(0.001)
            else:
                os.write(self._master, data)
        except OSError as err:
            logger.debug("fingerprint emulator write failed: %s", err)
