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
and isolated dark outliers anywhere are eyelashes. The upper eyelid is
also fitted in the image itself, as a parabola through the strongest
bright-to-dark step (skin above, lashes or iris below) of each image
column, so that the lashes hanging from it, which are not all darker than
the iris, are masked with it. The lower eyelid is fitted the same way, as
a parabola through the strongest dark-to-bright step below the pupil.
In a narrow eye the upper lashes also hang over the left and right sides
of the iris, where the grey-level rules above do not look for them. There
they are found as thin dark lines close to the vertical.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge_gate.iris._filters import (
    BoolImage,
    FloatImage,
    bilinear,
    box_mean,
    nearest,
)
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
    # Upper eyelid parabola (see ``fit_upper_eyelid``): samples above it,
    # lowered by this share of the iris radius for the lashes' roots, are
    # invalid. None skips the fit.
    upper_lid_margin: float | None = 0.1
    # Steepest accepted lid, as a * iris radius for y = a x^2 + b x + c.
    # At 0.5 the arch is as round as the iris itself, and a lid is flatter.
    upper_lid_max_curvature: float = 0.5
    # Dark outliers in the upper sector (sine below -0.3), where the lashes
    # hang, use this lower limit in robust standard deviations.
    upper_dark_limit: float = 2.5
    # Lower eyelid parabola (see ``fit_lower_eyelid``): samples below it,
    # raised by this share of the iris radius for the lid's wet rim and
    # lower lashes, are invalid. None skips the fit. On CASIA eyes 001-040
    # margins of 0.05-0.1 raised the lowest genuine score from 0.641 to
    # 0.652-0.658; 0.125 masked so much of 019_1_1 that it failed to enrol.
    lower_lid_margin: float | None = 0.075
    # Threshold for lashes hanging over the sides of the iris (see
    # ``_side_lashes``). A sample is a lash when its line response exceeds the
    # median response below the pupil centre by this many robust standard
    # deviations.
    # None skips the step. On CASIA eye 041, whose lashes reach the pupil's
    # height, 5 raised the lowest same-eye score from 0.557 to 0.586.
    side_lash_limit: float | None = 5.0
    # Half-width of the widest lash and half-length of the line averaged
    # along it, as fractions of the iris radius (3 and 4 px on CASIA images).
    side_lash_width: float = 0.03
    side_lash_length: float = 0.04
    # Search area: samples above a line this many pupil radii below the pupil
    # centre, outside the top sector where the angle's sine is below -0.7.
    # Radial furrows also run vertically in the top sector, and the eyelid
    # rules cover it.
    side_lash_depth: float = 0.5
    side_lash_top_sine: float = 0.7


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
        5. Mark the samples above the fitted upper eyelid and below the
           fitted lower eyelid invalid.
        6. Mark lashes hanging over the sides of the iris invalid.

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
    lashes = (values < median - params.upper_dark_limit * spread) & (sin < -0.3)
    valid &= ~lashes
    valid &= (sin >= params.top_sine_cut)[None, :]

    # 5. Upper and lower eyelids in the image.
    if params.upper_lid_margin is not None:
        lid = fit_upper_eyelid(segmentation, params.upper_lid_max_curvature)
        if lid is not None:
            lid_y = np.polyval(lid, xs) + params.upper_lid_margin * iris.radius
            valid &= ~((ys < lid_y) & (sin < 0)[None, :])
    if params.lower_lid_margin is not None:
        lid = fit_lower_eyelid(segmentation, params.upper_lid_max_curvature)
        if lid is not None:
            lid_y = np.polyval(lid, xs) - params.lower_lid_margin * iris.radius
            valid &= ~((ys > lid_y) & (sin > 0)[None, :])

    # 6. Lashes over the sides.
    if params.side_lash_limit is not None:
        valid &= ~_side_lashes(segmentation, xs, ys, valid, params)
    return IrisStrip(values=values.astype(np.float32), valid=valid)


