"""Fingerprint image loading, checks and the optical-sensor view of an image.

Images are 2-D ``uint8`` arrays, dark ridges on a light background, as the
optical UART modules and the FVC data sets deliver them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from edge_gate._image_file import quote_path, read_greyscale_image
from edge_gate.errors import ImageError

MIN_SIDE_PX: Final = 64
MAX_SIDE_PX: Final = 2048
#: The largest image decoded, a square of ``MAX_SIDE_PX``: 4.2 megapixels,
#: about 57 times the 256 x 288 image of an optical UART module.
MAX_PIXELS: Final = MAX_SIDE_PX * MAX_SIDE_PX
FOREGROUND_BLOCK_PX: Final = 16

ImageArray = npt.NDArray[np.uint8]


def load_fingerprint_image(path: Path | str) -> ImageArray:
    """Read an image file as 8-bit greyscale.

    Colour images are converted to grey (ITU-R 601 luma), and 16-bit
    greyscale is scaled by its format's full scale.

    Args:
        path: a TIFF, PNG, BMP, JPEG or other file Pillow reads.

    Returns:
        The image, shape (height, width), dtype uint8.

    Raises:
        ImageError: the file is missing, a folder, unreadable, empty, in an
            unknown format, truncated or corrupt, in a pixel format without
            a sound conversion to 8-bit grey (see
            ``edge_gate._image_file.read_greyscale_image``), or too small
            or too large to hold a fingerprint. The header's size is checked
            against ``MAX_PIXELS`` before any pixel data is decoded.
    """
    image = read_greyscale_image(path, kind="fingerprint image", max_pixels=MAX_PIXELS)
    check_image(image, quote_path(path))
    return image


def check_image(image: npt.NDArray[np.generic], name: str = "image") -> None:
    """Raise ImageError unless ``image`` is a 2-D uint8 array of usable size."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 2:
        shape = getattr(image, "shape", None)
        dtype = getattr(image, "dtype", type(image).__name__)
        raise ImageError(
            f"{name}: expected a 2-D uint8 greyscale array, got {dtype} {shape}"
        )
    height, width = image.shape
    if min(height, width) < MIN_SIDE_PX or max(height, width) > MAX_SIDE_PX:
        raise ImageError(
            f"{name}: {width}x{height} pixels is outside {MIN_SIDE_PX}.."
            f"{MAX_SIDE_PX} per side; a 500 dpi fingerprint needs about 256x288"
        )


def foreground_blocks(
    image: ImageArray, block_px: int = FOREGROUND_BLOCK_PX
) -> npt.NDArray[np.bool_]:
    """Mark the blocks that hold ridges (high local contrast).

    Args:
        image: greyscale image.
        block_px: block side in pixels.

    Returns:
        Boolean array (height // block_px, width // block_px).
    """
    rows, cols = image.shape[0] // block_px, image.shape[1] // block_px
    blocks = image[: rows * block_px, : cols * block_px].reshape(
        rows, block_px, cols, block_px
    )
    spread = blocks.astype(np.float32).std(axis=(1, 3))
    # Ridges give a grey-level spread of tens of levels; flat background and
    # sensor noise a few. The floor of 8 levels is a guess that held on the
    # FVC sets and 16-level sensor images; tune it on a new sensor's blanks.
    limit = max(8.0, 0.25 * float(np.percentile(spread, 95)))
    mask: npt.NDArray[np.bool_] = spread > limit
    return mask


def emulate_sensor_image(
    image: ImageArray, width: int = 256, height: int = 288, levels: int = 16
) -> ImageArray:
    """Show an image as an optical UART module would deliver it.

    1. Centre a ``width`` x ``height`` window on the fingerprint's foreground
       (white padding where the image is smaller).
    2. Quantise to ``levels`` grey levels and expand back to 0..255.

    Args:
        image: greyscale image at the module's resolution (about 500 dpi).
        width: module image width in pixels.
        height: module image height in pixels.
        levels: grey levels the module transmits (16 for 4-bit pixels).

    Returns:
        uint8 array of shape (height, width).
    """
    check_image(image)
    mask = foreground_blocks(image)
    ys, xs = np.nonzero(mask)
    if len(ys):
        centre_y = (ys.mean() + 0.5) * FOREGROUND_BLOCK_PX
        centre_x = (xs.mean() + 0.5) * FOREGROUND_BLOCK_PX
    else:
        centre_y, centre_x = image.shape[0] / 2, image.shape[1] / 2
    top = int(np.clip(round(centre_y - height / 2), 0, max(image.shape[0] - height, 0)))
    left = int(np.clip(round(centre_x - width / 2), 0, max(image.shape[1] - width, 0)))
    window = np.full((height, width), 255, dtype=np.uint8)
    part = image[top : top + height, left : left + width]
    window[: part.shape[0], : part.shape[1]] = part
    step = 256 // levels
    quantised = (window // step).astype(np.uint16) * 255 // (levels - 1)
    return quantised.astype(np.uint8)
