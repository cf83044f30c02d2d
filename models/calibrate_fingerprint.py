"""Calibrate the shipped fingerprint threshold and write it to the manifest.

Steps:

1. Extract a template from every image of each calibration set (default the
   two named in ``$EDGE_GATE_DATA/fingerprints/README.md``: FVC2002_DB2_B and
   FVC2004_DB2_B), with the shipped extractor and matcher.
2. Compare all pairs within each set: same finger is genuine, different
   fingers impostor. Failures to enrol score 0.
3. Take the threshold at which the false-match rate over the impostors of
   both sets together stays at or below the target (1e-3) with 95%
   one-sided confidence (``edge_gate.evaluation``), and an FMR
   curve (score, fraction of calibration impostors at or above it).
4. Re-read models/manifest.json and replace only ``thresholds.fingerprint``.

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

    genuine: list[float] = []
    impostor: list[float] = []
    for name in SETS:
        gen, imp = set_scores(args.data / "fingerprints" / name, args.cache)
        print(
            f"{name}: {len(gen)} genuine, {len(imp)} impostor pairs, "
            f"EER {equal_error_rate(gen, imp):.4f}"
        )
        genuine += gen
        impostor += imp
    imp = np.asarray(impostor)
    threshold = calibrate_threshold(imp, TARGET_FMR, genuine, confidence=CONFIDENCE)
    rates = error_rates(genuine, impostor, threshold)
    print(
        f"threshold {threshold:.6f}: calibration FMR {rates.fmr:.5f}, "
        f"FNMR {rates.fnmr:.4f}"
    )
    entry = {
        "threshold": threshold,
        "target_fmr": TARGET_FMR,
        "confidence": CONFIDENCE,
        "calibration_set": "+".join(SETS),
        "fmr_curve": fmr_curve(imp),
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
