"""Both image loaders on unusable files: one ImageError, naming the cause.

The fingerprint and iris loaders share one reader, so every case runs on
both. The files are built here: tiny PNG headers that declare huge images,
truncated and corrupted encodings, folders, FIFOs and unreadable files.
"""

from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import warnings
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from edge_gate.cli import main
from edge_gate.errors import ImageError
from edge_gate.fingerprint import load_fingerprint_image
from edge_gate.fingerprint._image import MAX_PIXELS as FINGERPRINT_MAX_PIXELS
from edge_gate.iris import load_iris_image
from edge_gate.iris._image import MAX_PIXELS as IRIS_MAX_PIXELS

Loader = Callable[[Path | str], Any]

LOADERS = pytest.mark.parametrize(
    ("loader", "kind", "max_pixels"),
    [
        (load_fingerprint_image, "fingerprint image", FINGERPRINT_MAX_PIXELS),
        (load_iris_image, "iris image", IRIS_MAX_PIXELS),
    ],
    ids=["fingerprint", "iris"],
)


def _png_header(width: int, height: int) -> bytes:
    """Return a PNG with only IHDR and IEND: a size and no pixel data."""

    def chunk(name: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(name + data))
        return struct.pack(">I", len(data)) + name + data + crc

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def _encoded(image_format: str) -> bytes:
    pixels = np.random.default_rng(0).integers(0, 256, (300, 300), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, image_format)
    return buffer.getvalue()


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@LOADERS
def test_valid_png_loads(
    tmp_path: Path, loader: Loader, kind: str, max_pixels: int
) -> None:
    path = _write(tmp_path, "good.png", _encoded("PNG"))

    image = loader(path)

    assert image.shape == (300, 300)
    assert image.dtype == np.uint8


@LOADERS
def test_bomb_header_rejected(
    tmp_path: Path, loader: Loader, kind: str, max_pixels: int
) -> None:
    # 100000 x 100000 is over twice Pillow's own limit, which raises
    # DecompressionBombError inside Image.open.
    path = _write(tmp_path, "bomb.png", _png_header(100_000, 100_000))

    with pytest.raises(ImageError) as caught:
        loader(path)

    message = str(caught.value)
    assert message.startswith(f"{kind} '{path}' declares 10,000,000,000 pixels")
    assert f"the bound of {max_pixels:,} pixels" in message


@LOADERS
def test_header_over_bound_not_decoded(
    tmp_path: Path, loader: Loader, kind: str, max_pixels: int
) -> None:
    # Over this project's bound but under Pillow's limits: the header's
    # size is checked by the loader itself.
    side = int(max_pixels**0.5) + 1
    path = _write(tmp_path, "large.png", _png_header(side, side))

    with pytest.raises(ImageError) as caught:
        loader(path)

    message = str(caught.value)
    assert f"is {side} x {side} pixels ({side * side:,})" in message
    assert f"the bound of {max_pixels:,} pixels for {kind}s" in message


@LOADERS
def test_bomb_warning_as_error_rejected(
    tmp_path: Path, loader: Loader, kind: str, max_pixels: int
) -> None:
    # 10000 x 10000 is between Pillow's warning and error limits.
    path = _write(tmp_path, "warn.png", _png_header(10_000, 10_000))

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with pytest.raises(ImageError) as caught:
            loader(path)

    assert "declares 100,000,000 pixels" in str(caught.value)


@LOADERS
def test_bomb_warning_unfiltered_still_rejected(
    tmp_path: Path, loader: Loader, kind: str, max_pixels: int
) -> None:
    # pytest resets warning filters around each test, which drops the one
    # that edge_gate/_image_file.py sets at import, and so can an embedding
    # program. Pillow then only warns, and the loader's own bound rejects
    # the image before its pixels are decoded.
    path = _write(tmp_path, "warn.png", _png_header(10_000, 10_000))

    with (
        pytest.warns(Image.DecompressionBombWarning),
        pytest.raises(ImageError) as caught,
    ):
        loader(path)

    assert "is 10000 x 10000 pixels (100,000,000)" in str(caught.value)


