"""Hypothesis stateful test: the barrier never unlocks by accident.

Random sequences of every lane event, of input levels on the real
Turnstile's mock pins, of walker scenarios and of elapsed time, including
stale and out-of-order results. After every step the unlock output's
physical level is checked: it is active only while an accepted traveller's
passage (or an officer's manual opening) is in progress or while the fire
release input is active, and the fire release always unlocks.

The main run uses ``max_examples * stateful_step_count >= 10,000`` steps.
"""

from __future__ import annotations

from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)

from edge_gate.config import PolicyConfig, TurnstileConfig
from edge_gate.gate import (
    MODALITIES,
    CaptureFailed,
    DeviceBack,
    DeviceLost,
    DocumentRead,
    EnrolmentFound,
    EnrolmentNotFound,
    LaneState,
    ManualOpen,
    Outcome,
    SampleCaptured,
    SampleScored,
    Unlock,
    WalkAway,
    WatchlistResult,
)
from edge_gate.turnstile import INPUT_NAMES, MOCK_REVISION

STALE = "rig-999999"
MODALITY = st.sampled_from(MODALITIES)
MODALITY_SET = st.frozensets(MODALITY)
SCORE = st.floats(0.0, 1.0)
DEVICES = st.sampled_from(
    ["document_reader", "fingerprint", "iris_camera", "turnstile"]
)
POLICIES = st.sampled_from(["both", "either", "fused", "fallback"])


