"""Tests of frames that hold no usable eye: each must fail with its cause."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from edge_gate.errors import CaptureError
from edge_gate.iris import IrisEncoder, compare_irises, load_iris_image
from edge_gate.iris._segment import segment_eye


def casia(data_dir: Path, name: str) -> npt.NDArray[np.uint8]:
    return load_iris_image(data_dir / "iris" / "casia-iris-v1" / name)


def checkerboard(square_px: int) -> npt.NDArray[np.uint8]:
    ys, xs = np.mgrid[0:280, 0:320]
    return (((ys // square_px + xs // square_px) % 2) * 255).astype(np.uint8)


@pytest.mark.parametrize(
    "level", [0, 128, 255], ids=["black frame", "grey frame", "white frame"]
)
def test_flat_frame_reports_no_contrast(level: int) -> None:
    frame = np.full((280, 320), level, dtype=np.uint8)
    with pytest.raises(CaptureError, match="no contrast") as caught:
        segment_eye(frame)
    assert "span 0" in str(caught.value)
    assert "illuminators" in str(caught.value)


@pytest.mark.parametrize(
    "frame",
    [
        checkerboard(8),
        checkerboard(16),
        np.random.default_rng(0).integers(0, 256, (280, 320)).astype(np.uint8),
    ],
    ids=["checkerboard 8 px", "checkerboard 16 px", "uniform noise"],
)
def test_frame_without_eye_reports_no_eye(frame: npt.NDArray[np.uint8]) -> None:
    # These frames span the full grey range, so only the pupil search can
    # tell that no dark disc is there. It used to report a pupil cut by the
    # image border.
    with pytest.raises(CaptureError, match="no eye found") as caught:
        segment_eye(frame)
    assert "rises 0 grey levels" in str(caught.value)
    assert "cut by the image border" not in str(caught.value)


@pytest.mark.parametrize("shift_px", [-150, 110], ids=["left", "right"])
def test_pupil_cut_by_border_rejected(data_dir: Path, shift_px: int) -> None:
    # Rolled sideways, the border cuts this pupil (radius 38 px). The search
    # used to fall back to a weaker dark region (a 16 px pupil), and the
    # template scored 0.55 against the unshifted image.
    image = np.roll(casia(data_dir, "001/001_1_1.jpg"), shift_px, axis=1)
    with pytest.raises(CaptureError, match="cut by the image border"):
        IrisEncoder(min_quality=0.0).encode(image)


def test_vignetted_eye_still_enrols(data_dir: Path) -> None:
    # Darker sides cancel the iris-sclera step (below 2 grey levels here),
    # yet the circles stay right, so the frame must not be rejected.
    image = casia(data_dir, "024/024_1_1.jpg")
    height, width = image.shape
    ys, xs = np.mgrid[0:height, 0:width]
    radius = np.hypot((xs - width / 2) / (width / 2), (ys - height / 2) / (height / 2))
    gain = 1 - 0.8 * (radius / np.sqrt(2)) ** 2
    vignetted = np.clip(image * gain, 0, 255).astype(np.uint8)
    encoder = IrisEncoder(min_quality=0.0)
    score = compare_irises(encoder.encode(vignetted), encoder.encode(image))
    assert score > 0.9


@pytest.mark.parametrize("gain", [2.0, 3.0], ids=["gain 2", "gain 3"])
def test_overexposed_eye_rejected(data_dir: Path, gain: float) -> None:
    # At three times the brightness the iris and sclera saturate, and the
    # iris circle came out at radius 53 instead of 101.
    image = casia(data_dir, "001/001_1_1.jpg")
    bright = np.clip(image * gain, 0, 255).astype(np.uint8)
    with pytest.raises(CaptureError, match="over-exposed") as caught:
        IrisEncoder(min_quality=0.0).encode(bright)
    assert "saturated" in str(caught.value)
    assert "lower the exposure" in str(caught.value)


def test_overexposed_synthetic_eye_rejected(eye_drawer: Any) -> None:
    bright = np.clip(eye_drawer().astype(np.float32) * 3, 0, 255).astype(np.uint8)
    with pytest.raises(CaptureError, match="over-exposed"):
        segment_eye(bright)


@pytest.mark.parametrize("square_px", [40, 64], ids=["40 px", "64 px"])
def test_checkerboard_not_reported_overexposed(square_px: int) -> None:
    # White squares fill most of the circle taken for the iris, but black
    # squares as dark as the "pupil" show that this is no over-exposed eye.
    with pytest.raises(CaptureError) as caught:
        IrisEncoder(min_quality=0.0).encode(checkerboard(square_px))
    assert "over-exposed" not in str(caught.value)


@pytest.mark.parametrize(
    "name", ["001/001_1_1.jpg", "019/019_1_1.jpg", "037/037_2_4.jpg"]
)
def test_brighter_calibration_eye_segments(data_dir: Path, name: str) -> None:
    # At 1.3 times the brightness a calibration eye passes the contrast and
    # exposure checks, and its iris circle stays near its size (about 100 px).
    image = casia(data_dir, name)
    brighter = np.clip(image * 1.3, 0, 255).astype(np.uint8)
    assert segment_eye(brighter).iris.radius > 80
