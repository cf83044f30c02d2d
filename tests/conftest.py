"""Fixtures shared by every test folder.

``data_dir`` points at the real evaluation images (``EDGE_GATE_DATA``). Tests
that need them skip with a message when the folder is absent, and fail
instead when ``EDGE_GATE_REQUIRE_DATA=1`` (as in CI).

An autouse fixture fails any test that leaves a new thread running.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def _require_data() -> bool:
    return os.environ.get("EDGE_GATE_REQUIRE_DATA") == "1"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Return the evaluation data folder, or skip (fail in CI) without it."""
    value = os.environ.get("EDGE_GATE_DATA")
    if not value:
        default = Path(__file__).resolve().parents[2] / "shared" / "data"
        if default.is_dir():
            return default
        message = (
            f"EDGE_GATE_DATA is not set and {default} does not exist; point "
            "EDGE_GATE_DATA at the evaluation data folder"
        )
    elif not Path(value).is_dir():
        message = f"EDGE_GATE_DATA={value} is not a folder"
    else:
        return Path(value)
    if _require_data():
        pytest.fail(message + " (EDGE_GATE_REQUIRE_DATA=1)")
    pytest.skip(message)


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Fail a test that leaves a thread it started still running."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 2.0
    while True:
        leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not leaked or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert not leaked, f"test leaked threads: {[t.name for t in leaked]}"
