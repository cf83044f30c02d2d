"""From an eye image to an iris template: segment, check, unwrap, encode.

The filter bank runs in ONNX Runtime (``models/iris_encoder.onnx``, built
by ``models/build_iris_encoder.py``); everything before it is classical
numpy code.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edge_gate._models import find_models_dir, open_session
from edge_gate.errors import CaptureError, ModelError
from edge_gate.iris._normalize import IrisStrip, NormalizationParams, unwrap_iris
from edge_gate.iris._quality import IrisQuality, assess_quality
from edge_gate.iris._segment import Segmentation, SegmentationParams, segment_eye
from edge_gate.iris._template import IrisTemplate

logger = logging.getLogger(__name__)

MODEL_NAME = "iris_encoder"
# Code grid (rows, columns, bits per cell) of every template the encoder
# makes: the shipped model's response [1, bits, rows, columns]. Templates on
# another grid cannot be compared with the lane's captures.
CODE_SHAPE = (16, 128, 2)


@dataclass(frozen=True)
class EncodingParams:
    """Settings for turning filter responses into code and mask bits."""

    # A grid cell is valid when this share of the strip samples under the
    # filter's core (rows +-2, columns +-6) is valid.
    min_support: float = 0.9
    # Share of valid cells with the weakest responses masked as fragile
    # bits (their sign flips between captures of the same eye).
    fragile_share: float = 0.1
    # Fewer valid cells than this share is a failure to enrol. The cells are
    # counted before the fragile bits are masked, because that mask always
    # takes the same share, whatever the capture.
    min_valid_share: float = 0.25
    # Half-width, in strip columns, of the running mean that each strip row
    # loses before filtering (0: the strip's global mean only). A smooth
    # brightness change along the angle, from the illuminators or a shadow,
    # gives the odd filter the same sign over long spans in every eye, so
    # unrelated eyes agree there. Removing it cut the false-match rate at a
    # threshold carried over between halves of CASIA eyes 001-040 from about
    # 7e-4 to 2.4e-4 (see docs/benchmarks.md).
    highpass_columns: int = 12


@dataclass(frozen=True)
class IrisEncoding:
    """A template together with the intermediate results that made it."""

    template: IrisTemplate
    segmentation: Segmentation
    strip: IrisStrip
    quality: IrisQuality


class IrisEncoder:
    """Turns eye images into iris templates with the shipped filter bank.

    One encoder owns one ONNX Runtime session; ``encode`` may be called
    from several threads (calls into the session are serialised).
    """

    def __init__(
        self,
        models_dir: Path | None = None,
        threads: int = 1,
        *,
        min_quality: float = 0.3,
        segmentation: SegmentationParams | None = None,
        normalization: NormalizationParams | None = None,
        encoding: EncodingParams | None = None,
    ) -> None:
        """Open the encoder model.

        Args:
            models_dir: folder with ``manifest.json``; the source checkout's
                ``models/`` or the installed copy when None.
            threads: ONNX Runtime intra-op threads.
            min_quality: captures with a lower overall quality raise
                ``CaptureError``.
            segmentation: search ranges; the defaults when None.
            normalization: strip size and occlusion limits.
            encoding: mask rules.

        Raises:
            ModelError: the model is missing, altered, its input is not
                the strip size of ``normalization``, or its output is not
                ``CODE_SHAPE``.
        """
        self._models_dir = models_dir or find_models_dir()
        self._session: Any = open_session(self._models_dir, MODEL_NAME, threads)
        self._lock = threading.Lock()
        self._min_quality = min_quality
        self._segmentation = segmentation or SegmentationParams()
        self._normalization = normalization or NormalizationParams()
        self._encoding = encoding or EncodingParams()
        shape = self._session.get_inputs()[0].shape
        expected = [1, 1, self._normalization.rows, self._normalization.columns]
        if list(shape) != expected:
            raise ModelError(
                f"{MODEL_NAME} takes input {shape}, the strip is {expected}; "
                f"rebuild the model or change the normalisation"
            )
        output = self._session.get_outputs()[0].shape
        rows, columns, bits = CODE_SHAPE
        if list(output) != [1, bits, rows, columns]:
            raise ModelError(
                f"{MODEL_NAME} output {output} does not match the code grid "
                f"{CODE_SHAPE}; rebuild the model with models/build_iris_encoder.py"
            )
        self._input_name: str = self._session.get_inputs()[0].name

    def encode(self, image: npt.NDArray[np.uint8]) -> IrisTemplate:
        """Return the template of one eye image.

        Raises:
            ImageError: the image is not 2-D greyscale of a usable size.
            CaptureError: segmentation failed or the quality is below the
                minimum (failure to enrol); recapture.
        """
        return self.encode_with_details(image).template

    def encode_with_details(self, image: npt.NDArray[np.uint8]) -> IrisEncoding:
        """Return the template with its segmentation, strip and quality.

        Steps:
            1. Segment pupil and iris.
            2. Unwrap the iris and mask occlusions.
            3. Assess quality; below the minimum, raise for a recapture.
            4. Run the filter bank on the standardised strip.
            5. Code bits are the response signs; mask cells with too little
               valid support or the weakest responses.

        Raises:
            ImageError: the image is not 2-D greyscale of a usable size.
            CaptureError: segmentation failed or the quality is too low.
        """
        segmentation = segment_eye(image, self._segmentation)
        strip = unwrap_iris(segmentation, self._normalization)
        quality = assess_quality(segmentation, strip)
        if quality.score < self._min_quality:
            raise CaptureError(
                f"iris quality {quality.score:.2f} is below the minimum "
                f"{self._min_quality:.2f} ({quality.limiting}); recapture the eye"
            )
        response = self._run(strip)
        template = self._to_template(response, strip, quality.score)
        logger.debug(
            "iris encoded: quality %.2f, valid cells %.2f",
            quality.score,
            template.valid_fraction,
        )
        return IrisEncoding(template, segmentation, strip, quality)

    def _run(self, strip: IrisStrip) -> npt.NDArray[np.float32]:
        """Return the filter responses [channels, rows, columns]."""
        values = strip.values
        valid = strip.valid
        if valid.sum() < 16:
            raise CaptureError("the iris is almost fully covered; recapture the eye")
        half = self._encoding.highpass_columns
        if half > 0:
            centred = values - _row_running_mean(values, valid, half)
        else:
            centred = values - float(values[valid].mean())
        spread = float(centred[valid].std()) + 1e-3
        standard = np.where(valid, centred / spread, 0.0).astype(np.float32)
        with self._lock:
            outputs = self._session.run(None, {self._input_name: standard[None, None]})
        response: npt.NDArray[np.float32] = outputs[0][0]
        return response

    def _to_template(
        self,
        response: npt.NDArray[np.float32],
        strip: IrisStrip,
        quality: float,
    ) -> IrisTemplate:
        _, rows, columns = response.shape
        stride_rows = strip.valid.shape[0] // rows
        stride_columns = strip.valid.shape[1] // columns

        # Bits: sign of each response, cells ordered (row, column, channel).
        code = np.ascontiguousarray(response.transpose(1, 2, 0) > 0)

        # Support of each cell: valid share of the strip under the filter core.
        support = _window_share(strip.valid, rows_half=2, columns_half=6)
        support = support[::stride_rows, ::stride_columns][:rows, :columns]
        centre = strip.valid[::stride_rows, ::stride_columns][:rows, :columns]
        mask = centre & (support >= self._encoding.min_support)
        if mask.mean() < self._encoding.min_valid_share:
            raise CaptureError(
                f"only {mask.mean():.0%} of the iris code is usable "
                f"(minimum {self._encoding.min_valid_share:.0%}); recapture the eye"
            )

        # Fragile bits: the weakest responses among the valid cells.
        if self._encoding.fragile_share > 0 and mask.any():
            strength = np.abs(response).min(axis=0)
            cutoff = np.quantile(strength[mask], self._encoding.fragile_share)
            mask &= strength > cutoff
        return IrisTemplate(code=code, mask=mask, quality=quality)


def _row_running_mean(
    values: npt.NDArray[np.float32], valid: npt.NDArray[np.bool_], half: int
) -> npt.NDArray[np.float32]:
    """Return the mean of the valid samples within +-``half`` columns, per row.

    Columns wrap around (the strip is cyclic). Where a window holds no valid
    sample the result is 0; those samples are invalid themselves and are
    set to 0 before filtering anyway.
    """
    half = min(half, values.shape[1] // 2)
    weights = valid.astype(np.float64)
    weighted = np.where(valid, values, 0.0).astype(np.float64)
    width = 2 * half + 1

    def window_sums(array: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        wrapped = np.concatenate([array[:, -half:], array, array[:, :half]], axis=1)
        sums = np.cumsum(np.pad(wrapped, ((0, 0), (1, 0))), axis=1)
        window: npt.NDArray[np.float64] = sums[:, width:] - sums[:, :-width]
        return window

    counts = window_sums(weights)
    mean = window_sums(weighted) / np.maximum(counts, 1.0)
    return mean.astype(np.float32)


def _window_share(
    valid: npt.NDArray[np.bool_], rows_half: int, columns_half: int
) -> npt.NDArray[np.float32]:
    """Return the valid share in a window around each sample.

    Columns wrap around (the strip is cyclic); rows outside count as invalid.
    """
    values = valid.astype(np.float32)
    wrapped = np.concatenate(
        [values[:, -columns_half:], values, values[:, :columns_half]], axis=1
    )
    padded = np.pad(wrapped, ((rows_half, rows_half), (0, 0)))
    total = np.zeros_like(values)
    for drow in range(2 * rows_half + 1):
        band = padded[drow : drow + values.shape[0]]
        sums = np.cumsum(np.pad(band, ((0, 0), (1, 0))), axis=1)
        width = 2 * columns_half + 1
        total += sums[:, width:] - sums[:, :-width]
    cells = (2 * rows_half + 1) * (2 * columns_half + 1)
    share: npt.NDArray[np.float32] = (total / cells).astype(np.float32)
    return share
