"""The iris template: a fixed-size binary code with its mask, and its bytes.

Layout of ``IrisTemplate.to_bytes()`` (format version 1), little-endian:

====== ====== =========================================================
offset bytes  field
====== ====== =========================================================
0      4      magic ``b"EGIT"``
4      1      format version (1)
5      1      rows of the code grid (radius)
6      2      columns of the code grid (angle)
8      1      bits per grid cell (2 per complex filter: real, imaginary)
9      1      quality, 0-255 for [0, 1]
10     2      reserved, zero
12     4      CRC-32 of everything after the header
16     c      code, ``numpy.packbits`` of bool[rows, columns, bits], C order
16+c   m      mask, ``numpy.packbits`` of bool[rows, columns]; 1 = valid
====== ====== =========================================================

The lane's encoder makes 16 x 128 x 2: 512 code bytes, 256 mask bytes,
784 bytes in all. One mask bit covers every code bit of its grid cell,
because occlusion is a property of the place on the iris, not of the
filter. Column j of the grid is the angle 2 pi j / columns (see
``_normalize``), so a rotation of the eye is a cyclic shift of columns.

Templates made by open-iris (16 x 256 x 2 wavelets x 2) can be imported with
:meth:`IrisTemplate.from_open_iris`; they compare with each other but not
with this project's own codes, whose filters differ.
"""

from __future__ import annotations

import base64
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

from edge_gate.errors import TemplateError

MAGIC = b"EGIT"
FORMAT_VERSION = 1
_HEADER = struct.Struct("<4sBBHBBHI")
HEADER_BYTES = _HEADER.size
# Minimum count of neighbouring valid cell pairs for ``IrisTemplate.row_agreement``.
MIN_ROW_PAIRS = 64


