"""Sources of the travellers' fingers and eyes for the rig: synthetic or real.

A :class:`BiometricSource` numbers its identities 0, 1, ... and gives, for
each, an enrolment image and further captures of one finger and one eye.

- :class:`SyntheticSource` grows them from a seed (the default run).
- :class:`DatasetSource` pairs one real fingerprint identity with one real
  iris identity from a data folder laid out as ``DIR/fingerprints/<set>/``
  (files ``<finger>_<n>.<ext>``) and ``DIR/iris/<set>/<eye>/`` (one folder
  per eye). Only folders laid out as identities are used: a fingerprint set
  needs at least two impressions per finger, an iris set one folder per eye
  with at least two images. The images are read in place, never copied.

Capture 0 of every identity is the enrolment sample; captures 1, 2, ... are
what the traveller presents at the lane.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt
from PIL import Image

from edge_gate.rig.synthetic import SyntheticFingerprints, SyntheticIrises

GreyImage = npt.NDArray[np.uint8]

# Finger and eye the synthetic travellers enrol and present (record keys of
# the enrolment format); finger 2 is the right index (ISO/IEC 19794-2).
SYNTHETIC_FINGER = "right_index"
SYNTHETIC_FINGER_NUMBER = 2
SYNTHETIC_EYE = "right"
SYNTHETIC_EYE_NUMBER = 0

_IMAGE_SUFFIXES = frozenset({".tif", ".tiff", ".png", ".bmp", ".jpg", ".jpeg", ".pgm"})
_FINGER_FILE = re.compile(r"(?P<finger>[A-Za-z0-9]+)_(?P<impression>\d+)")


class DatasetError(ValueError):
    """A data folder is missing or not laid out as identities."""


class BiometricSource(Protocol):
    """Numbered identities, each with one finger and one eye."""

    def identity_count(self) -> int | None:
        """Return how many identities exist, or None when unlimited."""
        ...

    def capture_count(self, identity: int) -> int | None:
        """Return how many captures (enrolment included) exist, or None."""
        ...

    def fingerprint(self, identity: int, capture: int) -> GreyImage:
        """Return fingerprint capture ``capture`` of ``identity``."""
        ...

    def iris(self, identity: int, capture: int) -> GreyImage:
        """Return iris capture ``capture`` of ``identity``."""
        ...

    def enrolment_paths(self, identity: int, work_dir: Path) -> tuple[Path, Path]:
        """Return image files (fingerprint, iris) for enrolment.

        A synthetic source writes them under ``work_dir``; a real data set
        returns its own files.
        """
        ...

    @property
    def finger(self) -> str:
        """Finger position key used in enrolment records."""
        ...

    @property
    def eye(self) -> str:
        """Eye key used in enrolment records."""
        ...

    def describe(self) -> str:
        """Return one line naming the source for reports."""
        ...


class SyntheticSource:
    """Synthetic fingers and eyes, deterministic from ``seed``."""

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._fingers = SyntheticFingerprints(seed)
        self._irises = SyntheticIrises(seed)

    finger = SYNTHETIC_FINGER
    eye = SYNTHETIC_EYE

    def identity_count(self) -> int | None:
        """Unlimited: any identity number can be grown."""
        return None

    def capture_count(self, identity: int) -> int | None:
        """Unlimited: every capture index renders a new impression."""
        del identity
        return None

    def fingerprint(self, identity: int, capture: int) -> GreyImage:
        """Render impression ``capture`` of the identity's right index."""
        return self._fingers.impression(identity, SYNTHETIC_FINGER_NUMBER, capture)

    def iris(self, identity: int, capture: int) -> GreyImage:
        """Render frame ``capture`` of the identity's right eye."""
        return self._irises.capture(identity, SYNTHETIC_EYE_NUMBER, capture)

    def enrolment_paths(self, identity: int, work_dir: Path) -> tuple[Path, Path]:
        """Write capture 0 of finger and eye as PNG files and return them."""
        folder = work_dir / "enrolment-images"
        folder.mkdir(parents=True, exist_ok=True)
        finger_path = folder / f"{identity:05d}-finger.png"
        iris_path = folder / f"{identity:05d}-iris.png"
        Image.fromarray(self.fingerprint(identity, 0)).save(finger_path)
        Image.fromarray(self.iris(identity, 0)).save(iris_path)
        return finger_path, iris_path

    def describe(self) -> str:
        """Name the source and its seed."""
        return f"synthetic travellers, seed {self._seed}"


@dataclass(frozen=True)
class _Identity:
    name: str
    images: tuple[Path, ...]


def _image_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in _IMAGE_SUFFIXES
    )


