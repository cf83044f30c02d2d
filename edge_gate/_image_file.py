"""Reading untrusted image files as 8-bit greyscale, shared by both modalities.

Image files come from data sets, the rig's camera folder and ``edge-gate``
commands, and any of them may be unusable. Every such file raises one
``ImageError`` whose message names the cause: a missing path, a folder or
other non-regular file, a permission problem, an empty file, an unknown
format, a pixel count over the caller's bound, truncated or corrupt data, or
a pixel format without a sound conversion to 8-bit grey. Messages quote the
path (see ``quote_path``), so a trailing space or a byte that is not UTF-8
shows.

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
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from edge_gate.errors import ImageError

if TYPE_CHECKING:
    from PIL import Image

# Pillow warns on stderr about damaged EXIF metadata that does not stop
# decoding; images are judged by their pixels. The filter is set once here,
# because catch_warnings() around each read is not thread-safe.
warnings.filterwarnings("ignore", message="Corrupt EXIF data", category=UserWarning)

# Pillow 13.0 warns (DecompressionBombWarning, a RuntimeWarning) when an
# image header declares more than Image.MAX_IMAGE_PIXELS, 89.5 megapixels.
# Both callers' bounds are lower, so such an image is rejected anyway, and
# this filter turns the warning into an exception that ``_decode`` reports
# instead of a line on stderr. The filter matches the message, so that this
# module need not import Pillow at start-up.
warnings.filterwarnings(
    "error", message=r"Image size \(\d+ pixels\) exceeds limit", category=RuntimeWarning
)

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
    3. Decode the whole image, and reject truncated or corrupt data.
    4. Convert to grey: ITU-R 601 luma for colour images, and 16-bit grey
       scaled by its format's full scale (see ``_to_grey``).

    Args:
        path: The image file.
        kind: What the image is, for messages (``"iris image"``).
        max_pixels: The largest width times height decoded.

    Returns:
        The image, shape (height, width).

    Raises:
        ImageError: The file is missing, a folder or other non-regular
            file, not readable, empty, in an unknown format, larger than
            ``max_pixels``, truncated or corrupt, or in a pixel format
            without a sound conversion to grey (see ``_to_grey``).
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


def quote_path(path: Path | str) -> str:
    """Return ``path`` in single quotes for a message, its invisible parts escaped.

    Leading and trailing spaces show inside the quotes. Control characters
    appear as Python escapes (``\\t``), and bytes that are not UTF-8, which
    ``os.fsdecode`` keeps as lone surrogates, appear as the bytes they stand
    for (``\\xff``).
    """
    characters = []
    for character in os.fsdecode(path):
        code = ord(character)
        if 0xDC80 <= code <= 0xDCFF:
            characters.append(f"\\x{code - 0xDC00:02x}")
        elif character.isprintable():
            characters.append(character)
        else:
            characters.append(repr(character)[1:-1])
    return "'" + "".join(characters) + "'"


def _open_regular_file(path: Path, kind: str) -> IO[bytes]:
    """Open ``path`` for reading if it is a non-empty regular file.

    ``O_NONBLOCK`` keeps a FIFO from blocking the caller until a writer
    appears. It has no effect on reads from a regular file.

    Raises:
        ImageError: The path is missing, not a regular file, not readable
            or empty.
    """
    name = f"{kind} {quote_path(path)}"
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError as err:
        raise ImageError(f"{name} not found; check the path") from err
    except PermissionError as err:
        raise ImageError(
            f"{name} cannot be read: permission denied; give the user "
            "running edge-gate read access to the file and its folders"
        ) from err
    except OSError as err:
        raise ImageError(
            f"{name} cannot be opened: {err.strerror}; check the path"
        ) from err

    try:
        _check_regular_file(os.fstat(descriptor), name)
    except BaseException:
        os.close(descriptor)
        raise
    return os.fdopen(descriptor, "rb")


def _check_regular_file(status: os.stat_result, name: str) -> None:
    """Raise ImageError unless ``status`` is of a non-empty regular file.

    ``name`` is the kind of image and its quoted path, for messages.
    """
    if stat.S_ISDIR(status.st_mode):
        raise ImageError(
            f"{name} is a folder, not an image file; give the path of one image file"
        )
    if not stat.S_ISREG(status.st_mode):
        raise ImageError(
            f"{name} is not a regular file (a device, FIFO or socket); give "
            "the path of an image file"
        )
    if status.st_size == 0:
        raise ImageError(
            f"{name} is empty (0 bytes); if it is still being written, read "
            "it again once it is complete"
        )


def _decode(
    stream: IO[bytes], path: Path, kind: str, max_pixels: int
) -> npt.NDArray[np.uint8]:
    """Check the header of an open image file, then decode it to grey.

    Raises:
        ImageError: Unknown format, too many pixels, corrupt data, or a
            pixel format without a sound conversion to 8-bit grey.
    """
    from PIL import Image, UnidentifiedImageError

    name = f"{kind} {quote_path(path)}"
    # Image.open reads only the header. Pillow raises DecompressionBombError
    # there for more than 2 * Image.MAX_IMAGE_PIXELS, and warns above
    # MAX_IMAGE_PIXELS (a warning that the filter at the top of this module
    # turns into an exception).
    try:
        handle = Image.open(stream)
    except UnidentifiedImageError as err:
        raise ImageError(
            f"{name} is not in an image format edge-gate reads; give a PNG, "
            "JPEG, BMP, TIFF or PGM file"
        ) from err
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageError(_too_large_message(name, kind, max_pixels, err)) from err
    except Exception as err:
        # A header that a format plugin recognises but cannot parse.
        raise ImageError(_corrupt_message(name, err)) from err

    with handle:
        width, height = handle.size
        if width * height > max_pixels:
            raise ImageError(
                f"{name} is {width} x {height} pixels ({width * height:,}), "
                f"more than the bound of {max_pixels:,} pixels for {kind}s; "
                "give a sensor or camera image"
            )
        frames = getattr(handle, "n_frames", 1)
        if frames > 1:
            raise ImageError(
                f"{name} contains {frames} images (frames), and which one is the "
                "sample is unknown; give a file with one image"
            )
        # Pillow 13.0's decoders raise OSError, SyntaxError, EOFError,
        # struct.error, ValueError and others on malformed data, and each of
        # them means the same to the caller: the data cannot be decoded.
        # ImageFile.LOAD_TRUNCATED_IMAGES stays False (Pillow's default), so
        # a file that ends before its last pixel raises here instead of
        # decoding with the missing part filled in grey.
        try:
            handle.load()
        except Exception as err:
            raise ImageError(_corrupt_message(name, err)) from err
        try:
            grey = _to_grey(handle, name)
        except ValueError as err:
            if isinstance(err, ImageError):
                raise
            # Pillow converts some modes (CIELab, for one) to no greyscale.
            raise ImageError(
                f"{name} has Pillow mode {handle.mode}, which cannot be "
                f"converted to greyscale ({err}); save it as 8-bit greyscale"
            ) from err
        return _upright(grey, handle, name)


# EXIF orientation values (tag 0x0112) and the turn that makes the image
# upright, as Pillow's ImageOps.exif_transpose applies them.
_EXIF_ORIENTATION = 0x0112
_UPRIGHT_TURNS = {
    2: "FLIP_LEFT_RIGHT",
    3: "ROTATE_180",
    4: "FLIP_TOP_BOTTOM",
    5: "TRANSPOSE",
    6: "ROTATE_270",
    7: "TRANSVERSE",
    8: "ROTATE_90",
}


def _upright(
    grey: npt.NDArray[np.uint8], handle: Any, name: str
) -> npt.NDArray[np.uint8]:
    """Return ``grey`` turned as the file's EXIF orientation tag gives.

    A camera or phone may store the sensor's pixels with an orientation tag
    instead of turning them. Unturned, such an eye or finger would not
    match its upright samples.
    """
    from PIL import Image

    try:
        orientation = int(handle.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception as err:
        raise ImageError(_corrupt_message(name, err)) from err
    turn = _UPRIGHT_TURNS.get(orientation)
    if turn is None:
        return grey
    turned = Image.fromarray(grey).transpose(getattr(Image.Transpose, turn))
    return np.asarray(turned, dtype=np.uint8)


# Pillow modes of unsigned 16-bit greyscale (PNG, TIFF) and of the 32-bit
# signed container that contains 16-bit greyscale from PGM files.
_UINT16_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N"})
_UINT16_IN_INT32_FORMATS = frozenset({"PPM"})
# TIFF tag 258, BitsPerSample.
_TIFF_BITS_PER_SAMPLE = 258
# A 16-bit image whose brightest pixel is at or below this level (12 bits)
# would be at most 16 grey levels bright after scaling, see ``_to_grey``.
_UNSCALED_12_BIT_MAX = 4095


def _to_grey(handle: Image.Image, name: str) -> npt.NDArray[np.uint8]:
    """Convert a loaded Pillow image to 8-bit grey.

    Colour and 8-bit images go through Pillow's ``convert("L")`` (ITU-R
    601 luma). Pillow 13.0 clips 16-bit samples to 255 there instead of
    scaling them. So 16-bit greyscale is scaled here by the largest value
    its format can contain. That is 65535, or 2**BitsPerSample - 1 for a
    TIFF that declares fewer bits (a 12-bit TIFF contains 0-4095). The scale does not
    depend on the frame, so a darker exposure stays darker. The PNG
    standard requires samples of a lower bit depth to be scaled to the
    full 16-bit range, and Pillow scales a PGM's MAXVAL to 65535.

    Raises:
        ImageError: The image is 16-bit with no pixel above 12 bits (12-bit
            camera data that was stored without scaling), or its samples
            are signed, 32-bit or floating point.
    """
    mode = handle.mode
    if mode not in _UINT16_MODES and not mode.startswith(("I", "F")):
        return np.asarray(handle.convert("L"), dtype=np.uint8)

    samples = np.asarray(handle)
    if not (
        mode in _UINT16_MODES
        or (handle.format in _UINT16_IN_INT32_FORMATS and mode == "I")
    ) or (samples.size and (samples.min() < 0 or samples.max() > 65535)):
        raise ImageError(
            f"{name} has {_sample_kind(mode)} samples (Pillow mode {mode}), "
            "which have no fixed grey scale; save it as 8-bit or 16-bit "
            "unsigned greyscale"
        )
    full_scale = 65535
    if handle.format == "TIFF":
        bits = getattr(handle, "tag_v2", {}).get(_TIFF_BITS_PER_SAMPLE)
        if isinstance(bits, tuple) and len(bits) == 1 and 1 <= bits[0] < 16:
            full_scale = 2 ** bits[0] - 1
    brightest = int(samples.max()) if samples.size else 0
    if full_scale == 65535 and brightest <= _UNSCALED_12_BIT_MAX:
        # A 12-bit camera that writes its values unscaled into a 16-bit
        # file gives at most 4095, which would be 16 grey levels here.
        raise ImageError(
            f"{name} is a 16-bit image whose brightest pixel is {brightest} "
            "of 65535: either 12-bit (or fewer) data stored without scaling "
            "to 16 bits, or a frame far too dark; scale the data to the "
            "16-bit range (multiply 12-bit values by 16) or save 8-bit "
            "greyscale, and check the exposure"
        )
    scaled = np.rint(samples.astype(np.float64) * (255.0 / full_scale))
    return np.clip(scaled, 0, 255).astype(np.uint8)


def _sample_kind(mode: str) -> str:
    """Name the sample type of a Pillow integer or float mode, for messages."""
    if mode.startswith("F"):
        return "floating-point"
    return "signed or 32-bit integer"


def _too_large_message(name: str, kind: str, max_pixels: int, err: Exception) -> str:
    """Build the message for a header that Pillow rejected as too large."""
    match = _BOMB_PIXELS.search(str(err))
    size = f"{int(match.group(1)):,} pixels" if match else "too many pixels"
    return (
        f"{name} declares {size} in its header, more than the bound of "
        f"{max_pixels:,} pixels for {kind}s; give a sensor or camera image"
    )


def _corrupt_message(name: str, err: Exception) -> str:
    """Build the message for an image whose data cannot be decoded."""
    return (
        f"{name} is truncated or corrupt ({type(err).__name__}: {err}); copy "
        "or capture the image again"
    )
