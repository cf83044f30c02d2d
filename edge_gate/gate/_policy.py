"""The decision policy: who may cross, and why not.

The policy is pure. Its inputs are the evidence gathered by the lane
(document, enrolment, watchlist search, one 1:1 score per modality) and the
score thresholds. It returns a :class:`Decision` that records the outcome,
its reason, every score and every threshold it compared.

Invariants:

- An invalid, implausible or expired document, or a missing, expired or
  revoked enrolment, is rejected before any score is looked at.
- A 1:1 watchlist flag or a 1:N watchlist hit is an alert, whatever the
  scores.
- Nothing is accepted unless the watchlist search ran, and it covered every
  modality for which the watchlist holds templates.
- A fused score maps each modality's score to the false-match rate (FMR) it
  had on the calibration impostors, so that both modalities share one scale.
"""

from __future__ import annotations

import enum
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from edge_gate.config import PolicyConfig
from edge_gate.errors import ModelError
from edge_gate.gate._events import MODALITIES, Modality

_T = TypeVar("_T")


class Outcome(enum.Enum):
    """Outcome of a transaction."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    ALERT = "alert"
    ABORTED = "aborted"
    EMERGENCY = "emergency"


class ThresholdLike(Protocol):
    """A modality's calibrated threshold (``edge_gate._models.Threshold``)."""

    @property
    def threshold(self) -> float: ...

    @property
    def target_fmr(self) -> float: ...

    @property
    def fmr_curve(self) -> Sequence[tuple[float, float]]: ...


@dataclass(frozen=True)
class DocumentEvidence:
    """Findings of the document step."""

    valid: bool
    expired: bool
    dates_plausible: bool = True


@dataclass(frozen=True)
class EnrolmentEvidence:
    """Findings of the enrolment lookup (``found=False``: not enrolled)."""

    found: bool
    expired: bool = False
    revoked: bool = False
    watchlisted: bool = False


@dataclass(frozen=True)
class ModalityEvidence:
    """One modality's capture attempts and 1:1 score.

    Attributes:
        score: best 1:1 score in [0, 1], or None when no template was made.
        attempts: capture attempts made.
        capture_failed: every allowed attempt failed, so no sample exists.
    """

    score: float | None = None
    attempts: int = 0
    capture_failed: bool = False


@dataclass(frozen=True)
class WatchlistEvidence:
    """The 1:N watchlist search: its hit, and which galleries it covered."""

    hit: bool
    searched: frozenset[Modality]
    gallery: frozenset[Modality]


@dataclass(frozen=True)
class Decision:
    """A decision with everything an auditor needs to retrace it.

    Attributes:
        outcome: accepted, rejected or alert.
        reason: a stable identifier of the rule that decided.
        policy_mode: the policy mode in force.
        scores: the 1:1 score of each modality (None when not scored).
        thresholds: the score threshold applied to each modality.
        fmrs: each score mapped to its calibration false-match rate (fused
            mode only).
        fused_score: ``-log10`` of the product of the FMRs (fused mode only).
        fused_threshold: ``-log10`` of the fused target FMR (fused mode only).
    """

    outcome: Outcome
    reason: str
    policy_mode: str
    scores: Mapping[str, float | None] = field(default_factory=dict)
    thresholds: Mapping[str, float] = field(default_factory=dict)
    fmrs: Mapping[str, float] = field(default_factory=dict)
    fused_score: float | None = None
    fused_threshold: float | None = None

    def to_json_dict(self) -> dict[str, Any]:
        """Return the decision as JSON-ready values (infinity as None)."""
        return {
            "outcome": self.outcome.value,
            "reason": self.reason,
            "policy_mode": self.policy_mode,
            "scores": dict(self.scores),
            "thresholds": {k: _finite(v) for k, v in self.thresholds.items()},
            "fmrs": dict(self.fmrs),
            "fused_score": self.fused_score,
            "fused_threshold": self.fused_threshold,
        }


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def check_document(document: DocumentEvidence, mode: str) -> Decision | None:
    """Return a rejection when the document may not be used, else None."""
    if not document.valid:
        return Decision(Outcome.REJECTED, "document_invalid", mode)
    if not document.dates_plausible:
        return Decision(Outcome.REJECTED, "document_date_impossible", mode)
    if document.expired:
        return Decision(Outcome.REJECTED, "document_expired", mode)
    return None


