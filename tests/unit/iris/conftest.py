"""Helpers for the iris tests: synthetic eye images drawn in numpy."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest


def draw_eye(
    *,
    width: int = 320,
    height: int = 280,
    pupil: tuple[float, float, float] = (160.0, 140.0, 40.0),
    iris: tuple[float, float, float] = (162.0, 141.0, 100.0),
    seed: int = 0,
    highlights: tuple[tuple[float, float, float], ...] = (),
) -> npt.NDArray[np.uint8]:
    """Return a greyscale eye: bright sclera, textured iris, dark pupil.

    ``highlights`` are (x, y, radius) discs painted at grey level 255, the
    way an NIR illuminator's reflection appears on the cornea.
    """
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.full((height, width), 200.0, dtype=np.float32)
    iris_distance = np.hypot(xs - iris[0], ys - iris[1])
    angle = np.arctan2(ys - iris[1], xs - iris[0])
    texture = (
        20 * np.sin(angle * 23 + iris_distance * 0.21)
        + 15 * np.cos(angle * 37 - iris_distance * 0.13)
        + rng.normal(0, 6, size=image.shape)
    )
    inside_iris = iris_distance < iris[2]
    image[inside_iris] = 120 + texture[inside_iris]
    inside_pupil = np.hypot(xs - pupil[0], ys - pupil[1]) < pupil[2]
    image[inside_pupil] = 30 + rng.normal(0, 2, size=int(inside_pupil.sum()))
    for x, y, radius in highlights:
        image[np.hypot(xs - x, ys - y) < radius] = 255
    return np.clip(image, 0, 255).astype(np.uint8)


EyeDrawer = Callable[..., npt.NDArray[np.uint8]]


@pytest.fixture
def eye_drawer() -> EyeDrawer:
    """Return ``draw_eye``, since test modules cannot import this file."""
    return draw_eye
