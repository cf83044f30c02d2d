"""The local control socket: JSON lines over a UNIX stream socket.

Protocol. A client connects, sends one request line, a JSON object with a
``command`` key (``{"command": "status"}``), and reads reply lines:

- a plain command gets one line, ``{"ok": true, "result": ...}`` or
  ``{"ok": false, "error": "..."}``, and the server closes the connection;
- ``watch`` gets ``{"ok": true, "result": "watching"}`` and then one
  ``{"event": {...}}`` line per lane event until the client disconnects.

Limits. A client has ``REQUEST_TIMEOUT_S`` in all to send its request
line, however it drips the bytes. At most ``MAX_READERS`` connections may be
sending their request at once; a new connection beyond that ends the one
that has been sending longest, so an engineer's ``open`` or ``status``
always gets through. ``watch`` sessions have their own budget of
``MAX_WATCHERS``, and running commands one of ``MAX_COMMANDS`` with
reserved slots for ``open`` and ``status``. A malformed request gets an
``{"ok": false}`` reply that names the problem.

Access. The socket file is created with mode 0660 and handed to the control
group when that group exists. The server also checks the peer's credentials
(``SO_PEERCRED``) and accepts only root, the daemon's own user and members
of the control group, so a wrong file mode alone does not open the lane.
"""

from __future__ import annotations

import contextlib
import grp
import json
import logging
import os
import queue
import select
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from edge_gate.errors import ControlError, DaemonRunningError

logger = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 64 * 1024
# Seconds a client has, in all, to send its request line.
REQUEST_TIMEOUT_S = 2.0
# Connections sending their request at once; a new one ends the oldest.
MAX_READERS = 8
# ``watch`` sessions at once; one more is refused with a reply.
MAX_WATCHERS = 4
# Other commands running at once. ``open`` and ``status`` may use
# RESERVED_COMMAND_SLOTS more, so an engineer can act while slow commands run.
MAX_COMMANDS = 8
RESERVED_COMMAND_SLOTS = 2
RESERVED_COMMANDS = frozenset({"open", "status"})
# Connections the kernel queues before the server accepts them.
LISTEN_BACKLOG = 64
# Bytes of a refused request read and dropped, so its sender gets the reply.
MAX_DRAIN_BYTES = 32 * 1024 * 1024
SOCKET_MODE = 0o660

Handler = Callable[[Mapping[str, Any]], Any]


class EventHub:
    """Fan lane events out to ``watch`` clients; slow clients lose events."""

    def __init__(self, max_queued: int = 256) -> None:
        self._lock = threading.Lock()
        self._subscribers: list[queue.Queue[dict[str, Any]]] = []
        self._max_queued = max_queued
        self.dropped = 0

    def subscribe(self) -> queue.Queue[dict[str, Any]]:
        """Return a new queue that receives every later event."""
        events: queue.Queue[dict[str, Any]] = queue.Queue(self._max_queued)
        with self._lock:
            self._subscribers.append(events)
        return events

    def unsubscribe(self, events: queue.Queue[dict[str, Any]]) -> None:
        """Stop delivering to ``events``."""
        with self._lock:
            if events in self._subscribers:
                self._subscribers.remove(events)

    def publish(self, event: dict[str, Any]) -> None:
        """Deliver ``event`` to every subscriber without blocking."""
        with self._lock:
            subscribers = list(self._subscribers)
        for events in subscribers:
            try:
                events.put_nowait(event)
            except queue.Full:
                self.dropped += 1