def check_enrolment(enrolment: EnrolmentEvidence, mode: str) -> Decision | None:
    """Return an alert or rejection for the enrolment, or None to go on.

    The watchlist flag comes first, so that a listed person whose enrolment
    is also revoked still raises the alert.
    """
    if not enrolment.found:
        return Decision(Outcome.REJECTED, "not_enrolled", mode)
    if enrolment.watchlisted:
        return Decision(Outcome.ALERT, "watchlist_flag", mode)
    if enrolment.revoked:
        return Decision(Outcome.REJECTED, "enrolment_revoked", mode)
    if enrolment.expired:
        return Decision(Outcome.REJECTED, "enrolment_expired", mode)
    return None


def check_watchlist(watchlist: WatchlistEvidence | None, mode: str) -> Decision | None:
    """Return an alert or rejection from the 1:N search, or None to go on."""
    if watchlist is None:
        return Decision(Outcome.REJECTED, "watchlist_not_run", mode)
    if watchlist.hit:
        return Decision(Outcome.ALERT, "watchlist_match", mode)
    if watchlist.gallery - watchlist.searched:
        # A gallery that was not searched could hold this traveller.
        return Decision(Outcome.REJECTED, "watchlist_incomplete", mode)
    return None


def decide(
    policy: PolicyConfig,
    *,
    document: DocumentEvidence,
    enrolment: EnrolmentEvidence,
    watchlist: WatchlistEvidence | None,
    evidence: Mapping[Modality, ModalityEvidence],
    thresholds: Mapping[Modality, ThresholdLike],
) -> Decision:
    """Decide a transaction from all its evidence.

    Steps:

    1. Reject an unusable document.
    2. Alert on the enrolment's watchlist flag; reject a missing, revoked or
       expired enrolment.
    3. Alert on a 1:N watchlist hit; reject when the search did not run or
       skipped a gallery that contains templates.
    4. Apply the biometric rule of ``policy.mode``.

    Args:
        policy: the decision policy.
        document: the document step's findings.
        enrolment: the enrolment lookup's findings.
        watchlist: the 1:N search result, or None when it did not run.
        evidence: each modality's attempts and score (a missing key means
            the modality was never captured).
        thresholds: each modality's calibrated threshold.

    Returns:
        The decision, with its reason, scores and thresholds.

    Raises:
        ModelError: ``thresholds`` lacks a modality.
    """
    mode = policy.mode
    for modality in MODALITIES:
        if modality not in thresholds:
            raise ModelError(
                f"no score threshold for {modality!r}: the model manifest must "
                "list thresholds for fingerprint and iris"
            )

    early = (
        check_document(document, mode)
        or check_enrolment(enrolment, mode)
        or check_watchlist(watchlist, mode)
    )
    if early is not None:
        return early

    scores = {m: evidence.get(m, ModalityEvidence()).score for m in MODALITIES}
    if mode == "fused":
        return _decide_fused(policy, scores, thresholds)
    if mode == "fallback":
        return _decide_fallback(policy, scores, evidence, thresholds)
    shipped = {m: thresholds[m].threshold for m in MODALITIES}
    return _decide_plain(mode, scores, shipped)


def _passes(score: float | None, threshold: float) -> bool:
    return score is not None and score >= threshold


def _miss_reason(modality: str, score: float | None) -> str:
    if score is None:
        return f"{modality}_not_captured"
    return f"{modality}_no_match"


def _named(values: Mapping[Modality, _T]) -> dict[str, _T]:
    return {str(key): value for key, value in values.items()}


def _decide_plain(
    rule: str,
    scores: Mapping[Modality, float | None],
    limits: Mapping[Modality, float],
    mode: str | None = None,
) -> Decision:
    """Apply the rule ``both`` (every modality passes) or ``either`` (one
    passes); ``mode`` names the policy mode in the record when it differs."""
    passed = [m for m in MODALITIES if _passes(scores[m], limits[m])]
    if rule == "either":
        if passed:
            outcome, reason = Outcome.ACCEPTED, f"{passed[0]}_match"
        else:
            outcome, reason = Outcome.REJECTED, "no_modality_matched"
    else:
        failed = [m for m in MODALITIES if m not in passed]
        if failed:
            first = failed[0]
            outcome, reason = Outcome.REJECTED, _miss_reason(first, scores[first])
        else:
            outcome, reason = Outcome.ACCEPTED, "all_modalities_matched"
    return Decision(outcome, reason, mode or rule, _named(scores), _named(limits))


