"""Build the lane's devices, matchers and stores from the configuration.

The lane runner uses each component through a small protocol defined here,
so it does not depend on a driver's class. :func:`build_matchers` checks
every model against its manifest (SHA-256) while loading it, so a changed
model stops start-up. Drivers are imported when they are built: a missing
vendor library then fails only that device's construction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from edge_gate.config import GateConfig
from edge_gate.errors import TemplateError

logger = logging.getLogger(__name__)

Image = npt.NDArray[np.uint8]
TemplateT = TypeVar("TemplateT")


class DocumentSource(Protocol):
    """The document reader as the lane uses it."""

    @property
    def is_connected(self) -> bool:
        """Whether the port is open; the reader may open it lazily."""
        ...

    def read_document(self, timeout_s: float) -> list[str] | None:
        """Return MRZ lines, or None when no document arrived in time."""
        ...

    def close(self) -> None:
        """Release the device."""
        ...


class SampleSource(Protocol):
    """A biometric sensor as the lane uses it (fingerprint or iris)."""

    def capture(self, timeout_s: float) -> Image:
        """Return one image, or raise ``CaptureError`` when none came."""
        ...

    def close(self) -> None:
        """Release the device."""
        ...


class Probe(Protocol):
    """A template made from a captured sample."""

    @property
    def quality(self) -> float:
        """Sample quality in [0, 1]."""
        ...


@dataclass(frozen=True)
class Matcher:
    """One modality's model, comparator, threshold and watchlist gallery.

    Attributes:
        modality: ``fingerprint`` or ``iris``.
        extract: image to probe template; raises ``CaptureError`` on a
            failure to enrol.
        compare: probe against stored template bytes, score in [0, 1].
        threshold: the calibrated decision threshold (manifest entry).
        search: probe against the watchlist, best score and how many
            templates were searched; None when the gallery is empty.
        gallery_size: templates in the watchlist gallery.
        watchlist_threshold: the score a 1:N watchlist hit needs (see
            :func:`watchlist_threshold`).
    """

    modality: str
    extract: Callable[[Image], Any]
    compare: Callable[[Any, bytes], float]
    threshold: Any
    search: Callable[[Any], float] | None
    gallery_size: int
    watchlist_threshold: float = 1.0


class _SensorAdapter:
    """Give a fingerprint sensor the :class:`SampleSource` shape."""

    def __init__(self, sensor: Any) -> None:
        self._sensor = sensor

    def capture(self, timeout_s: float) -> Image:
        self._sensor.set_led(True)
        try:
            image: Image = self._sensor.capture_image(timeout_s)
        finally:
            self._sensor.set_led(False)
        return image

    def close(self) -> None:
        self._sensor.close()


def open_document_reader(config: GateConfig) -> DocumentSource:
    """Open the serial document reader named in ``[document_reader]``.

    Raises:
        DeviceInitError: the port cannot be opened.
    """
    from edge_gate.document import SerialMrzReader

    reader: DocumentSource = SerialMrzReader(config.document_reader)
    return reader


def open_fingerprint_sensor(config: GateConfig) -> SampleSource:
    """Open the UART fingerprint module named in ``[fingerprint]``.

    Raises:
        DeviceInitError: the port cannot be opened or the module does not
            respond to its handshake.
    """
    from edge_gate.fingerprint import SerialFingerprintSensor

    return _SensorAdapter(SerialFingerprintSensor(config.fingerprint))


def open_iris_camera(config: GateConfig) -> SampleSource:
    """Open the iris camera as ``[iris]`` describes it.

    A V4L2 device gets the configured frame size and burst length, and
    either source gets the configured orientation.

    Raises:
        DeviceInitError: the device or directory cannot be opened.
    """
    from edge_gate.iris import open_iris_camera as open_camera

    camera: SampleSource = open_camera(config.iris)
    return camera


def device_paths(config: GateConfig) -> dict[str, str]:
    """Return each device's path that must exist for the lane to serve."""
    iris_path = (
        config.iris.directory
        if config.iris.source == "directory"
        else config.iris.device
    )
    return {
        "document_reader": config.document_reader.port,
        "fingerprint": config.fingerprint.port,
        "iris_camera": iris_path,
    }


def watchlist_threshold(threshold: Any, gallery_size: int, modality: str) -> float:
    """Return the score a 1:N watchlist hit needs against ``gallery_size`` templates.

    One search makes ``gallery_size`` comparisons, so at the 1:1 threshold
    the chance of a false alert grows with the gallery (at a false-match rate
    of 1e-3 and 100,000 templates, nearly every traveller would be sent to an
    officer). The search therefore needs the score at which the calibrated
    false-match rate is at most ``target_fmr / gallery_size``, so that the
    false-alert rate per search stays at the modality's target. A listed
    person enrolled under another name scores in the genuine range, far above
    either threshold.

    Steps:
        1. Start from the 1:1 threshold; the result is never below it.
        2. Take the lowest score of the calibration curve whose false-match
           rate is at most ``target_fmr / gallery_size``.
        3. When the curve cannot resolve that rate (its lowest nonzero rate
           is higher), take the lowest score at which no calibration impostor
           pair matched, and log that the bound is not shown by calibration.

    Args:
        threshold: the modality's manifest threshold (``threshold``,
            ``target_fmr``, ``fmr_curve`` as (score, rate) pairs).
        gallery_size: templates in the watchlist gallery.
        modality: for the log message.

    Returns:
        The watchlist threshold, in [0, 1].
    """
    base = float(threshold.threshold)
    if gallery_size <= 1 or not threshold.fmr_curve:
        return base
    target = float(threshold.target_fmr) / gallery_size
    curve = sorted((float(s), float(f)) for s, f in threshold.fmr_curve)
    for score, rate in curve:
        if rate <= target and (rate > 0 or target == 0):
            return max(base, score)
    zero = [score for score, rate in curve if rate == 0]
    chosen = max(base, zero[0] if zero else curve[-1][0])
    logger.warning(
        "%s watchlist of %d templates needs a false-match rate of %.1e per "
        "comparison, below what the calibration resolves; using score %.4f, "
        "where no calibration impostor matched",
        modality,
        gallery_size,
        target,
        chosen,
    )
    return chosen


