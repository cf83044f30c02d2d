"""Publishing from real fingerprint and iris images with the gate's own
extractors, then syncing the templates to a gate."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from edge_gate.cli import main
from edge_gate.store import TEMPLATES_DB, TemplateStore, load_key
from edge_gate.sync import Publisher, sync_once

pytestmark = pytest.mark.data

FINGER_IMAGE = Path("fingerprints/FVC2002_DB1_B/101_1.tif")
IRIS_IMAGE = Path("iris/casia-iris-v1/001/001_1_1.jpg")


def test_publish_from_images_matches_extractors(
    tmp_path: Path,
    data_dir: Path,
    publisher: Publisher,
    http_server: Any,
    configure: Any,
) -> None:
    fingerprint = pytest.importorskip("edge_gate.fingerprint")
    iris = pytest.importorskip("edge_gate.iris")
    # Image paths in the input are relative to the input file's folder.
    images = tmp_path / "input" / "images"
    images.mkdir(parents=True)
    shutil.copy(data_dir / FINGER_IMAGE, images / "finger.tif")
    shutil.copy(data_dir / IRIS_IMAGE, images / "eye.jpg")
    records = tmp_path / "input" / "records.jsonl"
    records.write_text(
        json.dumps(
            {
                "person_id": "P-img",
                "documents": [
                    {
                        "issuing_state": "UTO",
                        "document_number": "IMG000001",
                        "expiry": "2031-01-01",
                    }
                ],
                "enrolment_expiry": "2031-01-01",
                "fingerprints": {"right_index": "images/finger.tif"},
                "irises": {"left": "images/eye.jpg"},
            }
        )
        + "\n"
    )

    status = main(
        ["publish", "records", "--dir", str(publisher.workdir), "--input", str(records)]
    )
    assert status == 0
    config = configure(http_server.url)
    sync_once(config)

    expected_finger = fingerprint.FingerprintExtractor().extract(
        fingerprint.load_fingerprint_image(data_dir / FINGER_IMAGE)
    )
    expected_iris = iris.IrisEncoder().encode(
        iris.load_iris_image(data_dir / IRIS_IMAGE)
    )
    state = Path(config.store.state_dir)
    with TemplateStore(state / TEMPLATES_DB, load_key(config.store.key_file)) as store:
        found = store.lookup("UTO", "IMG000001")
    assert found is not None
    assert found.fingerprints["right_index"] == expected_finger.to_bytes()
    assert found.irises["left"] == expected_iris.to_bytes()


def test_unreadable_image_is_reported(
    tmp_path: Path, publisher: Publisher, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("edge_gate.fingerprint")
    (tmp_path / "broken.tif").write_bytes(b"not an image")
    records = tmp_path / "records.jsonl"
    records.write_text(
        json.dumps(
            {
                "person_id": "P-bad",
                "documents": [
                    {
                        "issuing_state": "UTO",
                        "document_number": "BAD000001",
                        "expiry": "2031-01-01",
                    }
                ],
                "enrolment_expiry": "2031-01-01",
                "fingerprints": {"right_index": "broken.tif"},
            }
        )
        + "\n"
    )

    status = main(
        ["publish", "records", "--dir", str(publisher.workdir), "--input", str(records)]
    )

    assert status == 1
    error = capsys.readouterr().err
    assert "records.jsonl:1: fingerprint right_index: no template from" in error
    assert publisher.version == 0
