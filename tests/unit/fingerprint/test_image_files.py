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
    assert message.startswith(f"{kind} {path} declares 10,000,000,000 pixels")
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
def test_bomb_warning_shown_then_rejected(
    tmp_path: Path, loader: Loader, kind: str, max_pixels: int
) -> None:
    path = _write(tmp_path, "warn.png", _png_header(10_000, 10_000))

    with (
        pytest.warns(Image.DecompressionBombWarning),
        pytest.raises(ImageError) as caught,
    ):
        loader(path)

    assert "is 10000 x 10000 pixels (100,000,000)" in str(caught.value)


@LOADERS
def test_missing_file_message(
    tmp_path: Path, loader: Loader, kind: str, max_pixels: int
) -> None:
    path = tmp_path / "absent.png"

    with pytest.raises(ImageError) as caught:
        loader(path)

    assert str(caught.value) == f"{kind} {path} not found; check the path"


@LOADERS
def test_folder_message(
    tmp_path: Path, loader: Loader, kind: str, max_pixels: int
) -> None:
    path = tmp_path / "eyes.png"
    path.mkdir()

    with pytest.raises(ImageError) as caught:
        loader(path)

    assert str(caught.value).startswith(f"{kind} {path} is a folder")


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

    assert str(caught.value).startswith(f"{kind} {path} is empty (0 bytes)")


@LOADERS
def test_unknown_format_message(
    tmp_path: Path, loader: Loader, kind: str, max_pixels: int
) -> None:
    path = _write(tmp_path, "notes.png", b"not an image at all\n")

    with pytest.raises(ImageError) as caught:
        loader(path)

    message = str(caught.value)
    assert message.startswith(f"{kind} {path} is not in an image format")
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
    assert message.startswith(f"{kind} {corrupt_file} is truncated or corrupt")
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
def test_compare_marks_bomb_pair_fte(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    modality: str,
) -> None:
    bomb = _write(tmp_path, "bomb.png", _png_header(100_000, 100_000))
    half = _encoded("JPEG")
    truncated = _write(tmp_path, "half.jpg", half[: len(half) // 2])
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{bomb}\t{truncated}\n"))

    status = main(["biometrics", "compare", "--modality", modality, "--pairs", "-"])

    captured = capsys.readouterr()
    assert status == 1
    assert captured.out.rstrip("\n").split("\t")[-1] == "fte"
    assert "declares 10,000,000,000 pixels" in captured.err
    assert "is truncated or corrupt" in captured.err
    assert "Traceback" not in captured.err
