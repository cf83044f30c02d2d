"""Error-rate arithmetic on small score sets worked out by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_gate.evaluation import (
    calibrate_threshold,
    equal_error_rate,
    error_rates,
    fmr_upper_bound,
    fnmr_at_fmr,
    fnmr_at_zero_fmr,
    rule_of_three,
    write_det_png,
)


def test_error_rates_count_ties_as_accepts() -> None:
    rates = error_rates([0.5, 0.9], [0.5, 0.1, 0.2, 0.3], threshold=0.5)
    assert rates.fmr == 0.25
    assert rates.fnmr == 0.0


def test_eer_separated_scores_is_zero() -> None:
    assert equal_error_rate([0.8, 0.9], [0.1, 0.2]) == 0.0


def test_eer_overlap_half() -> None:
    # One genuine below one impostor out of two each: EER is 0.5 at best.
    eer = equal_error_rate([0.1, 0.9], [0.2, 0.8])
    assert eer == pytest.approx(0.5)


def test_fnmr_at_zero_fmr_rejects_top_impostor() -> None:
    rates = fnmr_at_zero_fmr([0.3, 0.6, 0.9], [0.1, 0.5])
    assert rates.fmr == 0.0
    assert rates.fnmr == pytest.approx(1 / 3)


def test_fnmr_at_fmr_allows_target_rate() -> None:
    impostor = np.linspace(0.0, 0.5, 100)
    rates = fnmr_at_fmr([0.45, 0.9], impostor, target_fmr=0.1)
    assert rates.fmr <= 0.1
    assert rates.fnmr == 0.0


def test_calibrate_threshold_small_set_sits_above_max() -> None:
    threshold = calibrate_threshold([0.1, 0.2, 0.4], target_fmr=1e-3)
    assert threshold > 0.4
    assert error_rates([1.0], [0.1, 0.2, 0.4], threshold).fmr == 0.0


def test_calibrate_threshold_large_set_hits_target() -> None:
    impostor = np.random.default_rng(1).uniform(0.0, 1.0, 10_000)
    threshold = calibrate_threshold(impostor, target_fmr=1e-2)
    assert error_rates([1.0], impostor, threshold).fmr <= 1e-2
    assert error_rates([1.0], impostor, threshold - 1e-3).fmr > 0.0


@pytest.mark.parametrize("target", [0.0, 1.0, -0.1], ids=["zero", "one", "negative"])
def test_calibrate_threshold_rejects_bad_target(target: float) -> None:
    with pytest.raises(ValueError, match="target_fmr"):
        calibrate_threshold([0.1], target)


def test_rates_reject_empty_scores() -> None:
    with pytest.raises(ValueError, match="genuine scores are empty"):
        equal_error_rate([], [0.1])


def test_rule_of_three_bound() -> None:
    assert rule_of_three(280) == pytest.approx(3 / 280)


def test_det_png_written(tmp_path: Path) -> None:
    out = write_det_png([0.6, 0.8, 0.9], [0.1, 0.2, 0.7], tmp_path / "det.png")
    data = out.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert b"IEND" in data[-12:]


def test_upper_bound_zero_errors_near_rule_of_three() -> None:
    # Clopper-Pearson with no errors: 1 - 0.05 ** (1 / n), close to 3 / n.
    bound = fmr_upper_bound(0, 5760)
    assert bound == pytest.approx(1 - 0.05 ** (1 / 5760), rel=1e-6)


def test_upper_bound_grows_with_errors() -> None:
    assert fmr_upper_bound(1, 5760) > fmr_upper_bound(0, 5760)
    assert fmr_upper_bound(1, 5760) == pytest.approx(8.23e-4, rel=1e-2)


def test_calibrate_with_confidence_is_stricter() -> None:
    impostor = np.random.default_rng(2).uniform(0.0, 1.0, 5760)
    plain = calibrate_threshold(impostor, 1e-3)
    bounded = calibrate_threshold(impostor, 1e-3, confidence=0.95)
    # Plain allows floor(5.76) = 5 accepted pairs, the bound allows 1.
    assert error_rates([1.0], impostor, plain).fmr == pytest.approx(5 / 5760)
    assert error_rates([1.0], impostor, bounded).fmr == pytest.approx(1 / 5760)
