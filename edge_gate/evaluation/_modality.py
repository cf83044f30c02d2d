"""The protocol a biometric modality offers to evaluation and field commands."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt


class Modality(Protocol):
    """One biometric modality (fingerprint or iris) seen from outside.

    Implementations live in ``edge_gate.fingerprint`` and ``edge_gate.iris``
    as the module-level object ``modality``.
    """

    name: str

    def list_samples(self, directory: Path) -> list[tuple[str, Path]]:
        """Return (identity, image path) for every usable image in a data set."""
        ...

    def load_image(self, path: Path) -> npt.NDArray[np.uint8]:
        """Read one image as 8-bit greyscale.

        Raise ``ImageError`` when the file cannot be read or decoded or is
        not a usable image. Evaluation counts that as a problem of the data
        set, never as a failure to enrol, which only ``extract`` reports.
        """
        ...

    def extract(self, image: npt.NDArray[np.uint8]) -> bytes:
        """Return the serialised template; raise ``BiometricError`` on failure
        to enrol."""
        ...

    def compare(self, first: bytes, second: bytes) -> float:
        """Return the similarity of two serialised templates, in [0, 1]."""
        ...

    def threshold(self) -> float:
        """Return the shipped decision threshold (accept at or above)."""
        ...
