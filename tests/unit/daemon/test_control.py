"""Tests of the control socket over a real UNIX socket."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from edge_gate.daemon import ControlServer, EventHub, request, watch
from edge_gate.daemon._control import MAX_COMMANDS, MAX_WATCHERS, REQUEST_TIMEOUT_S
from edge_gate.errors import ControlError


def refuse(request_: Mapping[str, Any]) -> Any:
    raise ControlError(f"refused {request_.get('reason')!r}")


def crash(request_: Mapping[str, Any]) -> Any:
    raise RuntimeError("handler bug")


@pytest.fixture
def server(short_tmp: Path) -> Iterator[tuple[ControlServer, EventHub]]:
    hub = EventHub()
    handlers = {
        "status": lambda r: {"state": "idle", "echo": r.get("value")},
        "refuse": refuse,
        "crash": crash,
    }
    control = ControlServer(short_tmp / "control.sock", handlers, hub)
    control.start()
    yield control, hub
    control.stop()


def test_status_round_trip(server: tuple[ControlServer, EventHub]) -> None:
    control, _ = server
    assert request(control.path, {"command": "status", "value": "čđ"}) == {
        "state": "idle",
        "echo": "čđ",
    }


def test_socket_mode_0660(server: tuple[ControlServer, EventHub]) -> None:
    control, _ = server
    mode = stat.S_IMODE(control.path.stat().st_mode)
    assert mode == 0o660


def test_unknown_command_lists_known(server: tuple[ControlServer, EventHub]) -> None:
    control, _ = server
    with pytest.raises(ControlError, match="unknown command 'reboot'; known: crash"):
        request(control.path, {"command": "reboot"})


def test_handler_refusal_message(server: tuple[ControlServer, EventHub]) -> None:
    control, _ = server
    with pytest.raises(ControlError, match="refused 'maintenance'"):
        request(control.path, {"command": "refuse", "reason": "maintenance"})


def test_handler_crash_keeps_server(server: tuple[ControlServer, EventHub]) -> None:
    control, _ = server
    with pytest.raises(ControlError, match="crash failed: handler bug"):
        request(control.path, {"command": "crash"})
    assert request(control.path, {"command": "status"})["state"] == "idle"


def raw_exchange(path: Path, payload: bytes, timeout_s: float = 5.0) -> dict[str, Any]:
    """Send raw bytes, return the parsed reply line."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(timeout_s)
        client.connect(str(path))
        client.sendall(payload)
        reply = b""
        while b"\n" not in reply:
            chunk = client.recv(65536)
            assert chunk, f"connection closed without a reply; got {reply!r}"
            reply += chunk
    message = json.loads(reply.split(b"\n", 1)[0])
    assert isinstance(message, dict)
    return message


@pytest.mark.parametrize(
    ("payload", "named"),
    [
        (b"not json\n", "not JSON"),
        (b"[1, 2]\n", "JSON list, not an object"),
        (b'{"command": "status", "x": "\xff\xfe"}\n', "not UTF-8"),
        (b'{"command": 5}\n', "command 5 is not a text"),
        (b"\n", "empty request"),
        (b"[" * 60000 + b"\n", "nests too deeply"),
    ],
)
def test_malformed_request_gets_error_reply(
    server: tuple[ControlServer, EventHub], payload: bytes, named: str
) -> None:
    control, _ = server
    reply = raw_exchange(control.path, payload)
    assert reply["ok"] is False
    assert named in reply["error"]
    assert request(control.path, {"command": "status"})["state"] == "idle"


@pytest.mark.parametrize(
    ("payload", "named"),
    [
        pytest.param(
            b'{"command": "status", "value": "x\\ud800"}\n',
            "field 'value' contains the lone UTF-16 surrogate \\ud800",
            id="field",
        ),
        pytest.param(
            b'{"command": "status", "value": {"list": ["ok", "\\udfff"]}}\n',
            "field 'value.list[1]' contains the lone UTF-16 surrogate \\udfff",
            id="nested",
        ),
        pytest.param(
            b'{"command": "status", "\\ud83d": 1}\n',
            "a key in the request contains the lone UTF-16 surrogate \\ud83d",
            id="key",
        ),
    ],
)
def test_lone_surrogate_rejected(
    server: tuple[ControlServer, EventHub], payload: bytes, named: str
) -> None:
    control, _ = server
    reply = raw_exchange(control.path, payload)
    assert reply["ok"] is False
    assert named in reply["error"]
    assert request(control.path, {"command": "status"})["state"] == "idle"


