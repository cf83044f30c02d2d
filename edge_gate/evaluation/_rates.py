"""False-match and false-non-match rates from genuine and impostor scores."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ErrorRates:
    """Rates at one threshold.

    Attributes:
        threshold: accept when score >= threshold.
        fmr: impostor scores accepted / impostor pairs.
        fnmr: genuine scores rejected / genuine pairs.
        genuine_pairs: number of genuine comparisons.
        impostor_pairs: number of impostor comparisons.
    """

    threshold: float
    fmr: float
    fnmr: float
    genuine_pairs: int
    impostor_pairs: int


def _as_scores(values: npt.ArrayLike, name: str) -> FloatArray:
    scores = np.asarray(values, dtype=np.float64).ravel()
    if scores.size == 0:
        raise ValueError(f"{name} scores are empty: at least one pair is needed")
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"{name} scores contain NaN or infinity")
    return scores


def error_rates(
    genuine: npt.ArrayLike, impostor: npt.ArrayLike, threshold: float
) -> ErrorRates:
    """Return FMR and FNMR when accepting scores at or above ``threshold``."""
    gen = _as_scores(genuine, "genuine")
    imp = _as_scores(impostor, "impostor")
    return ErrorRates(
        threshold=float(threshold),
        fmr=float(np.count_nonzero(imp >= threshold) / imp.size),
        fnmr=float(np.count_nonzero(gen < threshold) / gen.size),
        genuine_pairs=int(gen.size),
        impostor_pairs=int(imp.size),
    )


def _sweep(
    gen: FloatArray, imp: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Return (thresholds, fmr, fnmr) at every distinct score, ascending."""
    thresholds = np.unique(np.concatenate([gen, imp, [np.inf]]))
    gen_sorted = np.sort(gen)
    imp_sorted = np.sort(imp)
    # Scores below t are rejected: searchsorted(side="left") counts them.
    fnmr = np.searchsorted(gen_sorted, thresholds, side="left") / gen.size
    fmr = 1.0 - np.searchsorted(imp_sorted, thresholds, side="left") / imp.size
    return thresholds, fmr.astype(np.float64), fnmr.astype(np.float64)


def equal_error_rate(genuine: npt.ArrayLike, impostor: npt.ArrayLike) -> float:
    """Return the equal error rate, with no threshold chosen in advance.

    Steps:
        1. Sweep the threshold over every observed score.
        2. Take the threshold where FMR and FNMR are closest.
        3. Report their mean there.
    """
    gen = _as_scores(genuine, "genuine")
    imp = _as_scores(impostor, "impostor")
    _thresholds, fmr, fnmr = _sweep(gen, imp)
    closest = int(np.argmin(np.abs(fmr - fnmr)))
    return float((fmr[closest] + fnmr[closest]) / 2.0)


def fnmr_at_fmr(
    genuine: npt.ArrayLike, impostor: npt.ArrayLike, target_fmr: float
) -> ErrorRates:
    """Return the rates at the lowest threshold whose FMR is at most the target."""
    gen = _as_scores(genuine, "genuine")
    imp = _as_scores(impostor, "impostor")
    thresholds, fmr, _fnmr = _sweep(gen, imp)
    index = int(np.argmax(fmr <= target_fmr))
    return error_rates(gen, imp, float(thresholds[index]))


def fnmr_at_zero_fmr(genuine: npt.ArrayLike, impostor: npt.ArrayLike) -> ErrorRates:
    """Return the rates at the lowest threshold with no false match."""
    return fnmr_at_fmr(genuine, impostor, 0.0)


def calibrate_threshold(
    impostor: npt.ArrayLike, target_fmr: float, genuine: npt.ArrayLike | None = None
) -> float:
    """Return the threshold for a target false-match rate.

    Steps:
        1. Sort the calibration impostor scores.
        2. Take the lowest threshold that accepts at most
           ``floor(target_fmr * n)`` of them.
        3. When the calibration set has fewer than ``1 / target_fmr``
           impostor pairs, that is the threshold just above the highest
           impostor score: the rate itself cannot be observed, so the
           threshold sits at the zero-false-match point of the evidence.

    Args:
        impostor: impostor scores of the calibration set.
        target_fmr: false-match rate per comparison, in (0, 1).
        genuine: unused except for validation; kept so that callers can pass
            the full calibration set.

    Returns:
        A score threshold in [0, 1].

    Raises:
        ValueError: empty scores or a target outside (0, 1).
    """
    if not 0.0 < target_fmr < 1.0:
        raise ValueError(f"target_fmr={target_fmr} must lie in (0, 1)")
    imp = np.sort(_as_scores(impostor, "impostor"))
    if genuine is not None:
        _as_scores(genuine, "genuine")
    allowed = int(np.floor(target_fmr * imp.size))
    # The (allowed + 1)-th highest impostor score must be rejected.
    boundary = imp[imp.size - allowed - 1]
    threshold = float(np.nextafter(boundary, np.inf))
    return min(threshold, 1.0)


def rule_of_three(pairs: int) -> float:
    """Return the 95% upper bound on an error rate observed as zero in ``pairs``."""
    if pairs <= 0:
        raise ValueError(f"pairs={pairs} must be positive")
    return 3.0 / pairs
