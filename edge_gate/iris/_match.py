"""1:1 comparison of iris codes: masked fractional Hamming distance.

For two templates A and B and a cyclic shift s of B's columns (an eye
rotation), the fractional Hamming distance counts the disagreeing bits
among the bits valid in both masks:

    HD(s) = |(A xor B_s) and M_s| / |M_s|,  M_s = mask_A and mask_B_s

A distance from few valid bits is less certain, so it is pulled towards
0.5, the distance of unrelated codes. Daugman's normalisation does this
with a square root; here the power is ``BITS_EXPONENT``:

    HD_norm(s) = 0.5 - (0.5 - HD(s)) * (|M_s| / REFERENCE_BITS) ** BITS_EXPONENT

Neighbouring code rows are far from independent: radial furrows make about
86% of a bit's neighbours one row further out agree with it. A pair of codes
whose rows agree more than that carries fewer independent bits, so its
distance is less certain. The valid-bit count is therefore scaled by the
pair's independence before the normalisation:

    |M_s| * (1 - a) / (1 - REFERENCE_ROW_AGREEMENT)

where a is the mean of the two templates' ``row_agreement``, each folded
above a half (a row that inverts its neighbour repeats it as well).

A shift with fewer than ``MIN_COMMON_BITS`` valid bits (before that
scaling) gets HD_norm 0.5.

The two halves of the iris, right and left of the vertical through the
pupil centre, may turn a little against each other. Besides the shift s of
the whole code, the left half also tries s - 1 and s + 1
(``HALF_SHIFT_COLUMNS``), and the minimum runs over all these poses. The
halves are columns of the reference (the second template), which stays in
place while the probe turns. So swapping the two templates can change the
score a little: by 0.001 in the median over all pairs of CASIA eyes
001-080, and by at most 0.007 for the same eye and 0.025 for other eyes.

The score is 1 - min over all poses of HD_norm, clipped to [0, 1]:
unrelated eyes score about 0.5 and the same eye scores higher.
"""

from __future__ import annotations

import math
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from edge_gate.errors import TemplateError
from edge_gate.iris._template import IrisTemplate

FloatOrArray = TypeVar("FloatOrArray", float, npt.NDArray[np.float64])

# Shifts tried in each direction, in code columns; 8 of 128 columns covers
# +-22.5 degrees of head tilt.
MAX_SHIFT_COLUMNS = 8
# Valid-bit count at which a distance keeps its raw value. It is about half
# the 4,096 bits of the lane's code, a typical count when eyelids cover part
# of the iris.
REFERENCE_BITS = 2048.0
# Power of the valid-bit share in the normalisation (Daugman used 0.5).
# 0.4 pulls same-eye pairs with few common bits less far towards 0.5; it
# was chosen on CASIA eyes 001-040 (docs/benchmarks.md, iris, fourth round).
BITS_EXPONENT = 0.4
# The left half of the iris (left of the vertical through the pupil centre)
# may turn this many code columns either way against the right half. The
# pupil centre can move against the iris between captures, because the pupil
# shifts a little as it widens. The texture of the two sides then turns in
# opposite directions, by about a column per 3 px of vertical offset on a
# CASIA eye, so one shift for the whole code fits neither side. Moving the
# pupil circle of CASIA 041_2_2 up by 2-4 px (it fits the pupil within 1 px)
# raised its two weakest same-eye scores from 0.587 and 0.609 to 0.636-0.662.
# On all 80 CASIA-IrisV1 eyes
# this raised the three lowest same-eye scores from 0.587, 0.609 and 0.633
# to 0.633, 0.640 and 0.649, and the 155th highest of the 154,840 other-eye
# scores from 0.623 to 0.629, so the EER fell from 0.119% to 0.055%. A looser
# rule let each half take its own best shift within one column of the
# pair's, so the halves could lie two columns apart. It raised the other-eye
# tail more, because unrelated eyes with strong, regular texture gained up to
# 0.06. The report eyes 041-080 then had 2.6e-4 false matches at the
# threshold calibrated on eyes 001-040, against 1.3e-4 with this rule.
HALF_SHIFT_COLUMNS = 1
# Minimum valid bits in common for a distance to count. With fewer, the
# shift scores as unrelated eyes (0.5), because every pair of CASIA eyes
# 001-040 shares at least 616 bits at every shift, so the threshold is
# untested below that. Identical codes on 90 bits would otherwise pass it.
MIN_COMMON_BITS = 512
# Median ``IrisTemplate.row_agreement`` of the lane's codes of CASIA eyes
# 001-040 (``bench/bench_iris.py accuracy`` prints it). A pair whose rows agree
# this often keeps its valid-bit count. Scaling the count by the pair's
# independence widened the gap between the lowest same-eye score and the
# highest other-eye score there from 0.9 to 1.6 other-eye standard deviations
# (docs/benchmarks.md, iris, fifth round). Masking the side lashes later moved
# the median to 0.8641; that changes the factor by 0.5%, so the value stays.
REFERENCE_ROW_AGREEMENT = 0.8634
# Mean row agreements of a pair outside this range are clipped to it. The
# lane's CASIA codes of eyes 001-040 span 0.81-0.90. A code far outside, such
# as rows recombined from different eyes (about 0.5), would otherwise count up
# to 3.7 times its valid bits, a scale never tested.
ROW_AGREEMENT_RANGE = (0.8, 0.92)


