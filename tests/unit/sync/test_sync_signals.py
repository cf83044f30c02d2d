"""``edge-gate sync`` stopped by a signal during a download.

systemd stops the sync unit with SIGTERM (at shutdown, or ``systemctl
stop``). The run must end as Ctrl-C does: one line on stderr, exit status
1, no partial download in ``tuf/download/`` and ``templates.db`` closed.
Each test runs the real command in a child process against a real HTTP
server on 127.0.0.1 that sends the bundle one byte every 0.2 s.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from edge_gate.sync import Publisher

ROOT = Path(__file__).resolve().parents[3]
START_TIMEOUT_S = 60.0


def wait_for_bundle_download(
    process: subprocess.Popen[str], server: Any, download_dir: Path
) -> None:
    """Wait until the child process has started the bundle's slow download."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        requested = any("bundles/" in path for path in server.requests)
        if requested and download_dir.is_dir() and any(download_dir.iterdir()):
            return
        time.sleep(0.05)
    process.kill()
    _, err = process.communicate(timeout=30)
    pytest.fail(f"sync never started the bundle download: {err}")


def applied_version(database: Path) -> str:
    with sqlite3.connect(database) as connection:
        row = connection.execute(
            "SELECT value FROM meta WHERE name = 'version'"
        ).fetchone()
    return "0" if row is None else str(row[0])


@pytest.mark.parametrize(
    ("signum", "message"),
    [
        pytest.param(
            signal.SIGTERM, "edge-gate sync: stopped by SIGTERM", id="sigterm"
        ),
        pytest.param(signal.SIGHUP, "edge-gate sync: stopped by SIGHUP", id="sighup"),
        pytest.param(signal.SIGINT, "edge-gate: interrupted", id="sigint"),
    ],
)
def test_signal_during_download_cleans_up(
    tmp_path: Path,
    publisher: Publisher,
    http_server: Any,
    configure: Any,
    gate_toml: Any,
    records: Any,
    signum: signal.Signals,
    message: str,
) -> None:
    publisher.publish([records(n, template_bytes=4096) for n in range(1, 4)])
    config = configure(http_server.url)
    toml = gate_toml(
        tmp_path / "gate.toml", config, timeout_s=5.0, download_timeout_s=600.0
    )
    state_dir = Path(config.store.state_dir)
    download_dir = state_dir / "tuf" / "download"
    database = state_dir / "templates.db"
    http_server.fault = "drip"
    http_server.fault_path = "bundles/"

    process = subprocess.Popen(
        [sys.executable, "-m", "edge_gate", "sync", "--config", str(toml)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_bundle_download(process, http_server, download_dir)
        # The writer's connection is open, so SQLite's WAL file exists.
        assert database.with_name("templates.db-wal").exists()
        process.send_signal(signum)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert process.returncode == 1, err
    assert err.strip().splitlines()[-1] == message
    assert "Traceback" not in err
    assert out == ""
    assert not download_dir.exists()
    assert not database.with_name("templates.db-wal").exists()
    assert not database.with_name("templates.db-shm").exists()
    assert applied_version(database) == "0"