class ControlServer:
    """Serve control requests on a UNIX socket from a named thread.

    ``handlers`` maps a command name to a function taking the request object
    and returning a JSON-serialisable result; a handler raises
    :class:`ControlError` (or ``ValueError``) to refuse with a message.

    The constructor removes a stale socket file at ``path``, so a lane
    daemon builds the server only while it holds the state folder's
    ``daemon.lock`` (see :func:`remove_stale_socket`).
    """

    def __init__(
        self,
        path: Path,
        handlers: Mapping[str, Handler],
        events: EventHub,
        *,
        group: str = "",
        on_progress: Callable[[], None] | None = None,
    ) -> None:
        self.path = Path(path)
        self._handlers = dict(handlers)
        self._events = events
        self._group_id = _group_id(group)
        self._on_progress = on_progress
        self._stop = threading.Event()
        self._clients: set[threading.Thread] = set()
        self._clients_lock = threading.Lock()
        # Connections still sending their request, with when they came.
        self._readers: dict[socket.socket, float] = {}
        self._watchers = 0
        self._commands = 0
        self._sessions = 0
        # The device and inode of the socket file this server created.
        self._bound_file: tuple[int, int] | None = None
        self._socket = self._bind()
        self._thread = threading.Thread(
            target=self._serve, name="control-socket", daemon=True
        )

    def _bind(self) -> socket.socket:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ControlError(
                f"cannot create the folder of control socket {self.path}: "
                f"{err.strerror}; set a path in a writable folder"
            ) from err
        remove_stale_socket(self.path)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o117)
        try:
            server.bind(str(self.path))
        except OSError as err:
            server.close()
            raise ControlError(
                f"cannot create control socket {self.path}: {err}; check that its "
                "folder exists and no other daemon uses it"
            ) from err
        finally:
            os.umask(old_umask)
        self._bound_file = _file_id(self.path)
        os.chmod(self.path, SOCKET_MODE)
        if self._group_id is not None:
            try:
                os.chown(self.path, -1, self._group_id)
            except PermissionError:
                logger.warning(
                    "cannot hand control socket %s to group id %d; only root and "
                    "this user can use it",
                    self.path,
                    self._group_id,
                )
        server.listen(LISTEN_BACKLOG)
        server.setblocking(False)
        return server

    def start(self) -> None:
        """Start accepting clients."""
        self._thread.start()
        logger.info("control socket listening on %s", self.path)

    def stop(self, timeout_s: float = 3.0) -> None:
        """Stop accepting, end client sessions and remove the socket file.

        The file is removed only while it is still the one this server
        created, so a stop does not remove another daemon's socket.
        """
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        with self._clients_lock:
            clients = list(self._clients)
        for client in clients:
            client.join(timeout_s)
        self._socket.close()
        if self._bound_file is not None and _file_id(self.path) == self._bound_file:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        self._bound_file = None

    def _serve(self) -> None:
        while not self._stop.is_set():
            if self._on_progress is not None:
                self._on_progress()
            readable, _, _ = select.select([self._socket], [], [], 0.2)
            if not readable:
                continue
            try:
                connection, _ = self._socket.accept()
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                logger.exception("control socket accept failed")
                continue
            self._start_client(connection)

    def _start_client(self, connection: socket.socket) -> None:
        with self._clients_lock:
            self._clients = {c for c in self._clients if c.is_alive()}
            if len(self._readers) >= MAX_READERS:
                oldest = min(self._readers, key=self._readers.__getitem__)
                del self._readers[oldest]
                logger.info("control socket busy: ended the slowest request")
                with contextlib.suppress(OSError):
                    oldest.shutdown(socket.SHUT_RDWR)
            self._readers[connection] = time.monotonic()
            self._sessions += 1
            client = threading.Thread(
                target=self._session,
                args=(connection,),
                name=f"control-client-{self._sessions}",
                daemon=True,
            )
            self._clients.add(client)
        client.start()

    def _session(self, connection: socket.socket) -> None:
        with connection:
            try:
                self._serve_client(connection)
            except (OSError, ControlError) as err:
                logger.info("control client ended: %s", err)
            finally:
                self._leave_readers(connection)

    def _serve_client(self, connection: socket.socket) -> None:
        if not self._is_peer_allowed(connection):
            _send_line(connection, {"ok": False, "error": "permission denied"})
            return
        try:
            request = _read_request(connection, time.monotonic() + REQUEST_TIMEOUT_S)
            command = request.get("command")
            if not isinstance(command, str):
                raise ControlError(
                    f"command {command!r:.80} is not a text; send e.g. "
                    '{"command": "status"}'
                )
        except ControlError as err:
            _send_line(connection, {"ok": False, "error": str(err)})
            _drain(connection, time.monotonic() + REQUEST_TIMEOUT_S)
            return
        if not self._leave_readers(connection):
            return  # a newer client took the slot and ended this one
        connection.settimeout(REQUEST_TIMEOUT_S)
        if command != "watch":
            _send_line(connection, self._run_command(command, request))
            return
        with self._clients_lock:
            is_full = self._watchers >= MAX_WATCHERS
            if not is_full:
                self._watchers += 1
        if is_full:
            _send_line(
                connection,
                {
                    "ok": False,
                    "error": f"{MAX_WATCHERS} watch sessions are open already; "
                    "end one and try again",
                },
            )
            return
        try:
            self._watch(connection)
        finally:
            with self._clients_lock:
                self._watchers -= 1

    def _run_command(self, command: str, request: Mapping[str, Any]) -> dict[str, Any]:
        """Run a command within the budget of running commands."""
        limit = MAX_COMMANDS
        if command in RESERVED_COMMANDS:
            limit += RESERVED_COMMAND_SLOTS
        with self._clients_lock:
            is_full = self._commands >= limit
            if not is_full:
                self._commands += 1
        if is_full:
            logger.info("control socket busy: rejected command %s", command)
            return {
                "ok": False,
                "error": f"{self._commands} commands are running already; "
                f"try {command} again in a few seconds",
            }
        try:
            return self._dispatch(command, request)
        finally:
            with self._clients_lock:
                self._commands -= 1

    def _leave_readers(self, connection: socket.socket) -> bool:
        """Take ``connection`` off the readers; False if it was ended."""
        with self._clients_lock:
            return self._readers.pop(connection, None) is not None

    def _dispatch(self, command: str, request: Mapping[str, Any]) -> dict[str, Any]:
        handler = self._handlers.get(command)
        if handler is None:
            known = ", ".join(sorted([*self._handlers, "watch"]))
            return {
                "ok": False,
                "error": f"unknown command {command!r}; known: {known}",
            }
        try:
            return {"ok": True, "result": handler(request)}
        except (ControlError, ValueError) as err:
            return {"ok": False, "error": str(err)}
        except (
            Exception
        ) as err:  # supervision point: one request must not kill the socket
            logger.exception("control command %s failed", command)
            return {"ok": False, "error": f"{command} failed: {err}"}

    def _watch(self, connection: socket.socket) -> None:
        events = self._events.subscribe()
        try:
            _send_line(connection, {"ok": True, "result": "watching"})
            while not self._stop.is_set():
                try:
                    event = events.get(timeout=0.5)
                except queue.Empty:
                    # Find a client that went away while nothing happened.
                    readable, _, _ = select.select([connection], [], [], 0)
                    if readable and not connection.recv(1, socket.MSG_PEEK):
                        return
                    continue
                _send_line(connection, {"event": event})
        finally:
            self._events.unsubscribe(events)

    def _is_peer_allowed(self, connection: socket.socket) -> bool:
        creds = connection.getsockopt(
            socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")
        )
        pid, uid, gid = struct.unpack("3i", creds)
        if uid in (0, os.getuid()):
            return True
        if self._group_id is None:
            return False
        return gid == self._group_id or self._group_id in _process_groups(pid)