def build_machine(
    rig_class: Any, config: TurnstileConfig
) -> type[RuleBasedStateMachine]:
    class UnlockSafety(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.factory = MockFactory(revision=MOCK_REVISION)
            self.rig = rig_class(self.factory, config, PolicyConfig())
            # Start-up: no unlock level was ever driven (states[0] is the
            # pin's level before it became an output).
            pin = self.factory.pin(config.unlock_pin)
            unlocked = self.rig.unlock_level()
            assert unlocked not in [s.state for s in pin.states[1:]]
            self.accepted_unlocks = 0
            self.passages_seen = 0
            self._apply = self.rig.apply
            self.rig.apply = self._checked_apply

        def teardown(self) -> None:
            self.rig.close()
            self.factory.reset()
            self.factory.close()

        def _tx(self, stale: bool) -> str:
            return STALE if stale else (self.rig.lane.transaction_id or STALE)

        # Physical world

        @rule(name=st.sampled_from(INPUT_NAMES), active=st.booleans())
        def set_input(self, name: Any, active: bool) -> None:
            self.rig.walker.set_input(name, active)

        @rule(
            scenario=st.sampled_from(
                ["enter", "walk_through", "tailgate", "wrong_way", "walk_away", "force"]
            )
        )
        def walker_scenario(self, scenario: str) -> None:
            getattr(self.rig.walker, scenario)()

        @rule(duration_s=st.floats(0.0, 40.0))
        def hold_barrier_open(self, duration_s: float) -> None:
            self.rig.walker.hold_barrier_open(duration_s)

        @rule(seconds=st.floats(0.0, 40.0))
        def time_passes(self, seconds: float) -> None:
            self.rig.advance(seconds)

        @rule(device=DEVICES, lost=st.booleans())
        def device(self, device: Any, lost: bool) -> None:
            self.rig.feed(DeviceLost(device) if lost else DeviceBack(device))

        # Transaction events, any time, fresh or stale

        @rule(valid=st.booleans(), expired=st.booleans(), plausible=st.booleans())
        def document(self, valid: bool, expired: bool, plausible: bool) -> None:
            self.rig.feed(DocumentRead("UTO", "L898902C3", valid, expired, plausible))

        @rule(
            stale=st.booleans(),
            found=st.booleans(),
            flags=st.tuples(st.booleans(), st.booleans(), st.booleans()),
        )
        def enrolment(self, stale: bool, found: bool, flags: tuple[bool, ...]) -> None:
            tx = self._tx(stale)
            if found:
                self.rig.feed(EnrolmentFound(tx, "enr", *flags))
            else:
                self.rig.feed(EnrolmentNotFound(tx))

        @rule(
            stale=st.booleans(),
            kind=st.sampled_from(["captured", "scored", "failed"]),
            modality=MODALITY,
            score=SCORE,
        )
        def sample(self, stale: bool, kind: str, modality: Any, score: float) -> None:
            tx = self._tx(stale)
            if kind == "captured":
                self.rig.feed(SampleCaptured(tx, modality))
            elif kind == "scored":
                self.rig.feed(SampleScored(tx, modality, score))
            else:
                self.rig.feed(CaptureFailed(tx, modality))

        @rule(
            stale=st.booleans(),
            hit=st.booleans(),
            searched=MODALITY_SET,
            gallery=MODALITY_SET,
        )
        def watchlist(
            self,
            stale: bool,
            hit: bool,
            searched: frozenset[Any],
            gallery: frozenset[Any],
        ) -> None:
            self.rig.feed(WatchlistResult(self._tx(stale), hit, searched, gallery))

        @rule()
        def manual_open(self) -> None:
            self.rig.feed(ManualOpen())

        @rule(stale=st.booleans())
        def walk_away(self, stale: bool) -> None:
            self.rig.feed(WalkAway(self._tx(stale)))

        # The event the lane waits for, so that sequences reach deep states

        @rule(data=st.data())
        def expected_event(self, data: st.DataObject) -> None:
            self._advance_once(data)

        @rule(data=st.data())
        def whole_transaction(self, data: st.DataObject) -> None:
            # Stop at the unlock, so that later steps act on an open barrier.
            for _ in range(8):
                if self.rig.lane.state is LaneState.PASSAGE:
                    break
                if not self._advance_once(data):
                    break

        @rule()
        def quiet_world(self) -> None:
            self.rig.walker.quiet()
            for device in (
                "document_reader",
                "fingerprint",
                "iris_camera",
                "turnstile",
            ):
                self.rig.feed(DeviceBack(device))  # type: ignore[arg-type]

        def _advance_once(self, data: st.DataObject) -> bool:
            """Send what the lane waits for, with drawn values; return
            whether the lane was in a step that takes such an event."""
            lane = self.rig.lane
            tx = lane.transaction_id or STALE
            state = lane.state
            if state in (LaneState.IDLE, LaneState.DOCUMENT):
                valid = data.draw(st.sampled_from([True, True, True, False]))
                self.rig.feed(DocumentRead("UTO", "L898902C3", valid, False))
            elif state is LaneState.LOOKUP:
                watchlisted = data.draw(st.sampled_from([False, False, False, True]))
                self.rig.feed(EnrolmentFound(tx, "enr", False, False, watchlisted))
            elif state in (LaneState.FINGERPRINT, LaneState.IRIS, LaneState.SCORING):
                modality = "fingerprint" if state is LaneState.FINGERPRINT else "iris"
                if data.draw(st.integers(0, 4)) == 0:
                    self.rig.feed(CaptureFailed(tx, modality))
                else:
                    for pending in MODALITIES:
                        score = data.draw(st.floats(0.35, 1.0))
                        self.rig.feed(SampleScored(tx, pending, score))
            elif state is LaneState.WATCHLIST:
                hit = data.draw(st.sampled_from([False, False, False, True]))
                both = frozenset(MODALITIES)
                self.rig.feed(WatchlistResult(tx, hit, both, both))
            elif state is LaneState.PASSAGE:
                self.passages_seen += 1
                self.rig.walker.walk_through()
            else:
                self.rig.advance(data.draw(st.floats(0.0, 10.0)))
                return False
            return True

        # The safety property

        @invariant()
        def unlock_only_after_accept_or_fire(self) -> None:
            lane = self.rig.lane
            fire = self.rig.turnstile.is_active("fire_release")
            if self.rig.unlock_pin_active():
                accepted = (
                    lane.state is LaneState.PASSAGE
                    and lane.decision is not None
                    and lane.decision.outcome is Outcome.ACCEPTED
                )
                # An officer's manual opening is the one other authority.
                manual = lane.state is LaneState.MANUAL_PASSAGE
                assert accepted or manual or fire, (
                    f"unlocked in {lane.state} without accept or fire release"
                )
            if fire:
                assert self.rig.unlock_pin_active(), (
                    "fire release active but barrier locked"
                )

        def _checked_apply(self, commands: list[Any]) -> None:
            """Check each accept unlock where the lane issues it, then carry
            the commands out on the turnstile."""
            if Unlock("manual") in commands:
                assert self.rig.lane.state is LaneState.MANUAL_PASSAGE
            if Unlock("accepted") in commands:
                lane = self.rig.lane
                assert lane.state is LaneState.PASSAGE
                assert lane.decision is not None
                assert lane.decision.outcome is Outcome.ACCEPTED
                self.accepted_unlocks += 1
            self._apply(commands)

    return UnlockSafety


@pytest.mark.slow
def test_unlock_safety_hold_fail_secure(rig_class: Any) -> None:
    machine = build_machine(
        rig_class, TurnstileConfig(pin_factory="mock", unlock_mode="hold")
    )
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=400,
            stateful_step_count=30,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


@pytest.mark.slow
def test_unlock_safety_pulse_fail_safe(rig_class: Any) -> None:
    config = TurnstileConfig(
        pin_factory="mock",
        lock_type="fail_safe",
        unlock_mode="pulse",
        unlock_active_high=False,
    )
    run_state_machine_as_test(
        build_machine(rig_class, config),
        settings=settings(
            max_examples=60,
            stateful_step_count=30,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
