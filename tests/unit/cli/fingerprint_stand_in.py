"""Run ``edge-gate`` with a stand-in fingerprint matcher in a child process.

Permission tests run the command in a child process, because root reads a
file of mode 000 and the child can run without that capability. The
stand-in keeps the real data set layout (FVC names) and the real image file
reading of :mod:`edge_gate.fingerprint`. Only extraction and comparison are
replaced, so no model is loaded:

- the template is the image's mean grey level as one byte, and equal
  templates score 1.0, others 0.1, against a threshold of 0.5;
- an all-black image is a readable image that gives no template (a failure
  to enrol);
- each extraction prints ``stand-in: extract`` to stderr, so a test can
  check that nothing was compared.

Usage: ``python fingerprint_stand_in.py biometrics evaluate ...``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt

from edge_gate.cli import _biometrics, main
from edge_gate.errors import CaptureError
from edge_gate.fingerprint import modality as fingerprint

EXTRACT_MARK = "stand-in: extract"


class StandInFingerprintModality:
    """Fingerprint modality with real layout and image reading, trivial matcher."""

    name = "fingerprint"

    def list_samples(self, directory: Path) -> list[tuple[str, Path]]:
        return fingerprint.list_samples(directory)

    def load_image(self, path: Path) -> npt.NDArray[np.uint8]:
        return fingerprint.load_image(path)

    def extract(self, image: npt.NDArray[np.uint8]) -> bytes:
        print(EXTRACT_MARK, file=sys.stderr)
        if not image.any():
            raise CaptureError("the image is black: no ridges found")
        return bytes([int(image.mean())])

    def compare(self, first: bytes, second: bytes) -> float:
        return 1.0 if first == second else 0.1

    def threshold(self) -> float:
        return 0.5


if __name__ == "__main__":
    stand_in = StandInFingerprintModality()
    _biometrics.load_modality = lambda _name: stand_in
    sys.exit(main(sys.argv[1:]))