def remove_stale_socket(path: Path, timeout_s: float = 1.0) -> None:
    """Remove a socket file that no server listens on any more.

    Call it only while this process has locked ``daemon.lock`` in the socket's
    folder (the runner takes it at start). A daemon between its ``bind`` and
    its ``listen`` also refuses connections, and only the lock shows that no
    such daemon exists.

    Args:
        path: the control socket's path.
        timeout_s: wait for the connection, in seconds.

    Raises:
        DaemonRunningError: a server accepts connections on ``path``.
        ControlError: ``path`` is a socket that this process may not
            connect to, so whether a server listens is unknown.
    """
    if not check_stale_socket(path, timeout_s):
        return
    logger.info("removing stale control socket %s (no server listens)", path)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def check_stale_socket(path: Path, timeout_s: float = 1.0) -> bool:
    """Return whether ``path`` is a stale socket file, and raise if a server listens.

    The file is not changed.

    A daemon that crashed leaves its socket file, and a connection to it is
    refused. A file that accepts a connection, or whose backlog is full,
    belongs to a running server. A missing file, or a file that is not a
    socket, has no server, and the bind then fails on the latter.

    Args:
        path: the control socket's path.
        timeout_s: wait for the connection, in seconds.

    Returns:
        True when ``path`` is a socket file that refuses connections.

    Raises:
        DaemonRunningError: a server accepts connections on ``path``.
        ControlError: ``path`` is a socket that this process may not
            connect to, so whether a server listens is unknown.
    """
    if not path.is_socket():
        return False
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(timeout_s)
    try:
        probe.connect(str(path))
    except ConnectionRefusedError:
        return True
    except FileNotFoundError:
        return False
    except (BlockingIOError, TimeoutError):
        pass  # the backlog is full, so a server listens but is busy
    except PermissionError as err:
        raise ControlError(
            f"cannot check control socket {path}: {err.strerror}. Run "
            "edge-gate run as the service's user, or remove the file if no "
            "daemon uses it"
        ) from err
    except OSError as err:
        raise ControlError(f"cannot check control socket {path}: {err}") from err
    finally:
        probe.close()
    raise DaemonRunningError(
        f"another edge-gate daemon is listening on control socket {path}. Stop "
        "that daemon first (systemctl stop edge-gate.service), or give this one "
        "its own [daemon] control_socket and [store] state_dir"
    )


