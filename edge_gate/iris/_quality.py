"""Iris image quality after ISO/IEC 29794-6.

Each measure is computed from the segmentation and the unwrapped strip and
scored in [0, 1] by a linear ramp between an "unusable" and a "good"
limit; the overall quality is the lowest of these scores, so a single bad
property (a closed eye, a blurred frame) is enough to ask for a recapture.

The limits follow the standard's recommendations where it gives numbers
(usable iris area, pupil-to-iris ratio, iris diameter, margins); the
sharpness limits are estimates from CASIA-IrisV1 images and need checking
on the gate camera's own frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edge_gate.iris._filters import FloatImage, laplacian_energy
from edge_gate.iris._normalize import IrisStrip
from edge_gate.iris._segment import Segmentation


@dataclass(frozen=True)
class IrisQuality:
    """Quality measures of one capture and its overall score.

    Attributes:
        usable_iris_area: share of the iris annulus free of eyelids,
            eyelashes and highlights.
        pupil_iris_ratio: pupil radius / iris radius (dilation).
        iris_diameter_px: iris diameter in image pixels.
        iris_pupil_contrast: grey-level step at the pupil boundary.
        iris_sclera_contrast: grey-level step at the iris boundary.
        concentricity: distance of the two centres / iris radius.
        margin: smallest distance from the iris circle to the image edge,
            in iris radii (negative when the iris is cut off).
        sharpness: mean squared Laplacian over the iris box.
        gaze_offset: estimate of off-axis gaze; 0 looks straight in.
            NOTE: this is the pupil-iris centre offset only (the same value
            as ``concentricity``), because circles, unlike ellipses, show no
            foreshortening.
        score: overall quality in [0, 1], the lowest of the measure scores.
        limiting: name of the measure that set the score.
    """

    usable_iris_area: float
    pupil_iris_ratio: float
    iris_diameter_px: float
    iris_pupil_contrast: float
    iris_sclera_contrast: float
    concentricity: float
    margin: float
    sharpness: float
    gaze_offset: float
    score: float
    limiting: str


def _ramp(value: float, bad: float, good: float) -> float:
    """Return 0 at ``bad``, 1 at ``good``, linear between, clipped."""
    if good == bad:
        return 1.0 if value >= good else 0.0
    return min(1.0, max(0.0, (value - bad) / (good - bad)))


def assess_quality(segmentation: Segmentation, strip: IrisStrip) -> IrisQuality:
    """Compute the quality measures of one segmented capture.

    Args:
        segmentation: pupil and iris circles and the filled image.
        strip: the unwrapped iris with its valid mask.

    Returns:
        The measures and the overall score.
    """
    pupil, iris = segmentation.pupil, segmentation.iris
    image = segmentation.filled
    height, width = image.shape

    usable = float(strip.valid.mean())
    ratio = pupil.radius / max(iris.radius, 1e-6)
    diameter = 2 * iris.radius
    offset = math.hypot(pupil.x - iris.x, pupil.y - iris.y) / max(iris.radius, 1e-6)
    margin = (
        min(iris.x, width - 1 - iris.x, iris.y, height - 1 - iris.y) - iris.radius
    ) / max(iris.radius, 1e-6)
    sharpness = _iris_sharpness(image, iris.x, iris.y, iris.radius)

    scores = {
        # ISO/IEC 29794-6 recommends at least 70 % usable area; below
        # about 40 % comparisons lose too many bits.
        "usable_iris_area": _ramp(usable, 0.35, 0.6),
        # Dilation outside 0.2-0.7 makes the rubber sheet unreliable.
        "pupil_iris_ratio": min(_ramp(ratio, 0.15, 0.2), _ramp(-ratio, -0.75, -0.7)),
        # 29794-6: at least 150 px recommended, below 100 px unusable. The
        # iris search reaches below this floor (SegmentationParams'
        # iris_radius_min_px), so a smaller eye is scored here instead of
        # being given a wider circle.
        "iris_diameter_px": _ramp(diameter, 100.0, 150.0),
        "iris_pupil_contrast": _ramp(segmentation.pupil_contrast, 8.0, 25.0),
        "iris_sclera_contrast": _ramp(segmentation.iris_contrast, 3.0, 10.0),
        "concentricity": _ramp(-offset, -0.35, -0.2),
        "margin": _ramp(margin, -0.25, 0.0),
        # Estimate from CASIA-IrisV1 (tune on the gate camera's frames).
        "sharpness": _ramp(sharpness, 2.0, 8.0),
    }
    limiting = min(scores, key=lambda name: scores[name])
    return IrisQuality(
        usable_iris_area=usable,
        pupil_iris_ratio=ratio,
        iris_diameter_px=diameter,
        iris_pupil_contrast=segmentation.pupil_contrast,
        iris_sclera_contrast=segmentation.iris_contrast,
        concentricity=offset,
        margin=margin,
        sharpness=sharpness,
        gaze_offset=offset,
        score=scores[limiting],
        limiting=limiting,
    )


def _iris_sharpness(image: FloatImage, x: float, y: float, radius: float) -> float:
    """Return the Laplacian energy in the box inscribed in the iris circle."""
    half = max(4, int(radius * 0.7))
    top, left = max(0, int(y) - half), max(0, int(x) - half)
    box = image[top : int(y) + half, left : int(x) + half]
    return laplacian_energy(box.astype(np.float32))
