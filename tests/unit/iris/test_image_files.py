"""The rig's directory camera keeps running whatever image files arrive.

Every Pillow failure, a decompression bomb included, reaches the camera as
``ImageError``, which drops the file and keeps the other frames.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from edge_gate.errors import CaptureError
from edge_gate.iris import DirectoryIrisCamera


def _png_header(width: int, height: int) -> bytes:
    """Return a PNG with only IHDR and IEND: a size and no pixel data."""

    def chunk(name: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(name + data))
        return struct.pack(">I", len(data)) + name + data + crc

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def _truncated_jpeg(image: np.ndarray[Any, Any]) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG")
    data = buffer.getvalue()
    return data[: len(data) // 2]


def _write_bad_frames(folder: Path, eye: np.ndarray[Any, Any]) -> list[str]:
    files = {
        "a-bomb.png": _png_header(100_000, 100_000),
        "b-warn.png": _png_header(10_000, 10_000),
        "c-large.png": _png_header(5_000, 5_000),
        "d-half.jpg": _truncated_jpeg(eye),
        "e-empty.png": b"",
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return sorted(files)


def test_bad_files_beside_good_frame(tmp_path: Path, eye_drawer: Any) -> None:
    eye = eye_drawer()
    _write_bad_frames(tmp_path, eye)
    Image.fromarray(eye).save(tmp_path / "z-eye.png")

    with (
        pytest.warns(Image.DecompressionBombWarning),
        DirectoryIrisCamera(tmp_path, poll_interval_s=0.01, settle_s=0.01) as camera,
    ):
        frame = camera.capture(timeout_s=1.0)

    assert np.array_equal(frame, eye)
    assert not (tmp_path / "z-eye.png").exists()


def test_bad_files_only_time_out(tmp_path: Path, eye_drawer: Any) -> None:
    names = _write_bad_frames(tmp_path, eye_drawer())

    with (
        pytest.warns(Image.DecompressionBombWarning),
        DirectoryIrisCamera(tmp_path, poll_interval_s=0.01, settle_s=0.01) as camera,
        pytest.raises(CaptureError, match="no eye image arrived"),
    ):
        camera.capture(timeout_s=0.3)

    # Each bad file is read twice (it may still be being written), then
    # deleted.
    remaining = sorted(path.name for path in tmp_path.iterdir())
    assert remaining == [], f"not deleted: {remaining} of {names}"
