"""Capture with recapture: camera frames until one gives a usable template."""

from __future__ import annotations

import logging

from edge_gate.errors import CaptureError
from edge_gate.iris._camera import IrisCamera
from edge_gate.iris._encoder import IrisEncoder
from edge_gate.iris._template import IrisTemplate

logger = logging.getLogger(__name__)


def capture_iris_template(
    camera: IrisCamera,
    encoder: IrisEncoder,
    *,
    max_attempts: int,
    timeout_s: float,
) -> IrisTemplate:
    """Capture and encode an eye, recapturing while quality is too low.

    Steps:
        1. Take the sharpest frame of a burst from the camera.
        2. Encode it; a failed segmentation or a quality below the
           encoder's minimum raises ``CaptureError``.
        3. On that error, try again, up to ``max_attempts`` captures.

    Args:
        camera: the iris camera.
        encoder: the encoder with the lane's minimum quality.
        max_attempts: captures before giving up (at least 1).
        timeout_s: time allowed for each capture, in seconds.

    Returns:
        The first usable template.

    Raises:
        CaptureError: every attempt failed; the message gives the last
            reason.
        ImageError: the camera delivered a frame of the wrong shape.
        DeviceIOError: the camera failed.
    """
    last_error: CaptureError | None = None
    for attempt in range(1, max(1, max_attempts) + 1):
        frame = camera.capture(timeout_s)
        try:
            return encoder.encode(frame)
        except CaptureError as err:
            logger.info("iris capture attempt %d rejected: %s", attempt, err)
            last_error = err
    raise CaptureError(
        f"no usable iris image in {max(1, max_attempts)} attempts: {last_error}"
    )