def build_matchers(
    config: GateConfig,
    models_dir: Path,
    watchlist_fingerprints: Sequence[tuple[str, bytes]],
    watchlist_irises: Sequence[tuple[str, bytes]],
) -> dict[str, Matcher]:
    """Load both models (hash-checked), thresholds and watchlist galleries.

    Raises:
        ModelError: a model is missing, differs from its manifest, or has
            no threshold.
        TemplateError: a watchlist template cannot be read, or an iris
            template is on another code grid than the encoder's.
    """
    from edge_gate._models import load_threshold
    from edge_gate.fingerprint import (
        FingerprintExtractor,
        FingerprintTemplate,
        compare_fingerprints,
    )
    from edge_gate.iris import (
        IrisEncoder,
        IrisGallery,
        IrisTemplate,
        compare_irises,
    )
    from edge_gate.iris._encoder import CODE_SHAPE

    threads = config.daemon.model_threads
    fingerprint_extractor = FingerprintExtractor(models_dir, threads=threads)
    iris_encoder = IrisEncoder(models_dir, threads=threads)
    fingerprint_threshold = load_threshold(models_dir, "fingerprint")
    iris_threshold = load_threshold(models_dir, "iris")

    # Fingerprints: a linear 1:N scan (the watchlist contains few fingerprints).
    fingerprint_gallery = _parse_watchlist(
        "fingerprint", watchlist_fingerprints, FingerprintTemplate.from_bytes
    )

    def search_fingerprints(probe: Any) -> float:
        return max(compare_fingerprints(probe, t) for t in fingerprint_gallery)

    # Irises: the packed 1:N gallery. Every template must be on the encoder's
    # code grid, or the gallery cannot be built or searched with a capture.
    iris_gallery = None
    if watchlist_irises:
        ids = [identity for identity, _ in watchlist_irises]
        iris_templates = _parse_watchlist(
            "iris", watchlist_irises, IrisTemplate.from_bytes
        )
        for enrolment_id, template in zip(ids, iris_templates, strict=True):
            if template.shape != CODE_SHAPE:
                raise TemplateError(
                    f"watchlist iris template of enrolment {enrolment_id!r} has "
                    f"code grid {template.shape}, but this lane's iris encoder "
                    f"makes {CODE_SHAPE}, so no capture can be compared with it. "
                    "Publish that enrolment again with an eye encoded by "
                    "edge-gate's iris encoder, then run edge-gate sync"
                )
        iris_gallery = IrisGallery.from_templates(ids, iris_templates)

    def search_irises(probe: Any) -> float:
        assert iris_gallery is not None  # only called when the gallery exists
        hits = iris_gallery.search(probe, top_k=1)
        return float(hits[0][1]) if hits else 0.0

    return {
        "fingerprint": Matcher(
            modality="fingerprint",
            extract=fingerprint_extractor.extract,
            compare=lambda probe, data: float(
                compare_fingerprints(probe, FingerprintTemplate.from_bytes(data))
            ),
            threshold=fingerprint_threshold,
            search=search_fingerprints if fingerprint_gallery else None,
            gallery_size=len(fingerprint_gallery),
            watchlist_threshold=watchlist_threshold(
                fingerprint_threshold, len(fingerprint_gallery), "fingerprint"
            ),
        ),
        "iris": Matcher(
            modality="iris",
            extract=iris_encoder.encode,
            compare=lambda probe, data: float(
                compare_irises(probe, IrisTemplate.from_bytes(data))
            ),
            threshold=iris_threshold,
            search=search_irises if iris_gallery is not None else None,
            gallery_size=len(watchlist_irises),
            watchlist_threshold=watchlist_threshold(
                iris_threshold, len(watchlist_irises), "iris"
            ),
        ),
    }


def _parse_watchlist(
    kind: str,
    rows: Sequence[tuple[str, bytes]],
    parse: Callable[[bytes], TemplateT],
) -> list[TemplateT]:
    """Parse (enrolment id, template bytes) rows, naming the enrolment on error.

    Raises:
        TemplateError: a template cannot be read.
    """
    templates: list[TemplateT] = []
    for enrolment_id, data in rows:
        try:
            templates.append(parse(data))
        except TemplateError as err:
            raise TemplateError(
                f"watchlist {kind} template of enrolment {enrolment_id!r} cannot "
                f"be read: {err}. Publish that enrolment again with the current "
                "edge-gate publish, then run edge-gate sync"
            ) from err
    return templates
