"""Decision policy: every rule, table-driven, with the record it leaves."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest

from edge_gate._models import Threshold
from edge_gate.config import PolicyConfig
from edge_gate.errors import ModelError
from edge_gate.gate import (
    DocumentEvidence,
    EnrolmentEvidence,
    Modality,
    ModalityEvidence,
    Outcome,
    WatchlistEvidence,
    decide,
    score_to_fmr,
    threshold_for_fmr,
)

FINGERPRINT = Threshold(
    threshold=0.40,
    target_fmr=1e-3,
    calibration_set="test",
    fmr_curve=((0.0, 1.0), (0.2, 1e-1), (0.4, 1e-3), (0.6, 1e-5)),
)
IRIS = Threshold(
    threshold=0.70,
    target_fmr=1e-4,
    calibration_set="test",
    fmr_curve=((0.0, 1.0), (0.5, 1e-2), (0.7, 1e-4), (0.9, 1e-6)),
)
THRESHOLDS: dict[Modality, Threshold] = {"fingerprint": FINGERPRINT, "iris": IRIS}
BOTH: frozenset[Modality] = frozenset({"fingerprint", "iris"})
GOOD_DOC = DocumentEvidence(valid=True, expired=False)
ENROLLED = EnrolmentEvidence(found=True)
CLEAR = WatchlistEvidence(hit=False, searched=BOTH, gallery=BOTH)
NO_SAMPLE = ModalityEvidence(score=None, attempts=3, capture_failed=True)


def scored(
    fingerprint: float | None, iris: float | None
) -> dict[Modality, ModalityEvidence]:
    return {
        "fingerprint": NO_SAMPLE
        if fingerprint is None
        else ModalityEvidence(fingerprint, 1),
        "iris": NO_SAMPLE if iris is None else ModalityEvidence(iris, 1),
    }


@dataclass(frozen=True)
class Case:
    mode: str
    outcome: Outcome
    reason: str
    fingerprint: float | None = 0.9
    iris: float | None = 0.9
    document: DocumentEvidence = GOOD_DOC
    enrolment: EnrolmentEvidence = ENROLLED
    watchlist: WatchlistEvidence | None = CLEAR


CASES = [
    pytest.param(
        Case("both", Outcome.ACCEPTED, "all_modalities_matched"), id="both-pass"
    ),
    pytest.param(
        Case("both", Outcome.ACCEPTED, "all_modalities_matched", 0.40, 0.70),
        id="both-at-threshold-pass",
    ),
    pytest.param(
        Case("both", Outcome.REJECTED, "fingerprint_no_match", 0.39, 0.9),
        id="both-fingerprint-low",
    ),
    pytest.param(
        Case("both", Outcome.REJECTED, "iris_no_match", 0.9, 0.69), id="both-iris-low"
    ),
    pytest.param(
        Case("both", Outcome.REJECTED, "iris_not_captured", 0.9, None),
        id="both-iris-missing",
    ),
    pytest.param(
        Case("either", Outcome.ACCEPTED, "iris_match", 0.1, 0.9), id="either-iris-only"
    ),
    pytest.param(
        Case("either", Outcome.ACCEPTED, "fingerprint_match", 0.9, None),
        id="either-fingerprint-only",
    ),
    pytest.param(
        Case("either", Outcome.REJECTED, "no_modality_matched", 0.1, 0.1),
        id="either-none",
    ),
    pytest.param(
        Case("fused", Outcome.ACCEPTED, "fused_match", 0.4, 0.5), id="fused-sum"
    ),
    pytest.param(
        Case("fused", Outcome.REJECTED, "fused_below_threshold", 0.2, 0.5),
        id="fused-weak",
    ),
    pytest.param(
        Case("fused", Outcome.REJECTED, "fused_below_threshold", 0.45, None),
        id="fused-one-missing",
    ),
    pytest.param(
        Case("fallback", Outcome.ACCEPTED, "all_modalities_matched"),
        id="fallback-both-captured",
    ),
    pytest.param(
        Case("fallback", Outcome.REJECTED, "iris_no_match", 0.9, 0.6),
        id="fallback-no-match-is-not-fallback",
    ),
    pytest.param(
        Case("fallback", Outcome.ACCEPTED, "iris_fallback_match", None, 0.85),
        id="fallback-iris-strict-pass",
    ),
    pytest.param(
        Case("fallback", Outcome.REJECTED, "iris_below_fallback_threshold", None, 0.75),
        id="fallback-iris-strict-fail",
    ),
    pytest.param(
        Case("fallback", Outcome.ACCEPTED, "fingerprint_fallback_match", 0.6, None),
        id="fallback-fingerprint-strict-pass",
    ),
    pytest.param(
        Case("fallback", Outcome.REJECTED, "no_modality_captured", None, None),
        id="fallback-nothing-captured",
    ),
    pytest.param(
        Case(
            "both",
            Outcome.REJECTED,
            "document_invalid",
            document=DocumentEvidence(valid=False, expired=False),
        ),
        id="document-invalid",
    ),
    pytest.param(
        Case(
            "both",
            Outcome.REJECTED,
            "document_date_impossible",
            document=DocumentEvidence(True, False, dates_plausible=False),
        ),
        id="document-impossible-date",
    ),
    pytest.param(
        Case(
            "both",
            Outcome.REJECTED,
            "document_expired",
            document=DocumentEvidence(valid=True, expired=True),
        ),
        id="document-expired",
    ),
    pytest.param(
        Case(
            "both",
            Outcome.REJECTED,
            "not_enrolled",
            enrolment=EnrolmentEvidence(found=False),
        ),
        id="not-enrolled",
    ),
    pytest.param(
        Case(
            "both",
            Outcome.ALERT,
            "watchlist_flag",
            enrolment=EnrolmentEvidence(True, revoked=True, watchlisted=True),
        ),
        id="flag-beats-revoked",
    ),
    pytest.param(
        Case(
            "both",
            Outcome.REJECTED,
            "enrolment_revoked",
            enrolment=EnrolmentEvidence(True, revoked=True),
        ),
        id="enrolment-revoked",
    ),
    pytest.param(
        Case(
            "both",
            Outcome.REJECTED,
            "enrolment_expired",
            enrolment=EnrolmentEvidence(True, expired=True),
        ),
        id="enrolment-expired",
    ),
    pytest.param(
        Case("both", Outcome.REJECTED, "watchlist_not_run", watchlist=None),
        id="watchlist-not-run",
    ),
    pytest.param(
        Case(
            "either",
            Outcome.ALERT,
            "watchlist_match",
            watchlist=WatchlistEvidence(True, BOTH, BOTH),
        ),
        id="watchlist-hit-beats-match",
    ),
    pytest.param(
        Case(
            "either",
            Outcome.REJECTED,
            "watchlist_incomplete",
            0.9,
            None,
            watchlist=WatchlistEvidence(False, frozenset({"fingerprint"}), BOTH),
        ),
        id="iris-gallery-not-searched",
    ),
    pytest.param(
        Case(
            "either",
            Outcome.ACCEPTED,
            "fingerprint_match",
            0.9,
            None,
            watchlist=WatchlistEvidence(
                False, frozenset({"fingerprint"}), frozenset({"fingerprint"})
            ),
        ),
        id="no-iris-gallery-fingerprint-enough",
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_decide_table(case: Case) -> None:
    policy = PolicyConfig(mode=case.mode)  # type: ignore[arg-type]
    decision = decide(
        policy,
        document=case.document,
        enrolment=case.enrolment,
        watchlist=case.watchlist,
        evidence=scored(case.fingerprint, case.iris),
        thresholds=THRESHOLDS,
    )
    assert decision.outcome is case.outcome
    assert decision.reason == case.reason
    assert decision.policy_mode == case.mode


def test_decision_records_scores_and_thresholds() -> None:
    decision = decide(
        PolicyConfig(),
        document=GOOD_DOC,
        enrolment=ENROLLED,
        watchlist=CLEAR,
        evidence=scored(0.55, 0.8),
        thresholds=THRESHOLDS,
    )
    assert decision.scores == {"fingerprint": 0.55, "iris": 0.8}
    assert decision.thresholds == {"fingerprint": 0.40, "iris": 0.70}
    as_json = decision.to_json_dict()
    assert as_json["outcome"] == "accepted"
    assert as_json["thresholds"] == {"fingerprint": 0.40, "iris": 0.70}


def test_fallback_records_stricter_threshold() -> None:
    decision = decide(
        PolicyConfig(mode="fallback", fallback_fmr=1e-5),
        document=GOOD_DOC,
        enrolment=ENROLLED,
        watchlist=CLEAR,
        evidence=scored(None, 0.85),
        thresholds=THRESHOLDS,
    )
    # The iris curve reaches 1e-5 halfway (log scale) between 0.7 and 0.9.
    assert decision.thresholds["iris"] == pytest.approx(0.8)
    assert decision.thresholds["fingerprint"] == 0.40


def test_fused_record_has_fmrs_and_scale() -> None:
    decision = decide(
        PolicyConfig(mode="fused", fused_fmr=1e-4),
        document=GOOD_DOC,
        enrolment=ENROLLED,
        watchlist=CLEAR,
        evidence=scored(0.4, 0.5),
        thresholds=THRESHOLDS,
    )
    assert decision.fmrs == {
        "fingerprint": pytest.approx(1e-3),
        "iris": pytest.approx(1e-2),
    }
    assert decision.fused_score == pytest.approx(5.0)
    assert decision.fused_threshold == pytest.approx(4.0)
    assert decision.to_json_dict()["fused_score"] == pytest.approx(5.0)


def test_missing_threshold_raises() -> None:
    with pytest.raises(ModelError, match="iris"):
        decide(
            PolicyConfig(),
            document=GOOD_DOC,
            enrolment=ENROLLED,
            watchlist=CLEAR,
            evidence=scored(0.9, 0.9),
            thresholds={"fingerprint": FINGERPRINT},
        )


def test_unreachable_fallback_rejects_and_serialises() -> None:
    shallow = Threshold(0.7, 1e-4, "test", ((0.0, 1.0), (0.7, 1e-4)))
    decision = decide(
        PolicyConfig(mode="fallback", fallback_fmr=1e-6),
        document=GOOD_DOC,
        enrolment=ENROLLED,
        watchlist=CLEAR,
        evidence=scored(None, 1.0),
        thresholds={"fingerprint": FINGERPRINT, "iris": shallow},
    )
    assert decision.outcome is Outcome.REJECTED
    assert decision.thresholds["iris"] == math.inf
    assert decision.to_json_dict()["thresholds"]["iris"] is None


@pytest.mark.parametrize(
    ("score", "fmr"),
    [
        pytest.param(-0.1, 1.0, id="below-curve"),
        pytest.param(0.0, 1.0, id="first-point"),
        pytest.param(0.4, 1e-3, id="on-point"),
        pytest.param(0.5, 1e-4, id="log-midpoint"),
        pytest.param(0.6, 1e-5, id="last-point"),
        pytest.param(1.0, 1e-5, id="above-curve-clamped"),
    ],
)
def test_score_to_fmr(score: float, fmr: float) -> None:
    assert score_to_fmr(FINGERPRINT, score) == pytest.approx(fmr)


def test_score_to_fmr_zero_tail_uses_floor() -> None:
    curve = Threshold(0.5, 1e-3, "t", ((0.0, 1.0), (0.5, 1e-3), (0.9, 0.0)))
    assert score_to_fmr(curve, 0.95) == pytest.approx(1e-3)


def test_score_to_fmr_noisy_curve_is_monotone() -> None:
    curve = Threshold(0.5, 1e-3, "t", ((0.5, 1e-3), (0.0, 1.0), (0.6, 2e-3)))
    assert score_to_fmr(curve, 0.6) == pytest.approx(1e-3)


@pytest.mark.parametrize(
    ("curve", "score", "fmr"),
    [
        pytest.param((), 0.5, 1e-3, id="empty-pass"),
        pytest.param((), 0.4, 1.0, id="empty-fail"),
        pytest.param(((0.0, 0.0),), 0.5, 1e-3, id="all-zero-pass"),
    ],
)
def test_score_to_fmr_without_curve(
    curve: tuple[tuple[float, float], ...], score: float, fmr: float
) -> None:
    threshold = Threshold(0.5, 1e-3, "t", curve)
    assert score_to_fmr(threshold, score) == pytest.approx(fmr)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        pytest.param(1.0, 0.0, id="first-point"),
        pytest.param(1e-3, 0.4, id="on-point"),
        pytest.param(1e-4, 0.5, id="log-midpoint"),
        pytest.param(1e-6, math.inf, id="unreachable"),
    ],
)
def test_threshold_for_fmr(target: float, expected: float) -> None:
    assert threshold_for_fmr(FINGERPRINT, target) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        pytest.param(1e-3, 0.5, id="target-met"),
        pytest.param(1e-4, math.inf, id="target-stricter"),
    ],
)
def test_threshold_for_fmr_without_curve(target: float, expected: float) -> None:
    assert threshold_for_fmr(Threshold(0.5, 1e-3, "t", ()), target) == expected


def test_iris_curve_helper_sanity() -> None:
    assert score_to_fmr(IRIS, 0.7) == pytest.approx(1e-4)


def test_score_to_fmr_nan_is_no_match() -> None:
    assert score_to_fmr(FINGERPRINT, math.nan) == 1.0


@pytest.mark.parametrize("other", [0.0, 0.9])
def test_fused_nan_score_is_not_accepted(other: float) -> None:
    # A NaN compares false with every curve point; before the fix it took the
    # curve's last FMR (1e-5) and, with any iris score, was accepted.
    decision = decide(
        PolicyConfig(mode="fused", fused_fmr=1e-4),
        document=GOOD_DOC,
        enrolment=ENROLLED,
        watchlist=CLEAR,
        evidence=scored(math.nan, other),
        thresholds=THRESHOLDS,
    )
    assert decision.fmrs["fingerprint"] == 1.0
    if other == 0.0:
        assert decision.outcome is Outcome.REJECTED