def _file_id(path: Path) -> tuple[int, int] | None:
    """Return the device and inode numbers of ``path``, or None if it is gone."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return None
    return info.st_dev, info.st_ino


def _group_id(name: str) -> int | None:
    if not name:
        return None
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        logger.warning("control group %r does not exist; only root can connect", name)
        return None


def _process_groups(pid: int) -> set[int]:
    """Return the supplementary group ids of a process, from /proc."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return set()
    for line in status.splitlines():
        if line.startswith("Groups:"):
            return {int(item) for item in line.split()[1:]}
    return set()


def _send_line(connection: socket.socket, message: Mapping[str, Any]) -> None:
    try:
        line = json.dumps(message, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate in a result (text stored before the request check)
        # cannot be UTF-8; JSON's ASCII escapes still carry it.
        line = json.dumps(message).encode("ascii")
    connection.sendall(line + b"\n")


def _read_request(connection: socket.socket, deadline: float) -> dict[str, Any]:
    """Read one request line by ``deadline`` (monotonic) and parse it.

    Raises:
        ControlError: the line is late, too long, not UTF-8, not JSON or not
            a JSON object; the message names the problem.
    """
    buffer = b""
    late = (
        f"no complete request line within {REQUEST_TIMEOUT_S:.0f} s; send one "
        "JSON object ending in a newline"
    )
    while b"\n" not in buffer:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ControlError(late)
        connection.settimeout(remaining)
        try:
            chunk = connection.recv(65536)
        except TimeoutError as err:
            raise ControlError(late) from err
        if not chunk:
            break
        buffer += chunk
        if len(buffer.split(b"\n", 1)[0]) > MAX_REQUEST_BYTES:
            raise ControlError(
                f"request is over {MAX_REQUEST_BYTES} bytes; send one short "
                "JSON object per line"
            )
    line = buffer.split(b"\n", 1)[0]
    if not line.strip():
        raise ControlError(
            'empty request; send a JSON object like {"command": "status"}'
        )
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ControlError(
            f"request is not UTF-8 text (bad byte at offset {err.start}); "
            "send a JSON object in UTF-8"
        ) from err
    try:
        request = json.loads(text)
    except json.JSONDecodeError as err:
        raise ControlError(
            f"request is not JSON ({err}); send a JSON object like "
            '{"command": "status"}'
        ) from err
    except RecursionError as err:
        raise ControlError("request nests too deeply; send a flat JSON object") from err
    except ValueError as err:
        # json.loads raises ValueError for integers over the int_max_str_digits limit.
        raise ControlError(
            "request contains a number of more than "
            f"{sys.get_int_max_str_digits()} digits; send numbers of a usual size, "
            'e.g. {"command": "log", "limit": 50}'
        ) from err
    if not isinstance(request, dict):
        raise ControlError(
            f"request is a JSON {type(request).__name__}, not an object; send "
            'a JSON object like {"command": "status"}'
        )
    _check_strings_encode(request)
    return request


def _check_strings_encode(request: dict[str, Any]) -> None:
    """Reject a request whose keys or texts do not encode as UTF-8.

    JSON's ``\\uD800`` escapes decode to lone UTF-16 surrogates, which no
    UTF-8 writer (the audit log, the journal, a reply) can encode.

    Raises:
        ControlError: names the first such text's key and the surrogate.
    """
    pending: list[tuple[str, Any]] = [("", request)]
    while pending:
        where, value = pending.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                _check_text_encodes(key, f"a key in {where or 'the request'}")
                pending.append((f"{where}.{key}" if where else key, item))
        elif isinstance(value, list):
            pending.extend((f"{where}[{i}]", item) for i, item in enumerate(value))
        elif isinstance(value, str):
            _check_text_encodes(value, f"field {where!r}" if where else "the request")


def _check_text_encodes(text: str, where: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        bad = text[err.start : err.end].encode("utf-8", "backslashreplace")
        raise ControlError(
            f"{where} contains the lone UTF-16 surrogate {bad.decode('ascii')}, "
            "which is not valid Unicode text; send the text in UTF-8 without "
            "unpaired \\ud800-\\udfff escapes"
        ) from err


def _drain(connection: socket.socket, deadline: float) -> None:
    """Read and drop the rest of a refused request line, so that its sender
    finishes sending and reads the reply instead of a broken pipe."""
    dropped = 0
    with contextlib.suppress(OSError):
        while dropped < MAX_DRAIN_BYTES:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            connection.settimeout(remaining)
            chunk = connection.recv(65536)
            if not chunk or b"\n" in chunk:
                return
            dropped += len(chunk)


def request(path: Path, message: Mapping[str, Any], timeout_s: float = 30.0) -> Any:
    """Send one control request and return its result.

    Raises:
        ControlError: the daemon is not running, the socket is not
            accessible, or the daemon refused the request (its message).
    """
    with _connect(path, timeout_s) as connection:
        try:
            _send_line(connection, message)
            reply = _read_reply(connection, path)
        except (ConnectionResetError, BrokenPipeError) as err:
            raise ControlError(_reset_message(path)) from err
    if not reply.get("ok"):
        raise ControlError(str(reply.get("error", "the daemon rejected the request")))
    return reply.get("result")


def watch(path: Path) -> Iterator[dict[str, Any]]:
    """Yield lane events from the daemon until it closes the connection.

    Raises:
        ControlError: the daemon is not reachable or refused the request.
    """
    with _connect(path, 5.0) as connection:
        try:
            _send_line(connection, {"command": "watch"})
            connection.settimeout(None)
            with connection.makefile("rb") as lines:
                yield from _watch_events(lines)
        except (ConnectionResetError, BrokenPipeError) as err:
            raise ControlError(_reset_message(path)) from err


def _watch_events(lines: Iterator[bytes]) -> Iterator[dict[str, Any]]:
    for line in lines:
        try:
            message = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ControlError(
                f"the daemon sent a line that is not JSON: {err}"
            ) from err
        if not isinstance(message, dict):
            continue
        if message.get("ok") is False:
            error = message.get("error", "the daemon rejected the watch request")
            raise ControlError(str(error))
        if isinstance(message.get("event"), dict):
            yield message["event"]


def _reset_message(path: Path) -> str:
    return (
        f"the daemon at {path} closed the connection before it replied (it may "
        "be stopping); check systemctl status edge-gate and try again"
    )


def _connect(path: Path, timeout_s: float) -> socket.socket:
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.settimeout(timeout_s)
    deadline = time.monotonic() + timeout_s
    try:
        # A UNIX socket with a full backlog returns EAGAIN at once instead
        # of waiting; retry until the timeout, as a TCP connect would wait.
        while True:
            try:
                connection.connect(str(path))
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)
    except FileNotFoundError as err:
        connection.close()
        raise ControlError(
            f"control socket {path} not found: is edge-gate.service running? "
            "(systemctl status edge-gate)"
        ) from err
    except PermissionError as err:
        connection.close()
        raise ControlError(
            f"permission denied on {path}: run as root or as a member of the "
            "service's control group"
        ) from err
    except ConnectionRefusedError as err:
        connection.close()
        raise ControlError(_refused_message(path)) from err
    except OSError as err:
        connection.close()
        raise ControlError(
            f"cannot connect to control socket {path}: {err.strerror or err}; "
            f"{SOCKET_ADVICE}"
        ) from err
    return connection


# Advice printed when a connection to the control socket fails.
SOCKET_ADVICE = (
    "is edge-gate.service running? (systemctl status edge-gate), and does "
    "[daemon] control_socket in the configuration name its socket?"
)


def _refused_message(path: Path) -> str:
    """Return the error message for a refused connection, by the kind of ``path``."""
    if path.is_dir():
        return f"control socket {path} is a folder, not a socket; {SOCKET_ADVICE}"
    if not path.is_socket():
        return f"control socket {path} is a file, not a socket; {SOCKET_ADVICE}"
    return (
        f"no daemon listens on control socket {path} (a socket file left "
        f"behind, or a daemon still starting); {SOCKET_ADVICE}"
    )


def _read_reply(connection: socket.socket, path: Path) -> dict[str, Any]:
    buffer = b""
    try:
        while b"\n" not in buffer:
            chunk = connection.recv(65536)
            if not chunk:
                break
            buffer += chunk
    except TimeoutError as err:
        raise ControlError(f"the daemon at {path} did not reply in time") from err
    if not buffer:
        raise ControlError(
            f"the daemon at {path} closed the connection without a reply"
        )
    try:
        reply = json.loads(buffer.split(b"\n", 1)[0])
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ControlError(f"the daemon sent a reply that is not JSON: {err}") from err
    if not isinstance(reply, dict):
        raise ControlError("the daemon sent a reply that is not a JSON object")
    return reply
