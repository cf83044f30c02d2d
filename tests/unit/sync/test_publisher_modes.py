"""File modes of the publisher's folder: served files readable, keys private.

A static web server usually runs as another user than the publisher. So
every file under ``repository/`` must be readable by others under the
usual umask. The signing keys, the fleet key and ``state/`` stay readable
by their owner only.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_gate.sync import Publisher

# The overflow user and group ids (``nobody``, ``nogroup`` on Debian).
OTHER_UID = 65534
OTHER_GID = 65534


@pytest.fixture
def umask_022() -> Iterator[None]:
    """Run the test under the usual umask 022, whatever the caller's is."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def published(workdir: Path, records: Any) -> Publisher:
    """Initialise a publisher and publish twice (a full bundle and a delta)."""
    publisher = Publisher.init(workdir)
    publisher.publish([records(1), records(2, watchlisted=True)])
    publisher.publish([records(1), records(2, watchlisted=True), records(3)])
    return publisher


def modes(folder: Path) -> dict[str, int]:
    """Map each path under ``folder`` (relative, POSIX) to its permission bits."""
    return {
        path.relative_to(folder).as_posix(): stat.S_IMODE(path.stat().st_mode)
        for path in sorted(folder.rglob("*"))
    }


def test_served_files_follow_umask_022(
    tmp_path: Path, records: Any, umask_022: None
) -> None:
    publisher = published(tmp_path / "publisher", records)

    served = modes(publisher.repository_dir)
    bundles = [name for name in served if name.endswith(".egtb")]
    metadata = [name for name in served if name.startswith("metadata/")]
    assert len(bundles) == 3, served
    assert "metadata/timestamp.json" in metadata
    assert "metadata/1.root.json" in metadata
    assert any(name.endswith("index.json") for name in served)
    for name, mode in served.items():
        path = publisher.repository_dir / name
        expected = 0o755 if path.is_dir() else 0o644
        assert mode == expected, f"repository/{name} has mode {mode:o}"
    # No temporary file is left behind in the served folder.
    assert not [name for name in served if Path(name).name.startswith(".")]


def test_keys_and_state_stay_private(
    tmp_path: Path, records: Any, umask_022: None
) -> None:
    publisher = published(tmp_path / "publisher", records)
    publisher.rotate("targets")

    assert stat.S_IMODE(publisher.keys_dir.stat().st_mode) == 0o700
    keys = modes(publisher.keys_dir)
    assert "fleet.key" in keys
    assert any(".pem.retired-" in name for name in keys)
    for name, mode in keys.items():
        assert mode == 0o600, f"keys/{name} has mode {mode:o}"
    state_dir = publisher.workdir / "state"
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
    state = modes(state_dir)
    assert set(state) == {"publisher.json", "records.json", "watchlist.json"}
    for name, mode in state.items():
        assert mode == 0o600, f"state/{name} has mode {mode:o}"


def test_private_folders_ignore_open_umask(tmp_path: Path, records: Any) -> None:
    # Under umask 000 the served folders become 0777, but the keys and state
    # folders stay 0700, so no other user can write to them.
    previous = os.umask(0)
    try:
        publisher = published(tmp_path / "publisher", records)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(publisher.keys_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((publisher.workdir / "state").stat().st_mode) == 0o700


def test_served_files_respect_stricter_umask(tmp_path: Path, records: Any) -> None:
    previous = os.umask(0o027)
    try:
        publisher = published(tmp_path / "publisher", records)
    finally:
        os.umask(previous)

    for name, mode in modes(publisher.repository_dir).items():
        path = publisher.repository_dir / name
        expected = 0o750 if path.is_dir() else 0o640
        assert mode == expected, f"repository/{name} has mode {mode:o}"


@pytest.fixture
def open_folder() -> Iterator[Path]:
    """Temporary folder that another user may enter (pytest's tmp_path is 0700)."""
    folder = Path(tempfile.mkdtemp(prefix="edge-gate-publish-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


def serve_as_other_user(root: Path) -> tuple[subprocess.Popen[str], str]:
    """Start ``python -m http.server`` on 127.0.0.1 as :data:`OTHER_UID`."""
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        pytest.skip("needs root and setpriv (util-linux) to serve as another user")
    command = [
        setpriv,
        f"--reuid={OTHER_UID}",
        f"--regid={OTHER_GID}",
        "--clear-groups",
        sys.executable,
        "-u",
        "-m",
        "http.server",
        "--bind",
        "127.0.0.1",
        "--directory",
        str(root),
        "0",
    ]
    server = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert server.stdout is not None
    banner = server.stdout.readline()
    match = re.search(r"port (\d+)", banner)
    if match is None:
        server.kill()
        server.wait(10)
        pytest.fail(f"http.server did not start: {banner!r}")
    return server, f"http://127.0.0.1:{match.group(1)}/"


def test_other_user_server_serves_every_file(
    open_folder: Path, records: Any, umask_022: None
) -> None:
    publisher = published(open_folder / "publisher", records)
    names = [
        path.relative_to(publisher.repository_dir).as_posix()
        for path in publisher.repository_dir.rglob("*")
        if path.is_file()
    ]

    server, url = serve_as_other_user(publisher.repository_dir)
    # No proxy, because the request must reach the server on 127.0.0.1 directly.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    statuses: dict[str, int] = {}
    try:
        for name in names:
            try:
                with opener.open(url + name, timeout=10) as response:
                    statuses[name] = response.status
            except urllib.error.HTTPError as err:
                statuses[name] = err.code
    finally:
        server.terminate()
        server.wait(10)
        if server.stdout is not None:
            server.stdout.close()

    assert len(names) >= 8
    failed = {name: status for name, status in statuses.items() if status != 200}
    assert not failed, f"served with an error status: {failed}"
