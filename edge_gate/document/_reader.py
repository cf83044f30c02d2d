"""Document-reader drivers: the ``MrzReader`` interface and its serial driver.

``SerialMrzReader`` reads a desk OCR reader over pyserial. It survives an
unplug: a serial error closes the port and raises :class:`DeviceIOError`;
later calls reopen the configured path (a stable udev symlink) with an
exponential backoff between ``reconnect_min_s`` and ``reconnect_max_s``,
and reading goes on with a fresh frame decoder.

pyserial 3.5 on Linux ignores ``inter_byte_timeout``, so framing and the
stale-frame timeout are done here (:mod:`._framing`): the port is read with a
short timeout (``read_timeout_s``) and each chunk goes to the decoder.

The log never carries MRZ text: only byte counts, the port and error texts.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Protocol, runtime_checkable

import serial

from edge_gate._closing import Closing
from edge_gate.config import DocumentReaderConfig
from edge_gate.errors import DeviceIOError

from ._framing import FrameDecoder

logger = logging.getLogger(__name__)


@runtime_checkable
class MrzReader(Protocol):
    """A device that delivers the MRZ lines of presented documents."""

    @property
    def is_connected(self) -> bool:
        """Whether the device is open and reading."""
        ...

    def read_document(self, timeout_s: float) -> list[str] | None:
        """Wait for the next document and return its MRZ lines, top first.

        Returns:
            The lines, or None when no document arrived within ``timeout_s``.

        Raises:
            DeviceIOError: The device is unplugged or failed.
        """
        ...

    def close(self) -> None:
        """Release the device; idempotent."""
        ...


class SerialMrzReader(Closing):
    """A desk document reader on a serial port (USB-CDC or UART).

    Args:
        config: Port, line settings, framing, frame bounds and backoff.
            Opening is tried at once; a reader that is absent at start is
            reopened by :meth:`read_document` like after an unplug.
    """

    def __init__(self, config: DocumentReaderConfig) -> None:
        self._config = config
        self._decoder = FrameDecoder(
            config.framing, config.max_frame_bytes, config.frame_timeout_s
        )
        self._documents: deque[list[str]] = deque()
        self._serial: serial.Serial | None = None
        self._is_closed = False
        self._cancel = threading.Event()
        self._backoff_s = config.reconnect_min_s
        self._next_attempt_s = 0.0
        self._last_error = "not opened yet"
        self.open_count = 0
        self._try_open()

    @property
    def is_connected(self) -> bool:
        """Whether the port is open."""
        return self._serial is not None

    def cancel(self) -> None:
        """Make a blocked :meth:`read_document` return None soon (any thread)."""
        self._cancel.set()

    def close(self) -> None:
        """Close the port; idempotent."""
        self._is_closed = True
        self._cancel.set()
        self._close_port()

    def read_document(self, timeout_s: float) -> list[str] | None:
        """Wait for the next document; see :meth:`MrzReader.read_document`.

        Args:
            timeout_s: How long to wait, in seconds.

        Returns:
            The MRZ lines of one document, or None on timeout or cancel.

        Raises:
            DeviceIOError: The port failed during this call (unplug), or it
                could not be reopened before the deadline, or the reader is
                closed.
        """
        deadline_s = time.monotonic() + timeout_s
        self._cancel.clear()
        while True:
            if self._is_closed:
                raise DeviceIOError("the document reader is closed")
            if self._documents:
                return self._documents.popleft()
            now_s = time.monotonic()
            if self._serial is None:
                self._reconnect_until(deadline_s)
                continue
            if now_s >= deadline_s or self._cancel.is_set():
                self._documents.extend(self._decoder.poll(now_s))
                return self._documents.popleft() if self._documents else None
            data = self._read_chunk()
            self._documents.extend(self._decoder.feed(data, time.monotonic()))

    def _read_chunk(self) -> bytes:
        """Read what is waiting (or wait up to ``read_timeout_s`` for a byte)."""
        port = self._serial
        assert port is not None
        try:
            waiting = port.in_waiting
            return bytes(port.read(min(waiting or 1, self._config.max_frame_bytes)))
        except (serial.SerialException, OSError) as err:
            self._last_error = str(err)
            self._close_port()
            self._backoff_s = self._config.reconnect_min_s
            self._next_attempt_s = time.monotonic() + self._backoff_s
            logger.warning(
                "document reader on %s failed (%s); reconnecting",
                self._config.port,
                err,
            )
            raise DeviceIOError(
                f"document reader on {self._config.port} failed: {err}; "
                "check its cable, the driver reconnects by itself"
            ) from err

    def _reconnect_until(self, deadline_s: float) -> None:
        """Reopen the port with backoff, or raise when the deadline passes."""
        while self._serial is None:
            now_s = time.monotonic()
            if now_s >= self._next_attempt_s and self._try_open():
                return
            if now_s >= deadline_s or self._is_closed or self._cancel.is_set():
                raise DeviceIOError(
                    f"document reader on {self._config.port} is not connected "
                    f"({self._last_error}); check that it is plugged in"
                )
            wait_s = min(self._next_attempt_s, deadline_s) - now_s
            self._cancel.wait(max(wait_s, 0.0))

    def _try_open(self) -> bool:
        """Open the port once; on failure schedule the next attempt."""
        config = self._config
        try:
            self._serial = serial.Serial(
                port=config.port,
                baudrate=config.baudrate,
                bytesize=config.bytesize,
                parity=config.parity,
                stopbits=config.stopbits,
                timeout=config.read_timeout_s,
                exclusive=True,
            )
        except (serial.SerialException, OSError, ValueError) as err:
            self._last_error = str(err)
            self._next_attempt_s = time.monotonic() + self._backoff_s
            self._backoff_s = min(self._backoff_s * 2, config.reconnect_max_s)
            logger.debug("document reader on %s not opened: %s", config.port, err)
            return False
        self._decoder.reset()
        self._backoff_s = config.reconnect_min_s
        self.open_count += 1
        logger.info("document reader on %s opened", config.port)
        return True

    def _close_port(self) -> None:
        port, self._serial = self._serial, None
        if port is None:
            return
        try:
            port.close()
        except (serial.SerialException, OSError) as err:
            logger.debug("closing document reader port failed: %s", err)
