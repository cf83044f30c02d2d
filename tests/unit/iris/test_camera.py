"""Contract tests of the directory iris camera and the V4L2 camera's absence."""

from __future__ import annotations

import dataclasses
import importlib.util
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from edge_gate.config import IrisConfig
from edge_gate.errors import CaptureError, DeviceInitError
from edge_gate.iris import (
    DirectoryIrisCamera,
    OrientedIrisCamera,
    V4L2IrisCamera,
    frame_sharpness,
    load_iris_image,
    modality,
    open_iris_camera,
)


def blurred(image: np.ndarray[Any, Any], passes: int) -> np.ndarray[Any, Any]:
    result = image.astype(np.float32)
    for _ in range(passes):
        result = (
            result
            + np.roll(result, 1, 0)
            + np.roll(result, -1, 0)
            + np.roll(result, 1, 1)
            + np.roll(result, -1, 1)
        ) / 5
    return result.astype(np.uint8)


def test_sharpest_frame_returned_and_files_deleted(
    tmp_path: Path, eye_drawer: Any
) -> None:
    sharp = eye_drawer()
    Image.fromarray(blurred(sharp, 4)).save(tmp_path / "frame-1.png")
    Image.fromarray(sharp).save(tmp_path / "frame-2.png")
    Image.fromarray(blurred(sharp, 2)).save(tmp_path / "frame-3.png")
    (tmp_path / "notes.txt").write_text("not a frame")
    with DirectoryIrisCamera(tmp_path, settle_s=0.01) as camera:
        frame = camera.capture(timeout_s=1.0)
    assert np.array_equal(frame, sharp)
    assert frame_sharpness(sharp) > frame_sharpness(blurred(sharp, 2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_capture_waits_for_a_frame(tmp_path: Path, eye_drawer: Any) -> None:
    image = eye_drawer()

    def write_later() -> None:
        time.sleep(0.2)
        Image.fromarray(image).save(tmp_path / ".partial.png")
        (tmp_path / ".partial.png").rename(tmp_path / "eye.png")

    writer = threading.Thread(target=write_later, name="test-rig-writer")
    writer.start()
    try:
        with DirectoryIrisCamera(tmp_path, settle_s=0.01) as camera:
            frame = camera.capture(timeout_s=3.0)
    finally:
        writer.join(timeout=5)
    assert frame.shape == image.shape


def test_capture_times_out(tmp_path: Path) -> None:
    camera = DirectoryIrisCamera(tmp_path, poll_interval_s=0.01)
    started = time.monotonic()
    with pytest.raises(CaptureError, match=r"within 0\.2 s"):
        camera.capture(timeout_s=0.2)
    assert time.monotonic() - started < 1.0
    camera.close()


def test_close_cancels_a_waiting_capture(tmp_path: Path) -> None:
    camera = DirectoryIrisCamera(tmp_path, poll_interval_s=0.01)
    errors: list[Exception] = []

    def wait() -> None:
        try:
            camera.capture(timeout_s=30.0)
        except CaptureError as err:
            errors.append(err)

    waiter = threading.Thread(target=wait, name="test-capture")
    waiter.start()
    time.sleep(0.05)
    camera.close()
    camera.close()
    waiter.join(timeout=2)
    assert not waiter.is_alive()
    assert "closed" in str(errors[0])


def test_corrupt_file_dropped_after_retry(tmp_path: Path) -> None:
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    camera = DirectoryIrisCamera(tmp_path, poll_interval_s=0.01, settle_s=0.01)
    with pytest.raises(CaptureError):
        camera.capture(timeout_s=0.2)
    assert not (tmp_path / "broken.png").exists()


def test_unconvertible_file_dropped_after_retry(tmp_path: Path) -> None:
    from PIL import Image

    # A CIELab TIFF decodes but has no greyscale conversion.
    Image.new("LAB", (64, 64), (50, 0, 0)).save(tmp_path / "lab.tif")
    camera = DirectoryIrisCamera(tmp_path, poll_interval_s=0.01, settle_s=0.01)
    with pytest.raises(CaptureError):
        camera.capture(timeout_s=0.2)
    assert not (tmp_path / "lab.tif").exists()


def test_missing_folder_rejected(tmp_path: Path) -> None:
    with pytest.raises(DeviceInitError, match="does not exist"):
        DirectoryIrisCamera(tmp_path / "absent")


def test_config_selects_directory_camera(tmp_path: Path) -> None:
    camera = open_iris_camera(IrisConfig(source="directory", directory=str(tmp_path)))
    assert isinstance(camera, DirectoryIrisCamera)
    camera.close()
    with pytest.raises(DeviceInitError, match="directory"):
        open_iris_camera(IrisConfig(source="directory"))


@pytest.mark.skipif(
    importlib.util.find_spec("cv2") is not None, reason="OpenCV is installed"
)
def test_v4l2_without_opencv_names_the_package() -> None:
    with pytest.raises(DeviceInitError, match="opencv-python-headless"):
        V4L2IrisCamera("/dev/video0")


@pytest.mark.parametrize(
    ("orientation", "turn"),
    [
        ("mirror", np.fliplr),
        ("rotate_180", lambda image: np.rot90(image, 2)),
        ("flip_vertical", np.flipud),
    ],
)
def test_orientation_undoes_the_cameras_turn(
    tmp_path: Path, eye_drawer: Any, orientation: str, turn: Any
) -> None:
    # Off-centre pupil, so that every turn changes the frame.
    eye = eye_drawer(pupil=(150.0, 130.0, 40.0))
    Image.fromarray(turn(eye)).save(tmp_path / "eye.png")
    config = IrisConfig(source="directory", directory=str(tmp_path))
    config = dataclasses.replace(config, orientation=orientation)
    with open_iris_camera(config) as camera:
        frame = camera.capture(timeout_s=2.0)
    assert frame.flags["C_CONTIGUOUS"]
    assert np.array_equal(frame, eye)


def test_unknown_orientation_rejected(tmp_path: Path) -> None:
    camera = DirectoryIrisCamera(tmp_path)
    with pytest.raises(ValueError, match=r"'sideways'.*mirror, rotate_180"):
        OrientedIrisCamera(camera, "sideways")


def test_mirrored_eye_matches_only_once_turned_back(
    data_dir: Path, tmp_path: Path
) -> None:
    # A camera that delivers mirror images: its frames of the enrolled eye
    # fail, because the iris code runs the other way round.
    folder = data_dir / "iris" / "casia-iris-v1" / "003"
    enrolled = modality.extract(modality.load_image(folder / "003_1_1.jpg"))
    probe = load_iris_image(folder / "003_2_2.jpg")
    threshold = modality.threshold()
    scores = {}
    for orientation in ("as_is", "mirror"):
        Image.fromarray(np.fliplr(probe)).save(tmp_path / "frame.png")
        config = dataclasses.replace(
            IrisConfig(source="directory", directory=str(tmp_path)),
            orientation=orientation,
        )
        with open_iris_camera(config) as camera:
            frame = camera.capture(timeout_s=2.0)
        scores[orientation] = modality.compare(enrolled, modality.extract(frame))
    assert scores["as_is"] < threshold <= scores["mirror"]
