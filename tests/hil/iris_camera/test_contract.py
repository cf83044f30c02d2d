"""Contract of ``IrisCamera``: the rig's directory camera, or a real one."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from edge_gate.errors import CaptureError
from edge_gate.iris import IrisEncoder, frame_sharpness


def test_capture_returns_grey_frame(camera_rig: Any, make_eye: Any) -> None:
    if camera_rig.folder is not None:
        camera_rig.present([make_eye()])
    frame = camera_rig.camera.capture(timeout_s=5.0)
    assert frame.dtype == np.uint8
    assert frame.ndim == 2
    assert min(frame.shape) >= 64


def test_capture_picks_sharpest_frame(camera_rig: Any, make_eye: Any) -> None:
    frames = [make_eye(blur_passes=3), make_eye(), make_eye(blur_passes=1)]
    camera_rig.present(frames)
    frame = camera_rig.camera.capture(timeout_s=5.0)
    assert np.array_equal(frame, frames[1])
    assert frame_sharpness(frames[1]) > frame_sharpness(frames[2])


def test_frames_read_once(camera_rig: Any, make_eye: Any) -> None:
    camera_rig.present([make_eye()])
    camera_rig.camera.capture(timeout_s=5.0)
    with pytest.raises(CaptureError):
        camera_rig.camera.capture(timeout_s=0.2)


def test_timeout_bounded(camera_rig: Any) -> None:
    if camera_rig.folder is None:
        pytest.skip("a real camera always delivers frames")
    started = time.monotonic()
    with pytest.raises(CaptureError):
        camera_rig.camera.capture(timeout_s=0.3)
    elapsed = time.monotonic() - started
    assert 0.25 <= elapsed < 1.5


def test_captured_frame_encodes(camera_rig: Any, make_eye: Any) -> None:
    camera_rig.present([make_eye(seed=4)])
    frame = camera_rig.camera.capture(timeout_s=5.0)
    template = IrisEncoder(min_quality=0.0).encode(frame)
    assert template.valid_fraction > 0.3


def test_closed_camera_raises(camera_rig: Any) -> None:
    camera_rig.camera.close()
    camera_rig.camera.close()
    with pytest.raises(CaptureError, match="closed"):
        camera_rig.camera.capture(timeout_s=0.2)
