"""Calibrate the shipped fingerprint threshold and write it to the manifest.

Steps:

1. Extract a template from every image of each calibration set (default the
   two named in ``$EDGE_GATE_DATA/fingerprints/README.md``: FVC2002_DB2_B and
   FVC2004_DB2_B), with the shipped extractor and matcher.
2. Compare all pairs within each set: same finger is genuine, different
   fingers impostor. Failures to enrol score 0.
3. Take two thresholds and ship the higher:

   - pooled: the false-match rate over the impostors of both sets together
     stays at or below the target (1e-3) with 95% one-sided confidence
     (``edge_gate.evaluation``);
   - per sensor: for each set, an exponential model of its upper impostor
     tail (the top 5% of its impostor scores) extrapolated to the target
     divided by ``SENSOR_MARGIN``, and the highest of these over the sets.

   The pooled bound alone holds only for the sensors it saw. Leave one
   sensor out (step 4): calibrated on FVC2002_DB2_B, the bound let 5 of
   FVC2004_DB2_B's 2,880 impostors through (0.17%). The tail model at the
   target itself let 5 and 3 through (one figure per direction), and with
   the margin of 10 it let 1 and 0 through.
4. Print the leave-one-sensor-out figures: calibrate on one set with each
   rule, count false matches and false non-matches on the other.
5. Write the FMR curve (score, fraction of calibration impostors at or
   above it). Re-read models/manifest.json and replace only
   ``thresholds.fingerprint``.

Usage: ``python models/calibrate_fingerprint.py [--data DIR] [--cache DIR]``;
``--cache`` keeps template bytes between runs (never commit them).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
from pathlib import Path

import numpy as np

from edge_gate.errors import BiometricError
from edge_gate.evaluation import calibrate_threshold, equal_error_rate, error_rates
from edge_gate.fingerprint import modality

SETS = ("FVC2002_DB2_B", "FVC2004_DB2_B")
TARGET_FMR = 1e-3
MANIFEST = Path(__file__).resolve().parent / "manifest.json"
CURVE_STEP = 0.0005
# One-sided confidence that the calibration FMR meets the target.
CONFIDENCE = 0.95
# Upper fraction of each set's impostor scores the tail model is fitted to.
TAIL_FRACTION = 0.05
# The per-sensor tail is extrapolated to TARGET_FMR / SENSOR_MARGIN, because
# an unseen sensor's impostors may run higher than any calibration set's.
# Chosen by leave-one-sensor-out on the calibration sets (step 4).
SENSOR_MARGIN = 10.0


def set_scores(folder: Path, cache: Path | None) -> tuple[list[float], list[float]]:
    """Return (genuine, impostor) scores of all pairs in one set (steps 1-2)."""
    templates: dict[Path, bytes | None] = {}
    for _, path in modality.list_samples(folder):
        cached = cache / f"{folder.name}_{path.stem}.tpl" if cache else None
        if cached is not None and cached.exists():
            data = cached.read_bytes()
            templates[path] = data or None
            continue
        try:
            templates[path] = modality.extract(modality.load_image(path))
        except BiometricError as err:
            print(f"failure to enrol {path.name}: {err}", file=sys.stderr)
            templates[path] = None
        if cached is not None:
            cached.write_bytes(templates[path] or b"")
    samples = modality.list_samples(folder)
    genuine: list[float] = []
    impostor: list[float] = []
    for (id_a, a), (id_b, b) in itertools.combinations(samples, 2):
        ta, tb = templates[a], templates[b]
        score = modality.compare(ta, tb) if ta and tb else 0.0
        (genuine if id_a == id_b else impostor).append(score)
    return genuine, impostor


def tail_threshold(impostor: np.ndarray, fmr: float) -> float:
    """Return the score where an exponential tail model reaches ``fmr``.

    Above the ``1 - TAIL_FRACTION`` quantile ``s0`` the fraction of impostors
    at or above ``s`` is modelled as ``p0 * exp(-(s - s0) / beta)``, with
    ``p0`` the observed fraction above ``s0`` and ``beta`` the mean excess of
    those scores over ``s0`` (the maximum-likelihood fit).
    """
    scores = np.sort(np.asarray(impostor, dtype=np.float64))
    start = float(np.quantile(scores, 1.0 - TAIL_FRACTION))
    excess = scores[scores > start] - start
    if not excess.size or fmr >= TAIL_FRACTION:
        return start
    p0 = excess.size / scores.size
    beta = float(excess.mean())
    return min(1.0, start + beta * float(np.log(p0 / fmr)))


def sensor_threshold(impostor: np.ndarray) -> float:
    """Per-sensor rule of step 3 for one set's impostors."""
    return tail_threshold(impostor, TARGET_FMR / SENSOR_MARGIN)


