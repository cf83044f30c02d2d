"""Classical segmentation of a near-infrared eye image: pupil and iris circles.

The search follows Daugman's integro-differential operator: the boundary
of a dark disc on a brighter surround is the circle along which the mean
grey level rises fastest with the radius. It runs coarse-to-fine, first on
a block-averaged copy of about 140 pixels on the short side, then at full
resolution around the coarse result, so that a 640 x 480 frame costs about
the same as a 320 x 280 one.

Specular reflections of the camera's illuminators are found first (small
spots much brighter than their surroundings) and filled from their
surroundings, so that a highlight inside the pupil neither splits the dark
pupil region nor creates a false edge. Eyelids and eyelashes are found
later, on the unwrapped iris (see ``_normalize``).

Invariant: every returned circle lies on the image grid of the input
(full-resolution pixels, x to the right, y downwards).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge_gate.errors import CaptureError, ImageError
from edge_gate.iris._filters import (
    BoolImage,
    FloatImage,
    bilinear,
    box_mean,
    dilate,
    downsample,
    fill_masked,
    nearest,
    otsu_threshold,
)

Sampler = Callable[
    [FloatImage, npt.NDArray[np.float32], npt.NDArray[np.float32]], FloatImage
]

logger = logging.getLogger(__name__)

# Short side of the coarse search image, in pixels.
_COARSE_SIDE_PX = 140


@dataclass(frozen=True)
class Circle:
    """A circle in full-resolution image pixels."""

    x: float
    y: float
    radius: float


@dataclass(frozen=True)
class SegmentationParams:
    """Search ranges and detection thresholds.

    Radii are fractions of the image's short side, except where the name
    ends in ``_px``.

    The defaults cover the close-up CASIA camera (iris radius about 0.39 of
    the short side) and 640 x 480 gate cameras (iris radius 0.2-0.3).
    """

    pupil_radius_min: float = 0.04
    # The pupil search also starts at or below this radius in pixels. On a
    # frame with more than 480 lines the fraction alone (38 px at 960
    # lines) missed the pupil of a small eye, and the search took a wider
    # dark ring for it. 19.2 px is the fraction's value at 480 lines, so
    # CASIA and 640 x 480 frames keep their search range. Lower values let a
    # small dark corner of the 640 x 480 open-iris frame win.
    pupil_radius_min_px: float = 19.2
    pupil_radius_max: float = 0.24
    iris_radius_min: float = 0.15
    iris_radius_max: float = 0.48
    # The iris search also starts at or below this radius in pixels, on
    # any frame size. Quality scores an iris diameter under 100 px as 0, so
    # an eye smaller than that is found at its own boundary and rejected.
    # With only the fraction above (72 px on a 640 x 480 frame), an eye
    # with an iris radius of 50-70 px got a wider, wrong circle that passed
    # quality. At 42 px, eyes of 35-42 px on 640 x 480 frames still got one.
    # CASIA frames keep their search range, because there the search starts
    # at 1.45 pupil radii, above both floors.
    # NOTE: on 1280 x 960 frames, 7 of 78 scaled eyes with an iris radius of
    # 35-56 px (pupils of 13-24 px) still got a wider, wrong circle that
    # passed quality. A gate camera gives an iris 100 px or more across.
    iris_radius_min_px: float = 32.0
    # Pupil-to-iris radius ratios accepted by the search (ISO/IEC 29794-6
    # calls ratios outside about 0.2-0.7 unusable).
    ratio_min: float = 0.15
    ratio_max: float = 0.75
    # A pixel is a specular highlight when it is this many grey levels above
    # its neighbourhood mean and above the absolute floor.
    reflection_contrast: float = 45.0
    reflection_floor: float = 150.0
    # A wide highlight's middle: brighter than the floor, on surroundings
    # darker than the second value (on CASIA eyes 001-040 they mark no pixel).
    wide_highlight_floor: float = 200.0
    wide_highlight_surround: float = 120.0
    # Smallest grey-level range (1st to 99th percentile) of a frame that can
    # show an eye. An estimate: CASIA-IrisV1 frames span 169-218 grey
    # levels and the 640 x 480 open-iris frame 254.
    frame_range_min: float = 40.0
    # Smallest rise of the mean grey level across a pupil boundary on the
    # coarse image. An estimate: pupils rise 46-92 grey levels on CASIA eyes
    # 001-080 and 34 on the open-iris frame, noise and checkerboards about 0.
    pupil_rise_min: float = 12.0
    # A dark disc cut by the image border that rises this many times as
    # steeply as the best disc inside the frame is taken for the pupil, and
    # the frame is rejected. An estimate: on CASIA eyes 001-080 such discs
    # rise at most 0.42 times as steeply as the pupil, on the open-iris
    # frame 0.77 times, and on rolled CASIA images whose border cuts the
    # pupil 3.5 times or more.
    cut_pupil_rise_factor: float = 1.5
    # The iris is over-exposed when more than this share of its annulus,
    # highlights excluded, is at or above the saturation level. On CASIA
    # eyes 001-080 the share is at most 0.10.
    saturation_level: float = 250.0
    saturated_share_max: float = 0.3


@dataclass(frozen=True)
class Segmentation:
    """Pupil and iris circles with the image the later stages sample."""

    pupil: Circle
    iris: Circle
    # Strength of each boundary: grey-level rise across it.
    pupil_contrast: float
    iris_contrast: float
    # Input with highlights filled, float32, full resolution.
    filled: FloatImage
    reflections: BoolImage


def segment_eye(
    image: npt.NDArray[np.uint8], params: SegmentationParams | None = None
) -> Segmentation:
    """Find the pupil and iris boundaries of one eye image.

    Steps:
        0. Reject a frame whose grey levels span too little to show an eye.
        1. Mark specular highlights and fill them from their surroundings.
        2. Block-average to the coarse search size.
        3. Pupil: seed at each of the darkest pupil-sized windows, grow the
           dark region around it (below a second Otsu split, so a dark
           inner iris stays out), search circles near its centroid, and
           keep the circle with the steepest boundary, or a darker disc
           that rises nearly as steeply (a dark tone curve flattens the
           pupil's boundary). Reject the frame when no boundary rises
           enough or the steepest dark disc is cut by the image border.
        4. Iris: search circles around the pupil centre, on the left and
           right sectors only, where eyelids rarely cover the boundary.
           The rise is a trimmed mean over the angles, so eyelashes across
           a few angles do not move the circle, and it is lowered for
           centres away from the pupil's (concentric bias).
        5. Refine both circles at full resolution.
        6. Reject the frame when too much of the iris annulus is saturated
           or the iris circle crosses no boundary.

    Args:
        image: 8-bit greyscale eye image.
        params: search ranges; the defaults when None.

    Returns:
        The two circles and the filled image.

    Raises:
        ImageError: the image is not 2-D or is too small.
        CaptureError: the frame has too little contrast or shows no eye,
            the pupil is cut by the image border, the iris is over-exposed,
            or no pupil or iris boundary was found.
    """
    params = params or SegmentationParams()
    if image.ndim != 2 or min(image.shape) < 64:
        raise ImageError(
            f"iris image must be 2-D greyscale of at least 64 x 64 pixels, "
            f"got shape {image.shape}"
        )
    _check_frame_range(image, params.frame_range_min)

    # A dark uniform border (a frame padded to a fixed size) would pass for
    # a pupil cut by the edge, so the search runs on the content inside it.
    top, bottom, left, right = _content_box(image)
    content_shape = (bottom - top, right - left)
    if content_shape == image.shape or min(content_shape) < 64:
        return _segment_content(image, params)
    inner = _segment_content(image[top:bottom, left:right], params)
    filled = image.astype(np.float32)
    filled[top:bottom, left:right] = inner.filled
    reflections = np.zeros(image.shape, dtype=bool)
    reflections[top:bottom, left:right] = inner.reflections
    return Segmentation(
        pupil=_shifted(inner.pupil, left, top),
        iris=_shifted(inner.iris, left, top),
        pupil_contrast=inner.pupil_contrast,
        iris_contrast=inner.iris_contrast,
        filled=filled,
        reflections=reflections,
    )


def _content_box(
    image: npt.NDArray[np.uint8], spread_max: int = 2, level_max: int = 60
) -> tuple[int, int, int, int]:
    """Return (top, bottom, left, right) inside the frame's dark uniform border.

    An edge row or column belongs to the border when its grey levels differ
    by at most ``spread_max`` and lie at or below ``level_max``. A light
    border cannot pass for a pupil, and a drawn eye's flat sclera is one.
    No CASIA-IrisV1 frame has a uniform edge row or column.
    """
    rows = (np.ptp(image, axis=1) <= spread_max) & (image.max(axis=1) <= level_max)
    columns = (np.ptp(image, axis=0) <= spread_max) & (image.max(axis=0) <= level_max)
    top = int(np.argmin(rows)) if not rows.all() else 0
    bottom = len(rows) - int(np.argmin(rows[::-1])) if not rows.all() else len(rows)
    left = int(np.argmin(columns)) if not columns.all() else 0
    right = (
        len(columns) - int(np.argmin(columns[::-1]))
        if not columns.all()
        else len(columns)
    )
    return top, bottom, left, right


def _shifted(circle: Circle, dx: float, dy: float) -> Circle:
    return Circle(circle.x + dx, circle.y + dy, circle.radius)


def _segment_content(
    image: npt.NDArray[np.uint8], params: SegmentationParams
) -> Segmentation:
    """Run the steps of :func:`segment_eye` on a frame without a uniform border."""
    short_side = min(image.shape)

    # 1. Highlights, compared with a window about twice a highlight's size.
    window = max(3, short_side // 40)
    local = box_mean(image, window)
    reflections = (image - local > params.reflection_contrast) & (
        image > params.reflection_floor
    )
    # Only the rims of a highlight wider than the window differ from their
    # local mean, so a window three times as wide finds the middles near them.
    wide = box_mean(image, 3 * window)
    middles = (
        (image - wide > params.reflection_contrast)
        & (image > params.wide_highlight_floor)
        & (wide < params.wide_highlight_surround)
    )
    reflections |= middles & dilate(reflections, 2 * window)
    reflections = dilate(reflections, max(1, short_side // 140))

    # 2. Coarse image, its highlights filled.
    factor = max(1, round(short_side / _COARSE_SIDE_PX))
    grey = image.astype(np.float32)
    coarse = downsample(grey, factor)
    coarse_reflections = downsample(reflections.astype(np.float32), factor) > 0
    coarse = fill_masked(coarse, coarse_reflections, 1)
    coarse_short = min(coarse.shape)

    # 3. Pupil on the coarse image.
    pupil_coarse = _find_pupil(coarse, coarse_short, factor, params)
    iris_coarse = _find_iris(coarse, pupil_coarse, coarse_short, factor, params)

    # 4. Full resolution, filled only around the eye to save time.
    filled = _fill_around(grey, reflections, _to_full(iris_coarse, factor))
    pupil = _refine(filled, _to_full(pupil_coarse, factor), factor, _FULL_CIRCLE)
    # The iris centre takes the refined pupil's height (see ``_find_iris``).
    iris_full = _to_full(iris_coarse, factor)
    iris = _refine(
        filled,
        Circle(iris_full.x, pupil.y, iris_full.radius),
        factor,
        _SIDE_SECTORS,
        smooth=2,
        half_y_share=0.0,
        trim=_IRIS_TRIM,
        centre_x=pupil.x,
        centre_penalty=_IRIS_CENTRE_PENALTY / pupil.radius,
    )

    # 5. Boundary strengths, for quality.
    pupil_contrast = _edge_contrast(filled, pupil, _FULL_CIRCLE)
    iris_contrast = _edge_contrast(filled, iris, _SIDE_SECTORS)

    # Saturation hides the iris texture and its outer boundary, so the
    # iris circle found in an over-exposed frame is not to be trusted.
    pupil_level = float(np.median(_disc_values(filled, pupil, 0.8)))
    _check_exposure(
        image,
        reflections,
        (pupil, iris),
        pupil_level + 0.5 * pupil_contrast,
        params,
    )
    # NOTE: a weak step across the iris circle is not rejected. Lens
    # vignetting (corners at a fifth of their brightness) took it below 2
    # in 3 of 40 CASIA eyes whose circles were still right.

    return Segmentation(
        pupil=pupil,
        iris=iris,
        pupil_contrast=pupil_contrast,
        iris_contrast=iris_contrast,
        filled=filled,
        reflections=reflections,
    )


def _check_frame_range(image: npt.NDArray[np.uint8], range_min: float) -> None:
    """Raise when the frame's grey levels span too little to show an eye.

    The 1st and 99th percentiles bound the range, so that a few hot pixels
    or one highlight on a dark frame do not count as contrast.

    Raises:
        CaptureError: the range is below ``range_min`` grey levels.
    """
    low, high = np.percentile(image, (1.0, 99.0))
    spread = float(high - low)
    if spread < range_min:
        raise CaptureError(
            f"the frame has no contrast: its grey levels span {spread:.0f} "
            f"(1st to 99th percentile {low:.0f}-{high:.0f}, minimum "
            f"{range_min:.0f}), so it shows no eye; check the camera, its "
            f"illuminators and the exposure"
        )


# An over-exposed iris keeps almost no pixel as dark as the pupil: at most
# 0.013 of the annulus in CASIA image 001_1_1 at 1.8 to 3 times the
# brightness. Test patterns hold more (0.11 for a checkerboard of 64 px
# squares), and so do normally exposed CASIA eyes with eyelashes (up to
# 0.12), so above this share saturation is not reported as over-exposure.
# NOTE: an over-exposed eye whose dark eyelashes cover more of the iris
# than this share is not reported; no such frame has been tried.
_OVEREXPOSED_DARK_SHARE_MAX = 0.05


def _check_exposure(
    image: npt.NDArray[np.uint8],
    reflections: BoolImage,
    circles: tuple[Circle, Circle],
    dark_level: float,
    params: SegmentationParams,
) -> None:
    """Raise when too much of the iris annulus is saturated.

    ``circles`` are the pupil and the iris. Specular highlights are
    saturated in a well-exposed frame too, so their pixels are left out of
    the annulus. Pixels below ``dark_level`` (grey levels) count as dark as
    the pupil.

    Raises:
        CaptureError: more than ``params.saturated_share_max`` of the
            annulus is saturated and almost none of it is dark.
    """
    pupil, iris = circles
    height, width = image.shape
    top = max(0, int(iris.y - iris.radius))
    bottom = min(height, int(iris.y + iris.radius) + 2)
    left = max(0, int(iris.x - iris.radius))
    right = min(width, int(iris.x + iris.radius) + 2)
    ys, xs = np.mgrid[top:bottom, left:right]
    annulus = (np.hypot(xs - iris.x, ys - iris.y) < iris.radius) & (
        np.hypot(xs - pupil.x, ys - pupil.y) > pupil.radius
    )
    annulus &= ~reflections[top:bottom, left:right]
    if not annulus.any():
        return
    values = image[top:bottom, left:right][annulus]

    saturated_share = float((values >= params.saturation_level).mean())
    dark_share = float((values < dark_level).mean())
    if (
        saturated_share > params.saturated_share_max
        and dark_share <= _OVEREXPOSED_DARK_SHARE_MAX
    ):
        raise CaptureError(
            f"the iris is over-exposed: {saturated_share:.0%} of its pixels "
            f"are saturated (grey level {params.saturation_level:.0f} or "
            f"above, maximum {params.saturated_share_max:.0%}); lower the "
            f"exposure or the illuminators' power and recapture the eye"
        )


def _disc_values(image: FloatImage, circle: Circle, share: float) -> FloatImage:
    """Return the pixels within ``share`` of the circle's radius of its centre."""
    height, width = image.shape
    radius = share * circle.radius
    top, bottom = (
        max(0, int(circle.y - radius)),
        min(height, int(circle.y + radius) + 2),
    )
    left, right = max(0, int(circle.x - radius)), min(width, int(circle.x + radius) + 2)
    ys, xs = np.mgrid[top:bottom, left:right]
    inside = np.hypot(xs - circle.x, ys - circle.y) <= radius
    values: FloatImage = image[top:bottom, left:right][inside]
    return values


def _angles(ranges_deg: tuple[tuple[float, float], ...], count: int) -> FloatImage:
    """Return ``count`` angles in radians spread over the given ranges."""
    spans = [high - low for low, high in ranges_deg]
    total = sum(spans)
    values: list[float] = []
    for (low, _), span in zip(ranges_deg, spans, strict=True):
        share = max(2, round(count * span / total))
        step = span / share
        values.extend(math.radians(low + step * (k + 0.5)) for k in range(share))
    return np.asarray(values, dtype=np.float32)


# Angles measured from the +x axis towards +y (downwards in the image).
_FULL_CIRCLE = _angles(((0.0, 360.0),), 64)
# Left and right of the iris, leaning downwards: the upper eyelid covers
# the top of the iris more often than the lower one covers the bottom.
_SIDE_SECTORS = _angles(((-20.0, 30.0), (150.0, 200.0)), 64)
# Horizontal search range of the iris centre around the pupil centre, in
# pupil radii.
_IRIS_CENTRE_DX = 0.16
# Share of the angles dropped at each end of the sorted rises (trimmed
# mean), so that eyelashes or an eyelid corner crossing a few side angles
# do not pull the iris circle.
_IRIS_TRIM = 0.25
# Concentric bias: the iris boundary's rise (grey levels) loses this much
# per pupil radius of horizontal offset between the iris and pupil centres.
# Without it a soft limbus let the centre and radius trade off: turning the
# side arcs from -20..30 to -15..45 degrees moved the circle of CASIA image
# 019_1_1 by 8 px and its radius by 9 px.
_IRIS_CENTRE_PENALTY = 20.0


def _circle_means(
    image: FloatImage,
    centres: npt.NDArray[np.float32],
    radii: npt.NDArray[np.float32],
    angles: FloatImage,
    *,
    sample: Sampler = bilinear,
) -> FloatImage:
    """Return the mean grey level on each circle, shape (centres, radii)."""
    cos = np.cos(angles)[None, None, :]
    sin = np.sin(angles)[None, None, :]
    xs = centres[:, 0, None, None] + radii[None, :, None] * cos
    ys = centres[:, 1, None, None] + radii[None, :, None] * sin
    values = sample(image, ys.astype(np.float32), xs.astype(np.float32))
    means: FloatImage = values.mean(axis=2, dtype=np.float32)
    return means


def _best_circle(
    image: FloatImage,
    centres: npt.NDArray[np.float32],
    radii: npt.NDArray[np.float32],
    angles: FloatImage,
    *,
    smooth: int = 1,
    sample: Sampler = bilinear,
    trim: float = 0.0,
    centre_penalty: FloatImage | None = None,
    peak_only: bool = False,
) -> tuple[Circle, float]:
    """Return the circle with the steepest outward rise of the mean grey level.

    The rise at radius r is mean(r + s) - mean(r - s) with s = ``smooth``
    radius steps, so a soft boundary can still win over texture. With
    ``trim`` above 0 it is a trimmed mean over the angles instead (see
    ``_trimmed_rise``).
    """
    if len(radii) <= 2 * smooth or len(centres) == 0:
        raise CaptureError("no room for a boundary search; recapture the eye")
    if trim > 0:
        rise = _trimmed_rise(
            image, centres, radii, angles, smooth=smooth, trim=trim, sample=sample
        )
    else:
        means = _circle_means(image, centres, radii, angles, sample=sample)
        rise = means[:, 2 * smooth :] - means[:, : -2 * smooth]
    if centre_penalty is not None:
        rise = rise - centre_penalty[:, None]
    if peak_only:
        rise = _peaks_only(rise)
    best = int(np.argmax(rise))
    centre_index, radius_index = divmod(best, rise.shape[1])
    centre = centres[centre_index]
    radius = float(radii[radius_index + smooth])
    return Circle(float(centre[0]), float(centre[1]), radius), float(rise.flat[best])


def _peaks_only(rise: FloatImage) -> FloatImage:
    """Return ``rise`` with every value that is not a radial peak set to -inf.

    A peak is at least as high as both radial neighbours, so neither end of
    the radius range can be one. If there is no peak at all, the rise is
    returned unchanged.
    """
    peak = np.zeros(rise.shape, dtype=bool)
    inner = rise[:, 1:-1]
    peak[:, 1:-1] = (inner >= rise[:, :-2]) & (inner >= rise[:, 2:])
    if not peak.any():
        return rise
    peaks: FloatImage = np.where(peak, rise, np.float32(-np.inf))
    return peaks


def _trimmed_rise(
    image: FloatImage,
    centres: npt.NDArray[np.float32],
    radii: npt.NDArray[np.float32],
    angles: FloatImage,
    *,
    smooth: int,
    trim: float,
    sample: Sampler,
) -> FloatImage:
    """Return the trimmed mean over angles of the outward rise at each radius.

    The rise is taken along each angle on its own and sorted. The lowest
    and highest ``trim`` shares are dropped, so an eyelid, eyelashes or a
    highlight across a minority of the angles neither hides the boundary
    nor creates a false one.
    """
    cos = np.cos(angles)[None, None, :]
    sin = np.sin(angles)[None, None, :]
    xs = centres[:, 0, None, None] + radii[None, :, None] * cos
    ys = centres[:, 1, None, None] + radii[None, :, None] * sin
    values = sample(image, ys.astype(np.float32), xs.astype(np.float32))
    rise = np.sort(values[:, 2 * smooth :] - values[:, : -2 * smooth], axis=2)
    count = rise.shape[2]
    cut = min(int(count * trim), (count - 1) // 2)
    kept: FloatImage = rise[:, :, cut : count - cut].mean(axis=2, dtype=np.float32)
    return kept


def _centre_grid(
    x: float, y: float, half: float, step: float, half_y: float | None = None
) -> FloatImage:
    offsets = np.arange(-half, half + step / 2, step, dtype=np.float32)
    half_y = half if half_y is None else half_y
    offsets_y = np.arange(-half_y, half_y + step / 2, step, dtype=np.float32)
    grid_x, grid_y = np.meshgrid(offsets + x, offsets_y + y)
    return np.stack([grid_x.ravel(), grid_y.ravel()], axis=1).astype(np.float32)


# Darkest windows tried as pupil seeds: eyebrows, lashes or dark print can
# be darker than a pupil that shows highlights.
_PUPIL_SEEDS = 4
# Smallest pupil radius searched, as a share of the dark region's
# equivalent radius: a region that took in the dark inner iris is too big.
_PUPIL_LOW_SHARE = 0.5
# The second dark-region threshold (see ``_pupil_from_seed``) stays above
# the pupil's grey level by this share of the first threshold's span and
# by this many standard deviations of the seed window (sensor noise).
_PUPIL_FLOOR_SHARE = 0.3
_PUPIL_NOISE_SPAN = 3.0


def _find_pupil(
    coarse: FloatImage, short_side: int, factor: int, params: SegmentationParams
) -> Circle:
    """Return the pupil circle on the coarse image.

    Each of the darkest windows of pupil size seeds a search. Among the
    circles inside the frame, the one with the steepest dark-to-bright
    boundary wins (see ``_choose_pupil``).

    Raises:
        CaptureError: no seed gave a dark, round region, no region's
            boundary rises enough to be a pupil, or the pupil is cut by the
            image border.
    """
    radius_min = max(
        2.0,
        min(params.pupil_radius_min * short_side, params.pupil_radius_min_px / factor),
    )
    radius_max = params.pupil_radius_max * short_side
    height, width = coarse.shape

    # Seeds: darkest windows of the smallest pupil's size, away from the
    # edge and from each other.
    means = box_mean(coarse, max(1, int(radius_min * 0.8)))
    margin = int(radius_min)
    inner = means[margin : height - margin, margin : width - margin].copy()
    inside: list[tuple[Circle, float]] = []
    cut: list[tuple[Circle, float]] = []
    last_error: CaptureError | None = None
    for _ in range(_PUPIL_SEEDS):
        darkest = np.unravel_index(int(np.argmin(inner)), inner.shape)
        row, col = int(darkest[0]), int(darkest[1])
        if not np.isfinite(inner[row, col]):
            break
        exclusion = int(1.5 * radius_max)
        inner[
            max(0, row - exclusion) : row + exclusion + 1,
            max(0, col - exclusion) : col + exclusion + 1,
        ] = np.inf
        try:
            candidate = _pupil_from_seed(
                coarse,
                means,
                row + margin,
                col + margin,
                radius_min=radius_min,
                radius_max=radius_max,
                rise_min=params.pupil_rise_min,
            )
        except CaptureError as err:
            last_error = err
            continue
        if _is_cut_by_border(candidate[0], height, width):
            cut.append(candidate)
        else:
            inside.append(candidate)
    if not inside and not cut:
        raise last_error or CaptureError(
            "no dark pupil region found; recapture the eye"
        )
    return _choose_pupil(coarse, inside, cut, params)


def _is_cut_by_border(circle: Circle, height: int, width: int) -> bool:
    """Return whether ``circle`` reaches past the edge of the image."""
    return (
        min(circle.x, circle.y) < circle.radius
        or circle.x + circle.radius > width - 1
        or circle.y + circle.radius > height - 1
    )


def _choose_pupil(
    coarse: FloatImage,
    inside: list[tuple[Circle, float]],
    cut: list[tuple[Circle, float]],
    params: SegmentationParams,
) -> Circle:
    """Return the steepest pupil candidate inside the frame.

    Candidates are (circle, boundary rise in grey levels) pairs, split by
    whether the circle is cut by the image border.

    Steps:
        1. Drop candidates whose boundary rises less than
           ``params.pupil_rise_min``: noise, a checkerboard or a frame
           without an eye has no dark disc on a brighter surround.
        2. Reject the frame when the steepest remaining candidate cut by
           the border rises ``params.cut_pupil_rise_factor`` times as
           steeply as the best one inside. That disc is the pupil, and the
           circle inside is a weaker dark region.
        3. Otherwise return the steepest candidate inside, unless another
           one inside is darker (see ``_darker_pupil``). A border-cut
           candidate that rises less is a dark edge region, such as hair
           or a shadow.

    Raises:
        CaptureError: no candidate rises enough, or the pupil is cut by the
            image border.
    """
    steepest = max(rise for _, rise in inside + cut)
    strong_inside = [c for c in inside if c[1] >= params.pupil_rise_min]
    strong_cut = [c for c in cut if c[1] >= params.pupil_rise_min]
    if not strong_inside and not strong_cut:
        raise CaptureError(
            f"no eye found: the steepest boundary of a dark round region "
            f"rises {steepest:.0f} grey levels (minimum "
            f"{params.pupil_rise_min:.0f}); check that an eye is in front of "
            f"the camera, and check its illuminators and exposure"
        )

    best_cut = max((rise for _, rise in strong_cut), default=0.0)
    best_inside = max(strong_inside, key=lambda c: c[1], default=None)
    if best_inside is None or best_cut > params.cut_pupil_rise_factor * best_inside[1]:
        raise CaptureError("the pupil is cut by the image border; centre the eye")
    return _darker_pupil(coarse, strong_inside, best_inside, params.pupil_rise_min)


# A candidate whose inside is darker than the steepest one's is taken for
# the pupil when its boundary rises at least this share as steeply. On the
# 640 x 480 open-iris frame darkened by gamma 1.5-1.8 the pupil rises 0.78-
# 0.93 times as steeply as a small, lighter dark patch beside the eye. On
# CASIA-IrisV1 eyes 001-080 no candidate that much darker than the steepest
# rises even half as steeply. The value is an estimate.
_DARKER_PUPIL_RISE_SHARE = 0.7


def _darker_pupil(
    coarse: FloatImage,
    candidates: list[tuple[Circle, float]],
    steepest: tuple[Circle, float],
    rise_min: float,
) -> Circle:
    """Return the darkest candidate that rises almost as steeply as the steepest.

    A darker tone curve lowers the pupil's boundary rise, because it
    compresses the dark grey levels, and raises that of lighter dark
    patches. The pupil still has the darkest inside (median over 0.8 of
    the radius). A candidate replaces the steepest one when its inside is
    at least ``rise_min`` grey levels darker, its boundary rises at least
    ``_DARKER_PUPIL_RISE_SHARE`` times as steeply, and it is at least as
    large. Without the size rule, mascara drawn on CASIA eyes 001, 005, 030
    and 060 gave darker lash discs that took the pupil's place.
    """
    chosen = steepest[0]
    chosen_level = float(np.median(_disc_values(coarse, chosen, 0.8)))
    darkest_allowed = chosen_level - rise_min
    for circle, rise in candidates:
        if rise < _DARKER_PUPIL_RISE_SHARE * steepest[1]:
            continue
        # A smaller dark disc is a lash clump or mascara, not a pupil whose
        # edge a tone curve flattened.
        if circle.radius < steepest[0].radius:
            continue
        level = float(np.median(_disc_values(coarse, circle, 0.8)))
        if level <= darkest_allowed and level < chosen_level:
            chosen, chosen_level = circle, level
    return chosen


def _pupil_from_seed(
    coarse: FloatImage,
    means: FloatImage,
    seed_y: int,
    seed_x: int,
    *,
    radius_min: float,
    radius_max: float,
    rise_min: float,
) -> tuple[Circle, float]:
    """Return the pupil circle grown from one seed, with its boundary rise.

    The dark region is grown below two thresholds in turn, and the circle
    with the steeper boundary wins, unless the other circle is a darker
    pupil inside it (see ``_is_pupil_inside``). The first threshold follows
    Otsu on a pupil-sized patch. In a dark exposure the inner iris still
    falls below it, so the second splits the darker pixels again (Otsu),
    held above the pupil's grey level and noise. Under uneven lighting the
    second split can cut the pupil itself in two instead, and the first
    region wins.

    Raises:
        CaptureError: neither threshold gave a dark, pupil-sized region.
    """
    half = int(radius_max * 1.2) + 1
    top, left = max(0, seed_y - half), max(0, seed_x - half)
    patch = coarse[top : seed_y + half + 1, left : seed_x + half + 1]
    threshold = otsu_threshold(patch)
    dark_level = float(means[seed_y, seed_x])
    # Otsu may split (pupil + iris) from sclera and skin, so stay closer to
    # the pupil's own grey level.
    threshold = min(threshold, dark_level + 0.4 * (threshold - dark_level) + 10.0)
    thresholds = [threshold]
    darker = patch[patch < threshold]
    if darker.size > 16:
        window = max(1, int(radius_min * 0.4))
        seed_patch = coarse[
            max(0, seed_y - window) : seed_y + window + 1,
            max(0, seed_x - window) : seed_x + window + 1,
        ]
        floor = dark_level + max(
            _PUPIL_FLOOR_SHARE * (threshold - dark_level),
            _PUPIL_NOISE_SPAN * float(seed_patch.std()),
        )
        second = max(otsu_threshold(darker), floor)
        if second < threshold:
            thresholds.append(second)
    candidates: list[tuple[Circle, float]] = []
    error = CaptureError("no dark pupil region found; recapture the eye")
    for level in thresholds:
        try:
            candidates.append(
                _pupil_below(
                    coarse,
                    patch < level,
                    (top, left),
                    (seed_y, seed_x),
                    radius_min=radius_min,
                    radius_max=radius_max,
                )
            )
        except CaptureError as err:
            error = err
    if not candidates:
        raise error
    best = max(candidates, key=lambda candidate: candidate[1])
    inner = min(candidates, key=lambda candidate: candidate[0].radius)
    if inner is not best and _is_pupil_inside(coarse, inner, best, rise_min):
        return inner
    return best


# A darker disc inside the steepest candidate is taken for the pupil when
# its boundary rises at least this share as steeply. On the 640 x 480
# open-iris frame darkened by gamma 1.5-2.0 the share is 0.57-0.89, and the
# steeper outer circle was the iris. The value is an estimate.
_INNER_PUPIL_RISE_SHARE = 0.5


def _is_pupil_inside(
    coarse: FloatImage,
    inner: tuple[Circle, float],
    outer: tuple[Circle, float],
    rise_min: float,
) -> bool:
    """Return whether ``inner`` is the pupil and ``outer`` the iris around it.

    A darker exposure or tone curve darkens the iris towards the pupil, and
    then both fall below the first dark threshold. The circle around them
    is the iris, and its boundary can rise more steeply than the pupil's.
    ``inner`` is the pupil when all of these hold:

    - it lies inside ``outer`` at a pupil-to-iris ratio of at most 0.75;
    - its boundary rises at least ``rise_min`` grey levels, and at least
      ``_INNER_PUPIL_RISE_SHARE`` times as steeply as the outer one;
    - the ring between the two circles is at least ``rise_min`` grey
      levels brighter (medians) than the inner disc. This keeps a pupil
      that the darker threshold cut in two, whose parts are about equally
      dark.
    """
    (small, small_rise), (large, large_rise) = inner, outer
    offset = math.hypot(small.x - large.x, small.y - large.y)
    if offset + small.radius > large.radius or small.radius > 0.75 * large.radius:
        return False
    if small_rise < max(rise_min, _INNER_PUPIL_RISE_SHARE * large_rise):
        return False

    height, width = coarse.shape
    ys, xs = np.mgrid[0:height, 0:width]
    to_small = np.hypot(xs - small.x, ys - small.y)
    ring = (to_small > small.radius + 1) & (
        np.hypot(xs - large.x, ys - large.y) < large.radius - 1
    )
    disc = to_small < 0.8 * small.radius
    if not ring.any() or not disc.any():
        return False
    contrast = float(np.median(coarse[ring]) - np.median(coarse[disc]))
    return contrast >= rise_min


def _pupil_below(
    coarse: FloatImage,
    dark: BoolImage,
    corner: tuple[int, int],
    seed: tuple[int, int],
    *,
    radius_min: float,
    radius_max: float,
) -> tuple[Circle, float]:
    """Return the pupil circle of the dark patch region nearest the seed.

    ``dark`` marks the pixels below a threshold in the patch whose top-left
    corner is at ``corner`` (row, column) of ``coarse``.
    """
    top, left = corner
    # An opening cuts eyelashes that touch the pupil off the dark region.
    opening = max(1, int(radius_min * 0.4))
    dark = dilate(box_mean(dark, opening) > 0.999, opening) & dark
    seed_row, seed_col = seed[0] - top, seed[1] - left
    if not dark[seed_row, seed_col]:
        rows, cols = np.nonzero(dark)
        if rows.size == 0:
            raise CaptureError("no dark pupil region found; recapture the eye")
        distance = (rows - seed_row) ** 2 + (cols - seed_col) ** 2
        nearest_index = int(np.argmin(distance))
        seed_row, seed_col = int(rows[nearest_index]), int(cols[nearest_index])
    region = _grow_region(dark, seed_row, seed_col)
    area = int(region.sum())
    if area < math.pi * radius_min**2 * 0.3:
        raise CaptureError("no dark pupil region found; recapture the eye")
    rows, cols = np.nonzero(region)
    centre_x = float(cols.mean()) + left
    centre_y = float(rows.mean()) + top
    estimate = math.sqrt(area / math.pi)

    # Circle search near the centroid.
    centre_half = max(2.0, 0.2 * estimate)
    centres = _centre_grid(centre_x, centre_y, centre_half, 1.0)
    low = max(radius_min, _PUPIL_LOW_SHARE * estimate)
    high = min(radius_max, 1.3 * estimate + 2)
    radii = np.arange(low - 1, high + 2, 1.0, dtype=np.float32)
    circle, rise = _best_circle(coarse, centres, radii, _FULL_CIRCLE, sample=nearest)

    # Re-centre while the best circle sits on the edge of the centre grid.
    for _ in range(3):
        offset = max(abs(circle.x - centre_x), abs(circle.y - centre_y))
        if offset < centre_half - 0.5:
            break
        centre_x, centre_y = circle.x, circle.y
        centres = _centre_grid(centre_x, centre_y, centre_half, 1.0)
        circle, rise = _best_circle(
            coarse, centres, radii, _FULL_CIRCLE, sample=nearest
        )
    return circle, rise


def _grow_region(dark: BoolImage, seed_row: int, seed_col: int) -> BoolImage:
    """Return the 4-connected part of ``dark`` that contains the seed."""
    region = np.zeros_like(dark)
    if not dark[seed_row, seed_col]:
        return region
    region[seed_row, seed_col] = True
    for _ in range(4 * max(dark.shape)):
        grown = region.copy()
        grown[1:, :] |= region[:-1, :]
        grown[:-1, :] |= region[1:, :]
        grown[:, 1:] |= region[:, :-1]
        grown[:, :-1] |= region[:, 1:]
        grown &= dark
        if np.array_equal(grown, region):
            break
        region = grown
    return region


def _find_iris(
    coarse: FloatImage,
    pupil: Circle,
    short_side: int,
    factor: int,
    params: SegmentationParams,
) -> Circle:
    """Return the iris circle on the coarse image, given the coarse pupil.

    ``short_side`` is the coarse image's short side, and ``factor`` the
    block size of the coarse image in full-resolution pixels.
    """
    floor = min(params.iris_radius_min * short_side, params.iris_radius_min_px / factor)
    # Start the search well outside the pupil: the collarette and the pupil's
    # own edge are stronger than the soft iris-sclera boundary.
    low = max(floor, pupil.radius * 1.45)
    high = min(params.iris_radius_max * short_side, pupil.radius / params.ratio_min)
    if high <= low + 4:
        raise CaptureError("iris search range is empty; recapture the eye")
    radii = np.arange(low - 2, high + 2, 1.0, dtype=np.float32)
    # The iris centre sits close to the pupil's. The side arcs cannot fix
    # its height, because moving the centre up or down changes their radius
    # by at most sin(30 deg) of the move. A search over heights followed
    # lashes and texture: the iris centre's height above the pupil's varied
    # by 12 px between the 7 images of CASIA eye 004. So the iris takes the
    # pupil's height, and only its horizontal offset is searched.
    centres = _centre_grid(
        pupil.x,
        pupil.y,
        max(2.0, _IRIS_CENTRE_DX * pupil.radius),
        1.0,
        half_y=0.0,
    )
    circle, _ = _best_circle(
        coarse,
        centres,
        radii,
        _SIDE_SECTORS,
        smooth=2,
        sample=nearest,
        trim=_IRIS_TRIM,
        centre_penalty=_IRIS_CENTRE_PENALTY
        * np.abs(centres[:, 0] - pupil.x)
        / pupil.radius,
        peak_only=True,
    )
    return circle


def _to_full(circle: Circle, factor: int) -> Circle:
    """Return a coarse-image circle in full-resolution pixels."""
    offset = (factor - 1) / 2
    return Circle(
        circle.x * factor + offset, circle.y * factor + offset, circle.radius * factor
    )


def _fill_around(grey: FloatImage, reflections: BoolImage, iris: Circle) -> FloatImage:
    """Return ``grey`` with the highlights near the iris filled."""
    height, width = grey.shape
    half = int(iris.radius * 1.3) + 8
    top, bottom = max(0, int(iris.y) - half), min(height, int(iris.y) + half)
    left, right = max(0, int(iris.x) - half), min(width, int(iris.x) + half)
    filled = grey.copy()
    filled[top:bottom, left:right] = fill_masked(
        grey[top:bottom, left:right], reflections[top:bottom, left:right], 2
    )
    return filled


def _refine(
    image: FloatImage,
    circle: Circle,
    factor: int,
    angles: FloatImage,
    *,
    smooth: int = 1,
    half_y_share: float = 1.0,
    trim: float = 0.0,
    centre_x: float = 0.0,
    centre_penalty: float = 0.0,
) -> Circle:
    """Return the best circle within one coarse pixel of ``circle``."""
    if factor == 1:
        half, step = 1.0, 0.5
    else:
        half, step = float(factor), max(0.5, factor / 2)
    centres = _centre_grid(circle.x, circle.y, half, step, half_y=half * half_y_share)
    radii = np.arange(
        circle.radius - 1.5 * factor - smooth,
        circle.radius + 1.5 * factor + smooth + 0.01,
        0.5,
        dtype=np.float32,
    )
    refined, _ = _best_circle(
        image,
        centres,
        radii,
        angles,
        smooth=2 * smooth,
        trim=trim,
        centre_penalty=centre_penalty * np.abs(centres[:, 0] - centre_x),
    )
    return refined


def _edge_contrast(image: FloatImage, circle: Circle, angles: FloatImage) -> float:
    """Return the grey-level step across a boundary (outside minus inside)."""
    span = max(2.0, 0.1 * circle.radius)
    radii = np.asarray([circle.radius - span, circle.radius + span], dtype=np.float32)
    centre = np.asarray([[circle.x, circle.y]], dtype=np.float32)
    means = _circle_means(image, centre, radii, angles)
    return float(means[0, 1] - means[0, 0])
