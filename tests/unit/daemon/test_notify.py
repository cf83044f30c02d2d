"""Tests of the sd_notify wrapper against a real datagram socket."""

from __future__ import annotations

import os
import socket
import threading
from typing import Any

import pytest

from edge_gate.daemon import Notifier, watchdog_interval_s


def test_ready_with_status(notify_socket: Any) -> None:
    assert Notifier().ready("lane lane-1 idle")
    assert notify_socket.receive(1.0) == "READY=1\nSTATUS=lane lane-1 idle"


def test_vietnamese_status_arrives(notify_socket: Any) -> None:
    text = "làn 1 ngừng phục vụ: đầu đọc hộ chiếu bị rút"
    assert Notifier().status(text)
    assert notify_socket.receive(1.0) == f"STATUS={text}"


def test_status_is_one_line(notify_socket: Any) -> None:
    Notifier().status("first line\nSTOPPING=1\nthird")
    assert notify_socket.receive(1.0) == "STATUS=first line STOPPING=1 third"


def test_socket_recreated_still_reached(notify_socket: Any) -> None:
    notifier = Notifier()
    assert notifier.watchdog()
    assert notify_socket.receive(1.0) == "WATCHDOG=1"

    # systemd re-creates its socket on daemon-reexec.
    notify_socket.socket.close()
    notify_socket.path.unlink()
    notify_socket.__init__(notify_socket.path)
    assert notifier.stopping()
    assert notify_socket.receive(1.0) == "STOPPING=1"


def test_missing_listener_counts_failure(notify_socket: Any) -> None:
    notifier = Notifier()
    notify_socket.close()
    assert not notifier.watchdog()
    assert notifier.failures == 1


def test_full_queue_send_times_out(notify_socket: Any) -> None:
    # Fill the listener's receive queue, as when systemd reads too slowly.
    filler = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    filler.connect(str(notify_socket.path))
    filler.setblocking(False)
    with filler, pytest.raises(BlockingIOError):
        for _ in range(100_000):
            filler.send(b"STATUS=filler")

    notifier = Notifier()
    result: list[bool] = []
    sender = threading.Thread(
        target=lambda: result.append(notifier.watchdog()), name="test-notify"
    )
    sender.start()
    try:
        # Generous bound: the send timeout is SEND_TIMEOUT_S (1 s).
        sender.join(10)
        assert not sender.is_alive()
        assert result == [False]
        assert notifier.failures == 1
    finally:
        # A blocked send ends once the queue drains.
        while notify_socket.receive(0.1) is not None:
            pass
        sender.join(10)


def test_without_notify_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = Notifier()
    assert not notifier.is_enabled
    assert not notifier.ready()
    assert notifier.failures == 0


@pytest.mark.parametrize(
    ("usec", "pid", "expected"),
    [
        pytest.param("15000000", None, 5.0, id="third-of-timeout"),
        pytest.param("15000000", "self", 5.0, id="pid-is-self"),
        pytest.param("15000000", "1", None, id="pid-is-other"),
        pytest.param(None, None, None, id="no-watchdog"),
        pytest.param("soon", None, None, id="not-a-number"),
        pytest.param("0", None, None, id="zero"),
    ],
)
def test_watchdog_interval(
    monkeypatch: pytest.MonkeyPatch,
    usec: str | None,
    pid: str | None,
    expected: float | None,
) -> None:
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    if usec is not None:
        monkeypatch.setenv("WATCHDOG_USEC", usec)
    if pid is not None:
        monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()) if pid == "self" else pid)
    assert watchdog_interval_s() == expected
