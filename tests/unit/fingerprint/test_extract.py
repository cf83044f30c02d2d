"""Extraction with the shipped LEADER model on real images, and its errors."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edge_gate._models import find_models_dir, load_threshold
from edge_gate.errors import CaptureError, ImageError, ModelError
from edge_gate.fingerprint import (
    FingerprintExtractor,
    FingerprintTemplate,
    compare_fingerprints,
    emulate_sensor_image,
    load_fingerprint_image,
    modality,
)

# A calibration set: the report set (FVC2002_DB1_B) stays out of tests too.
SET = "FVC2002_DB2_B"


@pytest.fixture(scope="module")
def extractor() -> FingerprintExtractor:
    return FingerprintExtractor()


@pytest.fixture(scope="module")
def threshold() -> float:
    return load_threshold(find_models_dir(), "fingerprint").threshold


@pytest.mark.data
def test_genuine_pair_matches_and_impostor_does_not(
    data_dir: Path, extractor: FingerprintExtractor, threshold: float
) -> None:
    folder = data_dir / "fingerprints" / SET
    a, b, c = (
        extractor.extract(load_fingerprint_image(folder / name))
        for name in ("101_1.tif", "101_2.tif", "102_1.tif")
    )
    assert compare_fingerprints(a, b) >= threshold
    assert compare_fingerprints(a, c) < threshold
    assert 0.0 <= a.quality <= 1.0
    assert len(a) >= 10


@pytest.mark.data
def test_sensor_view_of_a_print_still_matches(
    data_dir: Path, extractor: FingerprintExtractor, threshold: float
) -> None:
    folder = data_dir / "fingerprints" / SET
    full = extractor.extract(load_fingerprint_image(folder / "103_1.tif"))
    sensor = emulate_sensor_image(load_fingerprint_image(folder / "103_3.tif"))
    assert sensor.shape == (288, 256)
    assert len(np.unique(sensor)) <= 16
    seen = extractor.extract(sensor)
    assert compare_fingerprints(full, seen) >= threshold
    again = FingerprintTemplate.from_bytes(seen.to_bytes())
    assert compare_fingerprints(full, again) == pytest.approx(
        compare_fingerprints(full, seen), abs=0.02
    )


def test_blank_image_is_a_failure_to_enrol(extractor: FingerprintExtractor) -> None:
    with pytest.raises(CaptureError, match="ridge"):
        extractor.extract(np.full((288, 256), 255, dtype=np.uint8))


@pytest.mark.parametrize(
    "image",
    [
        pytest.param(np.zeros((288, 256), np.float32), id="float-array"),
        pytest.param(np.zeros((288, 256, 3), np.uint8), id="colour-array"),
        pytest.param(np.zeros((20, 20), np.uint8), id="too-small"),
    ],
)
def test_unusable_arrays_raise_image_error(
    extractor: FingerprintExtractor, image: np.ndarray
) -> None:
    with pytest.raises(ImageError):
        extractor.extract(image)


def test_corrupt_image_file_raises_image_error(tmp_path: Path) -> None:
    path = tmp_path / "101_1.tif"
    path.write_bytes(b"II*\x00not really a tiff")
    with pytest.raises(ImageError, match=r"101_1\.tif"):
        load_fingerprint_image(path)


def test_altered_model_is_refused(tmp_path: Path) -> None:
    shipped = find_models_dir()
    shutil.copy(shipped / "manifest.json", tmp_path / "manifest.json")
    model = (shipped / "leader.onnx").read_bytes()
    (tmp_path / "leader.onnx").write_bytes(model[:-1] + bytes([model[-1] ^ 1]))
    with pytest.raises(ModelError, match="SHA-256"):
        FingerprintExtractor(tmp_path)


def test_manifest_threshold_is_calibrated_for_the_target() -> None:
    manifest = json.loads((find_models_dir() / "manifest.json").read_text())
    entry = manifest["thresholds"]["fingerprint"]
    assert entry["target_fmr"] == 1e-3
    assert "FVC2002_DB1_B" not in entry["calibration_set"]
    curve = entry["fmr_curve"]
    assert all(a[0] < b[0] and a[1] >= b[1] for a, b in itertools.pairwise(curve))


def test_list_samples_groups_fvc_names_by_finger(tmp_path: Path) -> None:
    for name in (
        "101_2.tif",
        "101_10.png",
        "101_1.tif",
        "102_1.bmp",
        "notes.txt",
        "x.tif",
    ):
        (tmp_path / name).write_bytes(b"")
    samples = modality.list_samples(tmp_path)
    assert [(i, p.name) for i, p in samples] == [
        ("101", "101_1.tif"),
        ("101", "101_2.tif"),
        ("101", "101_10.png"),
        ("102", "102_1.bmp"),
    ]
    assert modality.name == "fingerprint"
    assert 0.0 < modality.threshold() < 1.0
