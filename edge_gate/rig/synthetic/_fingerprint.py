"""Synthetic fingerprints: master ridge patterns and their impressions.

A finger is a *master pattern* grown once per (seed, person, finger), and
every touch of the sensor is an *impression* rendered from it.

Master pattern, in the manner of SFinGe (Cappelli, Maio, Maltoni):

1. Draw a pattern class (arch, tented arch, left or right loop, whorl) and
   place its singular points (cores and deltas) with random jitter.
2. Build the orientation field from the zero-pole model (Sherlock and Monro):
   half the sum of the angles to the cores minus those to the deltas, plus a
   smooth random perturbation that makes each finger individual.
3. Draw the ridge period (8 to 10.5 pixels at 500 dpi).
4. Grow ridges from sparse random seeds by repeatedly filtering with a Gabor
   filter tuned to the local orientation and period and squashing the result
   to [-1, 1]. Minutiae (endings and bifurcations) appear where ridges grown
   from different seeds meet out of phase, so their layout differs from
   finger to finger.

Impression, as a real capture differs from the last one:

1. Place the sensor window on the finger with a random rotation and
   translation.
2. Add elastic distortion: a smooth random displacement field.
3. Apply pressure (ridge width through a threshold shift), dry patches that
   break ridges, and a contact region shaped like a fingertip.
4. Render grey levels (dark ridges on a light background), blur and sensor
   noise.

Everything is deterministic from the integers that name the finger and the
impression.

The orientation field's random perturbation is strong (0.6-0.8 rad over
about 22 px) so that two fingers of one class differ as real ones do: about
0.1% of synthetic impostor pairs reach the shipped threshold
(``bench/bench_synthetic.py``), near the real sets' rate.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from ._image_ops import (
    FloatImage,
    gaussian_blur,
    sample_bilinear,
    smooth_noise,
    to_uint8,
)

PatternClass = Literal["arch", "tented_arch", "left_loop", "right_loop", "whorl"]

# The R307 module's image: 256 x 288 pixels at 500 dpi (rows, columns here).
SENSOR_SHAPE = (288, 256)
# Large enough that a rotated and shifted sensor window stays inside.
MASTER_SHAPE = (384, 384)
# Orientation bins of the Gabor filter bank; 16 bins are 11.25 degrees apart.
ORIENTATION_BINS = 16
GROWTH_ITERATIONS = 28
# Ridge irregularity of the master: displacement in pixels, width change on
# the [-1, 1] ridge scale. Chosen by eye and by the impostor scores they give
# with the shipped matcher; retune if the matcher changes.
ROUGH_WIGGLE_PX = 2.0
ROUGH_WIDTH = 0.35
# Class frequencies of real fingerprints (about: loops 65 %, whorls 28 %,
# arches 7 %); only the variety matters here, not the exact shares.
_CLASS_WEIGHTS: dict[PatternClass, float] = {
    "left_loop": 0.33,
    "right_loop": 0.32,
    "whorl": 0.25,
    "arch": 0.05,
    "tented_arch": 0.05,
}


@dataclass(frozen=True)
class MasterFingerprint:
    """One synthetic finger: its ridge pattern before any capture.

    Attributes:
        ridges: ridge map on ``MASTER_SHAPE``, +1 on a ridge, -1 in a valley.
        orientation_rad: local ridge direction in [0, pi), same shape.
        period_px: ridge-to-ridge distance in pixels at 500 dpi.
        pattern_class: the class its singular points were drawn from.
    """

    ridges: FloatImage
    orientation_rad: FloatImage
    period_px: float
    pattern_class: PatternClass


def _finger_rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(list(key)))


def _singular_points(
    rng: np.random.Generator, pattern_class: PatternClass
) -> tuple[list[complex], list[complex]]:
    """Return (cores, deltas) as complex positions col + 1j*row on the master."""
    rows, cols = MASTER_SHAPE
    centre = complex(cols / 2 + rng.normal(0, 10), rows * 0.45 + rng.normal(0, 10))

    if pattern_class in ("left_loop", "right_loop"):
        side = -1.0 if pattern_class == "left_loop" else 1.0
        core = centre + complex(side * rng.uniform(0, 15), -rng.uniform(0, 20))
        delta = core + complex(-side * rng.uniform(60, 95), rng.uniform(85, 125))
        return [core], [delta]
    if pattern_class == "whorl":
        gap = complex(rng.normal(0, 8), rng.uniform(18, 40))
        cores = [centre - gap / 2, centre + gap / 2]
        drop = rng.uniform(80, 115)
        deltas = [
            centre + complex(-rng.uniform(75, 105), drop + rng.normal(0, 10)),
            centre + complex(rng.uniform(75, 105), drop + rng.normal(0, 10)),
        ]
        return cores, deltas
    if pattern_class == "tented_arch":
        core = centre + complex(0, -rng.uniform(0, 15))
        delta = core + complex(rng.normal(0, 6), rng.uniform(50, 75))
        return [core], [delta]
    return [], []


def _orientation_field(
    rng: np.random.Generator, pattern_class: PatternClass
) -> FloatImage:
    """Build the ridge orientation (radians in [0, pi)) over the master."""
    rows, cols = MASTER_SHAPE
    row_grid, col_grid = np.mgrid[0:rows, 0:cols].astype(np.float32)
    z = col_grid + 1j * row_grid
    cores, deltas = _singular_points(rng, pattern_class)

    if pattern_class == "arch":
        # Ridges bow upwards over the centre; the bow flattens downwards.
        centre_col = cols / 2 + rng.normal(0, 12)
        width = rng.uniform(70, 110)
        height = rng.uniform(25, 45) * np.clip(1.2 - row_grid / rows, 0.0, 1.0)
        offset = (col_grid - centre_col) / width
        slope = 2 * height * offset / width * np.exp(-(offset**2))
        theta = np.arctan(slope)
    else:
        # Zero-pole model: +1/2 turn around a core, -1/2 around a delta.
        angle_sum = np.zeros(MASTER_SHAPE, dtype=np.float64)
        for core in cores:
            angle_sum += np.angle(z - core)
        for delta in deltas:
            angle_sum -= np.angle(z - delta)
        theta = 0.5 * angle_sum

    # A smooth random perturbation makes two fingers of one class differ
    # beyond the placement of their singular points.
    wobble = smooth_noise(rng, MASTER_SHAPE, scale_px=22.0) * rng.uniform(0.6, 0.8)
    result: FloatImage = np.mod(theta + wobble, np.pi).astype(np.float32)
    return result


@functools.lru_cache(maxsize=64)
def _gabor_bank(period_tenths: int) -> tuple[npt.NDArray[np.complex64], ...]:
    """Return the Fourier transforms of the Gabor filters, one per orientation bin.

    Args:
        period_tenths: ridge period in tenths of a pixel (a cache key).
    """
    period_px = period_tenths / 10.0
    sigma_px = 0.5 * period_px
    radius = int(3 * sigma_px) + 1
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    d_row, d_col = np.meshgrid(offsets, offsets, indexing="ij")
    envelope = np.exp(-(d_row**2 + d_col**2) / (2 * sigma_px**2))

    bank = []
    for index in range(ORIENTATION_BINS):
        theta = math.pi * index / ORIENTATION_BINS
        # Distance across the ridges: the offset projected on the ridge normal.
        across = -d_col * math.sin(theta) + d_row * math.cos(theta)
        kernel = envelope * np.cos(2 * math.pi * across / period_px)
        kernel -= kernel.mean() * envelope / envelope.mean()
        canvas = np.zeros(MASTER_SHAPE, dtype=np.float64)
        canvas[: 2 * radius + 1, : 2 * radius + 1] = kernel
        # Centre the kernel on (0, 0) so that filtering does not shift the image.
        canvas = np.roll(canvas, (-radius, -radius), axis=(0, 1))
        bank.append(np.fft.rfft2(canvas).astype(np.complex64))
    return tuple(bank)


def _grow_ridges(
    rng: np.random.Generator, orientation: FloatImage, period_px: float
) -> FloatImage:
    """Grow a ridge map from sparse seeds with orientation-tuned Gabor filters.

    The ridge period varies smoothly over the finger between two filter
    banks (``period_px`` times 0.88 and 1.12), as real ridges are denser
    in some regions than in others.
    """
    banks = (
        _gabor_bank(round(period_px * 8.8)),
        _gabor_bank(round(period_px * 11.2)),
    )
    # Share of the wider bank per pixel, from a smooth random field.
    wide_share = np.clip(0.5 + 0.4 * smooth_noise(rng, MASTER_SHAPE, 50.0), 0, 1)

    # Per pixel: the two nearest orientation bins and the blend between them.
    position = orientation / np.pi * ORIENTATION_BINS
    lower = np.floor(position).astype(np.int32) % ORIENTATION_BINS
    upper = (lower + 1) % ORIENTATION_BINS
    blend = (position - np.floor(position)).astype(np.float32)
    bin_weights = [
        (np.where(lower == index, 1 - blend, 0) + np.where(upper == index, blend, 0))
        for index in range(ORIENTATION_BINS)
    ]

    # Sparse seeds: about one per 30 x 30 pixels, each a +1 or -1 spike.
    ridges = np.zeros(MASTER_SHAPE, dtype=np.float32)
    count = MASTER_SHAPE[0] * MASTER_SHAPE[1] // 3600
    seed_rows = rng.integers(0, MASTER_SHAPE[0], count)
    seed_cols = rng.integers(0, MASTER_SHAPE[1], count)
    ridges[seed_rows, seed_cols] = rng.choice([-1.0, 1.0], count)

    for _ in range(GROWTH_ITERATIONS):
        spectrum = np.fft.rfft2(ridges)
        response = np.zeros(MASTER_SHAPE, dtype=np.float32)
        for bank, bank_share in zip(banks, (1 - wide_share, wide_share), strict=True):
            for weight, kernel_ft in zip(bin_weights, bank, strict=True):
                if not weight.any():
                    continue
                filtered = np.fft.irfft2(spectrum * kernel_ft, s=MASTER_SHAPE)
                response += (weight * bank_share * filtered).astype(np.float32)
        # Squash: strong responses saturate so ridges keep a steady contrast.
        scale = float(np.percentile(np.abs(response), 90)) + 1e-6
        ridges = np.tanh(2.0 * response / scale).astype(np.float32)
    return ridges


def _roughen(rng: np.random.Generator, ridges: FloatImage) -> FloatImage:
    """Give the ridges the small irregularities of skin.

    Real ridges wiggle and change width along their length. A pattern grown
    by Gabor filtering alone is too regular, so the minutiae of different
    fingers look alike to a matcher.
    """
    rows, cols = MASTER_SHAPE
    row_grid, col_grid = np.mgrid[0:rows, 0:cols].astype(np.float32)
    wiggle_rows = ROUGH_WIGGLE_PX * smooth_noise(rng, MASTER_SHAPE, 8.0)
    wiggle_cols = ROUGH_WIGGLE_PX * smooth_noise(rng, MASTER_SHAPE, 8.0)
    warped = sample_bilinear(
        ridges, row_grid + wiggle_rows, col_grid + wiggle_cols, fill=-1.0
    )
    width = ROUGH_WIDTH * smooth_noise(rng, MASTER_SHAPE, 12.0)
    result: FloatImage = np.clip(warped + width, -1.0, 1.0).astype(np.float32)
    return result


def generate_master(seed: int, person: int, finger: int) -> MasterFingerprint:
    """Grow the master pattern of one synthetic finger.

    Args:
        seed: the run's seed.
        person: index of the person (0, 1, ...).
        finger: finger number, ISO/IEC 19794-2 style (1 right thumb ... 10).

    Returns:
        The master pattern; the same arguments always give the same pattern.
    """
    rng = _finger_rng(seed, person, finger, 0)
    classes = list(_CLASS_WEIGHTS)
    weights = np.array([_CLASS_WEIGHTS[c] for c in classes])
    pattern_class = classes[int(rng.choice(len(classes), p=weights / weights.sum()))]
    orientation = _orientation_field(rng, pattern_class)
    period_px = float(rng.uniform(9.0, 11.5))
    ridges = _grow_ridges(rng, orientation, period_px)
    ridges = _roughen(rng, ridges)
    return MasterFingerprint(ridges, orientation, period_px, pattern_class)


@dataclass(frozen=True)
class ImpressionConditions:
    """Differences of one capture from the master, drawn per impression.

    Attributes:
        rotation_deg: rotation of the finger on the sensor.
        shift_px: (rows, columns) translation of the finger on the sensor.
        distortion_px: peak elastic displacement.
        pressure: -1 (light touch, thin broken ridges) to +1 (heavy, wide).
        dryness: 0 (none) to 1 (large dry patches).
        noise_grey: standard deviation of the sensor noise in grey levels.
        blur_px: standard deviation of the optical blur in pixels.
    """

    rotation_deg: float
    shift_px: tuple[float, float]
    distortion_px: float
    pressure: float
    dryness: float
    noise_grey: float
    blur_px: float


def draw_conditions(rng: np.random.Generator) -> ImpressionConditions:
    """Draw capture conditions of the spread seen between real impressions."""
    return ImpressionConditions(
        rotation_deg=float(np.clip(rng.normal(0, 7), -20, 20)),
        shift_px=(
            float(np.clip(rng.normal(0, 10), -25, 25)),
            float(np.clip(rng.normal(0, 10), -25, 25)),
        ),
        distortion_px=float(rng.uniform(1.5, 5.0)),
        pressure=float(np.clip(rng.normal(0, 0.4), -0.9, 0.9)),
        dryness=float(rng.uniform(0.0, 0.6)),
        noise_grey=float(rng.uniform(3.0, 9.0)),
        blur_px=float(rng.uniform(0.5, 1.1)),
    )


def render_impression(
    master: MasterFingerprint,
    conditions: ImpressionConditions,
    rng: np.random.Generator,
    shape: tuple[int, int] = SENSOR_SHAPE,
) -> npt.NDArray[np.uint8]:
    """Render one capture of ``master`` as the sensor would deliver it.

    Args:
        master: the finger.
        conditions: pose, distortion, pressure and noise of this capture.
        rng: draws the distortion field, dry patches and noise.
        shape: (rows, columns) of the sensor image.

    Returns:
        The 8-bit grey image, dark ridges on a light background.
    """
    rows, cols = shape
    row_grid, col_grid = np.mgrid[0:rows, 0:cols].astype(np.float32)
    u = col_grid - cols / 2
    v = row_grid - rows / 2

    # 1. Pose: rotate and shift the sensor window over the master's centre.
    angle = math.radians(conditions.rotation_deg)
    cos_a, sin_a = math.cos(angle), math.sin(angle)
    master_rows, master_cols = master.ridges.shape
    src_col = master_cols / 2 + conditions.shift_px[1] + cos_a * u - sin_a * v
    src_row = master_rows * 0.47 + conditions.shift_px[0] + sin_a * u + cos_a * v

    # 2. Elastic distortion: skin stretches smoothly, most near the edges.
    edge_weight = np.clip(np.hypot(u / (cols / 2), v / (rows / 2)), 0.3, 1.2)
    src_col = src_col + conditions.distortion_px * edge_weight * smooth_noise(
        rng, shape, 45.0
    )
    src_row = src_row + conditions.distortion_px * edge_weight * smooth_noise(
        rng, shape, 45.0
    )
    ridges = sample_bilinear(master.ridges, src_row, src_col, fill=-1.0)

    # 3. Pressure widens or thins ridges; dry patches break them up.
    ink = 1.0 / (1.0 + np.exp(-3.0 * (ridges + 0.55 * conditions.pressure)))
    dry_field = smooth_noise(rng, shape, 10.0)
    dry = np.clip((dry_field - (1.6 - 1.6 * conditions.dryness)) * 1.5, 0, 0.85)
    ink = ink * (1.0 - dry)

    # Contact region: an ellipse where the fingertip touches the glass.
    centre_row = rows * 0.52 - conditions.shift_px[0] * 0.5
    centre_col = cols / 2 - conditions.shift_px[1] * 0.5
    radius_rows = rows * rng.uniform(0.46, 0.56) * (1 + 0.08 * conditions.pressure)
    radius_cols = cols * rng.uniform(0.40, 0.50) * (1 + 0.08 * conditions.pressure)
    contact_dist = np.hypot(
        (row_grid - centre_row) / radius_rows, (col_grid - centre_col) / radius_cols
    )
    contact = np.clip((1.0 - contact_dist) * 8.0, 0.0, 1.0)
    ink = ink * contact

    # 4. Grey levels, blur and noise.
    background = 205.0 + 12.0 * smooth_noise(rng, shape, 80.0)
    contrast = rng.uniform(130.0, 170.0)
    image = gaussian_blur(
        (background - contrast * ink).astype(np.float32), conditions.blur_px
    )
    image = image + rng.normal(0.0, conditions.noise_grey, shape).astype(np.float32)
    return to_uint8(image)


class SyntheticFingerprints:
    """Deterministic source of synthetic fingers and their impressions.

    Masters are cached, so asking for several impressions of one finger grows
    its pattern once.

    Args:
        seed: the run's seed; every image follows from it.
        shape: (rows, columns) of the sensor images.
    """

    def __init__(self, seed: int, shape: tuple[int, int] = SENSOR_SHAPE) -> None:
        self._seed = seed
        self._shape = shape
        self._masters: dict[tuple[int, int], MasterFingerprint] = {}

    def master(self, person: int, finger: int) -> MasterFingerprint:
        """Return the master pattern of ``finger`` of ``person``."""
        key = (person, finger)
        if key not in self._masters:
            self._masters[key] = generate_master(self._seed, person, finger)
        return self._masters[key]

    def impression(
        self, person: int, finger: int, impression: int
    ) -> npt.NDArray[np.uint8]:
        """Return impression number ``impression`` of one finger.

        Args:
            person: index of the person.
            finger: finger number (1 right thumb ... 10 left little finger).
            impression: index of the capture; each index gives a different
                pose, distortion, pressure and noise.
        """
        master = self.master(person, finger)
        rng = _finger_rng(self._seed, person, finger, impression + 1)
        conditions = draw_conditions(rng)
        return render_impression(master, conditions, rng, self._shape)
