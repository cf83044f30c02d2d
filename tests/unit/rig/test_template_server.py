"""The rig's template server: loopback HTTP over one folder."""

from __future__ import annotations

import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from edge_gate.rig.template_server import TemplateServer


def test_serves_files_on_loopback(tmp_path: Path) -> None:
    (tmp_path / "metadata").mkdir()
    (tmp_path / "metadata" / "1.root.json").write_bytes(b'{"signed": {}}')
    with TemplateServer(tmp_path) as server:
        assert server.url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(server.url + "metadata/1.root.json") as reply:
            body = reply.read()
    assert body == b'{"signed": {}}'
    assert [r.status for r in server.requests] == [200]
    assert server.requests[0].path == "/metadata/1.root.json"


def test_missing_file_is_404(tmp_path: Path) -> None:
    with TemplateServer(tmp_path) as server:
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(server.url + "targets/absent.bin")
        caught.value.close()
    assert caught.value.code == 404
    assert server.requests[-1].status == 404


def test_rejects_upload(tmp_path: Path) -> None:
    with TemplateServer(tmp_path) as server:
        request = urllib.request.Request(server.url + "x", data=b"1", method="POST")
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request)
        caught.value.close()
    assert caught.value.code == 501
    assert not (tmp_path / "x").exists()


def test_close_twice_is_harmless(tmp_path: Path) -> None:
    server = TemplateServer(tmp_path)
    server.close()
    server.close()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(server.url, timeout=1)


def test_missing_folder_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(NotADirectoryError, match="edge-gate publish"):
        TemplateServer(tmp_path / "absent")


def test_close_does_not_wait_for_silent_client(tmp_path: Path) -> None:
    # A client interrupted after connecting (a sync stopped by SIGTERM)
    # leaves its connection open without sending a whole request.
    server = TemplateServer(tmp_path)
    client = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    try:
        client.sendall(b"GET /index.json HT")
        time.sleep(0.2)
        closer = threading.Thread(target=server.close)
        started = time.monotonic()
        closer.start()
        closer.join(10)
        assert not closer.is_alive(), "close() waited for the silent client"
        assert time.monotonic() - started < 5.0
    finally:
        client.close()


def test_client_gone_mid_response_not_printed(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # A client stopped mid-download (a sync ended by SIGTERM) resets its
    # connection while the server still writes.
    (tmp_path / "bundle.bin").write_bytes(bytes(8 * 1024 * 1024))
    with TemplateServer(tmp_path) as server:
        client = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        client.sendall(b"GET /bundle.bin HTTP/1.0\r\n\r\n")
        client.recv(1024)
        # Close with a reset instead of a normal shutdown.
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00" * 2)
        client.close()
        time.sleep(0.5)
    assert "Traceback" not in capfd.readouterr().err