def shift_indices(columns: int, max_shift: int) -> npt.NDArray[np.intp]:
    """Return column indices of every shift, shape (2 * max_shift + 1, columns)."""
    shifts = np.arange(-max_shift, max_shift + 1)
    base = np.arange(columns)
    return (base[None, :] - shifts[:, None]) % columns


def row_redundancy(template: IrisTemplate) -> float:
    """Return the template's row agreement folded above a half.

    A row that inverts its neighbour is as redundant as one that repeats it,
    so an agreement a counts as max(a, 1 - a). Unmeasured, it is the
    reference.
    """
    value = template.row_agreement
    if value is None:
        return REFERENCE_ROW_AGREEMENT
    return max(value, 1.0 - value)


def independence_for(agreement: FloatOrArray) -> FloatOrArray:
    """Return the factor on a valid-bit count for a pair's mean row agreement.

    1 at the reference agreement, below 1 for codes with more radial
    redundancy. The agreement is clipped to ``ROW_AGREEMENT_RANGE``, so the
    factor stays between 0.59 and 1.46.
    """
    clipped = np.clip(agreement, *ROW_AGREEMENT_RANGE)
    return (1.0 - clipped) / (1.0 - REFERENCE_ROW_AGREEMENT)  # type: ignore[no-any-return]


def pair_independence(first: IrisTemplate, second: IrisTemplate) -> float:
    """Return the factor on the pair's valid-bit count for its row redundancy."""
    mean = (row_redundancy(first) + row_redundancy(second)) / 2
    return float(independence_for(mean))


def normalise_distance(
    distance: npt.NDArray[np.float64],
    bits: npt.NDArray[np.float64],
    independence: float | npt.NDArray[np.float64] = 1.0,
) -> npt.NDArray[np.float64]:
    """Return the normalised distance for raw distances from ``bits`` bits.

    ``independence`` scales the bit count (see :func:`pair_independence`). A
    distance from fewer than ``MIN_COMMON_BITS`` bits becomes 0.5.
    """
    effective = np.maximum(bits, 0.0) * independence
    scale = (effective / REFERENCE_BITS) ** BITS_EXPONENT
    normalised = 0.5 - (0.5 - distance) * scale
    counted: npt.NDArray[np.float64] = np.where(
        bits >= MIN_COMMON_BITS, normalised, 0.5
    )
    return counted


def _check_same_grid(probe: IrisTemplate, reference: IrisTemplate) -> None:
    """Raise ``TemplateError`` unless both templates have the same code grid."""
    if probe.shape != reference.shape:
        raise TemplateError(
            f"cannot compare iris codes of grids {probe.shape} and "
            f"{reference.shape}; both must come from the same encoder"
        )


