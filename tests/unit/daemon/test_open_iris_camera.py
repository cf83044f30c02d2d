"""The lane daemon opens its iris camera with every ``[iris]`` setting."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import edge_gate.iris._camera as camera_module
from edge_gate.config import GateConfig, IrisConfig
from edge_gate.daemon._components import open_iris_camera


def test_v4l2_camera_gets_frame_size_and_burst(monkeypatch: pytest.MonkeyPatch) -> None:
    # No V4L2 device or OpenCV here: record what the driver is opened with.
    opened: list[dict[str, Any]] = []

    class RecordingCamera:
        def __init__(self, device: str, **settings: Any) -> None:
            opened.append({"device": device, **settings})

        def close(self) -> None:
            pass

    monkeypatch.setattr(camera_module, "V4L2IrisCamera", RecordingCamera)
    iris = IrisConfig(
        device="/dev/video7", frame_width=1280, frame_height=960, frames_per_capture=9
    )
    open_iris_camera(GateConfig(iris=iris)).close()
    assert opened == [
        {
            "device": "/dev/video7",
            "width": 1280,
            "height": 960,
            "frames_per_capture": 9,
        }
    ]


def test_directory_camera_gets_orientation(tmp_path: Path) -> None:
    frame = np.arange(96 * 80, dtype=np.uint32).reshape(80, 96).astype(np.uint8)
    Image.fromarray(np.fliplr(frame)).save(tmp_path / "eye.png")
    iris = dataclasses.replace(
        IrisConfig(source="directory", directory=str(tmp_path)), orientation="mirror"
    )
    camera = open_iris_camera(GateConfig(iris=iris))
    try:
        assert np.array_equal(camera.capture(2.0), frame)
    finally:
        camera.close()
