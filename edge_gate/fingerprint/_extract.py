"""Minutiae extraction with the LEADER network on ONNX Runtime.

LEADER (pyfing 0.7.3, R. Cappelli, MIT) maps a 500 dpi greyscale image,
given as float32 NHWC grey levels 0..255 with H and W multiples of 32, to four
channels at input resolution, decoded as in pyfing's ``Leader._get_minutiae``:

- 0: minutia position probability (sigmoid);
- 1: minutia direction in radians (atan2 of the network's two direction
  outputs), counter-clockwise with the y axis up;
- 2: type probability, at least 0.5 for an ending, below for a bifurcation;
- 3: position probability after Gaussian smoothing and 7x7 non-maximum
  suppression: a minutia wherever it reaches the confidence threshold.

Steps of :meth:`FingerprintExtractor.extract`:

1. Check the image, resample it to 500 dpi.
2. Find the ridge area (block contrast) and crop to it with a margin of
   context: less area means less inference time.
3. Shrink a ridge area larger than the inference budget (at most to 0.6 of
   500 dpi), pad with white to multiples of 32, run LEADER.
4. Keep the non-maximum-suppressed peaks above the confidence threshold,
   strongest first, at most MAX_MINUTIAE, mapped back to 500 dpi image
   coordinates; turn directions into image coordinates (y down).
5. Score quality from the minutiae count, their confidence and ridge area.
"""

from __future__ import annotations

import logging
import math
import threading
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from edge_gate._models import find_models_dir, open_session
from edge_gate.errors import CaptureError, ModelError
from edge_gate.fingerprint._image import (
    FOREGROUND_BLOCK_PX,
    ImageArray,
    check_image,
    foreground_blocks,
)
from edge_gate.fingerprint._template import MAX_MINUTIAE, FingerprintTemplate

logger = logging.getLogger(__name__)

MODEL_NAME: Final = "leader"
MODEL_DPI: Final = 500
SIZE_MULTIPLE: Final = 32
CONFIDENCE_THRESHOLD: Final = 0.55
TYPE_THRESHOLD: Final = 0.5
MIN_MINUTIAE: Final = 4
# Minutiae count and ridge area at which quality saturates: guesses from the
# FVC calibration sets (median impressions have 30 to 50 minutiae).
GOOD_MINUTIAE: Final = 30
GOOD_AREA_PX: Final = 180 * 180
WHITE: Final = 255.0
# Context kept around the ridge area for the network's receptive field.
CROP_MARGIN_PX: Final = 32
# Maximum pixels per inference. A larger ridge area is shrunk to fit,
# but never below MIN_SHRINK of 500 dpi. Inference time grows with area
# (about 1.9 us per pixel on one x86 core here).
MAX_INFERENCE_PX: Final = 70_000
MIN_SHRINK: Final = 0.6


