"""Fingerprint capture, minutiae extraction and matching.

- :func:`load_fingerprint_image` reads an image file as 8-bit grey.
- :class:`FingerprintExtractor` turns an image into a
  :class:`FingerprintTemplate` with the LEADER network on ONNX Runtime.
- :func:`compare_fingerprints` scores two templates in [0, 1] with a
  Minutia Cylinder-Code matcher; the shipped threshold is
  ``thresholds.fingerprint`` in ``models/manifest.json``.
- :class:`FingerprintSensor` is the capture interface, implemented for the
  UART module family (header EF01) by :class:`SerialFingerprintSensor`.
- ``modality`` offers all of this to ``edge_gate.evaluation``.
"""

from edge_gate.fingerprint._extract import FingerprintExtractor
from edge_gate.fingerprint._image import (
    emulate_sensor_image,
    foreground_blocks,
    load_fingerprint_image,
)
from edge_gate.fingerprint._match import compare_fingerprints
from edge_gate.fingerprint._modality import FingerprintModality, modality
from edge_gate.fingerprint._profiles import PROFILES, ModuleProfile
from edge_gate.fingerprint._sensor import (
    FingerprintSensor,
    ModuleRejectedError,
    SerialFingerprintSensor,
)
from edge_gate.fingerprint._template import FORMAT_VERSION, FingerprintTemplate

__all__ = [
    "FORMAT_VERSION",
    "PROFILES",
    "FingerprintExtractor",
    "FingerprintModality",
    "FingerprintSensor",
    "FingerprintTemplate",
    "ModuleProfile",
    "ModuleRejectedError",
    "SerialFingerprintSensor",
    "compare_fingerprints",
    "emulate_sensor_image",
    "foreground_blocks",
    "load_fingerprint_image",
    "modality",
]
