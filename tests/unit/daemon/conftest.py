"""Fixtures for the daemon tests: a real sd_notify socket."""

from __future__ import annotations

import os
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


class NotifyListener:
    """A bound AF_UNIX datagram socket standing in for systemd."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(str(path))
        self.messages: list[tuple[float, str]] = []

    def receive(self, timeout_s: float) -> str | None:
        """Return the next datagram as text, or None after ``timeout_s``."""
        self.socket.settimeout(timeout_s)
        try:
            data = self.socket.recv(65536)
        except TimeoutError:
            return None
        text = data.decode("utf-8")
        self.messages.append((time.monotonic(), text))
        return text

    def wait_for(self, key: str, timeout_s: float) -> str:
        """Receive until a message holds ``key`` (a line like READY=1)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            message = self.receive(max(0.01, deadline - time.monotonic()))
            if message is not None and key in message.splitlines():
                return message
        seen = [m for _, m in self.messages]
        raise AssertionError(f"no {key} within {timeout_s} s; received {seen}")

    def close(self) -> None:
        self.socket.close()
        self.path.unlink(missing_ok=True)


@pytest.fixture
def notify_socket(monkeypatch: pytest.MonkeyPatch) -> Iterator[NotifyListener]:
    """Bind a notify socket (short path: AF_UNIX paths hold 108 bytes)."""
    folder = Path(tempfile.mkdtemp(prefix="eg-notify-"))
    listener = NotifyListener(folder / "notify.sock")
    monkeypatch.setenv("NOTIFY_SOCKET", str(listener.path))
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    yield listener
    listener.close()
    os.rmdir(folder)


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A temporary folder with a short path, for UNIX socket files."""
    folder = Path(tempfile.mkdtemp(prefix="eg-"))
    yield folder
    for child in sorted(folder.rglob("*"), reverse=True):
        if child.is_dir():
            child.rmdir()
        else:
            child.unlink()
    folder.rmdir()