def test_surrogate_pair_accepted(server: tuple[ControlServer, EventHub]) -> None:
    control, _ = server
    reply = raw_exchange(
        control.path, b'{"command": "status", "value": "\\ud83d\\ude00"}\n'
    )
    assert reply == {"ok": True, "result": {"state": "idle", "echo": "\U0001f600"}}


def test_result_with_lone_surrogate_sent_escaped(short_tmp: Path) -> None:
    handlers = {"status": lambda r: {"reason": "x\ud800"}}
    control = ControlServer(short_tmp / "control.sock", handlers, EventHub())
    control.start()
    try:
        reply = raw_exchange(control.path, b'{"command": "status"}\n')
    finally:
        control.stop()
    assert reply == {"ok": True, "result": {"reason": "x\ud800"}}


def test_overlong_number_gets_error_reply(
    server: tuple[ControlServer, EventHub],
) -> None:
    control, _ = server
    payload = b'{"command": "status", "value": ' + b"9" * 5000 + b"}\n"
    reply = raw_exchange(control.path, payload)
    assert reply["ok"] is False
    assert "request contains a number of more than 4300 digits" in reply["error"]
    assert request(control.path, {"command": "status"})["state"] == "idle"


def test_oversize_line_gets_error_reply(server: tuple[ControlServer, EventHub]) -> None:
    control, _ = server
    payload = b'{"command": "status", "pad": "' + b"x" * 10_000_000 + b'"}\n'
    reply = raw_exchange(control.path, payload, timeout_s=10.0)
    assert reply == {
        "ok": False,
        "error": "request is over 65536 bytes; send one short JSON object per line",
    }


def test_dripping_client_cut_at_one_deadline(
    server: tuple[ControlServer, EventHub],
) -> None:
    control, _ = server
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.connect(str(control.path))
        started = time.monotonic()
        reply = b""
        client.settimeout(0.3)
        # One byte every 0.3 s would keep a per-recv timeout alive forever.
        while time.monotonic() - started < 6.0 and b"\n" not in reply:
            try:
                client.sendall(b" ")
            except OSError:
                break
            try:
                reply += client.recv(4096)
            except TimeoutError:
                continue
        elapsed = time.monotonic() - started
    assert b"no complete request line within 2 s" in reply
    assert elapsed < REQUEST_TIMEOUT_S + 1.5


def test_busy_socket_still_serves_status(
    server: tuple[ControlServer, EventHub],
) -> None:
    control, _ = server
    idle: list[socket.socket] = []
    watchers: list[socket.socket] = []
    try:
        for _ in range(20):
            client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            client.connect(str(control.path))
            idle.append(client)
        for _ in range(MAX_WATCHERS):
            client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            client.connect(str(control.path))
            client.settimeout(5)
            client.sendall(b'{"command": "watch"}\n')
            assert b"watching" in client.recv(4096)
            watchers.append(client)
        # Watch sessions have their own budget; one more is refused politely.
        extra = raw_exchange(control.path, b'{"command": "watch"}\n')
        assert extra["ok"] is False
        assert "watch sessions are open already" in extra["error"]
        # Idle connections and watchers leave room for an engineer.
        for _ in range(3):
            assert request(control.path, {"command": "status"})["state"] == "idle"
    finally:
        for client in idle + watchers:
            client.close()


def test_watch_receives_events(server: tuple[ControlServer, EventHub]) -> None:
    control, hub = server
    received: list[dict[str, Any]] = []
    stream = watch(control.path)

    def consume() -> None:
        for event in stream:
            received.append(event)
            if len(received) == 2:
                break

    consumer = threading.Thread(target=consume, name="watch-consumer")
    consumer.start()
    # The subscription exists once the server replied "watching".
    deadline = 50
    while not hub._subscribers and deadline:
        threading.Event().wait(0.02)
        deadline -= 1
    hub.publish({"type": "display", "message": "place_document"})
    hub.publish({"type": "transaction", "outcome": "accepted"})
    consumer.join(5)
    stream.close()
    assert [e["type"] for e in received] == ["display", "transaction"]


