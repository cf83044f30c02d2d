"""Real fingerprint images through the emulated module, the driver and the matcher."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edge_gate._models import find_models_dir, load_threshold
from edge_gate.fingerprint import (
    FingerprintExtractor,
    compare_fingerprints,
    load_fingerprint_image,
)

# A calibration set: the report set stays out of tests.
SET = "FVC2002_DB2_B"


@pytest.mark.data
def test_captured_print_matches_its_enrolled_finger(data_dir: Path, rig: Any) -> None:
    emulator = rig.need_emulator()
    folder = data_dir / "fingerprints" / SET
    extractor = FingerprintExtractor()
    threshold = load_threshold(find_models_dir(), "fingerprint").threshold
    enrolled = extractor.extract(load_fingerprint_image(folder / "105_1.tif"))
    other_finger = extractor.extract(load_fingerprint_image(folder / "106_1.tif"))

    emulator.place_finger_file(folder / "105_4.tif")
    with rig.open() as sensor:
        image = sensor.capture_image(timeout_s=5)
    probe = extractor.extract(image)

    assert image.shape == (288, 256)
    assert compare_fingerprints(enrolled, probe) >= threshold
    assert compare_fingerprints(other_finger, probe) < threshold