def pooled_threshold(impostor: np.ndarray) -> float:
    """Pooled rule of step 3."""
    return calibrate_threshold(impostor, TARGET_FMR, confidence=CONFIDENCE)


def leave_one_sensor_out(scores: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    """Print step 4: each rule calibrated on one set, tested on each other."""
    rules = {
        "pooled rule": pooled_threshold,
        "tail at the target": lambda imp: tail_threshold(imp, TARGET_FMR),
        f"tail at target/{SENSOR_MARGIN:g}": sensor_threshold,
    }
    for label, rule in rules.items():
        for cal, test in itertools.permutations(scores, 2):
            threshold = rule(scores[cal][1])
            genuine, impostor = scores[test]
            false_match = int((impostor >= threshold).sum())
            false_non_match = int((genuine < threshold).sum())
            print(
                f"{label}: calibrated on {cal} ({threshold:.5f}), on {test}: "
                f"{false_match}/{impostor.size} false matches, "
                f"{false_non_match}/{genuine.size} false non-matches"
            )


def fmr_curve(impostor: np.ndarray) -> list[list[float]]:
    """Return [[score, fmr], ...] on a fixed score grid up to the last impostor."""
    curve: list[list[float]] = []
    for score in np.arange(0.0, 1.0 + 1e-9, CURVE_STEP):
        fmr = float((impostor >= score).mean())
        curve.append([round(float(score), 4), fmr])
        if fmr == 0.0:
            break
    return curve


def main() -> int:
    """Run steps 1 to 4."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(os.environ.get("EDGE_GATE_DATA", "../shared/data"))
    parser.add_argument("--data", type=Path, default=default)
    parser.add_argument("--cache", type=Path)
    parser.add_argument("--dry-run", action="store_true", help="print, do not write")
    args = parser.parse_args()
    if args.cache:
        args.cache.mkdir(parents=True, exist_ok=True)

    scores: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name in SETS:
        gen, imp = set_scores(args.data / "fingerprints" / name, args.cache)
        scores[name] = (np.asarray(gen), np.asarray(imp))
        print(
            f"{name}: {len(gen)} genuine, {len(imp)} impostor pairs, "
            f"EER {equal_error_rate(gen, imp):.4f}, per-sensor threshold "
            f"{sensor_threshold(scores[name][1]):.5f}"
        )
    leave_one_sensor_out(scores)
    genuine = np.concatenate([gen for gen, _ in scores.values()])
    impostor = np.concatenate([imp for _, imp in scores.values()])
    pooled = pooled_threshold(impostor)
    threshold = max(pooled, *(sensor_threshold(i) for _, i in scores.values()))
    rates = error_rates(genuine, impostor, threshold)
    print(
        f"pooled threshold {pooled:.6f}; shipped threshold {threshold:.6f}: "
        f"calibration FMR {rates.fmr:.5f}, FNMR {rates.fnmr:.4f}"
    )
    entry = {
        "threshold": threshold,
        "target_fmr": TARGET_FMR,
        "confidence": CONFIDENCE,
        "sensor_margin": SENSOR_MARGIN,
        "calibration_set": "+".join(SETS),
        "fmr_curve": fmr_curve(impostor),
    }
    if args.dry_run:
        return 0
    manifest = json.loads(MANIFEST.read_text(encoding="utf-8"))
    manifest.setdefault("thresholds", {})["fingerprint"] = entry
    MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    print(f"wrote thresholds.fingerprint to {MANIFEST}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
