"""Fixtures of the iris camera contract suite.

By default the suite runs against ``DirectoryIrisCamera``, the rig's
camera, with frames written into a temporary folder. On a
hardware-in-loop rig, set ``EDGE_GATE_HIL_IRIS_DEVICE`` to the V4L2 device
node to run the tests that need no controlled frames against the real
camera; the tests that present frames themselves skip there.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from edge_gate.iris import DirectoryIrisCamera, IrisCamera, V4L2IrisCamera

HIL_DEVICE = os.environ.get("EDGE_GATE_HIL_IRIS_DEVICE", "")


def eye_image(seed: int = 0, blur_passes: int = 0) -> npt.NDArray[np.uint8]:
    """Return a synthetic 320 x 280 eye, optionally blurred by box passes."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:280, 0:320].astype(np.float32)
    distance = np.hypot(xs - 160, ys - 140)
    angle = np.arctan2(ys - 140, xs - 160)
    image = np.full((280, 320), 200.0, dtype=np.float32)
    iris = distance < 100
    texture = 20 * np.sin(angle * 23 + distance * 0.21) + rng.normal(0, 6, (280, 320))
    image[iris] = 120 + texture[iris]
    image[distance < 40] = 30
    for _ in range(blur_passes):
        image = (
            image
            + np.roll(image, 1, 0)
            + np.roll(image, -1, 0)
            + np.roll(image, 1, 1)
            + np.roll(image, -1, 1)
        ) / 5
    return np.clip(image, 0, 255).astype(np.uint8)


@dataclass
class CameraRig:
    """The camera under test and, for the rig's camera, its folder."""

    camera: IrisCamera
    folder: Path | None

    def present(self, frames: list[npt.NDArray[np.uint8]]) -> None:
        """Write frames the way the rig does (temporary name, then rename)."""
        if self.folder is None:
            pytest.skip("needs controlled frames; running on a real camera")
        for index, frame in enumerate(frames):
            partial = self.folder / f".frame-{index}.png"
            Image.fromarray(frame).save(partial)
            partial.rename(self.folder / f"frame-{index}.png")


@pytest.fixture
def camera_rig(tmp_path: Path) -> Iterator[CameraRig]:
    """Yield the camera under test; closed afterwards."""
    if HIL_DEVICE:
        rig = CameraRig(V4L2IrisCamera(HIL_DEVICE), None)
    else:
        rig = CameraRig(
            DirectoryIrisCamera(tmp_path, poll_interval_s=0.01, settle_s=0.02),
            tmp_path,
        )
    yield rig
    rig.camera.close()


@pytest.fixture
def make_eye() -> Any:
    """Return ``eye_image``, since test modules cannot import this file."""
    return eye_image
