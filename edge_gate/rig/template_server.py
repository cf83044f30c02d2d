"""A template server for the rig: plain HTTP on 127.0.0.1, one folder served.

``edge-gate publish`` writes a repository folder; this server hands it to
``edge-gate sync`` exactly as the central server would, so that the real
sync client fetches, verifies and applies it. It listens on the loopback
address only, on a port the kernel picks, and serves files read-only.

Invariants: the serving thread has a name and stops within a bounded join;
every request is recorded in :attr:`TemplateServer.requests`.
"""

from __future__ import annotations

import functools
import http.server
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_gate._closing import Closing

logger = logging.getLogger(__name__)

_JOIN_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class ServedRequest:
    """One request the server served.

    Attributes:
        monotonic_s: when it was served (``time.monotonic()``).
        path: the request path.
        status: HTTP status code sent.
    """

    monotonic_s: float
    path: str
    status: int


class _RepositoryServer(http.server.ThreadingHTTPServer):
    # Join request threads on close, so that none outlives the server.
    daemon_threads = False
    block_on_close = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log a failed request at DEBUG instead of printing its traceback.

        A client stopped mid-request (a sync ended by SIGTERM) breaks its
        connection, and the default handler would print the error on the
        rig's stderr.
        """
        del request
        logger.debug(
            "template server: request from %s failed", client_address, exc_info=True
        )


class TemplateServer(Closing):
    """Serve one folder over HTTP on 127.0.0.1 until closed.

    Args:
        directory: the folder to serve (a repository built by
            ``edge-gate publish``).

    Raises:
        NotADirectoryError: ``directory`` is not a folder.
        OSError: no loopback port could be bound.
    """

    def __init__(self, directory: Path) -> None:
        if not directory.is_dir():
            raise NotADirectoryError(
                f"template repository {directory} is not a folder; "
                "build it with edge-gate publish first"
            )
        self.directory = directory
        self.requests: list[ServedRequest] = []
        self._lock = threading.Lock()
        handler = functools.partial(_Handler, self, directory=str(directory))
        self._server = _RepositoryServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="rig-template-server",
        )
        self._thread.start()
        self._closed = False
        logger.info("template server listening on %s", self.url)

    @property
    def port(self) -> int:
        """TCP port the server listens on."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL of the served folder, ending in ``/``."""
        return f"http://127.0.0.1:{self.port}/"

    def record(self, path: str, status: int) -> None:
        """Append one served request to :attr:`requests` (handler use)."""
        with self._lock:
            self.requests.append(ServedRequest(time.monotonic(), path, status))

    def close(self) -> None:
        """Stop serving and join the server thread; safe to call twice.

        Raises:
            RuntimeError: the server thread did not stop within 5 s.
        """
        if self._closed:
            return
        self._closed = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(_JOIN_TIMEOUT_S)
        if self._thread.is_alive():
            raise RuntimeError("template server thread did not stop within 5 s")
        logger.info("template server stopped")


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serve files, refuse writes, and log to the module logger."""

    # Seconds a connection may wait for the client. A sync interrupted by
    # SIGTERM after connecting left its connection open without a whole
    # request, and closing the server, which joins every request thread,
    # then waited for it forever.
    timeout = 2.0

    def __init__(self, owner: TemplateServer, *args: Any, **kwargs: Any) -> None:
        self._owner = owner
        super().__init__(*args, **kwargs)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        status = int(code) if isinstance(code, int) or str(code).isdigit() else 0
        self._owner.record(self.path, status)
        logger.debug("template server: %s %s -> %s", self.command, self.path, code)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("template server: " + format, *args)
