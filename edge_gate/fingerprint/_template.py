"""The fingerprint template: minutiae in a small, versioned binary format.

Layout of format version 1 (all integers big-endian)::

    offset size field
    0      4    magic b"EGFP"
    4      1    version (1)
    5      1    flags (0; reserved)
    6      2    image width in pixels (at ``dpi``)
    8      2    image height in pixels
    10     2    dpi
    12     1    quality, 0..255 for [0, 1]
    13     1    reserved (0)
    14     2    minutia count n (at most MAX_MINUTIAE)
    16     8*n  records: x u16, y u16, direction u16 (2*pi/65536 units),
                kind u8 (0 ending, 1 bifurcation), confidence u8 (0..255)

Invariants: every minutia lies inside the image; directions are in radians in
image coordinates (x to the right, y down), in [0, 2*pi).
The matcher's local descriptors are derived data, computed on first use and
never stored.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt

from edge_gate.errors import TemplateError

if TYPE_CHECKING:
    from edge_gate.fingerprint._match import Cylinders

MAGIC: Final = b"EGFP"
FORMAT_VERSION: Final = 1
MAX_MINUTIAE: Final = 128
_HEADER = struct.Struct(">4sBBHHHBBH")
_RECORD_DTYPE = np.dtype(
    [("x", ">u2"), ("y", ">u2"), ("dir", ">u2"), ("kind", "u1"), ("conf", "u1")]
)
_ANGLE_UNITS: Final = 65536

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True, eq=False)
class FingerprintTemplate:
    """Minutiae of one fingerprint impression.

    Attributes:
        minutiae: float32 array of shape (n, 5): x and y in pixels, direction
            in radians [0, 2*pi), kind (0 ending, 1 bifurcation), confidence
            in [0, 1].
        width: image width in pixels.
        height: image height in pixels.
        dpi: image resolution in dots per inch.
        quality: overall quality in [0, 1]. The lane requests a recapture
            below its configured minimum.
    """

    minutiae: FloatArray
    width: int
    height: int
    dpi: int = 500
    quality: float = 0.0

    def __post_init__(self) -> None:
        _check_fields(self.minutiae, self.width, self.height, self.dpi, self.quality)

    def __len__(self) -> int:
        return int(self.minutiae.shape[0])

    @cached_property
    def cylinders(self) -> Cylinders:
        """The matcher's local descriptors, computed once per object."""
        from edge_gate.fingerprint._match import compute_cylinders

        return compute_cylinders(self.minutiae)

    def to_bytes(self) -> bytes:
        """Serialise to format version 1 (see the module docstring)."""
        records = np.empty(len(self), dtype=_RECORD_DTYPE)
        m = self.minutiae
        records["x"] = np.clip(np.rint(m[:, 0]), 0, self.width - 1).astype(np.uint16)
        records["y"] = np.clip(np.rint(m[:, 1]), 0, self.height - 1).astype(np.uint16)
        angle = np.rint(np.mod(m[:, 2], 2 * math.pi) * (_ANGLE_UNITS / (2 * math.pi)))
        records["dir"] = (angle.astype(np.int64) % _ANGLE_UNITS).astype(np.uint16)
        records["kind"] = m[:, 3].astype(np.uint8)
        records["conf"] = np.rint(np.clip(m[:, 4], 0, 1) * 255).astype(np.uint8)
        header = _HEADER.pack(
            MAGIC,
            FORMAT_VERSION,
            0,
            self.width,
            self.height,
            self.dpi,
            round(self.quality * 255),
            0,
            len(self),
        )
        return header + records.tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> FingerprintTemplate:
        """Parse a template written by :meth:`to_bytes`.

        Raises:
            TemplateError: wrong magic, unknown version, truncated or padded
                data, or a minutia outside the image.
        """
        if len(data) < _HEADER.size:
            raise TemplateError(
                f"fingerprint template is {len(data)} bytes, shorter than the "
                f"{_HEADER.size}-byte header; re-extract it from an image"
            )
        magic, version, _flags, width, height, dpi, q, _res, count = (
            _HEADER.unpack_from(data)
        )
        if magic != MAGIC:
            raise TemplateError(
                f"not a fingerprint template: magic {magic!r}, expected {MAGIC!r}"
            )
        if version != FORMAT_VERSION:
            raise TemplateError(
                f"fingerprint template version {version} is not supported "
                f"(this build reads version {FORMAT_VERSION}); re-extract it"
            )
        expected = _HEADER.size + count * _RECORD_DTYPE.itemsize
        if len(data) != expected:
            raise TemplateError(
                f"fingerprint template has {len(data)} bytes, its header "
                f"announces {count} minutiae ({expected} bytes)"
            )
        records = np.frombuffer(data, dtype=_RECORD_DTYPE, offset=_HEADER.size)
        minutiae = np.empty((count, 5), dtype=np.float32)
        minutiae[:, 0] = records["x"]
        minutiae[:, 1] = records["y"]
        minutiae[:, 2] = records["dir"].astype(np.float32) * (
            2 * math.pi / _ANGLE_UNITS
        )
        minutiae[:, 3] = records["kind"]
        minutiae[:, 4] = records["conf"].astype(np.float32) / 255
        return cls(minutiae, width, height, dpi, q / 255)


def _check_fields(
    minutiae: FloatArray, width: int, height: int, dpi: int, quality: float
) -> None:
    """Raise TemplateError unless the fields satisfy the module invariants."""
    if minutiae.dtype != np.float32 or minutiae.ndim != 2 or minutiae.shape[1] != 5:
        raise TemplateError(
            f"minutiae must be a float32 array of shape (n, 5), got "
            f"{minutiae.dtype} {minutiae.shape}"
        )
    if len(minutiae) > MAX_MINUTIAE:
        raise TemplateError(
            f"{len(minutiae)} minutiae exceed the template limit of {MAX_MINUTIAE}"
        )
    if not (1 <= width <= 0xFFFF and 1 <= height <= 0xFFFF and 1 <= dpi <= 0xFFFF):
        raise TemplateError(
            f"image geometry {width}x{height} at {dpi} dpi is outside 1..65535"
        )
    if not 0.0 <= quality <= 1.0:
        raise TemplateError(f"template quality {quality} is outside [0, 1]")
    if len(minutiae):
        xs, ys, kinds = minutiae[:, 0], minutiae[:, 1], minutiae[:, 3]
        if xs.min() < 0 or ys.min() < 0 or xs.max() >= width or ys.max() >= height:
            raise TemplateError(
                f"a minutia lies outside the {width}x{height} image; the "
                "template is corrupt"
            )
        if not np.isin(kinds, (0.0, 1.0)).all():
            raise TemplateError(
                "a minutia kind is neither 0 (ending) nor 1 (bifurcation)"
            )
