"""Commands that the lane state machine returns for its runner to carry out.

Every command is a frozen dataclass. The runner executes them in the order
given, and reports results back as events carrying the same
``transaction_id``. The lane never unlocks the barrier except through
:class:`Unlock`, which it issues only after an accept or while the fire
release is active.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Literal

from edge_gate.gate._events import Modality
from edge_gate.gate._policy import Decision, Outcome

Message = Literal[
    "place_document",
    "please_wait",
    "present_finger",
    "retry_finger",
    "look_at_camera",
    "retry_iris",
    "proceed",
    "see_officer",
    "out_of_service",
    "lane_closed",
    "emergency_exit",
]


class Alarm(enum.Enum):
    """Alarms and lane events recorded as they happen, and beside the
    outcome of the transaction they happen in.

    ``fire_release`` and ``fire_release_cleared`` record the barrier being
    freed and locked again by the fire-release input (a cut wire on a
    normally closed input reads as a fire release), so every software
    unlock leaves an audit row even with no transaction.
    """

    TAILGATING = "tailgating"
    FORCED_PASSAGE = "forced_passage"
    BARRIER_HELD_OPEN = "barrier_held_open"
    WRONG_WAY = "wrong_way"
    EXIT_BREACH = "exit_breach"
    STUCK_SENSOR = "stuck_sensor"
    TAMPER = "tamper"
    FIRE_RELEASE = "fire_release"
    FIRE_RELEASE_CLEARED = "fire_release_cleared"


@dataclass(frozen=True)
class ShowMessage:
    """Show a fixed message on the traveller display.

    Rejections and alerts both show ``see_officer``, so nothing on the
    traveller's side shows the reason.
    """

    message: Message


@dataclass(frozen=True)
class LookUpEnrolment:
    """Look the document up in the template store; the runner reports
    ``EnrolmentFound`` or ``EnrolmentNotFound``."""

    transaction_id: str
    issuing_state: str
    document_number: str


@dataclass(frozen=True)
class StartCapture:
    """Capture one sample; the runner reports ``SampleCaptured`` then
    ``SampleScored``, or ``CaptureFailed``.

    Attributes:
        transaction_id: the transaction.
        modality: which sensor.
        attempt: the attempt number, from 1.
        timeout_s: how long the sensor may wait for the traveller.
    """

    transaction_id: str
    modality: Modality
    attempt: int
    timeout_s: float


@dataclass(frozen=True)
class RunWatchlistSearch:
    """Search the captured probes 1:N against the watchlist gallery;
    the runner reports ``WatchlistResult``.

    Attributes:
        transaction_id: the transaction.
        modalities: modalities with a usable probe to search.
    """

    transaction_id: str
    modalities: frozenset[Modality]


@dataclass(frozen=True)
class CancelTransaction:
    """Stop any capture or search still running for the transaction, and
    discard its probes; late results for it are rejected."""

    transaction_id: str


@dataclass(frozen=True)
class Unlock:
    """Unlock the exit barrier.

    ``accepted`` and ``manual``: for one passage (pulse or hold, as
    configured). ``fire_release``: hold it unlocked until :class:`Lock`.
    """

    reason: Literal["accepted", "manual", "fire_release"]


@dataclass(frozen=True)
class Lock:
    """Lock the exit barrier (drive the unlock output inactive)."""


@dataclass(frozen=True)
class SetLamps:
    """Set the green and red lamps."""

    green: bool
    red: bool


@dataclass(frozen=True)
class SetBuzzer:
    """Switch the local buzzer on or off."""

    on: bool


@dataclass(frozen=True)
class SetSilentAlarm:
    """Switch the silent alarm output to the officers' post on or off."""

    on: bool


@dataclass(frozen=True)
class AlarmRecord:
    """One alarm: what, when (lane clock, seconds) and in which transaction."""

    alarm: Alarm
    at_s: float
    transaction_id: str | None
    detail: str = ""

    def to_json_dict(self) -> dict[str, Any]:
        """Return the alarm as JSON-ready values."""
        return {
            "alarm": self.alarm.value,
            "at_s": self.at_s,
            "transaction_id": self.transaction_id,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class RecordAlarm:
    """Record an alarm as it happens (journal and, outside a transaction,
    the audit log); alarms inside a transaction also appear in its
    :class:`TransactionRecord`."""

    record: AlarmRecord


@dataclass(frozen=True)
class TransactionRecord:
    """The full record of one transaction, for the audit log.

    Times are on the lane's clock (the ``now_s`` passed to ``Lane.handle``);
    the runner adds wall-clock UTC.

    Attributes:
        transaction_id: the lane's id for the transaction.
        outcome: how it ended.
        reason: why (the decision's reason, or the abort cause).
        started_s: when the document was read.
        ended_s: when the outcome was fixed.
        issuing_state: the document's issuing state (personal data: audit
            log only, never the journal).
        document_number: the document number (personal data, as above).
        enrolment_id: the enrolment found, if any.
        decision: the policy decision, when one was made.
        attempts: capture attempts per modality.
        alarms: alarms raised during the transaction.
        last_capture_s: when the last sample was captured, if any.
        decided_s: when the decision (the barrier command) was made.
        passages: people counted through the exit beam after an accept.
    """

    transaction_id: str
    outcome: Outcome
    reason: str
    started_s: float
    ended_s: float
    issuing_state: str
    document_number: str
    enrolment_id: str | None = None
    decision: Decision | None = None
    attempts: dict[str, int] = field(default_factory=dict)
    alarms: tuple[AlarmRecord, ...] = ()
    last_capture_s: float | None = None
    decided_s: float | None = None
    passages: int = 0

    @property
    def latency_ms(self) -> float | None:
        """Milliseconds from the last capture to the barrier command."""
        if self.last_capture_s is None or self.decided_s is None:
            return None
        return (self.decided_s - self.last_capture_s) * 1000.0

    def to_json_dict(self) -> dict[str, Any]:
        """Return the record as JSON-ready values."""
        return {
            "transaction_id": self.transaction_id,
            "outcome": self.outcome.value,
            "reason": self.reason,
            "started_s": self.started_s,
            "ended_s": self.ended_s,
            "issuing_state": self.issuing_state,
            "document_number": self.document_number,
            "enrolment_id": self.enrolment_id,
            "decision": None if self.decision is None else self.decision.to_json_dict(),
            "attempts": dict(self.attempts),
            "alarms": [a.to_json_dict() for a in self.alarms],
            "last_capture_s": self.last_capture_s,
            "decided_s": self.decided_s,
            "latency_ms": self.latency_ms,
            "passages": self.passages,
        }


@dataclass(frozen=True)
class RecordTransaction:
    """Write the finished transaction to the audit log."""

    record: TransactionRecord


Command = (
    ShowMessage
    | LookUpEnrolment
    | StartCapture
    | RunWatchlistSearch
    | CancelTransaction
    | Unlock
    | Lock
    | SetLamps
    | SetBuzzer
    | SetSilentAlarm
    | RecordAlarm
    | RecordTransaction
)
