"""The iris modality as evaluation and field commands see it."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

import numpy as np
import numpy.typing as npt

from edge_gate._image_file import quote_path
from edge_gate._models import find_models_dir, load_threshold
from edge_gate.errors import ImageError
from edge_gate.iris._encoder import IrisEncoder
from edge_gate.iris._image import IMAGE_SUFFIXES, load_iris_image
from edge_gate.iris._match import compare_irises
from edge_gate.iris._template import IrisTemplate

# Misplaced entries named in one message; a count stands for the rest.
_MAX_LISTED_ENTRIES = 20


class IrisModality:
    """Implements ``edge_gate.evaluation.Modality`` for irises.

    Data sets have one sub-folder per eye; the folder name is the identity.
    The encoder is created on first use, so importing this module loads no
    model. Extraction applies no minimum quality (every image that can be
    segmented is enrolled), as evaluation counts failures to enrol itself.
    """

    name = "iris"

    def __init__(self, models_dir: Path | None = None) -> None:
        self._models_dir = models_dir
        self._encoder: IrisEncoder | None = None
        self._lock = threading.Lock()

    def _get_encoder(self) -> IrisEncoder:
        with self._lock:
            if self._encoder is None:
                self._encoder = IrisEncoder(self._models_dir, min_quality=0.0)
            return self._encoder

    def list_samples(self, directory: Path) -> list[tuple[str, Path]]:
        """Return (eye folder name, image path) for every image, sorted.

        Images are chosen by name alone: hidden entries and those without
        an image suffix are left out. An entry with an image suffix that is
        not a readable image file (a broken symbolic link, a folder) is
        listed, so that the caller's check of each file reports it instead
        of leaving it out without a word.

        In ``directory`` itself, a non-hidden symbolic link that leads to no
        file (a broken link or a link loop) and an entry with an image suffix
        are layout errors, because each is an eye folder or an image that
        would otherwise be left out of the figures. Other files (notes, a
        pairs list) are left out.

        Raises:
            ImageError: ``directory`` is not a folder, has such entries
                (each is named with what to do), or has no eye folders.
            OSError: a folder cannot be listed.
        """
        if not directory.is_dir():
            raise ImageError(f"iris data set {directory} is not a folder")

        eyes: list[Path] = []
        misplaced: list[str] = []
        for entry in sorted(directory.iterdir()):
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                eyes.append(entry)
                continue
            problem = _misplaced_entry_problem(entry)
            if problem is not None:
                misplaced.append(problem)
        if misplaced:
            listed = misplaced[:_MAX_LISTED_ENTRIES]
            if len(misplaced) > len(listed):
                listed.append(f"and {len(misplaced) - len(listed)} more")
            raise ImageError(
                f"iris data set {quote_path(directory)} has {len(misplaced)} "
                "entry(ies) that should be eye folders or be inside one, so "
                "their images would be missing from the figures. Lay the set "
                "out as one folder per eye holding its images, fix these "
                "entries and run again:\n  " + "\n  ".join(listed)
            )

        samples = [
            (eye.name, path)
            for eye in eyes
            for path in sorted(eye.iterdir())
            if not path.name.startswith(".") and path.suffix.lower() in IMAGE_SUFFIXES
        ]
        if not samples:
            raise ImageError(
                f"iris data set {directory} has no images in sub-folders; "
                f"lay it out as one folder per eye"
            )
        return samples

    def load_image(self, path: Path) -> npt.NDArray[np.uint8]:
        """Read one eye image as 8-bit greyscale (raises ``ImageError``)."""
        return load_iris_image(path)

    def extract(self, image: npt.NDArray[np.uint8]) -> bytes:
        """Return the serialised template (raises ``CaptureError`` on failure)."""
        return self._get_encoder().encode(image).to_bytes()

    def compare(self, first: bytes, second: bytes) -> float:
        """Return the similarity of two serialised templates in [0, 1].

        Raises:
            TemplateError: either template is corrupt or of another grid.
        """
        return compare_irises(
            IrisTemplate.from_bytes(first), IrisTemplate.from_bytes(second)
        )

    def threshold(self) -> float:
        """Return the shipped iris threshold (accept at or above).

        Raises:
            ModelError: the manifest has no iris threshold.
        """
        models_dir = self._models_dir or find_models_dir()
        return load_threshold(models_dir, "iris").threshold


modality = IrisModality()


def _misplaced_entry_problem(entry: Path) -> str | None:
    """Describe why a non-folder entry of the data set folder is a layout error.

    Returns:
        The entry and what to do with it, or None for a file that is left
        out by name (an existing file without an image suffix).
    """
    if entry.is_symlink():
        try:
            os.stat(entry)
        except OSError as err:
            target = quote_path(os.readlink(entry))
            if err.errno == errno.ELOOP:
                return (
                    f"{quote_path(entry)} is a symbolic link loop (to {target}); "
                    "point it at the eye folder or remove it"
                )
            return (
                f"{quote_path(entry)} is a symbolic link to {target}, which "
                f"leads to no folder ({err.strerror}); point it at the eye "
                "folder or remove it"
            )
    if entry.suffix.lower() in IMAGE_SUFFIXES:
        return (
            f"{quote_path(entry)} has an image name but is outside any eye "
            "folder; move it into the folder of its eye, or remove it"
        )
    return None
