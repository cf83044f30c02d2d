"""Tests of the box mean that segmentation and the eyelid fit depend on."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from edge_gate.iris._filters import box_mean


def naive_box_mean(
    image: npt.NDArray[np.generic], radius: int
) -> npt.NDArray[np.float64]:
    padded = np.pad(image.astype(np.float64), radius, mode="edge")
    height, width = image.shape
    total = np.zeros((height, width))
    for row in range(2 * radius + 1):
        for column in range(2 * radius + 1):
            total += padded[row : row + height, column : column + width]
    mean: npt.NDArray[np.float64] = total / (2 * radius + 1) ** 2
    return mean


@pytest.mark.parametrize("dtype", [np.uint8, np.bool_, np.float32])
@pytest.mark.parametrize("radius", [1, 3, 7])
def test_box_mean_equals_window_sums(dtype: type, radius: int) -> None:
    rng = np.random.default_rng(radius)
    image = (rng.random((48, 64)) * 255).astype(dtype)
    expected = naive_box_mean(image, radius).astype(np.float32)
    if dtype is np.float32:
        # Fractional grey levels sum in another order, so the last bit may differ.
        np.testing.assert_allclose(box_mean(image, radius), expected, rtol=1e-6)
    else:
        assert np.array_equal(box_mean(image, radius), expected)


def test_box_mean_exact_on_white_frame() -> None:
    # The integral image of a white 640 x 480 frame reaches about 84 million
    # (padding included) in its last corner, which the integer sums must hold
    # without wrapping.
    image = np.full((480, 640), 255, dtype=np.uint8)
    assert np.array_equal(box_mean(image, 9), np.full((480, 640), 255.0, np.float32))
