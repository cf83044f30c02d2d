"""Small image operations in plain numpy used by segmentation and quality.

All functions take and return float32 arrays unless stated. They avoid
SciPy and OpenCV so that the lane's iris path needs only numpy and ONNX
Runtime.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatImage = npt.NDArray[np.float32]
BoolImage = npt.NDArray[np.bool_]


def box_mean(image: npt.NDArray[np.generic], radius: int) -> FloatImage:
    """Return the mean over a (2r+1) x (2r+1) window, edges replicated."""
    if radius <= 0:
        return image.astype(np.float32, copy=True)
    # Whole grey levels sum exactly in integers, other values need float64.
    # int32 is used when the largest possible sum fits (uint8 frames up to
    # about 8 megapixels) because it is faster than int64. One measurement on
    # a 640 x 480 frame gave 1.3 ms against 2.3 ms on a shared two-core machine.
    exact = image.dtype in (np.uint8, np.bool_)
    padded = np.pad(image, radius + 1, mode="edge")
    if exact:
        total_max = padded.size * (255 if image.dtype == np.uint8 else 1)
        accumulator = np.int32 if total_max < 2**31 else np.int64
        integral = padded.cumsum(axis=0, dtype=accumulator)
        integral = integral.cumsum(axis=1, dtype=accumulator)
    else:
        integral = padded.astype(np.float64).cumsum(axis=0).cumsum(axis=1)
    size = 2 * radius + 1
    height, width = image.shape
    bottom_right = integral[size : size + height, size : size + width]
    top_right = integral[0:height, size : size + width]
    bottom_left = integral[size : size + height, 0:width]
    top_left = integral[0:height, 0:width]
    total = bottom_right - top_right - bottom_left + top_left
    mean: FloatImage = (total / (size * size)).astype(np.float32)
    return mean


def downsample(image: FloatImage, factor: int) -> FloatImage:
    """Return the block mean of ``factor`` x ``factor`` blocks (crops the rest)."""
    if factor == 1:
        return image.astype(np.float32, copy=True)
    height = image.shape[0] // factor * factor
    width = image.shape[1] // factor * factor
    blocks = image[:height, :width].reshape(
        height // factor, factor, width // factor, factor
    )
    mean: FloatImage = blocks.mean(axis=(1, 3), dtype=np.float32)
    return mean


def dilate(mask: BoolImage, radius: int) -> BoolImage:
    """Return the binary dilation of ``mask`` by a square of side 2r+1."""
    if radius <= 0:
        return mask.copy()
    return box_mean(mask, radius) > 1e-6


def fill_masked(image: FloatImage, mask: BoolImage, radius: int) -> FloatImage:
    """Fill the pixels under ``mask`` from their unmasked surroundings.

    Repeats a normalised box average (valid pixels only) with a growing
    window until every masked pixel has a value, so that a specular spot in
    the pupil takes the pupil's dark grey level instead of staying bright.
    """
    filled = image.astype(np.float32, copy=True)
    if not mask.any():
        return filled
    valid = (~mask).astype(np.float32)
    remaining = mask.copy()
    window = max(1, radius)
    for _ in range(8):
        weights = box_mean(valid, window)
        sums = box_mean(filled * valid, window)
        reachable = remaining & (weights > 1e-3)
        filled[reachable] = sums[reachable] / weights[reachable]
        valid[reachable] = 1.0
        remaining &= ~reachable
        if not remaining.any():
            break
        window *= 2
    if remaining.any():
        filled[remaining] = float(np.median(image[~mask])) if (~mask).any() else 0.0
    return filled


def nearest(
    image: FloatImage, rows: npt.NDArray[np.float32], cols: npt.NDArray[np.float32]
) -> FloatImage:
    """Sample ``image`` at the nearest pixel to each point, clamped to its edges."""
    height, width = image.shape
    row_index = np.clip(np.rint(rows), 0, height - 1).astype(np.intp)
    col_index = np.clip(np.rint(cols), 0, width - 1).astype(np.intp)
    return image[row_index, col_index]


def bilinear(
    image: FloatImage, rows: npt.NDArray[np.float32], cols: npt.NDArray[np.float32]
) -> FloatImage:
    """Sample ``image`` at fractional (row, col) points, clamped to its edges."""
    height, width = image.shape
    rows = np.clip(rows, 0.0, height - 1.001)
    cols = np.clip(cols, 0.0, width - 1.001)
    row0 = rows.astype(np.intp)
    col0 = cols.astype(np.intp)
    drow = (rows - row0).astype(np.float32)
    dcol = (cols - col0).astype(np.float32)
    top = image[row0, col0] * (1 - dcol) + image[row0, col0 + 1] * dcol
    bottom = image[row0 + 1, col0] * (1 - dcol) + image[row0 + 1, col0 + 1] * dcol
    return (top * (1 - drow) + bottom * drow).astype(np.float32)


def otsu_threshold(values: npt.NDArray[np.float32]) -> float:
    """Return Otsu's threshold of grey levels in [0, 255]."""
    histogram, edges = np.histogram(values, bins=64, range=(0.0, 256.0))
    weights = histogram.astype(np.float64)
    centres = (edges[:-1] + edges[1:]) / 2
    below = np.cumsum(weights)
    above = below[-1] - below
    sum_below = np.cumsum(weights * centres)
    mean_below = sum_below / np.maximum(below, 1e-9)
    mean_above = (sum_below[-1] - sum_below) / np.maximum(above, 1e-9)
    between = below * above * (mean_below - mean_above) ** 2
    return float(edges[int(np.argmax(between)) + 1])


def laplacian_energy(image: FloatImage) -> float:
    """Return the mean squared response of a 4-neighbour Laplacian."""
    if image.shape[0] < 3 or image.shape[1] < 3:
        return 0.0
    centre = image[1:-1, 1:-1]
    response = (
        image[:-2, 1:-1] + image[2:, 1:-1] + image[1:-1, :-2] + image[1:-1, 2:]
    ) - 4 * centre
    return float(np.mean(response.astype(np.float64) ** 2))
