"""Turn the lane core's records into audit log rows.

The audit row keeps what an auditor needs to retrace a decision: outcome,
reason, every score and threshold (with the policy mode and fused values),
capture attempts and step durations. It contains no images and no templates.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Mapping

from edge_gate.gate import LaneState, TransactionRecord
from edge_gate.store import AuditRecord
from edge_gate.store._audit import MAX_TEXT_CHARS

# The reason of a refused manual opening follows this prefix in its audit row.
_REFUSAL_PREFIX = "manual opening refused in state {state}: "
# Maximum length of a manual opening's reason, so that the refusal row's prefix
# with the longest state name and the whole reason fit in the audit field.
MAX_MANUAL_REASON_CHARS = MAX_TEXT_CHARS - max(
    len(_REFUSAL_PREFIX.format(state=state.value)) for state in LaneState
)


def audit_record(
    record: TransactionRecord,
    *,
    lane_id: str,
    now_utc: datetime.datetime,
    extra_durations_ms: Mapping[str, float] | None = None,
    watchlist_scores: Mapping[str, float] | None = None,
    watchlist_thresholds: Mapping[str, float] | None = None,
) -> AuditRecord:
    """Build the audit row of one finished transaction.

    Args:
        record: the lane core's record.
        lane_id: the configured lane id.
        now_utc: wall-clock time when the record is written; the start time
            is derived from it with the lane clock's durations.
        extra_durations_ms: per-step durations measured by the workers
            (capture and match times per modality).
        watchlist_scores: the best 1:N watchlist score per modality searched,
            stored as ``watchlist_<modality>``.
        watchlist_thresholds: the threshold each watchlist score was
            compared with, stored under the same names.

    Returns:
        The row for :meth:`edge_gate.store.AuditLog.append`.
    """
    scores: dict[str, float] = {}
    thresholds: dict[str, float] = {}
    decision = record.decision
    if decision is not None:
        # Unscored modalities (None) and infinite thresholds are left out.
        for name, score in [*decision.scores.items(), ("fused", decision.fused_score)]:
            if score is not None and math.isfinite(score):
                scores[name] = float(score)
        fused = [("fused", decision.fused_threshold)]
        for name, threshold in [*decision.thresholds.items(), *fused]:
            if threshold is not None and math.isfinite(threshold):
                thresholds[name] = float(threshold)

    for name, score in (watchlist_scores or {}).items():
        scores[f"watchlist_{name}"] = float(score)
    for name, threshold in (watchlist_thresholds or {}).items():
        thresholds[f"watchlist_{name}"] = float(threshold)

    durations = {"transaction": (record.ended_s - record.started_s) * 1000.0}
    if record.decided_s is not None:
        durations["to_decision"] = (record.decided_s - record.started_s) * 1000.0
    durations.update(extra_durations_ms or {})

    reason = record.reason
    if decision is not None and decision.policy_mode:
        reason = f"{reason} (policy {decision.policy_mode})"
    return AuditRecord(
        time_utc=now_utc,
        kind="transaction",
        lane_id=lane_id,
        transaction_id=record.transaction_id,
        issuing_state=record.issuing_state,
        document_number=record.document_number,
        outcome=record.outcome.value,
        reason=reason[:500],
        alarms=tuple(a.alarm.value for a in record.alarms),
        scores=scores,
        thresholds=thresholds,
        durations_ms=durations,
        latency_ms=record.latency_ms,
    )


def manual_open_record(
    reason: str, *, lane_id: str, now_utc: datetime.datetime
) -> AuditRecord:
    """Build the audit row of a field engineer's manual opening.

    Raises:
        ControlError: the reason is empty or not valid Unicode text.
    """
    from edge_gate.errors import ControlError

    text = " ".join(reason.split())
    if not text:
        raise ControlError(
            "a manual opening needs --reason TEXT (why the barrier opens)"
        )
    record = AuditRecord(
        time_utc=now_utc,
        kind="manual_open",
        lane_id=lane_id,
        transaction_id="",
        outcome="opened",
        reason=text,
    )
    try:
        record.check()
    except ValueError as err:
        raise ControlError(
            f"the reason cannot be recorded ({err}); give the reason as plain text"
        ) from None
    return record


def manual_refusal_reason(state: LaneState, reason: str) -> str:
    """Return the audit reason of a manual opening refused in ``state``.

    A reason of at most ``MAX_MANUAL_REASON_CHARS`` characters is kept whole.
    """
    return _REFUSAL_PREFIX.format(state=state.value) + reason
