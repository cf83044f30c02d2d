"""Reading eye images and ranking frames by sharpness."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from edge_gate._image_file import quote_path, read_greyscale_image
from edge_gate.errors import ImageError
from edge_gate.iris._filters import downsample, laplacian_energy

# File name suffixes read as eye images (lower case).
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm"})
MIN_SIDE_PX = 64
# The largest image decoded: 4096 x 4096, 16.8 megapixels, 55 times a
# 640 x 480 camera frame and well above the eye images of research data sets.
MAX_PIXELS = 4096 * 4096


def load_iris_image(path: Path | str) -> npt.NDArray[np.uint8]:
    """Read an eye image file as 8-bit greyscale.

    Colour images are converted to grey (ITU-R 601 luma, as Pillow does),
    and 16-bit greyscale is scaled by its format's full scale.

    Raises:
        ImageError: the file is missing, a folder, unreadable, empty, not an
            image, truncated or corrupt, larger than ``MAX_PIXELS`` (checked
            from the header before decoding), smaller than 64 x 64 pixels,
            or in a pixel format without a sound conversion to 8-bit grey
            (see ``edge_gate._image_file.read_greyscale_image``).
    """
    image_path = Path(path)
    grey = read_greyscale_image(image_path, kind="iris image", max_pixels=MAX_PIXELS)
    return check_frame(grey, quote_path(image_path))


def check_frame(frame: npt.NDArray[np.uint8], source: str) -> npt.NDArray[np.uint8]:
    """Return ``frame`` if it is a usable 2-D uint8 image.

    Raises:
        ImageError: wrong dtype, dimensions or a side under 64 pixels.
    """
    if frame.dtype != np.uint8 or frame.ndim != 2:
        raise ImageError(
            f"iris frame from {source} must be 2-D uint8 greyscale, got "
            f"{frame.dtype} with shape {frame.shape}"
        )
    if min(frame.shape) < MIN_SIDE_PX:
        raise ImageError(
            f"iris frame from {source} is {frame.shape[1]} x {frame.shape[0]} "
            f"pixels; at least {MIN_SIDE_PX} x {MIN_SIDE_PX} are needed"
        )
    return frame


def frame_sharpness(frame: npt.NDArray[np.uint8]) -> float:
    """Return a focus measure of a frame: Laplacian energy of its centre.

    The centre half of the frame (where the eye is framed) is block-averaged
    to about 160 pixels on its short side first, so that sensor noise does
    not count as detail and frames of any size compare on one scale.
    """
    height, width = frame.shape
    centre = frame[height // 4 : height - height // 4, width // 4 : width - width // 4]
    factor = max(1, min(centre.shape) // 160)
    return laplacian_energy(downsample(centre.astype(np.float32), factor))
