"""Small numpy image operations shared by the synthetic generators.

The rig runs where only numpy and Pillow are installed, so resampling,
blurring and smooth random fields are written here in plain numpy. Every
function is deterministic given its inputs and the random generator passed in.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatImage = npt.NDArray[np.float32]


def sample_bilinear(
    image: FloatImage,
    rows: npt.NDArray[np.float32],
    cols: npt.NDArray[np.float32],
    fill: float,
) -> FloatImage:
    """Sample ``image`` at fractional positions with bilinear interpolation.

    Args:
        image: 2-D source image.
        rows: row coordinate of each output pixel, any shape.
        cols: column coordinate of each output pixel, same shape as ``rows``.
        fill: value for positions outside the source image.

    Returns:
        The sampled values, shaped like ``rows``.
    """
    height, width = image.shape
    inside = (rows >= 0) & (rows <= height - 1) & (cols >= 0) & (cols <= width - 1)
    r = np.clip(rows, 0, height - 1.001)
    c = np.clip(cols, 0, width - 1.001)
    r0 = np.floor(r).astype(np.int32)
    c0 = np.floor(c).astype(np.int32)
    dr = (r - r0).astype(np.float32)
    dc = (c - c0).astype(np.float32)

    top = image[r0, c0] * (1 - dc) + image[r0, c0 + 1] * dc
    bottom = image[r0 + 1, c0] * (1 - dc) + image[r0 + 1, c0 + 1] * dc
    values = top * (1 - dr) + bottom * dr
    return np.where(inside, values, np.float32(fill)).astype(np.float32)


def gaussian_blur(image: FloatImage, sigma_px: float) -> FloatImage:
    """Blur with a separable Gaussian of ``sigma_px`` pixels (edges reflected)."""
    if sigma_px <= 0.05:
        return image.astype(np.float32)
    radius = max(1, int(3 * sigma_px + 0.5))
    offsets = np.arange(-radius, radius + 1, dtype=np.float32)
    kernel = np.exp(-0.5 * (offsets / sigma_px) ** 2)
    kernel /= kernel.sum()

    padded = np.pad(image, radius, mode="reflect").astype(np.float32)
    # Convolve columns, then rows, as running sums of shifted copies.
    height, width = image.shape
    horizontal = np.zeros((padded.shape[0], width), dtype=np.float32)
    for index, weight in enumerate(kernel):
        horizontal += weight * padded[:, index : index + width]
    result = np.zeros((height, width), dtype=np.float32)
    for index, weight in enumerate(kernel):
        result += weight * horizontal[index : index + height, :]
    return result


def smooth_noise(
    rng: np.random.Generator, shape: tuple[int, int], scale_px: float
) -> FloatImage:
    """Return a smooth random field with zero mean and unit standard deviation.

    Args:
        rng: the random generator to draw from.
        shape: (height, width) of the field.
        scale_px: correlation length in pixels; larger means smoother.

    Returns:
        The field as float32.
    """
    # Low-pass white noise in the frequency domain: faster than a wide blur.
    white = rng.standard_normal(shape).astype(np.float32)
    freq_rows = np.fft.fftfreq(shape[0])[:, None]
    freq_cols = np.fft.rfftfreq(shape[1])[None, :]
    gain = np.exp(-2 * (np.pi * scale_px) ** 2 * (freq_rows**2 + freq_cols**2))
    field = np.fft.irfft2(np.fft.rfft2(white) * gain, s=shape).astype(np.float32)
    spread = float(field.std())
    if spread > 0:
        field = (field - field.mean()) / spread
    return field.astype(np.float32)


def to_uint8(image: FloatImage) -> npt.NDArray[np.uint8]:
    """Round and clip a float image to 8-bit grey levels."""
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)
