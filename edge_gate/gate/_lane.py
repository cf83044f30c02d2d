"""The lane's transaction state machine: events in, commands out.

:class:`Lane` is pure. It reads no clock, does no I/O and starts no thread:
the runner passes each event with the lane clock ``now_s`` (monotonic
seconds) and carries out the commands returned, in order.

Traveller flow: ``IDLE`` (or ``DOCUMENT`` once someone is inside) takes
a :class:`DocumentRead`; then ``LOOKUP``, ``FINGERPRINT``, ``IRIS``,
``SCORING`` (while templates are still being made), ``WATCHLIST``; then the
decision. An accept goes to ``PASSAGE``; a rejection or alert to
``REFERRAL``. An officer's :class:`ManualOpen` goes from a lane without a
transaction to ``MANUAL_PASSAGE``. The lane stays in ``OUT_OF_SERVICE``
while a device is lost, the key switch is on or the enclosure is open, and
in ``EMERGENCY`` while the fire release is active.

Invariants:

- :class:`Unlock` is issued only on entering ``PASSAGE`` after an accept,
  on entering ``MANUAL_PASSAGE`` after an officer's request, or on entering
  ``EMERGENCY``. Every way out of these states issues :class:`Lock`, except
  a fire release during a passage, which keeps the barrier unlocked.
- Every transaction step has a deadline; ``IDLE``, ``OUT_OF_SERVICE`` and
  ``EMERGENCY`` wait for the world to change, not for a clock.
- Every transaction ends in exactly one :class:`RecordTransaction`.
- A forced barrier or an exit-beam break before the decision ends the
  transaction as ``rejected`` (reason ``forced_passage`` or
  ``exit_crossing``) and refers it to an officer; it is never unlocked.
  Each raises its own alarm (``forced_passage`` or ``exit_breach``).
- The fire release records :class:`RecordAlarm` when it becomes active and
  when it clears, with or without a transaction.
- An event that does not fit the state or the current transaction (late,
  stale, repeated or out of order) is rejected: it changes nothing, is
  logged and counted in :attr:`Lane.rejected_events`. It does not raise,
  because the same call may already have produced commands from elapsed
  deadlines (a :class:`Lock` among them) that must reach the runner. A
  result for one of the last transactions, arriving after it ended, is
  expected (a worker finishes what it started) and logged at DEBUG. Any
  other rejection is logged at WARNING.
- A document read while the barrier is open outside a passage, or while
  the exit beam is broken, starts a transaction that is rejected at once
  (reason ``barrier_open`` or ``exit_occupied``), so the traveller is
  referred and the document is recorded.
- A score outside [0, 1] (NaN included) is refused like a stray result;
  the capture then times out, so such a score can never reach a decision.
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from edge_gate.config import GateConfig, PolicyConfig
from edge_gate.errors import GateStateError
from edge_gate.gate._commands import (
    Alarm,
    AlarmRecord,
    CancelTransaction,
    Command,
    Lock,
    LookUpEnrolment,
    Message,
    RecordAlarm,
    RecordTransaction,
    RunWatchlistSearch,
    SetBuzzer,
    SetLamps,
    SetSilentAlarm,
    ShowMessage,
    StartCapture,
    TransactionRecord,
    Unlock,
)
from edge_gate.gate._events import (
    MODALITIES,
    BarrierChanged,
    BeamChanged,
    CaptureFailed,
    DeviceBack,
    DeviceLost,
    DocumentRead,
    EnrolmentFound,
    EnrolmentNotFound,
    Event,
    FireReleaseChanged,
    KeySwitchChanged,
    ManualOpen,
    Modality,
    SampleCaptured,
    SampleScored,
    TamperChanged,
    Tick,
    WalkAway,
    WatchlistResult,
)
from edge_gate.gate._monitor import Observation, PassageMonitor
from edge_gate.gate._policy import (
    Decision,
    DocumentEvidence,
    EnrolmentEvidence,
    ModalityEvidence,
    Outcome,
    ThresholdLike,
    WatchlistEvidence,
    check_document,
    check_enrolment,
    decide,
)

logger = logging.getLogger(__name__)


class LaneState(enum.Enum):
    """Position of the lane in the traveller flow."""

    IDLE = "idle"
    DOCUMENT = "document"
    LOOKUP = "lookup"
    FINGERPRINT = "fingerprint"
    IRIS = "iris"
    SCORING = "scoring"
    WATCHLIST = "watchlist"
    PASSAGE = "passage"
    MANUAL_PASSAGE = "manual_passage"
    REFERRAL = "referral"
    OUT_OF_SERVICE = "out_of_service"
    EMERGENCY = "emergency"


# Steps of a transaction before its decision.
TRANSACTION_STEPS = frozenset(
    {
        LaneState.LOOKUP,
        LaneState.FINGERPRINT,
        LaneState.IRIS,
        LaneState.SCORING,
        LaneState.WATCHLIST,
    }
)
_CAPTURE_STATE: dict[Modality, LaneState] = {
    "fingerprint": LaneState.FINGERPRINT,
    "iris": LaneState.IRIS,
}
_FIRST_MESSAGE: dict[Modality, Message] = {
    "fingerprint": "present_finger",
    "iris": "look_at_camera",
}
_RETRY_MESSAGE: dict[Modality, Message] = {
    "fingerprint": "retry_finger",
    "iris": "retry_iris",
}
_PASSAGES = frozenset({LaneState.PASSAGE, LaneState.MANUAL_PASSAGE})
# Results of this many recently ended transactions count as late, not stray.
_ENDED_KEPT = 8
_LATE_RESULT = "result for a transaction that has already ended"
# Alarms that sound the local buzzer; the others only reach the officers.
_AUDIBLE = frozenset(
    {
        Alarm.TAILGATING,
        Alarm.FORCED_PASSAGE,
        Alarm.BARRIER_HELD_OPEN,
        Alarm.WRONG_WAY,
        Alarm.EXIT_BREACH,
    }
)


@dataclass(frozen=True)
class LaneSettings:
    """Every deadline and limit of the lane, in seconds or counts."""

    document_s: float = 30.0
    lookup_s: float = 5.0
    capture_s: Mapping[Modality, float] = field(
        default_factory=lambda: {"fingerprint": 15.0, "iris": 15.0}
    )
    max_attempts: Mapping[Modality, int] = field(
        default_factory=lambda: {"fingerprint": 3, "iris": 3}
    )
    capture_grace_s: float = 5.0
    scoring_s: float = 10.0
    watchlist_s: float = 10.0
    passage_s: float = 10.0
    referral_s: float = 5.0
    barrier_held_open_s: float = 15.0
    stuck_beam_s: float = 300.0
    buzzer_s: float = 3.0
    silent_alarm_s: float = 3.0

    @classmethod
    def from_config(cls, config: GateConfig) -> LaneSettings:
        """Collect the lane's settings from the loaded configuration."""
        policy, turnstile = config.policy, config.turnstile
        return cls(
            document_s=config.document_reader.step_timeout_s,
            lookup_s=policy.lookup_timeout_s,
            capture_s={
                "fingerprint": config.fingerprint.capture_timeout_s,
                "iris": config.iris.capture_timeout_s,
            },
            max_attempts={
                "fingerprint": config.fingerprint.max_attempts,
                "iris": config.iris.max_attempts,
            },
            capture_grace_s=policy.capture_grace_s,
            scoring_s=policy.scoring_timeout_s,
            watchlist_s=policy.watchlist_timeout_s,
            passage_s=turnstile.passage_timeout_s,
            referral_s=policy.referral_display_s,
            barrier_held_open_s=turnstile.barrier_held_open_s,
            stuck_beam_s=turnstile.stuck_beam_s,
            buzzer_s=turnstile.buzzer_s,
            silent_alarm_s=turnstile.silent_alarm_s,
        )


