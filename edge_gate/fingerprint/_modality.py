"""The fingerprint modality as evaluation and the field commands see it."""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from edge_gate._models import find_models_dir, load_threshold
from edge_gate.fingerprint._extract import FingerprintExtractor
from edge_gate.fingerprint._image import load_fingerprint_image
from edge_gate.fingerprint._match import compare_fingerprints
from edge_gate.fingerprint._template import FingerprintTemplate

# FVC naming: <finger>_<impression>.<ext>, for example 101_3.tif.
_SAMPLE_NAME: Final = re.compile(r"^(?P<finger>[A-Za-z0-9-]+)_(?P<impression>\d+)$")
IMAGE_SUFFIXES: Final = frozenset(
    {".tif", ".tiff", ".png", ".bmp", ".jpg", ".jpeg", ".pgm"}
)
_PARSED_CACHE_SIZE: Final = 4096


class FingerprintModality:
    """Fingerprint extraction and comparison behind the ``Modality`` protocol.

    The extractor opens on first use. Parsed templates are kept in a small
    cache keyed by their bytes, so that an all-pairs evaluation parses and
    builds the descriptors of each template once.
    """

    name = "fingerprint"

    def __init__(self, models_dir: Path | None = None, threads: int = 1) -> None:
        """Remember where the models are; open nothing yet."""
        self._models_dir = models_dir
        self._threads = threads
        self._extractor: FingerprintExtractor | None = None
        self._lock = threading.Lock()
        self._parsed: OrderedDict[bytes, FingerprintTemplate] = OrderedDict()

    def list_samples(self, directory: Path) -> list[tuple[str, Path]]:
        """Return (finger id, path) for each ``<finger>_<impression>`` image.

        Entries are chosen by name alone. Hidden entries and those with other
        names or suffixes are left out. An entry with an image name that is
        not a readable image file (a broken symbolic link, a folder) is
        listed, so that the caller's check of each file reports it instead
        of leaving it out without a word. The order is by finger, then
        impression number.
        """
        samples: list[tuple[str, int, Path]] = []
        for path in Path(directory).iterdir():
            match = _SAMPLE_NAME.match(path.stem)
            if match and path.suffix.lower() in IMAGE_SUFFIXES:
                samples.append((match["finger"], int(match["impression"]), path))
        samples.sort(key=lambda item: (item[0], item[1], item[2].name))
        return [(finger, path) for finger, _, path in samples]

    def load_image(self, path: Path) -> npt.NDArray[np.uint8]:
        """Read one image; raise ``ImageError`` if it is unusable."""
        return load_fingerprint_image(path)

    def extract(self, image: npt.NDArray[np.uint8]) -> bytes:
        """Return the template bytes; raise ``CaptureError`` on failure to enrol."""
        with self._lock:
            if self._extractor is None:
                self._extractor = FingerprintExtractor(self._models_dir, self._threads)
            extractor = self._extractor
        return extractor.extract(image).to_bytes()

    def compare(self, first: bytes, second: bytes) -> float:
        """Return the similarity in [0, 1]; raise ``TemplateError`` if corrupt."""
        return compare_fingerprints(self._parse(first), self._parse(second))

    def threshold(self) -> float:
        """Return the shipped threshold (accept at or above) from the manifest."""
        models_dir = self._models_dir or find_models_dir()
        return load_threshold(models_dir, self.name).threshold

    def _parse(self, data: bytes) -> FingerprintTemplate:
        with self._lock:
            template = self._parsed.get(data)
            if template is not None:
                self._parsed.move_to_end(data)
                return template
        template = FingerprintTemplate.from_bytes(data)
        with self._lock:
            self._parsed[data] = template
            if len(self._parsed) > _PARSED_CACHE_SIZE:
                self._parsed.popitem(last=False)
        return template


modality = FingerprintModality()