def hamming_distances(
    probe: IrisTemplate, reference: IrisTemplate, max_shift: int = MAX_SHIFT_COLUMNS
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Return the raw distance and valid-bit count at every shift.

    Raises:
        TemplateError: the templates have different code grids.
    """
    _check_same_grid(probe, reference)
    columns = probe.shape[1]
    index = shift_indices(columns, min(max_shift, columns // 2))

    # Rotating the reference is a gather of whole columns.
    probe_code, probe_mask = probe.column_bytes
    reference_code, reference_mask = reference.column_bytes
    valid = reference_mask[index] & probe_mask
    disagree = (reference_code[index] ^ probe_code) & valid
    counts = np.bitwise_count(disagree).sum(axis=(1, 2), dtype=np.float64)
    valid_bits = np.bitwise_count(valid).sum(axis=(1, 2), dtype=np.float64)
    distance = np.where(valid_bits > 0, counts / np.maximum(valid_bits, 1), 0.5)
    return distance, valid_bits


def half_columns(columns: int) -> npt.NDArray[np.bool_]:
    """Return which code columns lie in the right half of the iris.

    Column j points at angle 2 pi j / columns from the +x axis, so the right
    half is the quarter turn either side of column 0, and the left half the
    rest.
    """
    quarter = columns // 4
    right: npt.NDArray[np.bool_] = (np.arange(columns) + quarter) % columns < (
        columns // 2
    )
    return right


def turned_halves(
    wrong: npt.NDArray[np.float64], total: npt.NDArray[np.float64], tolerance: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Return the disagreeing and valid bits of every pose of the two halves.

    Args:
        wrong: disagreeing bits, shape (..., shifts, 2), per half (right,
            left) at consecutive shifts from -(m + tolerance) to
            m + tolerance.
        total: valid bits in both codes, the same shape.
        tolerance: how many shifts the left half may turn against the right.

    Returns:
        Disagreeing and valid bits of both halves together, shape
        (..., (2 m + 1) (2 tolerance + 1)): the right half at each shift s
        from -m to m, the left half at each of s - tolerance .. s + tolerance.
    """
    shifts = wrong.shape[-2] - 2 * tolerance
    turns = 2 * tolerance + 1

    def poses(counts: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        right = counts[..., tolerance : tolerance + shifts, 0, None]
        left = np.stack([counts[..., k : k + shifts, 1] for k in range(turns)], -1)
        summed: npt.NDArray[np.float64] = (right + left).reshape(
            *counts.shape[:-2], shifts * turns
        )
        return summed

    return poses(wrong), poses(total)


def half_shift_distances(
    probe: IrisTemplate,
    reference: IrisTemplate,
    max_shift: int = MAX_SHIFT_COLUMNS,
    tolerance: int = HALF_SHIFT_COLUMNS,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Return the raw distance and valid-bit count at every pose of the pair.

    Like :func:`hamming_distances`, but the left half of the reference's
    columns (:func:`half_columns`) may meet the probe at up to
    ``tolerance`` shifts more or less than the right half
    (:func:`turned_halves`). The probe turns and the reference stays, as in
    the gallery.

    Raises:
        TemplateError: the templates have different code grids.
    """
    _check_same_grid(probe, reference)
    columns = probe.shape[1]
    reach = min(max_shift, columns // 2)
    tolerance = max(0, min(tolerance, columns // 2 - reach))
    index = shift_indices(columns, reach + tolerance)
    probe_code, probe_mask = (_column_words(part) for part in probe.column_bytes)
    reference_code, reference_mask = (
        _column_words(part) for part in reference.column_bytes
    )
    valid = probe_mask[index] & reference_mask
    disagree = (probe_code[index] ^ reference_code) & valid
    # Counts per shift and column, then per half (right, left).
    right = half_columns(columns)
    halves = np.stack([right, ~right], axis=1).astype(np.float64)
    wrong = _bit_counts(disagree) @ halves
    total = _bit_counts(valid) @ halves
    counts, valid_bits = turned_halves(wrong, total, tolerance)
    distance = np.where(valid_bits > 0, counts / np.maximum(valid_bits, 1), 0.5)
    return distance, valid_bits


def _column_words(packed: npt.NDArray[np.uint8]) -> npt.NDArray[Any]:
    """Return the bytes of each column as one unsigned integer where they fit.

    One population count per column instead of one per byte cut a comparison
    of two CASIA codes from about 130 to 47 microseconds.
    Columns of other widths stay as they are, shape (columns, n).
    """
    width = packed.shape[1]
    if width in (1, 2, 4, 8):
        words: npt.NDArray[Any] = np.ascontiguousarray(packed).view(f"<u{width}")
        return words[:, 0]
    return packed


def _bit_counts(words: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    """Return the set bits per column, shape (shifts, columns)."""
    counts = np.bitwise_count(words)
    if counts.ndim == 3:
        summed: npt.NDArray[np.float64] = counts.sum(axis=2, dtype=np.float64)
        return summed
    converted: npt.NDArray[np.float64] = counts.astype(np.float64)
    return converted


def compare_irises(first: IrisTemplate, second: IrisTemplate) -> float:
    """Return the similarity of two iris templates in [0, 1].

    Steps:
        1. Raw masked Hamming distance at each shift of -8..+8 columns, with
           the left half of the iris also turned one column either way.
        2. Normalise each for its valid-bit count, scaled by the pair's
           independence.
        3. Score = 1 - smallest normalised distance over all these poses,
           clipped to [0, 1].

    Raises:
        TemplateError: the templates have different code grids.
    """
    distance, valid_bits = half_shift_distances(first, second)
    normalised = normalise_distance(
        distance, valid_bits, pair_independence(first, second)
    )
    best = float(normalised.min())
    if math.isnan(best):
        return 0.0
    return min(1.0, max(0.0, 1.0 - best))