def _decide_fallback(
    policy: PolicyConfig,
    scores: Mapping[Modality, float | None],
    evidence: Mapping[Modality, ModalityEvidence],
    thresholds: Mapping[Modality, ThresholdLike],
) -> Decision:
    """Require both, unless one modality could not be captured at all: then
    the other must pass a stricter threshold (``policy.fallback_fmr``)."""
    unavailable = [
        m for m in MODALITIES if evidence.get(m, ModalityEvidence()).capture_failed
    ]
    limits = {m: thresholds[m].threshold for m in MODALITIES}
    if not unavailable:
        return _decide_plain("both", scores, limits, mode="fallback")
    if len(unavailable) == len(MODALITIES):
        return Decision(
            Outcome.REJECTED,
            "no_modality_captured",
            "fallback",
            _named(scores),
            _named(limits),
        )
    (remaining,) = [m for m in MODALITIES if m not in unavailable]
    strict = max(
        limits[remaining],
        threshold_for_fmr(thresholds[remaining], policy.fallback_fmr),
    )
    limits[remaining] = strict
    if _passes(scores[remaining], strict):
        outcome, reason = Outcome.ACCEPTED, f"{remaining}_fallback_match"
    else:
        outcome, reason = Outcome.REJECTED, f"{remaining}_below_fallback_threshold"
    return Decision(outcome, reason, "fallback", _named(scores), _named(limits))


def _decide_fused(
    policy: PolicyConfig,
    scores: Mapping[Modality, float | None],
    thresholds: Mapping[Modality, ThresholdLike],
) -> Decision:
    """Accept when the product of the per-modality FMRs is at most
    ``policy.fused_fmr`` (the modalities are taken as independent)."""
    fmrs = {
        m: 1.0 if scores[m] is None else score_to_fmr(thresholds[m], scores[m] or 0.0)
        for m in MODALITIES
    }
    product = math.prod(fmrs.values())
    fused_score = -math.log10(product)
    fused_threshold = -math.log10(policy.fused_fmr)
    if product <= policy.fused_fmr:
        outcome, reason = Outcome.ACCEPTED, "fused_match"
    else:
        outcome, reason = Outcome.REJECTED, "fused_below_threshold"
    return Decision(
        outcome,
        reason,
        "fused",
        _named(scores),
        {m: thresholds[m].threshold for m in MODALITIES},
        _named(fmrs),
        fused_score,
        fused_threshold,
    )


def _monotone_curve(curve: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Sort the curve by score and make its FMR non-increasing.

    A zero FMR only means no calibration impostor scored that high, so it
    becomes the smallest non-zero FMR measured: the curve never claims more
    than its data shows.
    """
    points = sorted((float(s), float(f)) for s, f in curve)
    positive = [f for _s, f in points if f > 0.0]
    floor = min(positive) if positive else 0.0
    result: list[tuple[float, float]] = []
    running = 1.0
    for score, fmr in points:
        running = min(running, max(fmr, floor))
        result.append((score, running))
    return result


def score_to_fmr(threshold: ThresholdLike, score: float) -> float:
    """Map a score to its false-match rate on the calibration impostors.

    Between two curve points the FMR is interpolated on a log scale. Below
    the first point the FMR is 1; above the last point it stays at the last
    point's FMR. Without a curve, a score at or above the threshold maps to
    the threshold's target FMR and any other score to 1.

    Args:
        threshold: the modality's calibrated threshold and FMR curve.
        score: a 1:1 score in [0, 1].

    Returns:
        The false-match rate, in (0, 1].
    """
    if math.isnan(score):
        # A NaN compares false with every curve point, so below it would
        # take the last and smallest FMR, as the strongest match does.
        return 1.0
    points = _monotone_curve(threshold.fmr_curve)
    if not points or points[-1][1] <= 0.0:
        return threshold.target_fmr if score >= threshold.threshold else 1.0
    if score < points[0][0]:
        return 1.0
    for (s0, f0), (s1, f1) in itertools.pairwise(points):
        if s0 <= score < s1:
            fraction = (score - s0) / (s1 - s0)
            return float(10 ** _lerp(math.log10(f0), math.log10(f1), fraction))
    return points[-1][1]


def threshold_for_fmr(threshold: ThresholdLike, target_fmr: float) -> float:
    """Return the lowest score whose calibration FMR is at most ``target_fmr``.

    Returns:
        The score threshold, or infinity when the curve never reaches the
        target (then no score passes).
    """
    points = _monotone_curve(threshold.fmr_curve)
    if not points or points[-1][1] <= 0.0:
        return threshold.threshold if threshold.target_fmr <= target_fmr else math.inf
    if points[0][1] <= target_fmr:
        return points[0][0]
    for (s0, f0), (s1, f1) in itertools.pairwise(points):
        if f1 <= target_fmr < f0:
            fraction = (math.log10(target_fmr) - math.log10(f0)) / (
                math.log10(f1) - math.log10(f0)
            )
            return _lerp(s0, s1, fraction)
    return math.inf


def _lerp(a: float, b: float, fraction: float) -> float:
    return a + (b - a) * fraction
