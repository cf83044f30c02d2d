"""Status and manual opening name the fire release behind ``emergency``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from edge_gate.config import TurnstileConfig
from edge_gate.errors import ControlError

FIRE_PIN = TurnstileConfig().fire_release_pin


def test_emergency_status_names_fire_release(
    lane: Any, wait_until: Callable[..., None]
) -> None:
    wait_until(lane.idle_in_service)
    assert lane.status()["causes"] == []

    # Normally closed contact through the pull-up: high is a fire release.
    lane.pins.pin(FIRE_PIN).drive_high()
    wait_until(lambda: lane.status()["state"] == "emergency")
    cause = f"fire release input active (GPIO {FIRE_PIN})"
    assert lane.status()["causes"] == [cause]
    assert cause in lane.runner.status_line()

    with pytest.raises(ControlError, match="barrier is already held free"):
        lane.runner.manual_open("engineer test")

    lane.pins.pin(FIRE_PIN).drive_low()
    wait_until(lambda: lane.status()["state"] == "idle")
    assert lane.status()["causes"] == []
