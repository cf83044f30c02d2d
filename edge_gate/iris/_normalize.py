"""Rubber-sheet unwrapping of the iris and the mask of occluded samples.

Daugman's rubber-sheet model maps each point of the iris to (rho, theta).
Theta is the angle around the pupil centre. Rho runs from 0 on the pupil
boundary to 1 on the iris boundary, and each boundary is its own circle.
The unwrapped strip has one row per rho step and one column per theta
step, so an eye rotated about the camera axis shifts the columns
cyclically.

Column j holds angle 2 pi j / columns, measured from the +x axis towards +y
(downwards in the image); row 0 is next to the pupil.

Occlusion: samples on highlights or outside the image are invalid. Eyelids
and eyelashes are found by comparing each sample with the grey level of
the left and right sectors, which eyelids rarely cover: in the upper and
lower sectors, an outlying run that reaches the outer edge is an eyelid,
and isolated dark outliers anywhere are eyelashes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edge_gate.iris._filters import BoolImage, FloatImage, bilinear, nearest
from edge_gate.iris._segment import Segmentation


@dataclass(frozen=True)
class NormalizationParams:
    """Strip size and occlusion thresholds."""

    rows: int = 32
    columns: int = 256
    # Radial span sampled; the outer rim is often blurred or shadowed.
    rho_min: float = 0.04
    rho_max: float = 0.92
    # Outlier limits, in robust standard deviations of the side sectors.
    bright_limit: float = 3.0
    dark_limit: float = 3.0
    # An eyelid is an outlier run covering at least this share of a column's
    # outer part.
    eyelid_share: float = 0.6
    # Columns whose angle points further up than this sine are never used
    # (-1 keeps them all): the upper eyelid and its lashes cover them in
    # most captures.
    top_sine_cut: float = -1.0


@dataclass(frozen=True)
class IrisStrip:
    """The unwrapped iris with its valid-sample mask."""

    values: FloatImage
    valid: BoolImage


def unwrap_iris(
    segmentation: Segmentation, params: NormalizationParams | None = None
) -> IrisStrip:
    """Unwrap the iris between its two boundaries and mask occlusions.

    Steps:
        1. Sample the filled image on the rubber-sheet grid (bilinear).
        2. Mark highlights and samples outside the image invalid.
        3. Estimate the iris grey level from the side sectors.
        4. Mark eyelids (outlier runs to the outer edge in the upper and
           lower sectors) and eyelashes (dark outliers) invalid.

    Args:
        segmentation: pupil and iris circles and the filled image.
        params: strip size and thresholds; the defaults when None.

    Returns:
        The strip, shape (rows, columns), float32 grey levels.
    """
    params = params or NormalizationParams()
    pupil, iris = segmentation.pupil, segmentation.iris
    image = segmentation.filled
    height, width = image.shape

    # 1. Rubber-sheet grid.
    theta = np.arange(params.columns, dtype=np.float32) * (2 * math.pi / params.columns)
    rho = np.linspace(params.rho_min, params.rho_max, params.rows, dtype=np.float32)
    cos, sin = np.cos(theta), np.sin(theta)
    inner_x = pupil.x + pupil.radius * cos
    inner_y = pupil.y + pupil.radius * sin
    outer_x = iris.x + iris.radius * cos
    outer_y = iris.y + iris.radius * sin
    xs = (1 - rho[:, None]) * inner_x[None, :] + rho[:, None] * outer_x[None, :]
    ys = (1 - rho[:, None]) * inner_y[None, :] + rho[:, None] * outer_y[None, :]
    values = bilinear(image, ys, xs)

    # 2. Highlights and the image border.
    inside = (xs >= 0) & (xs <= width - 1) & (ys >= 0) & (ys <= height - 1)
    highlight = nearest(segmentation.reflections.astype(np.float32), ys, xs) > 0
    valid = inside & ~highlight

    # 3. Reference grey level: left and right sectors, inner 80 %.
    side = np.abs(sin) < 0.5
    reference = values[: int(params.rows * 0.8)][:, side]
    reference_valid = valid[: int(params.rows * 0.8)][:, side]
    samples = reference[reference_valid]
    if samples.size < 16:
        samples = values[valid] if valid.any() else values.ravel()
    median = float(np.median(samples))
    spread = 1.4826 * float(np.median(np.abs(samples - median))) + 1.0

    # 4. Eyelids and eyelashes.
    bright = values > median + params.bright_limit * spread
    dark = values < median - params.dark_limit * spread
    outlier = bright | dark | ~valid
    eyelid = _eyelid_mask(outlier, np.abs(sin) >= 0.5, params.eyelid_share)
    valid &= ~eyelid & ~dark & ~bright
    valid &= (sin >= params.top_sine_cut)[None, :]
    return IrisStrip(values=values.astype(np.float32), valid=valid)


def _eyelid_mask(
    outlier: BoolImage, eyelid_columns: BoolImage, share: float
) -> BoolImage:
    """Mark, per column, the rows from an eyelid's edge out to the iris rim.

    For each row r the share of outliers in rows r..end is computed; the
    eyelid starts at the smallest r whose share reaches ``share``. The start
    row is smoothed across neighbouring columns with a running median so
    that one noisy column does not cut a notch.
    """
    rows, columns = outlier.shape
    counts = np.cumsum(outlier[::-1].astype(np.float32), axis=0)[::-1]
    remaining = np.arange(rows, 0, -1, dtype=np.float32)[:, None]
    covered = counts / remaining >= share
    # The first row (from the pupil outwards) where the rest is covered.
    start = np.where(covered.any(axis=0), np.argmax(covered, axis=0), rows)
    start = np.where(eyelid_columns, start, rows)
    window = 7
    padded = np.concatenate([start[-window:], start, start[:window]])
    stacked = np.stack([padded[k : k + columns] for k in range(2 * window + 1)])
    smoothed = np.where(eyelid_columns, np.median(stacked, axis=0), rows)
    row_index = np.arange(rows)[:, None]
    mask: BoolImage = row_index >= smoothed[None, :]
    return mask