@dataclass(frozen=True, eq=False)
class IrisTemplate:
    """An iris code, its validity mask and the capture's quality.

    Attributes:
        code: bool[rows, columns, bits] phase bits.
        mask: bool[rows, columns]; True where the iris was visible.
        quality: overall capture quality in [0, 1].
    """

    code: npt.NDArray[np.bool_]
    mask: npt.NDArray[np.bool_]
    quality: float

    def __post_init__(self) -> None:
        if self.code.ndim != 3 or self.code.dtype != np.bool_:
            raise TemplateError(
                f"iris code must be bool[rows, columns, bits], got "
                f"{self.code.dtype}{list(self.code.shape)}"
            )
        if 0 in self.code.shape:
            raise TemplateError(
                f"iris code grid {'x'.join(map(str, self.code.shape))} is empty: "
                f"every axis needs at least one entry"
            )
        if self.mask.shape != self.code.shape[:2] or self.mask.dtype != np.bool_:
            raise TemplateError(
                f"iris mask must be bool{list(self.code.shape[:2])}, got "
                f"{self.mask.dtype}{list(self.mask.shape)}"
            )
        if not 0.0 <= self.quality <= 1.0:
            raise TemplateError(f"iris quality {self.quality} is outside [0, 1]")

    @property
    def shape(self) -> tuple[int, int, int]:
        """Code grid as (rows, columns, bits per cell)."""
        rows, columns, bits = self.code.shape
        return rows, columns, bits

    @cached_property
    def row_agreement(self) -> float | None:
        """Share of code bits equal to the same bit one grid row further out.

        Counted over neighbouring cells that are both valid. Radial furrows
        make neighbouring rows agree far more often than unrelated bits do
        (half the time). So a code carries fewer independent bits than it
        has, and the matcher uses this share to count them (``_match``).
        With fewer than ``MIN_ROW_PAIRS`` such cell pairs it is None.
        """
        both = self.mask[1:] & self.mask[:-1]
        pairs = int(both.sum())
        if pairs < MIN_ROW_PAIRS:
            return None
        same = (self.code[1:] == self.code[:-1]) & both[:, :, None]
        return float(same.sum()) / (pairs * self.shape[2])

    @cached_property
    def column_bytes(self) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
        """Code and expanded mask packed per column, each uint8[columns, n].

        Every code column (all rows and bits of one angle) becomes n bytes.
        The mask is repeated for every bit of its cell. A rotation is then a
        gather of columns, and a comparison is XOR, AND and a population
        count. The arrays are cached, so the code and mask must not be
        modified after the first comparison.
        """
        rows, columns, bits = self.shape
        code = self.code.transpose(1, 0, 2).reshape(columns, rows * bits)
        mask = np.repeat(self.mask.T, bits, axis=1)
        return np.packbits(code, axis=1), np.packbits(mask, axis=1)

    @property
    def valid_fraction(self) -> float:
        """Share of grid cells that carry valid bits."""
        return float(self.mask.mean())

    def to_bytes(self) -> bytes:
        """Serialise to the versioned layout in the module docstring."""
        rows, columns, bits = self.shape
        body = np.packbits(self.code).tobytes() + np.packbits(self.mask).tobytes()
        header = _HEADER.pack(
            MAGIC,
            FORMAT_VERSION,
            rows,
            columns,
            bits,
            round(self.quality * 255),
            0,
            zlib.crc32(body),
        )
        return header + body

    @classmethod
    def from_bytes(cls, data: bytes) -> IrisTemplate:
        """Parse bytes made by :meth:`to_bytes`.

        Raises:
            TemplateError: wrong magic or version, truncated, or a CRC
                mismatch.
        """
        if len(data) < HEADER_BYTES:
            raise TemplateError(
                f"iris template has {len(data)} bytes, fewer than the "
                f"{HEADER_BYTES}-byte header"
            )
        magic, version, rows, columns, bits, quality, _, crc = _HEADER.unpack_from(data)
        if magic != MAGIC:
            raise TemplateError(
                f"not an iris template: magic {magic!r}, expected {MAGIC!r}"
            )
        if version != FORMAT_VERSION:
            raise TemplateError(
                f"iris template format version {version} is not supported "
                f"(this build reads {FORMAT_VERSION}); re-enrol or upgrade"
            )
        if rows == 0 or columns == 0 or bits == 0:
            raise TemplateError(
                f"iris template has an empty code grid {rows}x{columns}x{bits}"
            )
        code_bytes = (rows * columns * bits + 7) // 8
        mask_bytes = (rows * columns + 7) // 8
        expected = HEADER_BYTES + code_bytes + mask_bytes
        if len(data) != expected:
            raise TemplateError(
                f"iris template has {len(data)} bytes, its header announces {expected}"
            )
        body = data[HEADER_BYTES:]
        if zlib.crc32(body) != crc:
            raise TemplateError("iris template CRC mismatch: the bytes are corrupt")
        raw = np.frombuffer(body, dtype=np.uint8)
        code = np.unpackbits(raw[:code_bytes], count=rows * columns * bits)
        mask = np.unpackbits(raw[code_bytes:], count=rows * columns)
        return cls(
            code=code.astype(np.bool_).reshape(rows, columns, bits),
            mask=mask.astype(np.bool_).reshape(rows, columns),
            quality=quality / 255,
        )

    @classmethod
    def from_open_iris(cls, template: Mapping[str, Any]) -> IrisTemplate:
        """Import an open-iris ``IrisTemplate`` in its serialised form.

        open-iris (``iris.IrisTemplate.serialize()``) stores base64 of
        ``numpy.packbits`` over bool[16, 256, 2, 2] (rows, angle, wavelet,
        real/imaginary) for the codes and for a mask of the same shape. The
        wavelet and real/imaginary axes become this format's bits axis; a
        cell counts as valid when every one of its mask bits is set.

        Args:
            template: a mapping with ``iris_codes`` and ``mask_codes``
                (base64 strings) as open-iris writes them.

        Raises:
            TemplateError: a key is missing or the arrays have another size.
        """
        try:
            codes = base64.b64decode(template["iris_codes"], validate=True)
            masks = base64.b64decode(template["mask_codes"], validate=True)
        except (KeyError, TypeError, ValueError) as err:
            raise TemplateError(
                f"not an open-iris template (need base64 iris_codes and "
                f"mask_codes): {err}"
            ) from err
        shape = (16, 256, 2, 2)
        count = int(np.prod(shape))
        if len(codes) * 8 != count or len(masks) * 8 != count:
            raise TemplateError(
                f"open-iris template arrays have {len(codes)} and {len(masks)} "
                f"bytes, expected {count // 8} each"
            )
        code = np.unpackbits(np.frombuffer(codes, np.uint8)).astype(np.bool_)
        mask = np.unpackbits(np.frombuffer(masks, np.uint8)).astype(np.bool_)
        return cls(
            code=code.reshape(16, 256, 4),
            mask=np.asarray(mask.reshape(16, 256, 4).all(axis=2), dtype=np.bool_),
            quality=1.0,
        )