def test_missing_socket_message(short_tmp: Path) -> None:
    with pytest.raises(ControlError, match=r"not found: is edge-gate\.service running"):
        request(short_tmp / "absent.sock", {"command": "status"})


@pytest.mark.parametrize(
    ("kind", "named"),
    [
        pytest.param("file", "is a file, not a socket", id="file"),
        pytest.param("folder", "is a folder, not a socket", id="folder"),
        pytest.param("stale", "no daemon listens on control socket", id="stale"),
    ],
)
def test_unusable_socket_path_advice(short_tmp: Path, kind: str, named: str) -> None:
    path = short_tmp / "control.sock"
    if kind == "file":
        path.write_text("", encoding="utf-8")
    elif kind == "folder":
        path.mkdir()
    else:
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stale.bind(str(path))
        stale.close()
    with pytest.raises(ControlError) as caught:
        request(path, {"command": "status"})
    message = str(caught.value)
    assert f"control socket {path}" in message
    assert named in message
    assert "systemctl status edge-gate" in message
    assert "[daemon] control_socket" in message
    assert "Errno" not in message
    assert isinstance(caught.value.__cause__, ConnectionRefusedError)


def test_connection_reset_advice(short_tmp: Path) -> None:
    path = short_tmp / "control.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)

    def close_unread() -> None:
        # Closing with the request unread makes the kernel reset the client.
        connection, _ = listener.accept()
        with connection:
            connection.recv(1, socket.MSG_PEEK)

    closer = threading.Thread(target=close_unread, name="close-unread")
    closer.start()
    try:
        with pytest.raises(ControlError) as caught:
            request(path, {"command": "status"}, timeout_s=5.0)
    finally:
        closer.join(5.0)
        listener.close()
    message = str(caught.value)
    assert f"the daemon at {path} closed the connection before it replied" in message
    assert "systemctl status edge-gate" in message


def test_stale_socket_file_replaced(short_tmp: Path) -> None:
    path = short_tmp / "control.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()
    control = ControlServer(path, {"status": lambda r: "ok"}, EventHub())
    control.start()
    try:
        assert request(path, {"command": "status"}) == "ok"
    finally:
        control.stop()
    assert not path.exists()


SYSTEM_PYTHON = Path("/usr/bin/python3")


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to connect as another user")
@pytest.mark.skipif(not SYSTEM_PYTHON.exists(), reason="needs /usr/bin/python3")
def test_peer_outside_group_refused(server: tuple[ControlServer, EventHub]) -> None:
    control, _ = server
    # Open the file mode wide, so only the SO_PEERCRED check remains.
    os.chmod(control.path.parent, 0o755)
    os.chmod(control.path, 0o666)
    client = (
        "import socket, sys\n"
        "s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
        "s.connect(sys.argv[1])\n"
        # The server may reject and close before the request is sent.
        "try:\n"
        '    s.sendall(b\'{"command": "status"}\\n\')\n'
        "except (BrokenPipeError, ConnectionResetError):\n"
        "    pass\n"
        "print(s.recv(200).decode())\n"
    )
    result = subprocess.run(
        [str(SYSTEM_PYTHON), "-c", client, str(control.path)],
        user=65534,
        group=65534,
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"ok": False, "error": "permission denied"}


def test_slow_commands_leave_status_a_slot(short_tmp: Path) -> None:
    release = threading.Event()

    def slow(request_: Mapping[str, Any]) -> Any:
        release.wait(10)
        return "done"

    handlers = {"status": lambda r: {"state": "idle"}, "slow": slow}
    control = ControlServer(short_tmp / "control.sock", handlers, EventHub())
    control.start()
    results: list[Any] = []

    def call_slow() -> None:
        try:
            results.append(request(control.path, {"command": "slow"}))
        except ControlError as err:
            results.append(str(err))

    threads = [threading.Thread(target=call_slow) for _ in range(MAX_COMMANDS + 1)]
    try:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 5
        while not results and time.monotonic() < deadline:
            time.sleep(0.02)
        # One slow command over the budget is rejected at once.
        assert len(results) == 1
        assert "commands are running already" in results[0]
        # status still runs on a reserved slot.
        assert request(control.path, {"command": "status"}) == {"state": "idle"}
    finally:
        release.set()
        for thread in threads:
            thread.join(10)
        control.stop()
    assert results.count("done") == MAX_COMMANDS
