"""A templates.db that the configured template key cannot open stops the start."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from edge_gate.errors import StoreError


@pytest.mark.parametrize(
    "has_key_check",
    [
        pytest.param(True, id="store-with-key-check"),
        pytest.param(False, id="older-store-without-key-check"),
    ],
)
def test_other_key_stops_start(lane_setup: Any, has_key_check: bool) -> None:
    from edge_gate.daemon import LaneRunner
    from edge_gate.rig.walker import wired_mock_factory
    from edge_gate.store import generate_key_file

    lane_setup.write_templates(enrolled=True)
    if not has_key_check:
        # What a store written before the key check existed looks like.
        with sqlite3.connect(lane_setup.state_dir / "templates.db") as db:
            db.execute("DELETE FROM meta WHERE name = 'key_check'")
    # [store] key_file now names another key.
    lane_setup.key_file.unlink()
    generate_key_file(lane_setup.key_file)

    config = lane_setup.config()
    runner = LaneRunner(config, pin_factory=wired_mock_factory(config.turnstile))
    try:
        with pytest.raises(StoreError) as caught:
            runner.start()
    finally:
        runner.stop()
    message = str(caught.value)
    assert str(lane_setup.state_dir / "templates.db") in message
    assert str(lane_setup.key_file) in message