class FingerprintExtractor:
    """Template extractor for fingerprint images, using the LEADER network.

    Each extractor owns one ONNX Runtime session. ``extract`` may be called
    from one thread at a time per extractor (calls are serialised).
    """

    def __init__(self, models_dir: Path | None = None, threads: int = 1) -> None:
        """Open the LEADER model after checking its SHA-256.

        Args:
            models_dir: folder with ``manifest.json``; None finds the shipped one.
            threads: ONNX Runtime intra-op threads.

        Raises:
            ModelError: the model is missing, altered or cannot be loaded.
        """
        self._models_dir = models_dir if models_dir is not None else find_models_dir()
        self._session: Any = open_session(self._models_dir, MODEL_NAME, threads)
        self._lock = threading.Lock()

    def extract(self, image: ImageArray, dpi: int = 500) -> FingerprintTemplate:
        """Extract the minutiae template of one impression.

        Args:
            image: 2-D uint8 greyscale image, dark ridges on light background.
            dpi: the image's resolution in dots per inch.

        Returns:
            The template, at the image's own coordinates and resolution of 500 dpi.

        Raises:
            ImageError: the array is not a usable greyscale image.
            CaptureError: no ridge area or too few minutiae (failure to enrol).
            ModelError: ONNX Runtime failed.
        """
        check_image(image)
        if not 100 <= dpi <= 2000:
            raise CaptureError(f"image resolution {dpi} dpi is outside 100..2000")
        scaled = _resample(image, MODEL_DPI / dpi)

        # Step 2: crop to the ridge area.
        mask = foreground_blocks(scaled)
        if mask.sum() < 4:
            raise CaptureError(
                "no ridge area found in the fingerprint image; clean the sensor "
                "and place the finger flat, or check that the file is a fingerprint"
            )
        rows, cols = np.nonzero(mask)
        margin = CROP_MARGIN_PX
        top = max(0, int(rows.min()) * FOREGROUND_BLOCK_PX - margin)
        bottom = min(
            scaled.shape[0], (int(rows.max()) + 1) * FOREGROUND_BLOCK_PX + margin
        )
        left = max(0, int(cols.min()) * FOREGROUND_BLOCK_PX - margin)
        right = min(
            scaled.shape[1], (int(cols.max()) + 1) * FOREGROUND_BLOCK_PX + margin
        )
        region = scaled[top:bottom, left:right]

        # Step 3: shrink a large ridge area to the inference budget.
        shrink = min(1.0, math.sqrt(MAX_INFERENCE_PX / region.size))
        shrink = max(shrink, MIN_SHRINK)
        if shrink < 1.0:
            region = _resample(region, shrink, check=False)
        output = self._run(region)

        # Step 4: peaks in the cropped area, strongest first.
        peaks = np.argwhere(output[..., 3] >= CONFIDENCE_THRESHOLD)
        ys = np.minimum(
            np.rint(peaks[:, 0] / shrink).astype(np.int64) + top, bottom - 1
        )
        xs = np.minimum(
            np.rint(peaks[:, 1] / shrink).astype(np.int64) + left, right - 1
        )
        values = output[peaks[:, 0], peaks[:, 1]]
        order = np.argsort(-values[:, 3], kind="stable")[:MAX_MINUTIAE]
        minutiae = np.empty((len(order), 5), dtype=np.float32)
        minutiae[:, 0] = xs[order]
        minutiae[:, 1] = ys[order]
        minutiae[:, 2] = np.mod(-values[order, 1], 2 * math.pi)
        minutiae[:, 3] = (values[order, 2] < TYPE_THRESHOLD).astype(np.float32)
        minutiae[:, 4] = values[order, 3]
        if len(minutiae) < MIN_MINUTIAE:
            raise CaptureError(
                f"only {len(minutiae)} minutiae found, at least {MIN_MINUTIAE} are "
                "needed; ask for a recapture"
            )

        # Step 5: quality from minutiae count, their confidence and ridge area.
        area = float(mask.sum()) * FOREGROUND_BLOCK_PX**2
        quality = (
            min(1.0, len(minutiae) / GOOD_MINUTIAE)
            * min(1.0, area / GOOD_AREA_PX)
            * float(np.clip((minutiae[:, 4].mean() - 0.5) / 0.35, 0.0, 1.0))
        )
        height, width = scaled.shape
        logger.debug("extracted %d minutiae, quality %.2f", len(minutiae), quality)
        return FingerprintTemplate(minutiae, width, height, MODEL_DPI, quality)

    def _run(self, image: ImageArray) -> npt.NDArray[np.float32]:
        """Run LEADER on an image padded with white; return (h, w, 4)."""
        height, width = image.shape
        padded_h = -(-height // SIZE_MULTIPLE) * SIZE_MULTIPLE
        padded_w = -(-width // SIZE_MULTIPLE) * SIZE_MULTIPLE
        top, left = (padded_h - height) // 2, (padded_w - width) // 2
        batch = np.full((1, padded_h, padded_w, 1), WHITE, dtype=np.float32)
        batch[0, top : top + height, left : left + width, 0] = image
        try:
            with self._lock:
                result = self._session.run(None, {"input": batch})[0]
        except Exception as err:  # onnxruntime raises its own untyped errors
            raise ModelError(f"LEADER inference failed: {err}") from err
        output: npt.NDArray[np.float32] = np.asarray(result, dtype=np.float32)[
            0, top : top + height, left : left + width
        ]
        return output


def _resample(image: ImageArray, factor: float, check: bool = True) -> ImageArray:
    """Resize by ``factor`` with bicubic interpolation (1.0 returns the input)."""
    if abs(factor - 1.0) < 1e-3:
        return image
    from PIL import Image

    height, width = image.shape
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    resized = Image.fromarray(image).resize(size, Image.Resampling.BICUBIC)
    result: ImageArray = np.asarray(resized, dtype=np.uint8)
    if check:
        check_image(result, "resampled image")
    return result
