"""Lane state machine: every path, out-of-order and attack cases."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from edge_gate.config import PolicyConfig
from edge_gate.errors import GateStateError
from edge_gate.gate import (
    Alarm,
    BarrierChanged,
    BeamChanged,
    CancelTransaction,
    CaptureFailed,
    DeviceBack,
    DeviceLost,
    DocumentRead,
    EnrolmentFound,
    EnrolmentNotFound,
    Event,
    FireReleaseChanged,
    KeySwitchChanged,
    LaneState,
    Lock,
    LookUpEnrolment,
    ManualOpen,
    Outcome,
    RecordAlarm,
    RunWatchlistSearch,
    SampleCaptured,
    SampleScored,
    SetBuzzer,
    SetLamps,
    SetSilentAlarm,
    ShowMessage,
    StartCapture,
    TamperChanged,
    Tick,
    Unlock,
    WalkAway,
    WatchlistResult,
)

if TYPE_CHECKING:
    from conftest import Driver

NewDriver = Callable[..., Any]
BOTH = frozenset({"fingerprint", "iris"})


def unlocks(driver: Driver) -> list[object]:
    return driver.of_type(Unlock)


def test_start_locks_and_clears_outputs(driver: Driver) -> None:
    assert driver.commands[:3] == [Lock(), SetBuzzer(False), SetSilentAlarm(False)]
    assert SetLamps(green=False, red=True) in driver.commands
    assert driver.lane.state is LaneState.IDLE
    assert driver.lane.deadline_s is None
    assert driver.lane.decision is None


def test_start_twice_raises(driver: Driver) -> None:
    with pytest.raises(GateStateError, match="already started"):
        driver.lane.start(1.0)


def test_handle_before_start_raises(new_driver: NewDriver) -> None:
    lane = new_driver().lane
    fresh = type(lane)(lane._settings, lane._policy, lane._thresholds)
    with pytest.raises(GateStateError, match="start"):
        fresh.handle(Tick(), 0.0)


def test_clock_backwards_raises(driver: Driver) -> None:
    driver.send(Tick(), after_s=5.0)
    with pytest.raises(GateStateError, match="backwards"):
        driver.lane.handle(Tick(), 1.0)


def test_accept_path_commands_in_order(driver: Driver) -> None:
    driver.send(BeamChanged("inside", True))
    assert driver.lane.state is LaneState.DOCUMENT
    out = driver.document()
    tx = driver.tx
    assert out[0] == LookUpEnrolment(tx, "UTO", "L898902C3")
    assert driver.lane.state is LaneState.LOOKUP

    out = driver.enrolled()
    assert out[0] == StartCapture(tx, "fingerprint", 1, 15.0)
    assert ShowMessage("present_finger") in out
    out = driver.send(SampleCaptured(tx, "fingerprint"))
    assert out[0] == StartCapture(tx, "iris", 1, 15.0)
    assert driver.lane.state is LaneState.IRIS
    driver.send(SampleCaptured(tx, "iris"))
    assert driver.lane.state is LaneState.SCORING
    driver.send(SampleScored(tx, "iris", 0.95))
    assert driver.lane.state is LaneState.SCORING
    out = driver.send(SampleScored(tx, "fingerprint", 0.95))
    assert out[0] == RunWatchlistSearch(tx, BOTH)
    assert driver.lane.state is LaneState.WATCHLIST

    out = driver.send(WatchlistResult(tx, False, BOTH, BOTH))
    assert out[0] == Unlock("accepted")
    assert SetLamps(green=True, red=False) in out
    assert driver.lane.state is LaneState.PASSAGE
    assert driver.lane.unlock_allowed

    out = driver.pass_through()
    assert out[0] == Lock()  # barrier moved: the hold is released
    (record,) = driver.records()
    assert record.outcome is Outcome.ACCEPTED
    assert record.passages == 1
    assert record.reason == "all_modalities_matched"
    assert record.decision is not None
    assert record.attempts == {"fingerprint": 1, "iris": 1}
    assert record.latency_ms == pytest.approx(300.0)
    assert record.to_json_dict()["outcome"] == "accepted"
    assert driver.lane.state is LaneState.IDLE
    assert driver.of_type(Lock)[-1] == Lock()
    assert not driver.lane.unlock_allowed


def test_scored_without_captured_counts_as_capture(driver: Driver) -> None:
    driver.document()
    driver.enrolled()
    tx = driver.tx
    driver.send(SampleScored(tx, "fingerprint", 0.9))
    assert driver.lane.state is LaneState.IRIS
    driver.send(SampleScored(tx, "iris", 0.9))
    assert driver.lane.state is LaneState.WATCHLIST


@pytest.mark.parametrize(
    ("fingerprint", "iris", "hit", "outcome", "reason"),
    [
        pytest.param(
            0.1, 0.9, False, Outcome.REJECTED, "fingerprint_no_match", id="fp-low"
        ),
        pytest.param(0.9, 0.1, False, Outcome.REJECTED, "iris_no_match", id="iris-low"),
        pytest.param(
            0.9, 0.9, True, Outcome.ALERT, "watchlist_match", id="watchlist-hit"
        ),
    ],
)
def test_referral_outcomes(
    driver: Driver,
    fingerprint: float,
    iris: float,
    hit: bool,
    outcome: Outcome,
    reason: str,
) -> None:
    out = driver.to_decision(fingerprint, iris, hit=hit)
    assert Unlock("accepted") not in out
    assert ShowMessage("see_officer") in out
    (record,) = driver.records()
    assert record.outcome is outcome
    assert record.reason == reason
    assert driver.lane.state is LaneState.REFERRAL
    assert (SetSilentAlarm(True) in out) is (outcome is Outcome.ALERT)

    driver.send(Tick(), after_s=5.0)
    assert driver.lane.state is LaneState.IDLE
    assert unlocks(driver) == []


def test_alert_silent_alarm_turns_off(driver: Driver) -> None:
    driver.to_decision(hit=True)
    out = driver.send(Tick(), after_s=3.0)
    assert SetSilentAlarm(False) in out


@pytest.mark.parametrize(
    ("valid", "expired", "reason"),
    [
        pytest.param(False, False, "document_invalid", id="invalid"),
        pytest.param(True, True, "document_expired", id="expired"),
    ],
)
def test_document_rejected_without_lookup(
    driver: Driver, valid: bool, expired: bool, reason: str
) -> None:
    out = driver.document(valid=valid, expired=expired)
    assert not any(isinstance(c, LookUpEnrolment) for c in out)
    (record,) = driver.records()
    assert record.reason == reason
    assert record.decided_s is not None
    assert record.latency_ms is None


@pytest.mark.parametrize(
    ("event_kind", "outcome", "reason"),
    [
        pytest.param("not_found", Outcome.REJECTED, "not_enrolled", id="not-enrolled"),
        pytest.param("flag", Outcome.ALERT, "watchlist_flag", id="watchlist-flag"),
        pytest.param("revoked", Outcome.REJECTED, "enrolment_revoked", id="revoked"),
        pytest.param("expired", Outcome.REJECTED, "enrolment_expired", id="expired"),
    ],
)
def test_enrolment_referrals(
    driver: Driver, event_kind: str, outcome: Outcome, reason: str
) -> None:
    driver.document()
    tx = driver.tx
    events: dict[str, Event] = {
        "not_found": EnrolmentNotFound(tx),
        "flag": EnrolmentFound(tx, "e", False, False, True),
        "revoked": EnrolmentFound(tx, "e", False, True, False),
        "expired": EnrolmentFound(tx, "e", True, False, False),
    }
    out = driver.send(events[event_kind])
    assert not any(isinstance(c, StartCapture) for c in out)
    (record,) = driver.records()
    assert record.outcome is outcome
    assert record.reason == reason


def test_fingerprint_retries_then_gives_up(driver: Driver) -> None:
    driver.document()
    driver.enrolled()
    tx = driver.tx
    out = driver.send(CaptureFailed(tx, "fingerprint"))
    assert out[0] == StartCapture(tx, "fingerprint", 2, 15.0)
    assert ShowMessage("retry_finger") in out
    driver.send(CaptureFailed(tx, "fingerprint"))
    out = driver.send(CaptureFailed(tx, "fingerprint"))
    assert out[0] == StartCapture(tx, "iris", 1, 15.0)
    driver.sample("iris", 0.9)
    iris_only = frozenset({"iris"})
    out = driver.send(WatchlistResult(tx, False, iris_only, iris_only))
    (record,) = driver.records()
    assert record.reason == "fingerprint_not_captured"
    assert record.attempts["fingerprint"] == 3
    assert Unlock("accepted") not in out


def test_late_template_failure_recaptures_after_iris(driver: Driver) -> None:
    driver.document()
    driver.enrolled()
    tx = driver.tx
    driver.send(SampleCaptured(tx, "fingerprint"))
    assert driver.lane.state is LaneState.IRIS
    out = driver.send(CaptureFailed(tx, "fingerprint", "failure_to_enrol"))
    assert out == []  # the traveller is busy with the iris
    out = driver.sample("iris", 0.9)
    assert StartCapture(tx, "fingerprint", 2, 15.0) in out
    driver.sample("fingerprint", 0.9)
    out = driver.send(WatchlistResult(tx, False, BOTH, BOTH))
    assert out[0] == Unlock("accepted")


def test_late_template_failure_while_scoring(driver: Driver) -> None:
    driver.document()
    driver.enrolled()
    tx = driver.tx
    driver.send(SampleCaptured(tx, "fingerprint"))
    driver.sample("iris", 0.9)
    assert driver.lane.state is LaneState.SCORING
    out = driver.send(CaptureFailed(tx, "fingerprint"))
    assert out[0] == StartCapture(tx, "fingerprint", 2, 15.0)


def test_iris_not_captured_with_iris_gallery_is_rejected(new_driver: NewDriver) -> None:
    driver = new_driver(PolicyConfig(mode="either"))
    driver.document()
    driver.enrolled()
    tx = driver.tx
    driver.sample("fingerprint", 0.9)
    for _ in range(3):
        driver.send(CaptureFailed(tx, "iris"))
    out = driver.commands[-2:]
    assert RunWatchlistSearch(tx, frozenset({"fingerprint"})) in out
    out = driver.send(WatchlistResult(tx, False, frozenset({"fingerprint"}), BOTH))
    assert Unlock("accepted") not in out
    assert driver.records()[0].reason == "watchlist_incomplete"


@pytest.mark.parametrize(
    ("steps", "state"),
    [
        pytest.param(0, LaneState.LOOKUP, id="lookup"),
        pytest.param(1, LaneState.FINGERPRINT, id="fingerprint"),
        pytest.param(2, LaneState.IRIS, id="iris"),
        pytest.param(3, LaneState.SCORING, id="scoring"),
        pytest.param(4, LaneState.WATCHLIST, id="watchlist"),
    ],
)
def test_every_step_times_out(driver: Driver, steps: int, state: LaneState) -> None:
    driver.document()
    tx = driver.tx
    flow: list[Event] = [
        EnrolmentFound(tx, "e", False, False, False),
        SampleCaptured(tx, "fingerprint"),
        SampleCaptured(tx, "iris"),
        SampleScored(tx, "iris", 0.9),
    ]
    if steps == 4:
        flow.append(SampleScored(tx, "fingerprint", 0.9))
    driver.send_all(flow[:steps] if steps < 4 else flow)
    assert driver.lane.state is state
    deadline = driver.lane.deadline_s
    assert deadline is not None
    out = driver.send(Tick(), after_s=deadline - driver.now_s)
    assert CancelTransaction(tx) in out
    (record,) = driver.records()
    assert record.outcome is Outcome.ABORTED
    assert record.reason == f"{state.value}_timeout"
    assert driver.lane.state is LaneState.IDLE


def test_result_after_timeout_is_rejected(driver: Driver) -> None:
    driver.document()
    tx = driver.tx
    out = driver.send(EnrolmentFound(tx, "e", False, False, False), after_s=60.0)
    assert not any(isinstance(c, StartCapture) for c in out)
    assert driver.lane.rejected_events == 1
    assert driver.records()[0].reason == "lookup_timeout"


def test_document_step_times_out_to_idle(driver: Driver) -> None:
    driver.send(BeamChanged("inside", True))
    driver.send(Tick(), after_s=30.0)
    assert driver.lane.state is LaneState.IDLE
    assert driver.records() == []


def test_passage_timeout_without_passage(driver: Driver) -> None:
    driver.to_decision()
    out = driver.send(Tick(), after_s=10.0)
    assert out[0] == Lock()
    (record,) = driver.records()
    assert record.outcome is Outcome.ABORTED
    assert record.reason == "no_passage"
    assert record.decision is not None


def test_passage_timeout_after_one_passage_counts(driver: Driver) -> None:
    driver.to_decision()
    driver.send_all([BarrierChanged(closed=False), BeamChanged("exit", True)])
    driver.send(BeamChanged("exit", False))
    driver.send(Tick(), after_s=10.0)
    (record,) = driver.records()
    assert record.outcome is Outcome.ACCEPTED
    assert record.passages == 1


def test_passage_by_exit_beam_alone(driver: Driver) -> None:
    driver.to_decision()
    driver.send_all([BeamChanged("exit", True), BeamChanged("exit", False)])
    assert driver.records()[0].outcome is Outcome.ACCEPTED
    assert driver.lane.state is LaneState.IDLE


def test_tailgating_alarm(driver: Driver) -> None:
    driver.to_decision()
    driver.send_all(
        [
            BarrierChanged(closed=False),
            BeamChanged("exit", True),
            BeamChanged("exit", False),
            BeamChanged("exit", True),
        ]
    )
    alarms = [c.record.alarm for c in driver.of_type(RecordAlarm)]
    assert alarms == [Alarm.TAILGATING]
    assert SetBuzzer(True) in driver.commands
    driver.send_all([BeamChanged("exit", False), BarrierChanged(closed=True)])
    (record,) = driver.records()
    assert record.passages == 2
    assert [a.alarm for a in record.alarms] == [Alarm.TAILGATING]
    assert record.to_json_dict()["alarms"][0]["alarm"] == "tailgating"
    out = driver.send(Tick(), after_s=3.0)
    assert SetBuzzer(False) in out


def test_forced_passage_while_idle(driver: Driver) -> None:
    out = driver.send(BarrierChanged(closed=False))
    (alarm,) = [c for c in out if isinstance(c, RecordAlarm)]
    assert alarm.record.alarm is Alarm.FORCED_PASSAGE
    assert alarm.record.transaction_id is None
    assert unlocks(driver) == []


def _flow_to_step(driver: Driver, steps: int) -> list[Event]:
    """Start a transaction, bring it to the step numbered ``steps`` (0:
    lookup ... 4: watchlist) and return the results still to come."""
    driver.document()
    tx = driver.tx
    flow: list[Event] = [
        EnrolmentFound(tx, "e", False, False, False),
        SampleCaptured(tx, "fingerprint"),
        SampleCaptured(tx, "iris"),
        SampleScored(tx, "iris", 0.9),
        SampleScored(tx, "fingerprint", 0.9),
        WatchlistResult(tx, False, BOTH, BOTH),
    ]
    driver.send_all(flow[:steps] if steps < 4 else flow[:5])
    return flow[steps:] if steps < 4 else flow[5:]


_STEPS = [
    pytest.param(0, LaneState.LOOKUP, id="lookup"),
    pytest.param(1, LaneState.FINGERPRINT, id="fingerprint"),
    pytest.param(2, LaneState.IRIS, id="iris"),
    pytest.param(3, LaneState.SCORING, id="scoring"),
    pytest.param(4, LaneState.WATCHLIST, id="watchlist"),
]
_BREACHES = [
    pytest.param(
        [BarrierChanged(closed=False)],
        "forced_passage",
        [Alarm.FORCED_PASSAGE],
        id="barrier-forced",
    ),
    pytest.param(
        [BarrierChanged(closed=False), BeamChanged("exit", True)],
        "forced_passage",
        [Alarm.FORCED_PASSAGE],
        id="forced-and-through",
    ),
    pytest.param(
        [BeamChanged("exit", True)],
        "exit_crossing",
        [Alarm.EXIT_BREACH],
        id="exit-beam-barrier-closed",
    ),
    pytest.param(
        [BeamChanged("exit", True), BarrierChanged(closed=False)],
        "exit_crossing",
        [Alarm.EXIT_BREACH],
        id="from-exit-side",
    ),
]


@pytest.mark.parametrize(("steps", "state"), _STEPS)
@pytest.mark.parametrize(("breach", "reason", "alarms"), _BREACHES)
def test_breach_before_decision_rejects(
    driver: Driver,
    steps: int,
    state: LaneState,
    breach: list[Event],
    reason: str,
    alarms: list[Alarm],
) -> None:
    driver.send(BeamChanged("inside", True))
    rest = _flow_to_step(driver, steps)
    assert driver.lane.state is state
    tx = driver.tx
    out = driver.send_all(breach)
    assert out.index(CancelTransaction(tx)) < out.index(ShowMessage("see_officer"))
    (record,) = driver.records()
    assert record.transaction_id == tx
    assert record.outcome is Outcome.REJECTED
    assert record.reason == reason
    assert record.decision is not None and record.decision.reason == reason
    assert [a.alarm for a in record.alarms] == alarms
    assert driver.lane.state is LaneState.REFERRAL
    assert driver.lane.transaction_id is None
    # The results still due for it change nothing and unlock nothing.
    rejected = driver.lane.rejected_events
    driver.send_all(rest)
    assert driver.lane.rejected_events == rejected + len(rest)
    assert unlocks(driver) == []
    assert len(driver.records()) == 1
    driver.send(Tick(), after_s=5.0)
    assert driver.lane.state is LaneState.IDLE
    assert unlocks(driver) == []


def test_forced_at_finger_prompt_ends_transaction(driver: Driver) -> None:
    """The attacker's repro A: forced through at the finger prompt, the lane
    must not keep asking the person who left for a finger."""
    driver.document()
    driver.enrolled()
    driver.send(CaptureFailed(driver.tx, "fingerprint"))
    assert driver.lane.state is LaneState.FINGERPRINT
    driver.send_all(
        [
            BarrierChanged(closed=False),
            BeamChanged("exit", True),
            BeamChanged("exit", False),
            BarrierChanged(closed=True),
        ]
    )
    driver.send(Tick(), after_s=6.0)
    assert driver.lane.state is LaneState.IDLE
    assert driver.commands[-1] == ShowMessage("place_document")
    (record,) = driver.records()
    assert (record.outcome, record.reason) == (Outcome.REJECTED, "forced_passage")


def test_held_open_during_iris_rejects(driver: Driver) -> None:
    """The attacker's repro B: barrier held open during the iris step, then
    good scores and a clean watchlist search."""
    driver.document()
    driver.enrolled()
    tx = driver.tx
    driver.send_all([SampleCaptured(tx, "fingerprint"), BarrierChanged(closed=False)])
    driver.send_all(
        [
            SampleScored(tx, "fingerprint", 0.9),
            SampleCaptured(tx, "iris"),
            SampleScored(tx, "iris", 0.9),
            WatchlistResult(tx, False, BOTH, BOTH),
        ]
    )
    assert unlocks(driver) == []
    (record,) = driver.records()
    assert record.outcome is Outcome.REJECTED
    assert [a.alarm for a in record.alarms] == [Alarm.FORCED_PASSAGE]


def test_barrier_held_open_alarm_once(driver: Driver) -> None:
    driver.send(KeySwitchChanged(True))
    driver.send(BarrierChanged(closed=False))
    driver.send(KeySwitchChanged(False))
    driver.send(Tick(), after_s=15.0)
    driver.send(Tick(), after_s=15.0)
    alarms = [c.record.alarm for c in driver.of_type(RecordAlarm)]
    assert alarms == [Alarm.BARRIER_HELD_OPEN]
    driver.send(BarrierChanged(closed=True))
    driver.send(BarrierChanged(closed=False))
    driver.send(Tick(), after_s=15.5)
    alarms = [c.record.alarm for c in driver.of_type(RecordAlarm)]
    assert alarms.count(Alarm.BARRIER_HELD_OPEN) == 2


def test_wrong_way_alarm(driver: Driver) -> None:
    driver.send_all(
        [
            BeamChanged("exit", True),
            BarrierChanged(closed=False),
            BeamChanged("inside", True),
        ]
    )
    alarms = [c.record.alarm for c in driver.of_type(RecordAlarm)]
    assert alarms == [Alarm.FORCED_PASSAGE, Alarm.WRONG_WAY]


def test_forward_walk_is_not_wrong_way(driver: Driver) -> None:
    driver.send(BeamChanged("inside", True))
    driver.to_decision()
    driver.send_all(
        [
            BeamChanged("exit", True),
            BeamChanged("inside", False),
            BeamChanged("inside", True),  # a step back into the lane
        ]
    )
    assert driver.of_type(RecordAlarm) == []


def test_stuck_sensor_alarm_once_per_break(driver: Driver) -> None:
    driver.send(BeamChanged("entrance", True))
    driver.send(Tick(), after_s=300.0)
    driver.send(Tick(), after_s=300.0)
    alarms = [c.record for c in driver.of_type(RecordAlarm)]
    assert [a.alarm for a in alarms] == [Alarm.STUCK_SENSOR]
    assert "entrance" in alarms[0].detail
    assert SetSilentAlarm(True) in driver.commands


def test_repeated_levels_change_nothing(driver: Driver) -> None:
    out = driver.send_all([BeamChanged("exit", False), BarrierChanged(closed=True)])
    assert out == []


def test_fire_release_during_capture(driver: Driver) -> None:
    driver.document()
    driver.enrolled()
    tx = driver.tx
    out = driver.send(FireReleaseChanged(True))
    assert out[0] == CancelTransaction(tx)
    assert Unlock("fire_release") in out
    assert driver.lane.state is LaneState.EMERGENCY
    assert driver.records()[0].outcome is Outcome.EMERGENCY
    # Passage is free: no forced, wrong-way or held-open alarm.
    driver.send_all(
        [
            BeamChanged("exit", True),
            BarrierChanged(closed=False),
            BeamChanged("inside", True),
        ]
    )
    driver.send(Tick(), after_s=60.0)
    assert [c.record.alarm for c in driver.of_type(RecordAlarm)] == [Alarm.FIRE_RELEASE]
    rejected = driver.lane.rejected_events
    driver.document()
    assert driver.lane.rejected_events == rejected + 1
    out = driver.send(FireReleaseChanged(False))
    assert out[0] == Lock()
    assert driver.lane.state is LaneState.IDLE


def test_fire_release_during_passage(driver: Driver) -> None:
    driver.to_decision()
    out = driver.send(FireReleaseChanged(True))
    assert out[0] == Lock()
    assert out.index(Unlock("fire_release")) > 0
    assert driver.records()[0].outcome is Outcome.EMERGENCY


def test_fire_release_while_idle_and_repeated(driver: Driver) -> None:
    out = driver.send(FireReleaseChanged(True))
    assert out[0] == Unlock("fire_release")
    assert driver.records() == []
    assert driver.send(FireReleaseChanged(True)) == []


def _fire_setup(driver: Driver, setup: str) -> None:
    if setup == "document":
        driver.send(BeamChanged("inside", True))
    elif setup == "out_of_service":
        driver.send(DeviceLost("iris_camera"))
    elif setup == "key_switch":
        driver.send(KeySwitchChanged(True))
    elif setup == "capture":
        driver.document()
        driver.enrolled()
    elif setup == "passage":
        driver.to_decision()
    elif setup == "referral":
        driver.to_decision(hit=True)
    elif setup == "manual":
        driver.send(ManualOpen())


@pytest.mark.parametrize(
    ("setup", "silent_before"),
    [
        pytest.param("idle", False, id="idle"),
        pytest.param("document", False, id="document"),
        pytest.param("out_of_service", False, id="out-of-service"),
        pytest.param("key_switch", False, id="key-switch"),
        pytest.param("capture", False, id="capture"),
        pytest.param("passage", False, id="passage"),
        pytest.param("referral", True, id="referral-after-alert"),
        pytest.param("manual", False, id="manual-opening"),
    ],
)
def test_fire_release_recorded_both_ways(
    driver: Driver, setup: str, silent_before: bool
) -> None:
    """Every fire-release unlock and relock leaves a record outside any
    transaction, which the runner writes to the audit log as a service row."""
    _fire_setup(driver, setup)
    before = len(driver.of_type(RecordAlarm))
    out = driver.send(FireReleaseChanged(True))
    (alarm,) = [c for c in out if isinstance(c, RecordAlarm)]
    assert alarm.record.alarm is Alarm.FIRE_RELEASE
    assert alarm.record.transaction_id is None
    assert alarm.record.at_s == driver.now_s
    assert out.index(Unlock("fire_release")) < out.index(alarm)
    # The officers' post learns the lane is open (a cut wire reads the same).
    assert (SetSilentAlarm(True) in out) is not silent_before
    assert SetBuzzer(True) not in out
    out = driver.send(FireReleaseChanged(False), after_s=0.7)
    (cleared,) = [c for c in out if isinstance(c, RecordAlarm)]
    assert cleared.record.alarm is Alarm.FIRE_RELEASE_CLEARED
    assert cleared.record.transaction_id is None
    assert out[0] == Lock()
    assert SetSilentAlarm(True) not in out
    assert SetBuzzer(True) not in out
    assert len(driver.of_type(RecordAlarm)) == before + 2
    # A repeated level records nothing more.
    assert driver.send(FireReleaseChanged(False)) == []


def test_fire_release_in_referral_keeps_record(driver: Driver) -> None:
    driver.to_decision(0.1, 0.1)
    driver.send(FireReleaseChanged(True))
    assert len(driver.records()) == 1
    assert driver.lane.state is LaneState.EMERGENCY


def test_fire_cleared_with_key_on_goes_out_of_service(driver: Driver) -> None:
    driver.send(FireReleaseChanged(True))
    driver.send(KeySwitchChanged(True))
    assert driver.lane.state is LaneState.EMERGENCY
    driver.send(FireReleaseChanged(False))
    assert driver.lane.state is LaneState.OUT_OF_SERVICE


@pytest.mark.parametrize(
    ("event", "clear", "message", "reason"),
    [
        pytest.param(
            DeviceLost("fingerprint"),
            DeviceBack("fingerprint"),
            "out_of_service",
            "fingerprint_lost",
            id="device",
        ),
        pytest.param(
            KeySwitchChanged(True),
            KeySwitchChanged(False),
            "lane_closed",
            "key_switch",
            id="key",
        ),
        pytest.param(
            TamperChanged(True),
            TamperChanged(False),
            "lane_closed",
            "tamper",
            id="tamper",
        ),
    ],
)
def test_out_of_service_aborts_and_recovers(
    driver: Driver, event: Event, clear: Event, message: str, reason: str
) -> None:
    driver.document()
    tx = driver.tx
    out = driver.send(event)
    assert CancelTransaction(tx) in out
    assert ShowMessage(message) in out  # type: ignore[arg-type]
    assert driver.records()[0].reason == reason
    assert driver.lane.state is LaneState.OUT_OF_SERVICE
    driver.document()
    assert driver.lane.rejected_events == 1
    driver.send(clear)
    assert driver.lane.state is LaneState.IDLE


def test_tamper_raises_silent_alarm(driver: Driver) -> None:
    out = driver.send(TamperChanged(True))
    assert SetSilentAlarm(True) in out
    assert driver.of_type(RecordAlarm)[0].record.alarm is Alarm.TAMPER
    assert SetBuzzer(True) not in out


def test_device_lost_during_passage_waits_for_passage(driver: Driver) -> None:
    driver.to_decision()
    driver.send(DeviceLost("document_reader"))
    assert driver.lane.state is LaneState.PASSAGE
    driver.pass_through()
    assert driver.records()[0].outcome is Outcome.ACCEPTED
    assert driver.lane.state is LaneState.OUT_OF_SERVICE


def test_device_lost_during_referral_keeps_message(driver: Driver) -> None:
    driver.to_decision(0.1, 0.1)
    driver.send(DeviceLost("iris_camera"))
    assert driver.lane.state is LaneState.REFERRAL
    driver.send(Tick(), after_s=5.0)
    assert driver.lane.state is LaneState.OUT_OF_SERVICE


def test_one_device_back_of_two_stays_out(driver: Driver) -> None:
    driver.send_all([DeviceLost("fingerprint"), DeviceLost("iris_camera")])
    driver.send(DeviceBack("fingerprint"))
    assert driver.lane.state is LaneState.OUT_OF_SERVICE


def test_walk_away_event(driver: Driver) -> None:
    driver.document()
    tx = driver.tx
    out = driver.send(WalkAway(tx))
    assert CancelTransaction(tx) in out
    assert driver.records()[0].reason == "walk_away"


def test_walk_away_by_beams(driver: Driver) -> None:
    driver.send_all([BeamChanged("entrance", True), BeamChanged("inside", True)])
    driver.send(BeamChanged("entrance", False))
    driver.document()
    driver.enrolled()
    driver.send_all(
        [
            BeamChanged("entrance", True),
            BeamChanged("inside", False),
            BeamChanged("entrance", False),
        ]
    )
    (record,) = driver.records()
    assert record.reason == "walk_away"
    assert driver.lane.state is LaneState.IDLE


def test_leaving_before_document_returns_to_idle(driver: Driver) -> None:
    driver.send_all([BeamChanged("inside", True), BeamChanged("entrance", True)])
    assert driver.lane.state is LaneState.DOCUMENT
    driver.send_all([BeamChanged("inside", False), BeamChanged("entrance", False)])
    assert driver.lane.state is LaneState.IDLE


def test_second_person_entering_is_not_walk_away(driver: Driver) -> None:
    driver.send(BeamChanged("inside", True))
    driver.document()
    driver.send_all([BeamChanged("entrance", True), BeamChanged("entrance", False)])
    assert driver.lane.state is LaneState.LOOKUP


def _out_of_order_cases() -> list[object]:
    stale = "t-999999"
    return [
        pytest.param(
            lambda d: EnrolmentFound(d.tx, "e", False, False, False),
            1,
            id="enrolment-twice",
        ),
        pytest.param(lambda d: EnrolmentNotFound(stale), 0, id="enrolment-stale-tx"),
        pytest.param(
            lambda d: SampleScored(d.tx, "iris", 1.0), 0, id="iris-before-asked"
        ),
        pytest.param(
            lambda d: SampleCaptured(d.tx, "iris"), 0, id="iris-capture-early"
        ),
        pytest.param(lambda d: CaptureFailed(d.tx, "iris"), 0, id="iris-failure-early"),
        pytest.param(
            lambda d: WatchlistResult(d.tx, False, BOTH, BOTH), 0, id="watchlist-early"
        ),
        pytest.param(
            lambda d: DocumentRead("X", "1", True, False), 0, id="second-document"
        ),
        pytest.param(lambda d: WalkAway(stale), 0, id="walk-away-stale"),
        pytest.param(
            lambda d: SampleCaptured(stale, "fingerprint"), 0, id="sample-stale"
        ),
    ]


@pytest.mark.parametrize(("make_event", "enrol_first"), _out_of_order_cases())
def test_out_of_order_rejected(
    driver: Driver, make_event: Callable[[Driver], Event], enrol_first: int
) -> None:
    driver.document()
    if enrol_first:
        driver.enrolled()
        driver.send(SampleCaptured(driver.tx, "fingerprint"))
        driver.send(SampleCaptured(driver.tx, "iris"))
    state = driver.lane.state
    out = driver.send(make_event(driver))
    assert out == []
    assert driver.lane.rejected_events == 1
    assert driver.lane.last_rejection
    assert driver.lane.state is state


def test_capture_twice_rejected(driver: Driver) -> None:
    driver.document()
    driver.enrolled()
    driver.send(SampleCaptured(driver.tx, "fingerprint"))
    driver.send(SampleCaptured(driver.tx, "fingerprint"))
    assert driver.lane.rejected_events == 1


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(EnrolmentNotFound("t-000001"), id="enrolment"),
        pytest.param(WatchlistResult("t-000001", False, BOTH, BOTH), id="watchlist"),
        pytest.param(WalkAway("t-000001"), id="walk-away"),
    ],
)
def test_results_while_idle_rejected(driver: Driver, event: Event) -> None:
    assert driver.send(event) == []
    assert driver.lane.rejected_events == 1


def test_watchlist_result_in_capture_step_rejected(driver: Driver) -> None:
    driver.document()
    driver.enrolled()
    driver.send(WatchlistResult(driver.tx, False, BOTH, BOTH))
    assert driver.lane.rejected_events == 1
    assert driver.lane.state is LaneState.FINGERPRINT


def test_enrolment_in_capture_step_rejected(driver: Driver) -> None:
    driver.document()
    driver.enrolled()
    driver.enrolled()
    assert driver.lane.rejected_events == 1


def test_transaction_ids_are_unique(driver: Driver) -> None:
    ids = set()
    for _ in range(3):
        driver.document(valid=False)
        ids.add(driver.records()[-1].transaction_id)
        driver.send(Tick(), after_s=5.0)
    assert len(ids) == 3


def test_lane_settings_from_config() -> None:
    from edge_gate.config import GateConfig, IrisConfig
    from edge_gate.gate import LaneSettings

    config = GateConfig(iris=IrisConfig(max_attempts=5, capture_timeout_s=20.0))
    settings = LaneSettings.from_config(config)
    assert settings.max_attempts["iris"] == 5
    assert settings.capture_s["iris"] == 20.0
    assert settings.passage_s == config.turnstile.passage_timeout_s
    assert settings.document_s == config.document_reader.step_timeout_s


def test_two_stuck_beams_one_silent_alarm(driver: Driver) -> None:
    driver.send_all([BeamChanged("entrance", True), BeamChanged("exit", True)])
    out = driver.send(Tick(), after_s=301.0)
    assert [c.record.alarm for c in out if isinstance(c, RecordAlarm)] == [
        Alarm.STUCK_SENSOR,
        Alarm.STUCK_SENSOR,
    ]
    assert out.count(SetSilentAlarm(True)) == 1


def test_unknown_event_rejected(driver: Driver) -> None:
    assert driver.send(object()) == []  # type: ignore[arg-type]
    assert driver.lane.last_rejection == "not a lane event: object"


def test_manual_open_one_passage(driver: Driver) -> None:
    out = driver.send(ManualOpen())
    assert out[0] == Unlock("manual")
    assert SetLamps(green=True, red=False) in out
    assert driver.lane.state is LaneState.MANUAL_PASSAGE
    assert driver.lane.unlock_allowed
    out = driver.pass_through()
    assert out[0] == Lock()
    assert out.count(Lock()) == 2
    assert driver.lane.state is LaneState.IDLE
    assert driver.of_type(RecordAlarm) == []
    assert driver.records() == []


def test_manual_open_counts_no_tailgating(driver: Driver) -> None:
    driver.send(ManualOpen())
    driver.send_all(
        [
            BarrierChanged(closed=False),
            BeamChanged("exit", True),
            BeamChanged("exit", False),
            BeamChanged("exit", True),
            BeamChanged("exit", False),
            BarrierChanged(closed=True),
        ]
    )
    assert driver.of_type(RecordAlarm) == []
    assert driver.lane.state is LaneState.IDLE


def test_manual_open_times_out_locked(driver: Driver) -> None:
    driver.send(ManualOpen())
    out = driver.send(Tick(), after_s=10.0)
    assert out[0] == Lock()
    assert driver.lane.state is LaneState.IDLE


def test_manual_open_out_of_service_returns(driver: Driver) -> None:
    driver.send(DeviceLost("iris_camera"))
    driver.send(ManualOpen())
    assert driver.lane.state is LaneState.MANUAL_PASSAGE
    driver.send(DeviceBack("iris_camera"))
    assert driver.lane.state is LaneState.MANUAL_PASSAGE
    driver.send(DeviceLost("iris_camera"))
    driver.pass_through()
    assert driver.lane.state is LaneState.OUT_OF_SERVICE


@pytest.mark.parametrize(
    "setup",
    [
        pytest.param("transaction", id="during-transaction"),
        pytest.param("passage", id="during-passage"),
        pytest.param("fire", id="during-fire"),
        pytest.param("manual", id="twice"),
    ],
)
def test_manual_open_rejected(driver: Driver, setup: str) -> None:
    if setup == "transaction":
        driver.document()
    elif setup == "passage":
        driver.to_decision()
    elif setup == "fire":
        driver.send(FireReleaseChanged(True))
    else:
        driver.send(ManualOpen())
    unlocks_before = len(unlocks(driver))
    assert driver.send(ManualOpen()) == []
    assert driver.lane.rejected_events == 1
    assert len(unlocks(driver)) == unlocks_before


def test_fire_during_manual_open_then_locks(driver: Driver) -> None:
    driver.send(ManualOpen())
    out = driver.send(FireReleaseChanged(True))
    assert Unlock("fire_release") in out
    assert driver.lane.state is LaneState.EMERGENCY
    out = driver.send(FireReleaseChanged(False))
    assert out[0] == Lock()


def test_late_result_is_logged_at_debug(
    driver: Driver, caplog: pytest.LogCaptureFixture
) -> None:
    driver.document()
    tx = driver.tx
    driver.enrolled()
    driver.send(DeviceLost("fingerprint"))
    assert driver.records()[0].reason == "fingerprint_lost"
    caplog.set_level("DEBUG", logger="edge_gate.gate")
    # The capture worker reports the sample it could not take after the abort.
    out = driver.send(CaptureFailed(tx, "fingerprint", "device_lost"))
    assert out == []
    assert driver.lane.state is LaneState.OUT_OF_SERVICE
    assert driver.lane.rejected_events == 1
    (entry,) = [r for r in caplog.records if "rejected" in r.getMessage()]
    assert entry.levelname == "DEBUG"
    assert "already ended" in entry.getMessage()


def test_result_for_unknown_transaction_is_a_warning(
    driver: Driver, caplog: pytest.LogCaptureFixture
) -> None:
    driver.document()
    driver.send(SampleScored("other-000009", "iris", 0.9))
    (entry,) = [r for r in caplog.records if "rejected" in r.getMessage()]
    assert entry.levelname == "WARNING"


def test_document_with_barrier_open_is_referred(driver: Driver) -> None:
    driver.send(BarrierChanged(closed=False))
    out = driver.document()
    (record,) = driver.records()
    assert record.outcome is Outcome.REJECTED
    assert record.reason == "barrier_open"
    assert ShowMessage("see_officer") in out
    assert not any(isinstance(c, LookUpEnrolment) for c in out)
    assert unlocks(driver) == []
    # Once the barrier is closed again the next document is taken.
    driver.send(BarrierChanged(closed=True))
    driver.send(Tick(), after_s=60.0)
    driver.document()
    assert driver.lane.state is LaneState.LOOKUP


@pytest.mark.parametrize("score", [float("nan"), float("inf"), -0.1, 1.5])
def test_score_outside_unit_range_is_refused(driver: Driver, score: float) -> None:
    driver.document()
    driver.enrolled()
    driver.send(SampleCaptured(driver.tx, "fingerprint"))
    out = driver.send(SampleScored(driver.tx, "fingerprint", score))

    assert out == []
    assert driver.lane.rejected_events == 1
    assert "outside [0, 1]" in (driver.lane.last_rejection or "")
    # The capture never completes, so the transaction times out unopened.
    driver.send(SampleCaptured(driver.tx, "iris"))
    driver.send(SampleScored(driver.tx, "iris", 0.99))
    driver.send(Tick(), after_s=120.0)
    assert unlocks(driver) == []
    assert driver.records()[0].outcome is Outcome.ABORTED


def test_document_with_exit_beam_broken_is_referred(driver: Driver) -> None:
    # Someone came in from the exit side and stays in the exit beam.
    driver.send(BeamChanged("exit", True))
    driver.send(BeamChanged("inside", True))
    out = driver.document()

    (record,) = driver.records()
    assert record.reason == "exit_occupied"
    assert ShowMessage("see_officer") in out
    assert unlocks(driver) == []


def test_exit_break_before_a_document_raises_an_alarm(driver: Driver) -> None:
    driver.send(BeamChanged("inside", True))
    assert driver.lane.state is LaneState.DOCUMENT
    out = driver.send(BeamChanged("exit", True))

    alarms = [c.record.alarm for c in out if isinstance(c, RecordAlarm)]
    assert alarms == [Alarm.EXIT_BREACH]
    assert driver.records() == []


def test_exit_break_during_fire_release_raises_no_alarm(driver: Driver) -> None:
    driver.send(FireReleaseChanged(True))
    driver.send(BeamChanged("inside", True))
    out = driver.send(BeamChanged("exit", True))

    assert not [c for c in out if isinstance(c, RecordAlarm)]
