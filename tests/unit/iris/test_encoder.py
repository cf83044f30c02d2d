"""Tests of the encoder model, template extraction and the modality object."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_gate.errors import CaptureError, ModelError, TemplateError
from edge_gate.iris import (
    EncodingParams,
    IrisEncoder,
    IrisTemplate,
    compare_irises,
    modality,
)

MODELS = Path(__file__).resolve().parents[3] / "models"


def load_build_script() -> Any:
    spec = importlib.util.spec_from_file_location(
        "build_iris_encoder", MODELS / "build_iris_encoder.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Dataclasses look their module up in sys.modules.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_rebuild_gives_committed_model() -> None:
    built = load_build_script().build_model().SerializeToString()
    committed = (MODELS / "iris_encoder.onnx").read_bytes()
    assert built == committed
    manifest = json.loads((MODELS / "manifest.json").read_text(encoding="utf-8"))
    entry = manifest["models"]["iris_encoder"]
    assert entry["sha256"] == hashlib.sha256(committed).hexdigest()
    assert entry["inputs"]["strip"]["shape"] == [1, 1, 32, 256]


def test_threshold_shipped_for_target_fmr() -> None:
    manifest = json.loads((MODELS / "manifest.json").read_text(encoding="utf-8"))
    entry = manifest["thresholds"]["iris"]
    assert entry["target_fmr"] == 1e-4
    assert "001-040" in entry["calibration_set"]
    assert 0.5 < entry["threshold"] < 1.0
    fmrs = [fmr for _, fmr in entry["fmr_curve"]]
    assert fmrs == sorted(fmrs, reverse=True)
    assert modality.threshold() == pytest.approx(entry["threshold"])


def test_altered_model_rejected(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_bytes((MODELS / "manifest.json").read_bytes())
    data = bytearray((MODELS / "iris_encoder.onnx").read_bytes())
    data[-1] ^= 1
    (tmp_path / "iris_encoder.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelError, match="SHA-256"):
        IrisEncoder(tmp_path)


def test_model_with_another_code_grid_rejected(tmp_path: Path) -> None:
    # A rebuilt model with row stride 1 gives 32 code rows instead of 16, so
    # its templates could not be compared with the lane's.
    data = load_build_script().build_model(row_stride=1).SerializeToString()
    (tmp_path / "iris_encoder.onnx").write_bytes(data)
    manifest = json.loads((MODELS / "manifest.json").read_text(encoding="utf-8"))
    manifest["models"]["iris_encoder"]["sha256"] = hashlib.sha256(data).hexdigest()
    (tmp_path / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")

    with pytest.raises(
        ModelError, match=r"does not match the code grid \(16, 128, 2\)"
    ):
        IrisEncoder(tmp_path)


def test_synthetic_eye_encodes_and_matches_itself(eye_drawer: Any) -> None:
    encoder = IrisEncoder()
    first = encoder.encode(eye_drawer(seed=1))
    second = encoder.encode(eye_drawer(seed=2))
    assert first.shape == (16, 128, 2)
    assert len(first.to_bytes()) <= 1024
    assert first.valid_fraction > 0.5
    # Same texture, new sensor noise: a clear match.
    assert compare_irises(first, second) > 0.7


def test_blank_frame_fails_to_enrol() -> None:
    with pytest.raises(CaptureError):
        IrisEncoder().encode(np.full((280, 320), 128, dtype=np.uint8))


def test_low_quality_asks_for_recapture(eye_drawer: Any) -> None:
    encoder = IrisEncoder(min_quality=1.01)
    with pytest.raises(CaptureError, match="recapture"):
        encoder.encode(eye_drawer())


def test_usable_share_ignores_fragile_bits(eye_drawer: Any) -> None:
    image = eye_drawer(seed=1)
    # Half of the valid cells are masked as fragile, so the template keeps
    # about half of the cells that the minimum is measured on.
    kept = (
        IrisEncoder(encoding=EncodingParams(fragile_share=0.5, min_valid_share=0.0))
        .encode(image)
        .valid_fraction
    )
    passing = EncodingParams(fragile_share=0.5, min_valid_share=1.5 * kept)
    assert IrisEncoder(encoding=passing).encode(image).valid_fraction == kept
    failing = EncodingParams(fragile_share=0.5, min_valid_share=2.5 * kept)
    with pytest.raises(CaptureError, match="usable"):
        IrisEncoder(encoding=failing).encode(image)


def test_real_images_same_eye_match(data_dir: Path) -> None:
    folder = data_dir / "iris" / "casia-iris-v1"
    samples = modality.list_samples(folder)
    assert len(samples) == 560
    assert samples[0][0] == "001"
    by_name = {path.name: path for _, path in samples}
    threshold = modality.threshold()
    same_1 = modality.extract(modality.load_image(by_name["003_1_1.jpg"]))
    same_2 = modality.extract(modality.load_image(by_name["003_2_2.jpg"]))
    other = modality.extract(modality.load_image(by_name["004_1_1.jpg"]))
    assert modality.compare(same_1, same_2) >= threshold
    assert modality.compare(same_1, other) < threshold
    assert 0.0 <= modality.compare(same_1, other) <= 1.0


def test_modality_rejects_corrupt_template() -> None:
    with pytest.raises(TemplateError):
        modality.compare(b"EGIT" + bytes(20), b"")


def test_modality_rejects_flat_folder(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"")
    with pytest.raises(Exception, match="one folder per eye"):
        modality.list_samples(tmp_path)


def test_template_bytes_round_trip_through_modality(eye_drawer: Any) -> None:
    data = modality.extract(eye_drawer())
    template = IrisTemplate.from_bytes(data)
    assert template.to_bytes() == data
