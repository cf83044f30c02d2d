"""The shipped threshold rule (models/calibrate_fingerprint.py) and its effect.

The synthetic tests check the tail model against distributions whose
quantiles are known in closed form. The data test runs the shipped extractor,
matcher and threshold on real prints of the second calibration set. The
report set (FVC2002_DB1_B) stays out of tests.
"""

from __future__ import annotations

import importlib.util
import itertools
import math
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from edge_gate._models import find_models_dir, load_threshold
from edge_gate.fingerprint import (
    FingerprintExtractor,
    FingerprintTemplate,
    compare_fingerprints,
    load_fingerprint_image,
)

SCRIPT = Path(__file__).resolve().parents[3] / "models" / "calibrate_fingerprint.py"


@pytest.fixture(scope="module")
def calibration() -> ModuleType:
    spec = importlib.util.spec_from_file_location("calibrate_fingerprint", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tail_model_recovers_an_exponential_quantile(calibration: ModuleType) -> None:
    # Scores 0.01 + Exp(scale 0.004): P(S >= s) = exp(-(s - 0.01) / 0.004).
    rng = np.random.default_rng(11)
    scores = 0.01 + rng.exponential(0.004, 200_000)
    for fmr in (1e-3, 1e-4, 1e-5):
        exact = 0.01 - 0.004 * math.log(fmr)
        assert calibration.tail_threshold(scores, fmr) == pytest.approx(exact, rel=0.02)


def test_tail_threshold_rises_as_the_target_falls(calibration: ModuleType) -> None:
    rng = np.random.default_rng(12)
    scores = rng.beta(2, 80, 2880)
    targets = (1e-2, 1e-3, 1e-4, 1e-5)
    thresholds = [calibration.tail_threshold(scores, fmr) for fmr in targets]
    assert all(a < b for a, b in itertools.pairwise(thresholds))


def test_tail_threshold_never_exceeds_one(calibration: ModuleType) -> None:
    scores = np.concatenate([np.zeros(100), np.linspace(0.5, 1.0, 20)])
    assert calibration.tail_threshold(scores, 1e-12) == 1.0


def test_sensor_rule_applies_margin(calibration: ModuleType) -> None:
    rng = np.random.default_rng(13)
    scores = rng.beta(2, 80, 2880)
    fmr = calibration.TARGET_FMR / calibration.SENSOR_MARGIN
    assert calibration.sensor_threshold(scores) == calibration.tail_threshold(
        scores, fmr
    )
    assert calibration.sensor_threshold(scores) > calibration.tail_threshold(
        scores, calibration.TARGET_FMR
    )


def test_manifest_threshold_meets_the_target_on_its_curve() -> None:
    shipped = load_threshold(find_models_dir(), "fingerprint")
    # The curve lists the fraction of calibration impostors at or above each
    # score: at the shipped threshold at most 1 of 5,760 may remain.
    below = [fmr for score, fmr in shipped.fmr_curve if score <= shipped.threshold]
    assert below[-1] <= 1e-3
    assert 0.0 < shipped.threshold < 1.0


@pytest.mark.data
def test_real_pairs_split_at_threshold(data_dir: Path) -> None:
    # Fingers 101-105, impressions 1-3 of the second calibration set: 15
    # genuine and 90 impostor pairs. 103_1 against 104_1 is among the highest
    # impostor scores of the set.
    folder = data_dir / "fingerprints" / "FVC2004_DB2_B"
    extractor = FingerprintExtractor()
    threshold = load_threshold(find_models_dir(), "fingerprint").threshold
    templates: dict[tuple[int, int], FingerprintTemplate] = {
        (finger, impression): extractor.extract(
            load_fingerprint_image(folder / f"{finger}_{impression}.tif")
        )
        for finger in range(101, 106)
        for impression in (1, 2, 3)
    }
    genuine: list[float] = []
    impostor: list[float] = []
    for (ka, a), (kb, b) in itertools.combinations(templates.items(), 2):
        score = compare_fingerprints(a, b)
        assert 0.0 <= score <= 1.0
        (genuine if ka[0] == kb[0] else impostor).append(score)
    assert len(genuine) == 15
    assert len(impostor) == 90
    assert min(genuine) >= threshold
    assert max(impostor) < threshold


def test_score_stays_in_bounds_on_degenerate_sets() -> None:
    rng = np.random.default_rng(14)
    dense = np.zeros((128, 5), dtype=np.float32)
    dense[:, 0] = rng.uniform(100, 140, 128)
    dense[:, 1] = rng.uniform(100, 140, 128)
    dense[:, 2] = rng.uniform(0, 2 * math.pi, 128)
    stacked = np.tile(dense[:8], (16, 1))
    line = np.zeros((40, 5), dtype=np.float32)
    line[:, 0] = np.linspace(50, 400, 40)
    line[:, 1] = 200
    cases = [dense, stacked, line]
    for a, b in itertools.product(cases, repeat=2):
        score = compare_fingerprints(
            FingerprintTemplate(a, 600, 600), FingerprintTemplate(b, 600, 600)
        )
        assert 0.0 <= score <= 1.0