def fingerprint_identities(set_dir: Path) -> list[_Identity]:
    """Group a fingerprint set's files ``<finger>_<n>`` into identities.

    Returns:
        One identity per finger with at least two impressions, impressions
        in numeric order; an empty list when the folder contains no such group.
    """
    groups: dict[str, list[tuple[int, Path]]] = {}
    for path in _image_files(set_dir):
        match = _FINGER_FILE.fullmatch(path.stem)
        if match is None:
            continue
        groups.setdefault(match["finger"], []).append((int(match["impression"]), path))
    identities = []
    for finger, impressions in sorted(groups.items()):
        if len(impressions) >= 2:
            ordered = tuple(path for _, path in sorted(impressions))
            identities.append(_Identity(f"{set_dir.name}/{finger}", ordered))
    return identities


def iris_identities(set_dir: Path) -> list[_Identity]:
    """Take each sub-folder of an iris set with two or more images as one eye."""
    identities = []
    for folder in sorted(p for p in set_dir.iterdir() if p.is_dir()):
        images = _image_files(folder)
        if len(images) >= 2:
            identities.append(_Identity(f"{set_dir.name}/{folder.name}", tuple(images)))
    return identities


def _list_sets(root: Path, chosen: tuple[str, ...]) -> list[Path]:
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder; --dataset DIR needs it")
    if chosen:
        sets = [root / name for name in chosen]
        missing = [str(s) for s in sets if not s.is_dir()]
        if missing:
            raise DatasetError(f"set folder(s) not found: {', '.join(missing)}")
        return sets
    return sorted(p for p in root.iterdir() if p.is_dir())


class DatasetSource:
    """Real fingerprint and iris identities paired into travellers.

    Args:
        directory: the data folder with ``fingerprints/`` and ``iris/``.
        fingerprint_sets: set folder names to use; empty uses every set laid
            out as identities.
        iris_sets: the same for iris sets.
        iris_skip: eyes to leave out at the start of the sorted list, so that
            a run can use only an evaluation split (CASIA-IrisV1 eyes 041 to
            080 with 40).

    Raises:
        DatasetError: a folder is missing or no set is laid out as
            identities.
    """

    def __init__(
        self,
        directory: Path,
        fingerprint_sets: tuple[str, ...] = (),
        iris_sets: tuple[str, ...] = (),
        iris_skip: int = 0,
    ) -> None:
        self._directory = directory
        self._fingers: list[_Identity] = []
        for set_dir in _list_sets(directory / "fingerprints", fingerprint_sets):
            self._fingers.extend(fingerprint_identities(set_dir))
        self._eyes: list[_Identity] = []
        for set_dir in _list_sets(directory / "iris", iris_sets):
            self._eyes.extend(iris_identities(set_dir))
        self._eyes = self._eyes[iris_skip:]
        if not self._fingers:
            raise DatasetError(
                f"no fingerprint set under {directory / 'fingerprints'} has files "
                "named <finger>_<n> with two or more impressions per finger"
            )
        if not self._eyes:
            raise DatasetError(
                f"no iris set under {directory / 'iris'} has one folder per eye "
                f"with two or more images after skipping {iris_skip}"
            )

    finger = "right_index"
    eye = "right"

    def identity_count(self) -> int | None:
        """Return the number of (finger, eye) pairs: the smaller list's length."""
        return min(len(self._fingers), len(self._eyes))

    def capture_count(self, identity: int) -> int | None:
        """Return the captures both modalities have for the identity."""
        return min(
            len(self._fingers[identity].images), len(self._eyes[identity].images)
        )

    def fingerprint(self, identity: int, capture: int) -> GreyImage:
        """Read impression ``capture`` of the identity's finger."""
        from edge_gate.fingerprint import load_fingerprint_image

        return load_fingerprint_image(self._fingers[identity].images[capture])

    def iris(self, identity: int, capture: int) -> GreyImage:
        """Read image ``capture`` of the identity's eye."""
        from edge_gate.iris import load_iris_image

        return load_iris_image(self._eyes[identity].images[capture])

    def enrolment_paths(self, identity: int, work_dir: Path) -> tuple[Path, Path]:
        """Return the first impression and first eye image, read in place."""
        del work_dir
        return self._fingers[identity].images[0], self._eyes[identity].images[0]

    def pair_names(self, identity: int) -> tuple[str, str]:
        """Return the (finger, eye) identity names paired as ``identity``."""
        return self._fingers[identity].name, self._eyes[identity].name

    def describe(self) -> str:
        """Name the data folder and how many pairs it gives."""
        return (
            f"real images from {self._directory}: {len(self._fingers)} fingers, "
            f"{len(self._eyes)} eyes, {self.identity_count()} travellers possible"
        )
