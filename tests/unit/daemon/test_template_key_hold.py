"""The templates hold: templates.db sealed with another key or replaced after start."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from edge_gate.store._crypto import TemplateCipher


def test_other_key_since_start_holds_templates(
    lane_setup: Any, start_lane: Any, wait_until: Callable[..., None]
) -> None:
    running = start_lane(lane_setup)
    wait_until(running.idle_in_service)
    # What a sync with an edited [store] key_file leaves behind: the store's
    # key check value no longer matches the running lane's key.
    other = TemplateCipher(bytes(range(1, 33)))
    with sqlite3.connect(lane_setup.state_dir / "templates.db") as db:
        db.execute(
            "UPDATE meta SET value = ? WHERE name = 'key_check'",
            (other.key_check_value,),
        )
    wait_until(lambda: "templates" in running.status()["holds"])
    reason = running.status()["holds"]["templates"]
    assert str(lane_setup.key_file) in reason
    assert "is not the key that sealed" in reason
    assert not running.status()["in_service"]


def test_replaced_templates_db_holds_templates(
    lane_setup: Any, start_lane: Any, wait_until: Callable[..., None]
) -> None:
    running = start_lane(lane_setup)
    wait_until(running.idle_in_service)
    # An engineer moves templates.db aside and syncs a new one while the
    # daemon runs: it still reads the old file, so it must stop serving.
    path = lane_setup.state_dir / "templates.db"
    for suffix in ("", "-wal", "-shm"):
        old = path.with_name(path.name + suffix)
        if old.exists():
            old.rename(old.with_name(old.name + ".old"))
    lane_setup.write_templates(enrolled=True)
    wait_until(lambda: "templates" in running.status()["holds"])
    reason = running.status()["holds"]["templates"]
    assert str(path) in reason
    assert "Restart edge-gate.service" in reason
    assert not running.status()["in_service"]
