"""The Walker on mock pins, through the real Turnstile, into the lane."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from edge_gate.config import TurnstileConfig
from edge_gate.gate import Alarm, DocumentRead, LaneState, Outcome

HOLD = TurnstileConfig(pin_factory="mock", unlock_mode="hold")
MakeRig = Callable[..., Any]


def test_walker_events_are_timestamped(make_rig: MakeRig) -> None:
    rig = make_rig(HOLD)
    rig.walker.events.clear()
    rig.walker.enter()
    assert [e.input_name for e in rig.walker.events] == [
        "entrance_beam",
        "inside_beam",
        "entrance_beam",
    ]
    assert [e.at_s for e in rig.walker.events] == [0.0, 0.5, 1.0]


def test_normal_crossing(make_rig: MakeRig) -> None:
    rig = make_rig(HOLD)
    rig.walker.enter()
    assert rig.lane.state is LaneState.DOCUMENT
    rig.decide()
    assert rig.unlock_pin_active()
    rig.walker.walk_through()
    (record,) = rig.records()
    assert record.outcome is Outcome.ACCEPTED
    assert record.passages == 1
    assert rig.alarms() == []
    assert not rig.unlock_pin_active()
    assert rig.lane.state is LaneState.IDLE


def test_rejected_traveller_never_unlocks(make_rig: MakeRig) -> None:
    rig = make_rig(HOLD)
    rig.walker.enter()
    rig.decide(fingerprint=0.1)
    assert not rig.unlock_pin_active()
    rig.walker.force()
    assert rig.alarms() == [Alarm.FORCED_PASSAGE]


@pytest.mark.parametrize(
    ("scenario", "alarms"),
    [
        pytest.param("tailgate", [Alarm.TAILGATING], id="tailgate"),
        pytest.param("hold", [Alarm.BARRIER_HELD_OPEN], id="held-open"),
    ],
)
def test_alarms_after_accept(
    make_rig: MakeRig, scenario: str, alarms: list[Alarm]
) -> None:
    rig = make_rig(HOLD)
    rig.walker.enter()
    rig.decide()
    if scenario == "tailgate":
        rig.walker.tailgate()
    else:
        rig.walker.hold_barrier_open(20.0)
    assert rig.alarms() == alarms
    assert not rig.unlock_pin_active()


def test_wrong_way_from_exit(make_rig: MakeRig) -> None:
    rig = make_rig(HOLD)
    rig.walker.wrong_way()
    assert rig.alarms() == [Alarm.FORCED_PASSAGE, Alarm.WRONG_WAY]
    assert not rig.unlock_pin_active()


def test_walk_away_aborts(make_rig: MakeRig) -> None:
    rig = make_rig(HOLD)
    rig.walker.enter()
    rig.feed(DocumentRead("UTO", "X1", True, False))
    rig.walker.walk_away()
    (record,) = rig.records()
    assert record.outcome is Outcome.ABORTED
    assert record.reason == "walk_away"


@pytest.mark.parametrize(
    "lock_type", ["fail_secure", "fail_safe"], ids=["fail-secure", "fail-safe"]
)
def test_fire_release_frees_and_relocks(make_rig: MakeRig, lock_type: str) -> None:
    rig = make_rig(TurnstileConfig(pin_factory="mock", lock_type=lock_type))
    rig.walker.set_input("fire_release", True)
    assert rig.lane.state is LaneState.EMERGENCY
    assert rig.unlock_pin_active()
    rig.walker.walk_through()
    # Free passage: only the release itself is recorded, no forced passage.
    assert rig.alarms() == [Alarm.FIRE_RELEASE]
    rig.walker.set_input("fire_release", False)
    assert not rig.unlock_pin_active()
    assert rig.lane.state is LaneState.IDLE
    assert rig.alarms() == [Alarm.FIRE_RELEASE, Alarm.FIRE_RELEASE_CLEARED]


def test_key_switch_allows_manual_opening(make_rig: MakeRig) -> None:
    rig = make_rig(HOLD)
    rig.walker.set_input("key_switch", True)
    assert rig.lane.state is LaneState.OUT_OF_SERVICE
    rig.walker.hold_barrier_open(30.0)
    assert rig.alarms() == []
    assert not rig.unlock_pin_active()