@dataclass
class _Capture:
    """One modality's progress within a transaction."""

    max_attempts: int
    attempts: int = 0
    pending: bool = False
    score: float | None = None
    failed: bool = False
    retry: bool = False

    @property
    def done(self) -> bool:
        return self.score is not None or self.failed

    def fail_attempt(self) -> None:
        """Count a failed attempt: retry while attempts remain."""
        self.pending = False
        if self.attempts >= self.max_attempts:
            self.failed = True
            self.retry = False
        else:
            self.retry = True


@dataclass
class _Transaction:
    transaction_id: str
    started_s: float
    issuing_state: str
    document_number: str
    document: DocumentEvidence
    captures: dict[Modality, _Capture]
    enrolment: EnrolmentEvidence | None = None
    enrolment_id: str | None = None
    watchlist: WatchlistEvidence | None = None
    decision: Decision | None = None
    alarms: list[AlarmRecord] = field(default_factory=list)
    last_capture_s: float | None = None
    decided_s: float | None = None
    passages: int = 0


class Lane:
    """The transaction state machine of one lane.

    Args:
        settings: deadlines and limits.
        policy: the decision policy.
        thresholds: each modality's calibrated score threshold.
        lane_id: prefix of the transaction ids (make it unique per boot
            if ids must not repeat across restarts).
    """

    def __init__(
        self,
        settings: LaneSettings,
        policy: PolicyConfig,
        thresholds: Mapping[Modality, ThresholdLike],
        lane_id: str = "lane",
    ) -> None:
        self._settings = settings
        self._policy = policy
        self._thresholds = dict(thresholds)
        self._lane_id = lane_id
        self._monitor = PassageMonitor(
            settings.barrier_held_open_s, settings.stuck_beam_s
        )
        self._state = LaneState.IDLE
        self._deadline_s: float | None = None
        self._now_s: float | None = None
        self._tx: _Transaction | None = None
        self._counter = 0
        self._fire = False
        self._key = False
        self._tamper = False
        self._lost: set[str] = set()
        self._buzzer_until_s: float | None = None
        self._silent_until_s: float | None = None
        self._lamps: SetLamps | None = None
        self._manual_passages = 0
        self._ended: deque[str] = deque(maxlen=_ENDED_KEPT)
        self.rejected_events = 0
        self.last_rejection: str | None = None

    # Public view

    @property
    def state(self) -> LaneState:
        """The current state."""
        return self._state

    @property
    def transaction_id(self) -> str | None:
        """The id of the transaction in progress, or None."""
        return None if self._tx is None else self._tx.transaction_id

    @property
    def decision(self) -> Decision | None:
        """The decision of the transaction in progress (set in ``PASSAGE``),
        or None."""
        return None if self._tx is None else self._tx.decision

    @property
    def deadline_s(self) -> float | None:
        """When the current state times out (lane clock), or None."""
        return self._deadline_s

    @property
    def unlock_allowed(self) -> bool:
        """Whether the barrier may be unlocked now: an accepted or manual
        passage is in progress, or the fire release is active."""
        return self._state in _PASSAGES or self._fire

    def start(self, now_s: float) -> list[Command]:
        """Start the lane: barrier locked, outputs off, display idle.

        Raises:
            GateStateError: the lane was already started.
        """
        if self._now_s is not None:
            raise GateStateError("lane already started; build a new Lane to restart")
        self._now_s = now_s
        out: list[Command] = [Lock(), SetBuzzer(False), SetSilentAlarm(False)]
        self._rest(out)
        return out

    def handle(self, event: Event, now_s: float) -> list[Command]:
        """Take one event and return the commands it causes.

        Deadlines that passed by ``now_s`` are applied first, so a result
        that arrives after its step timed out is rejected.

        Args:
            event: what happened.
            now_s: lane clock (monotonic seconds), never decreasing.

        Returns:
            Commands to carry out in order (possibly none).

        Raises:
            GateStateError: the lane was not started, or ``now_s`` went
                backwards.
        """
        if self._now_s is None:
            raise GateStateError("call Lane.start() before Lane.handle()")
        if now_s < self._now_s:
            raise GateStateError(
                f"lane clock went backwards from {self._now_s} to {now_s}; "
                "pass time.monotonic() values"
            )
        self._now_s = now_s
        out: list[Command] = []
        self._apply_deadlines(out)
        why = self._dispatch(event, out)
        if why is not None:
            self.rejected_events += 1
            self.last_rejection = why
            logger.log(
                logging.DEBUG if why == _LATE_RESULT else logging.WARNING,
                "lane %s rejected %s in state %s: %s",
                self._lane_id,
                type(event).__name__,
                self._state.value,
                why,
            )
        return out

    # Dispatch

    def _dispatch(self, event: Event, out: list[Command]) -> str | None:
        """Apply one event; return why it was rejected, or None."""
        match event:
            case Tick():
                return None
            case DocumentRead():
                return self._on_document(event, out)
            case EnrolmentFound() | EnrolmentNotFound():
                return self._on_enrolment(event, out)
            case SampleCaptured() | SampleScored() | CaptureFailed():
                return self._on_sample(event, out)
            case WatchlistResult():
                return self._on_watchlist(event, out)
            case WalkAway():
                return self._on_walk_away(event, out)
            case ManualOpen():
                return self._on_manual_open(out)
            case BeamChanged():
                self._on_beam(event, out)
            case BarrierChanged():
                self._on_barrier(event, out)
            case FireReleaseChanged():
                self._on_fire(event.active, out)
            case KeySwitchChanged():
                self._key = event.active
                self._on_service_change("key_switch", out)
            case TamperChanged():
                self._on_tamper(event.active, out)
            case DeviceLost():
                self._lost.add(event.device)
                self._on_service_change(f"{event.device}_lost", out)
            case DeviceBack():
                self._lost.discard(event.device)
                self._on_service_change("device_back", out)
            case _:
                return f"not a lane event: {type(event).__name__}"
        return None

    def _stale(self, transaction_id: str) -> str | None:
        if transaction_id in self._ended:
            return _LATE_RESULT
        if self._tx is None or self._state not in TRANSACTION_STEPS:
            return "no transaction is waiting for results"
        if transaction_id != self._tx.transaction_id:
            return "result for another transaction"
        return None

    # Transaction events

    def _on_document(self, event: DocumentRead, out: list[Command]) -> str | None:
        if self._state not in (LaneState.IDLE, LaneState.DOCUMENT):
            return "a document is only taken while the lane is idle"
        self._counter += 1
        tx = _Transaction(
            transaction_id=f"{self._lane_id}-{self._counter:06d}",
            started_s=self._now(),
            issuing_state=event.issuing_state,
            document_number=event.document_number,
            document=DocumentEvidence(
                event.valid, event.expired, event.dates_plausible
            ),
            captures={m: _Capture(self._settings.max_attempts[m]) for m in MODALITIES},
        )
        self._tx = tx
        logger.info("lane %s: transaction %s started", self._lane_id, tx.transaction_id)

        rejection = check_document(tx.document, self._policy.mode)
        if rejection is None and not self._monitor.barrier_is_closed:
            # The barrier cannot lock behind a traveller while it is open.
            rejection = Decision(Outcome.REJECTED, "barrier_open", self._policy.mode)
        elif rejection is None and self._monitor.broken["exit"]:
            # Passages are counted on exit-beam breaks; one already broken
            # would hide the traveller's crossing (and anyone with them).
            rejection = Decision(Outcome.REJECTED, "exit_occupied", self._policy.mode)
        if rejection is not None:
            self._apply_decision(rejection, out)
            return None
        out.append(
            LookUpEnrolment(
                tx.transaction_id, event.issuing_state, event.document_number
            )
        )
        self._enter(LaneState.LOOKUP, out, self._settings.lookup_s, "please_wait")
        return None

    def _on_enrolment(
        self, event: EnrolmentFound | EnrolmentNotFound, out: list[Command]
    ) -> str | None:
        why = self._stale(event.transaction_id)
        if why is None and self._state is not LaneState.LOOKUP:
            why = "enrolment result outside the lookup step"
        if why is not None:
            return why
        tx = self._transaction()
        if isinstance(event, EnrolmentFound):
            tx.enrolment_id = event.enrolment_id
            tx.enrolment = EnrolmentEvidence(
                True, event.expired, event.revoked, event.watchlisted
            )
        else:
            tx.enrolment = EnrolmentEvidence(found=False)

        referral = check_enrolment(tx.enrolment, self._policy.mode)
        if referral is not None:
            self._apply_decision(referral, out)
        else:
            self._next_step(out)
        return None

    def _on_sample(
        self, event: SampleCaptured | SampleScored | CaptureFailed, out: list[Command]
    ) -> str | None:
        why = self._stale(event.transaction_id)
        if why is not None:
            return why
        tx = self._transaction()
        capture = tx.captures[event.modality]
        capturing = self._state is _CAPTURE_STATE[event.modality] and not capture.done
        if isinstance(event, SampleCaptured):
            if not capturing or capture.pending:
                return f"{event.modality} sample not requested"
            capture.pending = True
            tx.last_capture_s = self._now()
        elif not (capturing or capture.pending):
            return f"no {event.modality} capture or template in progress"
        elif isinstance(event, SampleScored):
            if not 0.0 <= event.score <= 1.0:
                # NaN fails this test too; the capture stays pending, so the
                # step times out and the transaction ends without a decision.
                return f"{event.modality} score {event.score!r} is outside [0, 1]"
            if not capture.pending:
                tx.last_capture_s = self._now()
            capture.pending = False
            capture.score = event.score
        else:
            capture.fail_attempt()

        # A pending template leaves the traveller free for the next capture;
        # only the step that waits on this modality moves on.
        if capturing or self._state is LaneState.SCORING:
            self._next_step(out)
        return None

    def _on_watchlist(self, event: WatchlistResult, out: list[Command]) -> str | None:
        why = self._stale(event.transaction_id)
        if why is None and self._state is not LaneState.WATCHLIST:
            why = "watchlist result outside the watchlist step"
        if why is not None:
            return why
        tx = self._transaction()
        tx.watchlist = WatchlistEvidence(event.hit, event.searched, event.gallery)
        assert tx.enrolment is not None  # the lookup step set it
        decision = decide(
            self._policy,
            document=tx.document,
            enrolment=tx.enrolment,
            watchlist=tx.watchlist,
            evidence={
                m: ModalityEvidence(c.score, c.attempts, c.failed)
                for m, c in tx.captures.items()
            },
            thresholds=self._thresholds,
        )
        self._apply_decision(decision, out)
        return None

    def _on_walk_away(self, event: WalkAway, out: list[Command]) -> str | None:
        why = self._stale(event.transaction_id)
        if why is not None:
            return why
        self._abort("walk_away", out)
        self._rest(out)
        return None

    def _on_manual_open(self, out: list[Command]) -> str | None:
        waiting = (LaneState.IDLE, LaneState.DOCUMENT, LaneState.OUT_OF_SERVICE)
        if self._state not in waiting:
            return "a manual opening needs a lane with no transaction or fire release"
        logger.info("lane %s: manual opening for one passage", self._lane_id)
        self._manual_passages = 0
        out.append(Unlock("manual"))
        self._enter(LaneState.MANUAL_PASSAGE, out, self._settings.passage_s, "proceed")
        return None

    def _next_step(self, out: list[Command]) -> None:
        """Start the next capture, wait for templates, or search the
        watchlist, in that order."""
        tx = self._transaction()
        for modality in MODALITIES:
            capture = tx.captures[modality]
            waiting = capture.done or capture.pending
            if not waiting and (capture.attempts == 0 or capture.retry):
                self._start_capture(modality, out)
                return
        if any(c.pending for c in tx.captures.values()):
            if self._state is not LaneState.SCORING:
                self._enter(
                    LaneState.SCORING, out, self._settings.scoring_s, "please_wait"
                )
            return
        probes = frozenset(m for m, c in tx.captures.items() if c.score is not None)
        out.append(RunWatchlistSearch(tx.transaction_id, probes))
        self._enter(LaneState.WATCHLIST, out, self._settings.watchlist_s, "please_wait")

    def _start_capture(self, modality: Modality, out: list[Command]) -> None:
        tx = self._transaction()
        capture = tx.captures[modality]
        capture.attempts += 1
        capture.retry = False
        timeout_s = self._settings.capture_s[modality]
        out.append(
            StartCapture(tx.transaction_id, modality, capture.attempts, timeout_s)
        )
        message = _FIRST_MESSAGE if capture.attempts == 1 else _RETRY_MESSAGE
        self._enter(
            _CAPTURE_STATE[modality],
            out,
            timeout_s + self._settings.capture_grace_s,
            message[modality],
        )

    def _apply_decision(self, decision: Decision, out: list[Command]) -> None:
        tx = self._transaction()
        tx.decision = decision
        tx.decided_s = self._now()
        logger.debug(
            "lane %s: transaction %s decided %s (%s)",
            self._lane_id,
            tx.transaction_id,
            decision.outcome.value,
            decision.reason,
        )
        if decision.outcome is Outcome.ACCEPTED:
            out.append(Unlock("accepted"))
            self._enter(LaneState.PASSAGE, out, self._settings.passage_s, "proceed")
            return
        if decision.outcome is Outcome.ALERT:
            self._silent_alarm(out)
        self._finish(decision.outcome, decision.reason, out)
        self._enter(LaneState.REFERRAL, out, self._settings.referral_s, "see_officer")

    def _reject_breach(self, reason: str, out: list[Command]) -> None:
        """End the transaction before its decision with a rejection.

        Used when the barrier was forced or someone crossed to the exit side
        during a step: work for the transaction stops, the barrier stays
        locked, and the display refers the traveller to an officer.
        """
        out.append(CancelTransaction(self._transaction().transaction_id))
        self._apply_decision(Decision(Outcome.REJECTED, reason, self._policy.mode), out)

    # Inputs

    def _free(self) -> bool:
        return self._fire or self._key

    def _on_beam(self, event: BeamChanged, out: list[Command]) -> None:
        seen = self._monitor.beam(
            event.beam, event.broken, self._now(), free=self._free()
        )
        self._raise_alarms(seen, out)
        if self._state is LaneState.IDLE and event.beam == "inside" and event.broken:
            self._enter(
                LaneState.DOCUMENT, out, self._settings.document_s, "place_document"
            )
        elif seen.left_by_entrance and self._state is LaneState.DOCUMENT:
            self._rest(out)
        elif seen.left_by_entrance and self._state in TRANSACTION_STEPS:
            self._abort("walk_away", out)
            self._rest(out)
        elif seen.exit_broken and self._state in TRANSACTION_STEPS:
            # Someone is past the locked barrier before the decision.
            self._alarm(
                Alarm.EXIT_BREACH, "exit beam broken while the barrier was locked", out
            )
            self._reject_breach("exit_crossing", out)
        elif (
            seen.exit_broken
            and self._state is LaneState.DOCUMENT
            and self._monitor.broken["inside"]
            and self._monitor.barrier_is_closed
            and not self._free()
        ):
            # Someone inside and someone at the exit, before any document.
            self._alarm(
                Alarm.EXIT_BREACH, "exit beam broken before a document was read", out
            )
        elif self._state in _PASSAGES:
            self._on_passage(seen, out)

    def _on_barrier(self, event: BarrierChanged, out: list[Command]) -> None:
        in_passage = self._state in _PASSAGES
        seen = self._monitor.barrier(
            event.closed, self._now(), authorised=in_passage, free=self._free()
        )
        self._raise_alarms(seen, out)
        if seen.barrier_opened and self._state in TRANSACTION_STEPS:
            # No accept, key switch or fire release is in force during a
            # step, so this opening is forced: end the transaction unlocked.
            self._reject_breach("forced_passage", out)
        elif in_passage:
            if seen.barrier_opened:
                # The barrier is moving: release a held unlock so that it
                # relocks behind this one traveller.
                out.append(Lock())
            self._on_passage(seen, out)

    def _on_passage(self, seen: Observation, out: list[Command]) -> None:
        """Count people through the exit; end the passage once one is
        through, the exit beam is clear and the barrier closed again."""
        if self._state is LaneState.MANUAL_PASSAGE:
            # An officer lets people through: count them, raise no alarm.
            self._manual_passages += int(seen.exit_broken)
            passages = self._manual_passages
        else:
            tx = self._transaction()
            if seen.exit_broken:
                tx.passages += 1
                if tx.passages == 2:
                    self._alarm(Alarm.TAILGATING, "second person through the exit", out)
            passages = tx.passages
        monitor = self._monitor
        if passages and not monitor.broken["exit"] and monitor.barrier_is_closed:
            self._end_passage(out)

    def _end_passage(self, out: list[Command]) -> None:
        out.append(Lock())
        if self._state is LaneState.MANUAL_PASSAGE:
            logger.info(
                "lane %s: manual opening ended after %d passage(s)",
                self._lane_id,
                self._manual_passages,
            )
            self._rest(out)
            return
        tx = self._transaction()
        if tx.passages:
            assert tx.decision is not None  # PASSAGE follows an accept
            self._finish(Outcome.ACCEPTED, tx.decision.reason, out)
        else:
            self._finish(Outcome.ABORTED, "no_passage", out)
        self._rest(out)

    def _on_fire(self, active: bool, out: list[Command]) -> None:
        if active == self._fire:
            return
        self._fire = active
        if active:
            logger.info("lane %s: fire release active, barrier free", self._lane_id)
            self._abort("fire_release", out, Outcome.EMERGENCY)
            out.append(Unlock("fire_release"))
            # Recorded after the abort, outside any transaction, so the runner
            # writes an audit row for this unlock even when no transaction ran.
            self._alarm(Alarm.FIRE_RELEASE, "fire release active, barrier free", out)
            self._rest(out)
            return
        logger.info("lane %s: fire release cleared, barrier locked", self._lane_id)
        out.append(Lock())
        self._alarm(
            Alarm.FIRE_RELEASE_CLEARED,
            "fire release cleared, barrier locked",
            out,
            signal=False,
        )
        self._rest(out)

    def _on_tamper(self, active: bool, out: list[Command]) -> None:
        if active and not self._tamper:
            self._alarm(Alarm.TAMPER, "enclosure opened", out)
        self._tamper = active
        self._on_service_change("tamper", out)

    def _on_service_change(self, reason: str, out: list[Command]) -> None:
        """Take the lane out of service, or back, after a condition changed.

        A transaction before its decision is aborted; an accepted passage
        finishes first, and a referral keeps its message until it times out.
        """
        if self._state in TRANSACTION_STEPS and self._out_of_service():
            self._abort(reason, out)
            self._rest(out)
        elif self._state in (
            LaneState.IDLE,
            LaneState.DOCUMENT,
            LaneState.OUT_OF_SERVICE,
        ):
            self._rest(out)

    # Deadlines, alarms, endings

    def _apply_deadlines(self, out: list[Command]) -> None:
        now_s = self._now()
        if self._buzzer_until_s is not None and now_s >= self._buzzer_until_s:
            self._buzzer_until_s = None
            out.append(SetBuzzer(False))
        if self._silent_until_s is not None and now_s >= self._silent_until_s:
            self._silent_until_s = None
            out.append(SetSilentAlarm(False))
        for alarm, detail in self._monitor.overdue(now_s, free=self._free()):
            self._alarm(alarm, detail, out)

        if self._deadline_s is None or now_s < self._deadline_s:
            return
        state = self._state
        logger.info("lane %s: %s step timed out", self._lane_id, state.value)
        if state in _PASSAGES:
            self._end_passage(out)
            return
        if state in TRANSACTION_STEPS:
            self._abort(f"{state.value}_timeout", out)
        self._rest(out)

    def _raise_alarms(self, seen: Observation, out: list[Command]) -> None:
        for alarm, detail in seen.alarms:
            self._alarm(alarm, detail, out)

    def _alarm(
        self, alarm: Alarm, detail: str, out: list[Command], *, signal: bool = True
    ) -> None:
        """Record an alarm. With ``signal``, also sound the buzzer (audible
        alarms) or raise the silent alarm (the others)."""
        tx_id = None if self._tx is None else self._tx.transaction_id
        record = AlarmRecord(alarm, self._now(), tx_id, detail)
        if self._tx is not None:
            self._tx.alarms.append(record)
        logger.warning("lane %s: alarm %s: %s", self._lane_id, alarm.value, detail)
        out.append(RecordAlarm(record))
        if not signal:
            return
        if alarm in _AUDIBLE:
            if self._buzzer_until_s is None:
                out.append(SetBuzzer(True))
            self._buzzer_until_s = self._now() + self._settings.buzzer_s
        else:
            self._silent_alarm(out)

    def _silent_alarm(self, out: list[Command]) -> None:
        if self._silent_until_s is None:
            out.append(SetSilentAlarm(True))
        self._silent_until_s = self._now() + self._settings.silent_alarm_s

    def _abort(
        self, reason: str, out: list[Command], outcome: Outcome = Outcome.ABORTED
    ) -> None:
        """End the transaction in progress, if any, without a decision."""
        if self._tx is None:
            return
        if self._state is LaneState.PASSAGE:
            out.append(Lock())
        else:
            out.append(CancelTransaction(self._tx.transaction_id))
        self._finish(outcome, reason, out)

    def _finish(self, outcome: Outcome, reason: str, out: list[Command]) -> None:
        tx = self._transaction()
        record = TransactionRecord(
            transaction_id=tx.transaction_id,
            outcome=outcome,
            reason=reason,
            started_s=tx.started_s,
            ended_s=self._now(),
            issuing_state=tx.issuing_state,
            document_number=tx.document_number,
            enrolment_id=tx.enrolment_id,
            decision=tx.decision,
            attempts={m: c.attempts for m, c in tx.captures.items()},
            alarms=tuple(tx.alarms),
            last_capture_s=tx.last_capture_s,
            decided_s=tx.decided_s,
            passages=tx.passages,
        )
        logger.info(
            "lane %s: transaction %s ended %s (%s)",
            self._lane_id,
            tx.transaction_id,
            outcome.value,
            reason,
        )
        out.append(RecordTransaction(record))
        self._ended.append(tx.transaction_id)
        self._tx = None

    # State entry

    def _out_of_service(self) -> bool:
        return bool(self._lost) or self._key or self._tamper

    def _rest(self, out: list[Command]) -> None:
        """Enter the state the lane waits in when no transaction runs."""
        if self._fire:
            self._enter(LaneState.EMERGENCY, out, None, "emergency_exit")
        elif self._lost:
            self._enter(LaneState.OUT_OF_SERVICE, out, None, "out_of_service")
        elif self._key or self._tamper:
            self._enter(LaneState.OUT_OF_SERVICE, out, None, "lane_closed")
        else:
            self._enter(LaneState.IDLE, out, None, "place_document")

    def _enter(
        self,
        state: LaneState,
        out: list[Command],
        timeout_s: float | None,
        message: Message,
    ) -> None:
        self._state = state
        self._deadline_s = None if timeout_s is None else self._now() + timeout_s
        green = state in (*_PASSAGES, LaneState.EMERGENCY)
        lamps = SetLamps(green=green, red=not green)
        if lamps != self._lamps:
            self._lamps = lamps
            out.append(lamps)
        out.append(ShowMessage(message))

    def _now(self) -> float:
        assert self._now_s is not None  # set by start()
        return self._now_s

    def _transaction(self) -> _Transaction:
        assert self._tx is not None  # callers run only within a transaction
        return self._tx
