"""Reading untrusted image files as 8-bit greyscale, shared by both modalities.

Image files come from data sets, the rig's camera folder and ``edge-gate``
commands, and any of them may be unusable. Every such file raises one
``ImageError`` whose message names the cause: a missing path, a folder or
other non-regular file, a permission problem, an empty file, an unknown
format, a pixel count over the caller's bound, or truncated or corrupt data.

The pixel count is checked from the image header, before any pixel data is
decoded, so a small file that declares a huge image (a decompression bomb)
is rejected without allocating its pixels.
"""

from __future__ import annotations

import os
import re
import stat
import warnings
from pathlib import Path
from typing import IO

import numpy as np
import numpy.typing as npt

from edge_gate.errors import ImageError

# Pillow warns on stderr about damaged EXIF metadata that does not stop
# decoding; images are judged by their pixels. The filter is set once here,
# because catch_warnings() around each read is not thread-safe.
warnings.filterwarnings("ignore", message="Corrupt EXIF data", category=UserWarning)

# The pixel count in the message of Pillow's DecompressionBombError
# (Pillow 13.0: "Image size (N pixels) exceeds limit of M pixels, ...").
_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")


def read_greyscale_image(
    path: Path | str, *, kind: str, max_pixels: int
) -> npt.NDArray[np.uint8]:
    """Decode an image file to a 2-D ``uint8`` greyscale array.

    1. Open the path without blocking, and accept only a regular file.
    2. Read the header, and reject a format Pillow does not know or a width
       times height over ``max_pixels``.
    3. Decode and convert to grey (ITU-R 601 luma for colour images).

    Args:
        path: The image file.
        kind: What the image is, for messages (``"iris image"``).
        max_pixels: The largest width times height decoded.

    Returns:
        The image, shape (height, width).

    Raises:
        ImageError: The file is missing, a folder or other non-regular
            file, not readable, empty, in an unknown format, larger than
            ``max_pixels``, or truncated or corrupt.
    """
    image_path = Path(path)
    with _open_regular_file(image_path, kind) as stream:
        return _decode(stream, image_path, kind, max_pixels)


def check_image_file(path: Path | str, *, kind: str) -> None:
    """Check that ``path`` is a non-empty regular file this process can read.

    The check opens the file but decodes nothing. Callers use it to tell a
    file problem (fix the data set) from an image the matcher cannot use.

    Args:
        path: The image file.
        kind: What the image is, for messages (``"iris image"``).

    Raises:
        ImageError: The file is missing, a folder or other non-regular
            file, not readable or empty.
    """
    with _open_regular_file(Path(path), kind):
        pass


def _open_regular_file(path: Path, kind: str) -> IO[bytes]:
    """Open ``path`` for reading if it is a non-empty regular file.

    ``O_NONBLOCK`` keeps a FIFO from blocking the caller until a writer
    appears. It has no effect on reads from a regular file.

    Raises:
        ImageError: The path is missing, not a regular file, not readable
            or empty.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError as err:
        raise ImageError(f"{kind} {path} not found; check the path") from err
    except PermissionError as err:
        raise ImageError(
            f"{kind} {path} cannot be read: permission denied; give the user "
            "running edge-gate read access to the file and its folders"
        ) from err
    except OSError as err:
        raise ImageError(
            f"{kind} {path} cannot be opened: {err.strerror}; check the path"
        ) from err

    try:
        _check_regular_file(os.fstat(descriptor), path, kind)
    except BaseException:
        os.close(descriptor)
        raise
    return os.fdopen(descriptor, "rb")


def _check_regular_file(status: os.stat_result, path: Path, kind: str) -> None:
    """Raise ImageError unless ``status`` is of a non-empty regular file."""
    if stat.S_ISDIR(status.st_mode):
        raise ImageError(
            f"{kind} {path} is a folder, not an image file; give the path "
            "of one image file"
        )
    if not stat.S_ISREG(status.st_mode):
        raise ImageError(
            f"{kind} {path} is not a regular file (a device, FIFO or "
            "socket); give the path of an image file"
        )
    if status.st_size == 0:
        raise ImageError(
            f"{kind} {path} is empty (0 bytes); if it is still being "
            "written, read it again once it is complete"
        )


def _decode(
    stream: IO[bytes], path: Path, kind: str, max_pixels: int
) -> npt.NDArray[np.uint8]:
    """Check the header of an open image file, then decode it to grey.

    Raises:
        ImageError: Unknown format, too many pixels, or corrupt data.
    """
    from PIL import Image, UnidentifiedImageError

    # Image.open reads only the header. Pillow raises DecompressionBombError
    # there for more than 2 * Image.MAX_IMAGE_PIXELS, and warns above
    # MAX_IMAGE_PIXELS (a warning turned into an exception is caught too).
    try:
        handle = Image.open(stream)
    except UnidentifiedImageError as err:
        raise ImageError(
            f"{kind} {path} is not in an image format edge-gate reads; give "
            "a PNG, JPEG, BMP, TIFF or PGM file"
        ) from err
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageError(_too_large_message(path, kind, max_pixels, err)) from err
    except Exception as err:
        # A header that a format plugin recognises but cannot parse.
        raise ImageError(_corrupt_message(path, kind, err)) from err

    with handle:
        width, height = handle.size
        if width * height > max_pixels:
            raise ImageError(
                f"{kind} {path} is {width} x {height} pixels "
                f"({width * height:,}), more than the bound of {max_pixels:,} "
                f"pixels for {kind}s; give a sensor or camera image"
            )
        # Pillow 13.0's decoders raise OSError, SyntaxError, EOFError,
        # struct.error, ValueError and others on malformed data, and each of
        # them means the same to the caller: the data cannot be decoded.
        try:
            grey = np.asarray(handle.convert("L"), dtype=np.uint8)
        except Exception as err:
            raise ImageError(_corrupt_message(path, kind, err)) from err
    return grey


def _too_large_message(path: Path, kind: str, max_pixels: int, err: Exception) -> str:
    """Build the message for a header that Pillow rejected as too large."""
    match = _BOMB_PIXELS.search(str(err))
    size = f"{int(match.group(1)):,} pixels" if match else "too many pixels"
    return (
        f"{kind} {path} declares {size} in its header, more than the bound of "
        f"{max_pixels:,} pixels for {kind}s; give a sensor or camera image"
    )


def _corrupt_message(path: Path, kind: str, err: Exception) -> str:
    """Build the message for an image whose data cannot be decoded."""
    return (
        f"{kind} {path} is truncated or corrupt ({type(err).__name__}: {err}); "
        "copy or capture the image again"
    )
