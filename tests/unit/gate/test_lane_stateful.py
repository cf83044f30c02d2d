"""Hypothesis stateful test of the pure lane: a breach ends the transaction.

Random sequences of transaction results (mostly for the transaction in
progress, with good scores, so that accepts are common), barrier and beam
levels, fire release, manual openings and elapsed time drive a real
:class:`Lane`. After every event it checks that a transaction during whose
steps the barrier was forced open or the exit beam broke is ended at once as
``rejected`` and never gets :class:`Unlock`, and that every unlock has its
cause: an accept, an officer's request or the fire release.

The main run takes 300 examples of 40 steps (12,000 events).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)

from edge_gate.gate import (
    MODALITIES,
    TRANSACTION_STEPS,
    BarrierChanged,
    BeamChanged,
    CaptureFailed,
    Command,
    DocumentRead,
    EnrolmentFound,
    Event,
    FireReleaseChanged,
    Lane,
    LaneState,
    ManualOpen,
    Outcome,
    RecordTransaction,
    SampleCaptured,
    SampleScored,
    Tick,
    Unlock,
    WatchlistResult,
)

BOTH = frozenset(MODALITIES)
BREACH_REASONS = {"forced_passage", "exit_crossing"}


class BreachMachine(RuleBasedStateMachine):
    """Drives one lane and checks every command list it returns."""

    make_lane: Callable[[], Lane]

    def __init__(self) -> None:
        super().__init__()
        self.lane = type(self).make_lane()
        self.now_s = 0.0
        self.barrier_closed = True
        self.exit_broken = False
        self.fire = False
        self.breached: set[str] = set()
        self.rejected: set[str] = set()

    def _tx(self) -> str:
        return self.lane.transaction_id or "t-999999"

    def _send(self, event: Event, after_s: float = 0.1) -> None:
        self.now_s += after_s
        tx, state = self.lane.transaction_id, self.lane.state
        manual_allowed = state in (
            LaneState.IDLE,
            LaneState.DOCUMENT,
            LaneState.OUT_OF_SERVICE,
        )
        breach = (
            isinstance(event, BarrierChanged)
            and self.barrier_closed
            and not event.closed
        ) or (
            isinstance(event, BeamChanged)
            and event.beam == "exit"
            and event.broken
            and not self.exit_broken
        )
        if isinstance(event, BarrierChanged):
            self.barrier_closed = event.closed
        if isinstance(event, BeamChanged) and event.beam == "exit":
            self.exit_broken = event.broken
        out = self.lane.handle(event, self.now_s)
        ended = {c.record.transaction_id: c.record for c in _records(out)}
        if (
            breach
            and tx is not None
            and state in TRANSACTION_STEPS
            and (tx not in ended or ended[tx].reason in BREACH_REASONS)
        ):
            # The breach came while the transaction still waited in a step,
            # because no deadline of this call ended it first.
            self.breached.add(tx)
            assert tx in ended, "a breach left the transaction running"
            assert ended[tx].outcome is Outcome.REJECTED
            assert self.lane.state is LaneState.REFERRAL
        self.rejected.update(t for t, r in ended.items() if r.reason in BREACH_REASONS)
        self._check_unlocks(out, manual_allowed)

    def _check_unlocks(self, out: list[Command], manual_allowed: bool) -> None:
        for command in out:
            if not isinstance(command, Unlock):
                continue
            if command.reason == "accepted":
                tx = self.lane.transaction_id
                assert tx is not None and self.lane.state is LaneState.PASSAGE
                assert tx not in self.breached, f"unlocked breached {tx}"
            elif command.reason == "manual":
                assert manual_allowed and not self.fire
            else:
                assert self.fire

    @invariant()
    def breach_reasons_only_after_breach(self) -> None:
        assert self.rejected <= self.breached

    @rule(inside=st.booleans())
    def document(self, inside: bool) -> None:
        if inside:
            self._send(BeamChanged("inside", True))
        self._send(DocumentRead("UTO", "L898902C3", True, False))

    @rule(watchlisted=st.sampled_from([False, False, False, True]))
    def enrolment(self, watchlisted: bool) -> None:
        self._send(EnrolmentFound(self._tx(), "e", False, False, watchlisted))

    @rule(
        modality=st.sampled_from(MODALITIES),
        kind=st.sampled_from(["captured", "scored", "scored", "failed"]),
        score=st.sampled_from([0.95, 0.95, 0.1]),
    )
    def sample(self, modality: Any, kind: str, score: float) -> None:
        tx = self._tx()
        if kind == "captured":
            self._send(SampleCaptured(tx, modality))
        elif kind == "scored":
            self._send(SampleScored(tx, modality, score))
        else:
            self._send(CaptureFailed(tx, modality))

    @rule(hit=st.sampled_from([False, False, False, True]))
    def watchlist(self, hit: bool) -> None:
        self._send(WatchlistResult(self._tx(), hit, BOTH, BOTH))

    @rule(steps=st.integers(1, 6))
    def advance(self, steps: int) -> None:
        """Send the results the lane waits for, with good scores, so that
        accepts (and breaches just before them) are common."""
        for _ in range(steps):
            state, tx = self.lane.state, self._tx()
            if state in (LaneState.IDLE, LaneState.DOCUMENT):
                self._send(DocumentRead("UTO", "L898902C3", True, False))
            elif state is LaneState.LOOKUP:
                self._send(EnrolmentFound(tx, "e", False, False, False))
            elif state in (LaneState.FINGERPRINT, LaneState.IRIS):
                modality: Any = state.value
                self._send(SampleCaptured(tx, modality))
                self._send(SampleScored(tx, modality, 0.95))
            elif state is LaneState.SCORING:
                for modality in MODALITIES:
                    self._send(SampleScored(tx, modality, 0.95))
            elif state is LaneState.WATCHLIST:
                self._send(WatchlistResult(tx, False, BOTH, BOTH))
            else:
                return

    @rule(closed=st.booleans())
    def barrier(self, closed: bool) -> None:
        self._send(BarrierChanged(closed))

    @rule(beam=st.sampled_from(["entrance", "inside", "exit"]), broken=st.booleans())
    def beam(self, beam: Any, broken: bool) -> None:
        self._send(BeamChanged(beam, broken))

    @rule(active=st.sampled_from([False, False, True]))
    def fire_release(self, active: bool) -> None:
        self.fire = active
        self._send(FireReleaseChanged(active))

    @rule()
    def manual_open(self) -> None:
        self._send(ManualOpen())

    @rule(seconds=st.sampled_from([0.5, 6.0, 16.0, 31.0]))
    def time_passes(self, seconds: float) -> None:
        self._send(Tick(), after_s=seconds)


def _records(out: list[Command]) -> list[Any]:
    return [c for c in out if isinstance(c, RecordTransaction)]


def test_breach_never_unlocks(new_driver: Callable[[], Any]) -> None:
    class Machine(BreachMachine):
        @staticmethod
        def make_lane() -> Lane:
            lane: Lane = new_driver().lane  # already started at 0.0
            return lane

    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=300,
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
