"""False-match and false-non-match rates from genuine and impostor scores."""

from __future__ import annotations

import math
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


def fmr_upper_bound(false_matches: int, pairs: int, confidence: float = 0.95) -> float:
    """Return the one-sided Clopper-Pearson upper bound of a false-match rate.

    Args:
        false_matches: impostor pairs accepted.
        pairs: impostor pairs compared.
        confidence: one-sided confidence level, in (0, 1).

    Returns:
        The rate p with P(X <= false_matches | pairs, p) = 1 - confidence.

    Raises:
        ValueError: counts out of range or confidence outside (0, 1).
    """
    if pairs <= 0 or not 0 <= false_matches <= pairs:
        raise ValueError(f"need 0 <= false_matches={false_matches} <= pairs={pairs}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence={confidence} must lie in (0, 1)")
    if false_matches == pairs:
        return 1.0
    # Bisection on p: the binomial CDF falls monotonically as p grows.
    low, high = 0.0, 1.0
    for _ in range(100):
        middle = (low + high) / 2.0
        if _binomial_cdf(false_matches, pairs, middle) > 1.0 - confidence:
            low = middle
        else:
            high = middle
    return high


def _binomial_cdf(k: int, n: int, p: float) -> float:
    if p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 0.0 if k < n else 1.0
    log_p, log_q = math.log(p), math.log1p(-p)
    total = 0.0
    for i in range(k + 1):
        log_term = (
            math.lgamma(n + 1)
            - math.lgamma(i + 1)
            - math.lgamma(n - i + 1)
            + i * log_p
            + (n - i) * log_q
        )
        total += math.exp(log_term)
    return min(total, 1.0)


def calibrate_threshold(
    impostor: npt.ArrayLike,
    target_fmr: float,
    genuine: npt.ArrayLike | None = None,
    confidence: float | None = None,
) -> float:
    """Return the threshold for a target false-match rate.

    Steps:
        1. Sort the calibration impostor scores.
        2. Choose how many of them may be accepted: ``floor(target_fmr * n)``
           when ``confidence`` is None (the observed rate meets the target),
           otherwise the largest count whose one-sided Clopper-Pearson upper
           bound is still at most the target (the rate meets the target with
           that confidence, so a calibration set that scores a little low
           does not carry the threshold below the target on other data).
        3. Take the lowest threshold that accepts no more than that count.
           When the set is too small for even zero accepted pairs to show the
           target, the threshold sits just above the highest impostor score.

    Args:
        impostor: impostor scores of the calibration set.
        target_fmr: false-match rate per comparison, in (0, 1).
        genuine: unused except for validation; kept so that callers can pass
            the full calibration set.
        confidence: one-sided confidence for the bound, or None.

    Returns:
        A score threshold in [0, 1].

    Raises:
        ValueError: empty scores or a target or confidence outside (0, 1).
    """
    if not 0.0 < target_fmr < 1.0:
        raise ValueError(f"target_fmr={target_fmr} must lie in (0, 1)")
    imp = np.sort(_as_scores(impostor, "impostor"))
    if genuine is not None:
        _as_scores(genuine, "genuine")
    allowed = int(np.floor(target_fmr * imp.size))
    if confidence is not None:
        allowed = 0
        while (
            allowed + 1 < imp.size
            and fmr_upper_bound(allowed + 1, imp.size, confidence) <= target_fmr
        ):
            allowed += 1
    # The (allowed + 1)-th highest impostor score must be rejected.
    boundary = imp[imp.size - allowed - 1]
    threshold = float(np.nextafter(boundary, np.inf))
    return min(threshold, 1.0)


def rule_of_three(pairs: int) -> float:
    """Return the 95% upper bound on an error rate observed as zero in ``pairs``."""
    if pairs <= 0:
        raise ValueError(f"pairs={pairs} must be positive")
    return min(3.0 / pairs, 1.0)
