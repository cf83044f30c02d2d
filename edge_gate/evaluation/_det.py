"""Write a detection error trade-off (DET) curve as a PNG image.

The plot has log-scaled axes from 1e-5 to 1 (FMR across, FNMR up) and is
drawn with numpy into a greyscale raster, then PNG-encoded with zlib, so
that the board and CI need no plotting library.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import numpy.typing as npt

from edge_gate.evaluation._rates import _as_scores, _sweep

_SIZE = 480
_MARGIN = 40
_LOG_MIN = -5.0


def _to_pixel(rate: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    clipped = np.log10(np.clip(rate, 10**_LOG_MIN, 1.0))
    span = _SIZE - 2 * _MARGIN
    return (_MARGIN + (clipped - _LOG_MIN) / -_LOG_MIN * span).astype(np.int64)


def _png_bytes(raster: npt.NDArray[np.uint8]) -> bytes:
    height, width = raster.shape
    rows = b"".join(b"\x00" + raster[y].tobytes() for y in range(height))

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


def write_det_png(
    genuine: npt.ArrayLike, impostor: npt.ArrayLike, path: str | Path
) -> Path:
    """Draw the DET curve of the scores into ``path`` and return it.

    Steps:
        1. Sweep every observed score as a threshold to get (FMR, FNMR).
        2. Draw decade grid lines, the diagonal FMR = FNMR, and the curve as
           line segments between consecutive operating points.
        3. Encode the raster as an 8-bit greyscale PNG, written atomically.

    Raises:
        ValueError: empty or non-finite scores.
        OSError: the file cannot be written.
    """
    gen = _as_scores(genuine, "genuine")
    imp = _as_scores(impostor, "impostor")
    _thresholds, fmr, fnmr = _sweep(gen, imp)

    raster = np.full((_SIZE, _SIZE), 255, dtype=np.uint8)
    for decade in range(int(_LOG_MIN), 1):
        position = int(_to_pixel(np.array([10.0**decade]))[0])
        raster[_MARGIN : _SIZE - _MARGIN, position] = 200
        raster[_SIZE - position, _MARGIN : _SIZE - _MARGIN] = 200
    diagonal = np.arange(_MARGIN, _SIZE - _MARGIN)
    raster[_SIZE - diagonal, diagonal] = 160

    xs = _to_pixel(fmr)
    ys = _SIZE - _to_pixel(fnmr)
    for x0, y0, x1, y1 in zip(xs[:-1], ys[:-1], xs[1:], ys[1:], strict=True):
        steps = int(max(abs(x1 - x0), abs(y1 - y0), 1))
        line_x = np.linspace(x0, x1, steps + 1).round().astype(np.int64)
        line_y = np.linspace(y0, y1, steps + 1).round().astype(np.int64)
        inside = (line_x >= 0) & (line_x < _SIZE) & (line_y >= 0) & (line_y < _SIZE)
        raster[line_y[inside], line_x[inside]] = 0

    target = Path(path)
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_bytes(_png_bytes(raster))
    temporary.replace(target)
    return target
