"""Iris cameras: the interface, a V4L2 driver and the rig's image folder.

``IrisCamera.capture`` returns the sharpest greyscale frame of a short
burst, so that a frame blurred by a blink or a head movement is not the one
encoded. Two implementations:

* :class:`V4L2IrisCamera` reads a near-infrared V4L2 device through OpenCV
  (the optional dependency ``opencv-python-headless``, Apache-2.0, which
  matches this project's proprietary licence; install the ``camera``
  extra). Without it only this camera is unavailable: opening it raises
  ``DeviceInitError`` saying what to install.
* :class:`DirectoryIrisCamera` waits for image files in a folder, reads all
  of them, returns the sharpest and deletes what it read. The test rig
  writes the eye images there when the traveller looks into the camera.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from edge_gate._closing import Closing
from edge_gate.config import IrisConfig
from edge_gate.errors import (
    CaptureError,
    DeviceInitError,
    DeviceIOError,
    ImageError,
)
from edge_gate.iris._image import (
    IMAGE_SUFFIXES,
    check_frame,
    frame_sharpness,
    load_iris_image,
)

logger = logging.getLogger(__name__)

Frame = npt.NDArray[np.uint8]


class IrisCamera(Protocol):
    """A camera that delivers the best greyscale eye frame on request."""

    def capture(self, timeout_s: float) -> Frame:
        """Return the sharpest frame that arrives before ``timeout_s`` seconds.

        Raises:
            CaptureError: no frame arrived in time, or the camera is closed.
            DeviceIOError: the device failed while reading.
        """
        ...

    def close(self) -> None:
        """Release the device; safe to call more than once."""
        ...


class DirectoryIrisCamera(Closing):
    """Frames from image files that appear in a folder (the rig's camera).

    Files whose names start with ``.`` or end in ``.tmp`` or ``.part`` are
    ignored, so a writer can create a file under such a name and rename it
    when complete. A file that cannot be decoded is retried on the next
    poll (it may still be being written) and deleted with a warning after
    that.
    """

    def __init__(
        self,
        directory: Path,
        *,
        poll_interval_s: float = 0.05,
        settle_s: float = 0.1,
    ) -> None:
        """Watch ``directory``.

        Args:
            directory: the folder the rig writes eye images into.
            poll_interval_s: time between looks into the folder.
            settle_s: wait after the first file appears, so that a burst of
                frames written together is read together.

        Raises:
            DeviceInitError: the folder does not exist.
        """
        if not directory.is_dir():
            raise DeviceInitError(
                f"iris camera folder {directory} does not exist; create it or "
                f"set [iris] directory"
            )
        self._directory = directory
        self._poll_interval_s = poll_interval_s
        self._settle_s = settle_s
        self._closed = threading.Event()
        self._failed_once: set[Path] = set()

    def close(self) -> None:
        """Stop waiting for frames; a blocked ``capture`` returns at once."""
        self._closed.set()

    @property
    def is_closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed.is_set()

    def _pending(self) -> list[Path]:
        try:
            entries = sorted(self._directory.iterdir())
        except OSError as err:
            raise DeviceIOError(
                f"cannot list iris camera folder {self._directory}: {err}"
            ) from err
        return [
            path
            for path in entries
            if path.suffix.lower() in IMAGE_SUFFIXES
            and not path.name.startswith(".")
            and path.is_file()
        ]

    def capture(self, timeout_s: float) -> Frame:
        """Wait for image files, return the sharpest, delete those read.

        Raises:
            CaptureError: no readable image arrived before the timeout, or
                the camera was closed.
            DeviceIOError: the folder cannot be listed.
        """
        deadline = time.monotonic() + timeout_s
        while not self._closed.is_set():
            paths = self._pending()
            if paths:
                if self._closed.wait(self._settle_s):
                    break
                frames = self._read_all(self._pending())
                if frames:
                    return max(frames, key=frame_sharpness)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._closed.wait(min(self._poll_interval_s, remaining))
        if self._closed.is_set():
            raise CaptureError("iris camera is closed")
        raise CaptureError(
            f"no eye image arrived in {self._directory} within {timeout_s:.1f} s"
        )

    def _read_all(self, paths: list[Path]) -> list[Frame]:
        frames = []
        for path in paths:
            try:
                frames.append(load_iris_image(path))
            except ImageError as err:
                if path not in self._failed_once:
                    # Possibly still being written: try once more.
                    self._failed_once.add(path)
                    continue
                logger.warning("dropping unreadable iris frame file: %s", err)
            self._failed_once.discard(path)
            path.unlink(missing_ok=True)
        return frames


class V4L2IrisCamera(Closing):
    """A near-infrared V4L2 camera read through OpenCV's V4L2 backend.

    NOTE: not yet run against a real camera. The contract suite in
    ``tests/hil/iris_camera`` drives it when ``EDGE_GATE_HIL_IRIS_DEVICE``
    names a device.
    """

    def __init__(
        self,
        device: str,
        *,
        width: int = 640,
        height: int = 480,
        frames_per_capture: int = 5,
    ) -> None:
        """Open the device.

        Args:
            device: the video device node, for example ``/dev/video0`` or a
                udev symlink.
            width: requested frame width in pixels.
            height: requested frame height in pixels.
            frames_per_capture: frames read per capture; the sharpest wins.

        Raises:
            DeviceInitError: OpenCV is not installed, or the device cannot
                be opened.
        """
        try:
            import cv2  # type: ignore[import-not-found, unused-ignore]
        except ImportError as err:
            raise DeviceInitError(
                "the V4L2 iris camera needs the optional package "
                "opencv-python-headless: pip install 'edge_gate[camera]', or "
                'set [iris] source = "directory"'
            ) from err
        self._cv2: Any = cv2
        self._frames_per_capture = max(1, frames_per_capture)
        self._device = device
        self._capture: Any = cv2.VideoCapture(device, cv2.CAP_V4L2)
        if not self._capture.isOpened():
            self._capture.release()
            raise DeviceInitError(
                f"cannot open iris camera {device}: check the device node, "
                f"its permissions (group video) and the udev rule"
            )
        self._capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        self._capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        self._closed = False
        logger.info("iris camera %s opened", device)

    def close(self) -> None:
        """Release the device."""
        if not self._closed:
            self._closed = True
            self._capture.release()
            logger.info("iris camera %s closed", self._device)

    def capture(self, timeout_s: float) -> Frame:
        """Read a burst of frames and return the sharpest.

        Raises:
            CaptureError: no frame arrived before the timeout, or the camera
                is closed.
            DeviceIOError: the device stopped delivering frames.
        """
        if self._closed:
            raise CaptureError("iris camera is closed")
        deadline = time.monotonic() + timeout_s
        frames: list[Frame] = []
        failures = 0
        while len(frames) < self._frames_per_capture and time.monotonic() < deadline:
            ok, frame = self._capture.read()
            if not ok:
                failures += 1
                if failures >= 3 * self._frames_per_capture:
                    raise DeviceIOError(
                        f"iris camera {self._device} stopped delivering frames"
                    )
                continue
            frames.append(check_frame(self._to_grey(frame), self._device))
        if not frames:
            raise CaptureError(
                f"no frame from iris camera {self._device} within {timeout_s:.1f} s"
            )
        return max(frames, key=frame_sharpness)

    def _to_grey(self, frame: Any) -> Frame:
        array = np.asarray(frame)
        if array.ndim == 3:
            array = self._cv2.cvtColor(array, self._cv2.COLOR_BGR2GRAY)
        grey: Frame = np.ascontiguousarray(array, dtype=np.uint8)
        return grey


# The array axes each orientation flips: 0 swaps top and bottom, 1 left and
# right. "as_is" needs no wrapper.
ORIENTATION_AXES: dict[str, tuple[int, ...]] = {
    "mirror": (1,),
    "rotate_180": (0, 1),
    "flip_vertical": (0,),
}


class OrientedIrisCamera(Closing):
    """A camera wrapper that flips every frame by the configured orientation."""

    def __init__(self, camera: IrisCamera, orientation: str) -> None:
        """Wrap ``camera``.

        Args:
            camera: the camera whose frames are flipped.
            orientation: "mirror" (left and right swapped), "rotate_180"
                or "flip_vertical" (top and bottom swapped).

        Raises:
            ValueError: ``orientation`` is not one of those.
        """
        axes = ORIENTATION_AXES.get(orientation)
        if axes is None:
            raise ValueError(
                f"invalid iris camera orientation {orientation!r}; use one "
                f"of {', '.join(sorted(ORIENTATION_AXES))}"
            )
        self._camera = camera
        self._axes = axes

    def capture(self, timeout_s: float) -> Frame:
        """Return the wrapped camera's frame, flipped."""
        frame = np.flip(self._camera.capture(timeout_s), axis=self._axes)
        turned: Frame = np.ascontiguousarray(frame)
        return turned

    def close(self) -> None:
        """Close the wrapped camera."""
        self._camera.close()


def open_iris_camera(config: IrisConfig) -> IrisCamera:
    """Open the camera that ``config`` names, flipped by its ``orientation``.

    Raises:
        DeviceInitError: the camera cannot be opened (or OpenCV is missing
            for ``source = "v4l2"``).
    """
    camera: IrisCamera
    if config.source == "directory":
        if not config.directory:
            raise DeviceInitError(
                'iris source "directory" needs [iris] directory = "PATH"'
            )
        camera = DirectoryIrisCamera(Path(config.directory))
    else:
        camera = V4L2IrisCamera(
            config.device,
            width=config.frame_width,
            height=config.frame_height,
            frames_per_capture=config.frames_per_capture,
        )
    if config.orientation == "as_is":
        return camera
    return OrientedIrisCamera(camera, config.orientation)