def _side_lashes(
    segmentation: Segmentation,
    xs: FloatImage,
    ys: FloatImage,
    valid: BoolImage,
    params: NormalizationParams,
) -> BoolImage:
    """Return the strip samples that lie on lashes hanging over the iris.

    A hanging lash is a thin dark line close to the vertical. The line
    response is a black top-hat along image rows (a grey-level closing over
    a window as wide as the widest lash, minus the image), averaged along
    image columns over a lash's length. A crypt is wider than the window and
    a radial furrow at the sides runs across it, so both respond less. The
    response is compared with the valid samples below the pupil centre,
    which upper lashes do not reach.

    Args:
        segmentation: circles and the filled image.
        xs, ys: image coordinates of the strip samples.
        valid: the samples still valid after the other occlusion rules.
        params: the ``side_lash_*`` thresholds.
    """
    pupil, iris = segmentation.pupil, segmentation.iris
    lashes = np.zeros(valid.shape, dtype=bool)
    limit = params.side_lash_limit
    if limit is None:
        return lashes
    half_width = max(1, round(params.side_lash_width * iris.radius))
    half_length = max(1, round(params.side_lash_length * iris.radius))

    # Filter only the iris and a margin around it.
    image = segmentation.filled
    height, width = image.shape
    margin = half_width + half_length + 2
    top = max(0, int(iris.y - iris.radius) - margin)
    bottom = min(height, int(iris.y + iris.radius) + margin + 1)
    left = max(0, int(iris.x - iris.radius) - margin)
    right = min(width, int(iris.x + iris.radius) + margin + 1)
    crop = image[top:bottom, left:right].astype(np.float32)
    closed = _row_extreme(
        _row_extreme(crop, half_width, np.maximum), half_width, np.minimum
    )
    line = _column_mean(closed - crop, half_length)
    response = nearest(line, ys - top, xs - left)

    below = valid & (ys > pupil.y)
    reference = response[below]
    if reference.size < 16:
        return lashes
    median = float(np.median(reference))
    # The added half grey level keeps the spread above zero on a flat,
    # noiseless iris.
    spread = 1.4826 * float(np.median(np.abs(reference - median))) + 0.5
    lashes = response > median + limit * spread
    lashes &= ys < pupil.y + params.side_lash_depth * pupil.radius
    angle_sine = np.sin(np.arctan2(ys - pupil.y, xs - pupil.x))
    lashes &= angle_sine > -params.side_lash_top_sine
    return lashes


def _row_extreme(image: FloatImage, half: int, pick: np.ufunc) -> FloatImage:
    """Return the running maximum or minimum (``pick``) over +-``half`` columns."""
    padded = np.pad(image, ((0, 0), (half, half)), mode="edge")
    width = image.shape[1]
    result = padded[:, :width].copy()
    for offset in range(1, 2 * half + 1):
        pick(result, padded[:, offset : offset + width], out=result)
    return result


def _column_mean(image: FloatImage, half: int) -> FloatImage:
    """Return the mean over +-``half`` rows, edges repeated."""
    padded = np.pad(image, ((half, half), (0, 0)), mode="edge")
    height = image.shape[0]
    total = np.zeros_like(image)
    for offset in range(2 * half + 1):
        total += padded[offset : offset + height]
    mean: FloatImage = (total / (2 * half + 1)).astype(np.float32)
    return mean


# Upper-eyelid fit: smallest grey-level step (above minus below, over 6
# pixels) that counts as an eyelid edge point, random triples tried, and
# the distance in pixels within which a point supports a parabola.
_LID_MIN_STEP = 8.0
_LID_TRIALS = 200
_LID_TOLERANCE_PX = 3.0
# Share of the edge points a parabola must explain to be taken as the lid.
_LID_MIN_SUPPORT = 0.3


def fit_upper_eyelid(
    segmentation: Segmentation, max_curvature: float = 0.5
) -> npt.NDArray[np.float64] | None:
    """Return the upper eyelid as parabola coefficients (a, b, c), or None.

    The lid is ``y = a x^2 + b x + c`` in image pixels. Steps:
        1. In every second image column over the middle 85 % of the iris
           width, between the top of the iris circle and the top of the
           pupil, find the strongest step from bright (skin) above to dark
           (lashes, iris) below; keep it when it exceeds ``_LID_MIN_STEP``.
        2. Fit parabolas that open downwards in the image (a >= 0, the lid
           arches over the eye) and are no steeper than ``max_curvature`` /
           iris radius through random triples of these points, and keep the
           one most points lie near (RANSAC), so that lashes and iris
           texture do not pull it.
        3. Refit by least squares to the points near it, unless the refit
           is steeper than the bound.

    None means that too few points agree on one lid (an open eye whose lid
    lies above the iris, or a frame without a clear edge).
    """
    return _fit_eyelid(segmentation, max_curvature, lower=False)


def fit_lower_eyelid(
    segmentation: Segmentation, max_curvature: float = 0.5
) -> npt.NDArray[np.float64] | None:
    """Return the lower eyelid as parabola coefficients (a, b, c), or None.

    The mirror image of ``fit_upper_eyelid``: edge points are the strongest
    steps from dark (iris) above to bright (the lid's rim and skin) below,
    between the bottom of the pupil and the bottom of the iris circle, and
    the parabola sags below the eye (-``max_curvature`` / radius <= a <= 0).
    """
    return _fit_eyelid(segmentation, max_curvature, lower=True)


