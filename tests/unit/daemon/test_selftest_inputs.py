"""The self-test names each turnstile input's level in the cabinet's terms."""

from __future__ import annotations

from typing import Any

import pytest

from edge_gate.daemon._field import describe_input
from edge_gate.gate import (
    BarrierChanged,
    BeamChanged,
    FireReleaseChanged,
    KeySwitchChanged,
    TamperChanged,
)


@pytest.mark.parametrize(
    ("event", "text"),
    [
        (FireReleaseChanged(active=True), "fire release ACTIVE"),
        (FireReleaseChanged(active=False), "fire release off"),
        (BarrierChanged(closed=True), "barrier closed"),
        (BarrierChanged(closed=False), "barrier OPEN"),
        (BeamChanged(beam="exit", broken=True), "exit beam broken"),
        (BeamChanged(beam="entrance", broken=False), "entrance beam clear"),
        (KeySwitchChanged(active=True), "key switch on"),
        (TamperChanged(active=True), "tamper loop OPEN"),
        (TamperChanged(active=False), "tamper loop closed"),
    ],
)
def test_input_level_described(event: Any, text: str) -> None:
    assert describe_input(event) == text


def test_selftest_lists_quiet_inputs(lane: Any, wait_until: Any) -> None:
    wait_until(lane.idle_in_service)
    results = lane.runner.control_handlers()["selftest"]({"command": "selftest"})
    (inputs,) = [r for r in results if r["check"] == "gpio_inputs"]
    assert inputs["ok"]
    assert inputs["detail"] == (
        "fire release off, barrier closed, entrance beam clear, "
        "inside beam clear, exit beam clear, key switch off, tamper loop closed"
    )
