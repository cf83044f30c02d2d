"""Biometric sources: synthetic identities and real data sets paired up."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge_gate.rig.travellers import (
    DatasetError,
    DatasetSource,
    SyntheticSource,
    fingerprint_identities,
    iris_identities,
)


def _write(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((64, 64), value, dtype=np.uint8)).save(path)


def _make_dataset(root: Path) -> None:
    for finger in (101, 102, 103):
        for impression in (1, 2, 3):
            _write(
                root / "fingerprints" / "setA" / f"{finger}_{impression}.png", finger
            )
    # A lone impression is no identity.
    _write(root / "fingerprints" / "setA" / "104_1.png", 1)
    for eye in ("001", "002"):
        for capture in range(4):
            _write(root / "iris" / "eyes" / eye / f"{eye}_{capture}.png", capture)
    # A flat folder of images is not an identity set.
    _write(root / "iris" / "flat" / "sample.png", 9)


def test_synthetic_source_enrolment_files(tmp_path: Path) -> None:
    source = SyntheticSource(seed=1)
    finger_path, iris_path = source.enrolment_paths(3, tmp_path)
    assert np.array_equal(np.asarray(Image.open(finger_path)), source.fingerprint(3, 0))
    assert np.array_equal(np.asarray(Image.open(iris_path)), source.iris(3, 0))
    assert source.identity_count() is None


def test_fingerprint_groups_need_two(tmp_path: Path) -> None:
    _make_dataset(tmp_path)
    identities = fingerprint_identities(tmp_path / "fingerprints" / "setA")
    assert [i.name for i in identities] == ["setA/101", "setA/102", "setA/103"]
    assert [p.name for p in identities[0].images] == [
        "101_1.png",
        "101_2.png",
        "101_3.png",
    ]


def test_iris_sets_need_folders(tmp_path: Path) -> None:
    _make_dataset(tmp_path)
    assert iris_identities(tmp_path / "iris" / "flat") == []
    assert [i.name for i in iris_identities(tmp_path / "iris" / "eyes")] == [
        "eyes/001",
        "eyes/002",
    ]


def test_dataset_pairs_identities(tmp_path: Path) -> None:
    _make_dataset(tmp_path)
    source = DatasetSource(tmp_path)
    assert source.identity_count() == 2
    assert source.capture_count(0) == 3
    assert source.pair_names(1) == ("setA/102", "eyes/002")
    finger_path, iris_path = source.enrolment_paths(0, tmp_path / "unused")
    assert finger_path.name == "101_1.png"
    assert iris_path.name == "001_0.png"
    assert not (tmp_path / "unused").exists()


def test_dataset_missing_set_named(tmp_path: Path) -> None:
    _make_dataset(tmp_path)
    with pytest.raises(DatasetError, match="absent"):
        DatasetSource(tmp_path, fingerprint_sets=("absent",))


def test_dataset_iris_skip(tmp_path: Path) -> None:
    _make_dataset(tmp_path)
    source = DatasetSource(tmp_path, iris_skip=1)
    assert source.identity_count() == 1
    assert source.pair_names(0) == ("setA/101", "eyes/002")
    with pytest.raises(DatasetError, match="after skipping 2"):
        DatasetSource(tmp_path, iris_skip=2)


def test_dataset_without_identities(tmp_path: Path) -> None:
    _make_dataset(tmp_path)
    with pytest.raises(DatasetError, match="one folder per eye"):
        DatasetSource(tmp_path, iris_sets=("flat",))


@pytest.mark.data
def test_real_data_layout(data_dir: Path) -> None:
    source = DatasetSource(
        data_dir, fingerprint_sets=("FVC2002_DB1_B",), iris_sets=("casia-iris-v1",)
    )
    assert source.identity_count() == 10
    assert source.capture_count(0) == 7
    assert source.fingerprint(0, 1).dtype == np.uint8