@pytest.mark.parametrize("modality", ["fingerprint", "iris"])
def test_bomb_warning_not_on_stderr(tmp_path: Path, modality: str) -> None:
    # The real command in a child process, so that the warning filter set
    # at import is in force as in the field.
    path = _write(tmp_path, "warn.png", _png_header(10_000, 10_000))
    pairs = _write(tmp_path, "pairs.tsv", f"{path}\t{path}\n".encode())

    completed = subprocess.run(
        [sys.executable, "-m", "edge_gate", "biometrics", "compare",
         "--modality", modality, "--pairs", str(pairs)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip

    assert completed.returncode == 1
    assert "DecompressionBombWarning" not in completed.stderr
    assert f"'{path}' declares 100,000,000 pixels" in completed.stderr
    assert "more than the bound of" in completed.stderr
    assert completed.stdout == ""


@LOADERS
def test_missing_file_message(
    tmp_path: Path, loader: Loader, kind: str, max_pixels: int
) -> None:
    path = tmp_path / "absent.png"

    with pytest.raises(ImageError) as caught:
        loader(path)

    assert str(caught.value) == f"{kind} '{path}' not found; check the path"


@LOADERS
def test_folder_message(
    tmp_path: Path, loader: Loader, kind: str, max_pixels: int
) -> None:
    path = tmp_path / "eyes.png"
    path.mkdir()

    with pytest.raises(ImageError) as caught:
        loader(path)

    assert str(caught.value).startswith(f"{kind} '{path}' is a folder")


@LOADERS
def test_fifo_rejected_without_blocking(
    tmp_path: Path, loader: Loader, kind: str, max_pixels: int
) -> None:
    # Opening a FIFO for reading blocks until a writer comes, unless the
    # loader opens it without blocking.
    path = tmp_path / "frame.png"
    os.mkfifo(path)
    outcome: list[BaseException] = []

    def load() -> None:
        try:
            loader(path)
        except BaseException as err:
            # Handed to the test thread, which asserts on it.
            outcome.append(err)

    worker = threading.Thread(target=load, name="fifo-load")
    worker.start()
    worker.join(timeout=5.0)
    if worker.is_alive():
        # Unblock the open with a writer so that no thread is left behind.
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(timeout=5.0)
        pytest.fail("the loader blocked on a FIFO")

    assert len(outcome) == 1
    assert isinstance(outcome[0], ImageError)
    assert "is not a regular file" in str(outcome[0])


@LOADERS
def test_empty_file_message(
    tmp_path: Path, loader: Loader, kind: str, max_pixels: int
) -> None:
    path = _write(tmp_path, "empty.png", b"")

    with pytest.raises(ImageError) as caught:
        loader(path)

    assert str(caught.value).startswith(f"{kind} '{path}' is empty (0 bytes)")


@LOADERS
def test_unknown_format_message(
    tmp_path: Path, loader: Loader, kind: str, max_pixels: int
) -> None:
    path = _write(tmp_path, "notes.png", b"not an image at all\n")

    with pytest.raises(ImageError) as caught:
        loader(path)

    message = str(caught.value)
    assert message.startswith(f"{kind} '{path}' is not in an image format")
    assert "give a PNG, JPEG, BMP, TIFF or PGM file" in message


@pytest.fixture(params=["jpeg-half", "png-half", "png-flipped-byte"])
def corrupt_file(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """Return an image file whose header is intact but whose data is not."""
    if request.param == "jpeg-half":
        data = _encoded("JPEG")
        return _write(tmp_path, "half.jpg", data[: len(data) // 2])
    data = _encoded("PNG")
    if request.param == "png-half":
        return _write(tmp_path, "half.png", data[: len(data) // 2])
    flipped = bytearray(data)
    # Byte 60 lies in the compressed pixel data (IDAT), after the header.
    flipped[60] ^= 0xFF
    return _write(tmp_path, "flipped.png", bytes(flipped))


@LOADERS
def test_corrupt_data_message(
    corrupt_file: Path, loader: Loader, kind: str, max_pixels: int
) -> None:
    with pytest.raises(ImageError) as caught:
        loader(corrupt_file)

    message = str(caught.value)
    assert message.startswith(f"{kind} '{corrupt_file}' is truncated or corrupt")
    assert "give a PNG" not in message


@pytest.fixture
def unreadable_file() -> Iterator[Path]:
    """Return a valid PNG with mode 000 in a folder anyone may enter."""
    folder = Path(tempfile.mkdtemp(prefix="edge-gate-image-"))
    folder.chmod(0o755)
    path = folder / "locked.png"
    path.write_bytes(_encoded("PNG"))
    path.chmod(0)
    yield path
    path.unlink()
    folder.rmdir()


@pytest.mark.parametrize(
    "module", ["edge_gate.fingerprint", "edge_gate.iris"], ids=["fingerprint", "iris"]
)
def test_unreadable_file_message(unreadable_file: Path, module: str) -> None:
    # root reads a file of mode 000 through CAP_DAC_OVERRIDE, so there the
    # loader runs in a child process without that capability.
    function = (
        "load_fingerprint_image" if "fingerprint" in module else "load_iris_image"
    )
    script = (
        f"from {module} import {function}\n"
        "from edge_gate.errors import ImageError\n"
        "try:\n"
        f"    {function}({str(unreadable_file)!r})\n"
        "except ImageError as err:\n"
        "    print(err)\n"
    )
    command = [sys.executable, "-c", script]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root, and setpriv (util-linux) is missing")
        dropped = "-dac_override,-dac_read_search"
        command = [setpriv, f"--bounding-set={dropped}", *command]

    completed = subprocess.run(
        command, capture_output=True, text=True, timeout=120, check=False
    )

    assert completed.returncode == 0, completed.stderr
    assert "cannot be read: permission denied" in completed.stdout


@pytest.mark.parametrize("modality", ["fingerprint", "iris"])
def test_compare_stops_on_undecodable_pair(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    modality: str,
) -> None:
    # A file that cannot be decoded is a problem of the data set, not a
    # failure to enrol: nothing is compared and both files are named.
    bomb = _write(tmp_path, "bomb.png", _png_header(100_000, 100_000))
    half = _encoded("JPEG")
    truncated = _write(tmp_path, "half.jpg", half[: len(half) // 2])
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{bomb}\t{truncated}\n"))

    status = main(["biometrics", "compare", "--modality", modality, "--pairs", "-"])

    captured = capsys.readouterr()
    assert status == 1
    assert captured.out == ""
    assert "2 image file(s) cannot be read or decoded" in captured.err
    assert f"'{bomb}' declares 10,000,000,000 pixels" in captured.err
    assert f"'{truncated}' is truncated or corrupt" in captured.err
    assert "no template from" not in captured.err
    assert "Traceback" not in captured.err


def _grey_pixels() -> np.ndarray[Any, np.dtype[np.uint8]]:
    """Return a 300 x 300 8-bit image that uses every grey level."""
    return np.random.default_rng(1).integers(0, 256, (300, 300), dtype=np.uint8)


@LOADERS
@pytest.mark.parametrize("image_format", ["PNG", "TIFF", "PPM"])
def test_16_bit_grey_scaled_to_8_bit(
    tmp_path: Path, loader: Loader, kind: str, max_pixels: int, image_format: str
) -> None:
    # x * 257 spans 0-65535 exactly as x spans 0-255, so the scaled image
    # must equal the 8-bit original. Pillow's convert("L") clips instead.
    pixels = _grey_pixels()
    path = tmp_path / f"grey16.{image_format.lower()}"
    Image.fromarray(pixels.astype(np.uint16) * 257).save(path, image_format)

    image = loader(path)

    assert image.dtype == np.uint8
    assert np.array_equal(image, pixels)


def _tiff_12_bit(values: np.ndarray[Any, Any]) -> bytes:
    """Return an uncompressed little-endian TIFF of 12-bit greyscale samples."""
    height, width = values.shape
    rows = []
    for row in values.astype(np.uint32):
        # Samples are packed most significant bit first, rows padded to bytes.
        bits = "".join(f"{value:012b}" for value in row)
        bits += "0" * (-len(bits) % 8)
        rows.append(int(bits, 2).to_bytes(len(bits) // 8, "big"))
    data = b"".join(rows)
    short, long = 3, 4
    entries = [
        (256, short, width),  # ImageWidth
        (257, short, height),  # ImageLength
        (258, short, 12),  # BitsPerSample
        (259, short, 1),  # Compression: none
        (262, short, 1),  # PhotometricInterpretation: BlackIsZero
        (273, long, 8),  # StripOffsets: right after the header
        (277, short, 1),  # SamplesPerPixel
        (278, short, height),  # RowsPerStrip
        (279, long, len(data)),  # StripByteCounts
    ]
    directory = struct.pack("<H", len(entries))
    for tag, kind, value in entries:
        directory += struct.pack("<HHII", tag, kind, 1, value)
    directory += struct.pack("<I", 0)
    return b"II*\x00" + struct.pack("<I", 8 + len(data)) + data + directory


@LOADERS
def test_12_bit_tiff_scaled_by_its_bits(
    tmp_path: Path, loader: Loader, kind: str, max_pixels: int
) -> None:
    pixels = _grey_pixels()
    values = np.rint(pixels.astype(np.float64) * 4095 / 255).astype(np.uint16)
    path = _write(tmp_path, "grey12.tif", _tiff_12_bit(values))

    image = loader(path)

    assert np.array_equal(image, pixels)


@LOADERS
def test_unscaled_12_bit_png_rejected(
    tmp_path: Path, loader: Loader, kind: str, max_pixels: int
) -> None:
    # 12-bit camera values written unscaled into a 16-bit PNG: after
    # scaling by 65535 they would be 16 grey levels, a black frame.
    path = tmp_path / "raw12.png"
    Image.fromarray(_grey_pixels().astype(np.uint16) * 16).save(path)

    with pytest.raises(ImageError) as caught:
        loader(path)

    message = str(caught.value)
    assert message.startswith(f"{kind} '{path}' is a 16-bit image")
    assert "brightest pixel is 4080 of 65535" in message
    assert "multiply 12-bit values by 16" in message


@LOADERS
@pytest.mark.parametrize(
    ("dtype", "mode", "sample_kind"),
    [
        (np.int32, "I", "signed or 32-bit integer"),
        (np.float32, "F", "floating-point"),
    ],
    ids=["int32", "float32"],
)
def test_wide_sample_tiff_rejected(
    tmp_path: Path,
    loader: Loader,
    kind: str,
    max_pixels: int,
    dtype: type,
    mode: str,
    sample_kind: str,
) -> None:
    path = tmp_path / "wide.tif"
    Image.fromarray(_grey_pixels().astype(dtype) - 5).save(path)

    with pytest.raises(ImageError) as caught:
        loader(path)

    message = str(caught.value)
    assert f"has {sample_kind} samples (Pillow mode {mode})" in message
    assert "save it as 8-bit or 16-bit unsigned greyscale" in message


@LOADERS
def test_mode_without_grey_conversion_rejected(
    tmp_path: Path, loader: Loader, kind: str, max_pixels: int
) -> None:
    # Pillow converts CIELab to no greyscale and raises a plain ValueError.
    path = tmp_path / "lab.tif"
    Image.new("LAB", (64, 64), (50, 0, 0)).save(path)

    with pytest.raises(ImageError) as caught:
        loader(path)

    message = str(caught.value)
    assert "has Pillow mode LAB, which cannot be converted to greyscale" in message
    assert "save it as 8-bit greyscale" in message


def test_truncated_images_not_filled_in() -> None:
    # Pillow fills the missing part of a truncated image with grey when
    # this flag is set, and a half image would then enrol or match.
    from PIL import ImageFile

    import edge_gate.cli  # noqa: F401  (imports every command's modules)

    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


@LOADERS
def test_path_with_trailing_space_quoted(
    tmp_path: Path, loader: Loader, kind: str, max_pixels: int
) -> None:
    path = tmp_path / "eye.png "

    with pytest.raises(ImageError) as caught:
        loader(path)

    assert str(caught.value) == f"{kind} '{path}' not found; check the path"


@LOADERS
def test_path_bytes_not_utf8_shown(
    tmp_path: Path, loader: Loader, kind: str, max_pixels: int
) -> None:
    path = Path(os.fsdecode(os.fsencode(tmp_path) + b"/eye\xff\xfe\t.png"))

    with pytest.raises(ImageError) as caught:
        loader(path)

    assert f"'{tmp_path}/eye\\xff\\xfe\\t.png' not found" in str(caught.value)


@LOADERS
@pytest.mark.parametrize(
    ("orientation", "upright"),
    [
        (1, lambda a: a),
        (3, lambda a: a[::-1, ::-1]),
        (6, lambda a: np.rot90(a, -1)),
        (8, lambda a: np.rot90(a, 1)),
        (2, lambda a: a[:, ::-1]),
    ],
)
def test_exif_orientation_applied(
    tmp_path: Path,
    loader: Loader,
    kind: str,
    max_pixels: int,
    orientation: int,
    upright: Any,
) -> None:
    # The stored pixels are the upright image turned back, with the tag
    # that gives the turn back to upright.
    stored = (np.arange(96 * 128) % 251).astype(np.uint8).reshape(96, 128)
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = orientation
    path = tmp_path / "tagged.png"
    image.save(path, exif=exif)

    assert np.array_equal(loader(path), upright(stored))


@LOADERS
def test_multi_frame_file_rejected(
    tmp_path: Path, loader: Loader, kind: str, max_pixels: int
) -> None:
    frames = [Image.new("L", (64, 64), level) for level in (0, 128)]
    path = tmp_path / "two.tif"
    frames[0].save(path, save_all=True, append_images=frames[1:])

    with pytest.raises(ImageError, match="contains 2 images"):
        loader(path)