def _fit_eyelid(
    segmentation: Segmentation, max_curvature: float, *, lower: bool
) -> npt.NDArray[np.float64] | None:
    """Return an eyelid parabola fitted by RANSAC (see ``fit_upper_eyelid``)."""
    pupil, iris = segmentation.pupil, segmentation.iris
    height, width = segmentation.filled.shape
    radius = iris.radius
    if lower:
        top = int(max(3.0, pupil.y + pupil.radius + 2))
        bottom = int(min(height - 4.0, iris.y + radius + 3))
    else:
        top = int(max(3.0, iris.y - radius - 3))
        bottom = int(min(height - 4.0, pupil.y - pupil.radius - 2))
    left = int(max(0.0, iris.x - 0.85 * radius))
    right = int(min(width - 1.0, iris.x + 0.85 * radius))
    if bottom - top < 8 or right - left < 20:
        return None
    columns = np.arange(left, right + 1, 2)
    band = _smoothed_band(segmentation.filled, top - 3, bottom + 3, columns)
    # Upper lid: bright above, dark below; lower lid: the reverse.
    step = band[6:] - band[:-6] if lower else band[:-6] - band[6:]
    rows = np.arange(top, top + step.shape[0], dtype=np.float64)[:, None]
    inside = (columns[None, :] - iris.x) ** 2 + (rows - iris.y) ** 2 < (
        1.02 * radius
    ) ** 2
    step = np.where(inside, step, -np.inf)
    best = np.argmax(step, axis=0)
    strong = step[best, np.arange(step.shape[1])] >= _LID_MIN_STEP
    xs = columns[strong].astype(np.float64)
    ys = (top + best[strong]).astype(np.float64)
    if xs.size < 10:
        return None

    # RANSAC over triples, all at once; x is centred for a well-posed solve.
    rng = np.random.default_rng(0)
    centre = float(iris.x)
    u = xs - centre
    triples = np.stack(
        [rng.choice(xs.size, 3, replace=False) for _ in range(_LID_TRIALS)]
    )
    design = np.stack([u[triples] ** 2, u[triples], np.ones_like(u[triples])], 2)
    usable = np.abs(np.linalg.det(design)) > 1e-6
    if not usable.any():
        return None
    coefficients = np.linalg.solve(design[usable], ys[triples][usable][..., None])
    coefficients = coefficients[..., 0]
    # The arch's radius of curvature at its apex is 1 / (2 |a|); a lid is
    # flatter than the iris, so |a| <= 1 / (2 radius) by default. The upper
    # lid arches up (a >= 0 with y downwards), the lower one sags (a <= 0).
    sign = -1.0 if lower else 1.0
    steepest = max_curvature / radius
    bent = sign * coefficients[:, 0]
    shaped = (bent >= 0) & (bent <= steepest)
    if not shaped.any():
        return None
    coefficients = coefficients[shaped]
    fitted = (
        coefficients[:, 0, None] * u[None, :] ** 2
        + coefficients[:, 1, None] * u[None, :]
        + coefficients[:, 2, None]
    )
    support = (np.abs(fitted - ys[None, :]) < _LID_TOLERANCE_PX).sum(axis=1)
    winner = int(np.argmax(support))
    if support[winner] < max(10.0, _LID_MIN_SUPPORT * xs.size):
        return None
    near = np.abs(fitted[winner] - ys) < _LID_TOLERANCE_PX
    a, b, c = np.polyfit(u[near], ys[near], 2)
    if not 0 <= sign * a <= steepest:
        # The refit left the accepted shapes: keep the sampled parabola.
        a, b, c = coefficients[winner]
    # Back to image x: a (x - centre)^2 + b (x - centre) + c.
    lid: npt.NDArray[np.float64] = np.asarray(
        [a, b - 2 * a * centre, a * centre**2 - b * centre + c], dtype=np.float64
    )
    return lid


def _smoothed_band(
    image: FloatImage, top: int, bottom: int, columns: npt.NDArray[np.intp]
) -> npt.NDArray[np.float64]:
    """Return the 5 x 5 mean of ``image`` in rows top..bottom-1 at ``columns``.

    Only a crop 2 px wider on every side is filtered. Where the crop meets
    the image border, the filter repeats the same edge pixels as on the whole
    image, so every value equals the whole image's 5 x 5 mean.
    """
    crop_top, crop_left = max(0, top - 2), max(0, int(columns[0]) - 2)
    crop = image[crop_top : bottom + 2, crop_left : int(columns[-1]) + 3]
    smoothed = box_mean(crop, 2)
    band = smoothed[top - crop_top : bottom - crop_top, columns - crop_left]
    return band.astype(np.float64)


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
