"""Synthetic near-infrared eye images with an iris texture stable per eye.

An eye is an *iris pattern*: a texture in normalised polar coordinates
(radius from the pupil edge to the limbus, angle), drawn once per
(seed, person, eye). Every look into the camera renders it again.

Iris pattern:

1. Radial fibres: thin streaks along the radius with random angular
   positions, widths and contrast.
2. Crypts: dark elongated blobs, mostly in the inner half.
3. The collarette: a wavy ring between pupillary zone and ciliary zone.
4. Contraction furrows: faint rings in the outer half.
5. A smooth random field for the overall brightness of the iris.

Capture, as one look into the camera differs from the last one:

1. Eye position, iris size (distance to the camera) and pupil dilation vary;
   the rubber-sheet model stretches the texture between pupil and limbus, so
   the same pattern point keeps its normalised radius.
2. Head tilt rotates the texture.
3. Upper and lower eyelids cover part of the iris; lashes hang from the
   upper lid.
4. Specular reflections of the illuminators sit in or near the pupil.
5. Defocus blur and sensor noise.

Output is 8-bit grey at 320 x 280 by default, the size of the CASIA-IrisV1
images the iris encoder is tuned on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ._image_ops import (
    FloatImage,
    gaussian_blur,
    sample_bilinear,
    smooth_noise,
    to_uint8,
)

# Rows, columns of a CASIA-IrisV1 image.
IRIS_IMAGE_SHAPE = (280, 320)
# Polar texture resolution: radial samples x angular samples.
_POLAR_SHAPE = (64, 512)
# Darkest grey level of the iris. The pupil is drawn at 22, well below it.
_IRIS_FLOOR_GREY = 55.0


@dataclass(frozen=True)
class IrisPattern:
    """One synthetic eye's iris texture in normalised polar coordinates.

    Attributes:
        texture: brightness offsets, rows = radius (pupil edge to limbus),
            columns = angle (0 to 2 pi); about zero mean, unit spread.
        base_grey: mean iris brightness in grey levels.
        iris_radius_px: limbus radius at the nominal camera distance.
    """

    texture: FloatImage
    base_grey: float
    iris_radius_px: float


def _eye_rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([*key, 0x1A15]))


def _fibres(rng: np.random.Generator) -> FloatImage:
    radial, angular = _POLAR_SHAPE
    theta = np.linspace(0, 2 * np.pi, angular, endpoint=False)[None, :]
    rho = np.linspace(0, 1, radial)[:, None]
    texture = np.zeros(_POLAR_SHAPE, dtype=np.float64)
    for _ in range(int(rng.integers(140, 220))):
        centre = rng.uniform(0, 2 * np.pi)
        width = rng.uniform(0.006, 0.025)
        start, stop = sorted(rng.uniform(0, 1, 2))
        stop = max(stop, start + 0.25)
        # Fibres curve a little as they run outwards.
        bend = rng.normal(0, 0.04) * rho
        distance = np.angle(np.exp(1j * (theta - centre - bend)))
        along = np.clip((rho - start) * (stop - rho) * 12, 0, 1)
        texture += (
            rng.choice([-1, 1])
            * rng.uniform(0.4, 1.0)
            * along
            * np.exp(-0.5 * (distance / width) ** 2)
        )
    return texture.astype(np.float32)


def _crypts(rng: np.random.Generator) -> FloatImage:
    radial, angular = _POLAR_SHAPE
    theta = np.linspace(0, 2 * np.pi, angular, endpoint=False)[None, :]
    rho = np.linspace(0, 1, radial)[:, None]
    texture = np.zeros(_POLAR_SHAPE, dtype=np.float64)
    for _ in range(int(rng.integers(12, 30))):
        centre_theta = rng.uniform(0, 2 * np.pi)
        centre_rho = rng.beta(2, 3)
        size_theta = rng.uniform(0.03, 0.12)
        size_rho = rng.uniform(0.05, 0.15)
        d_theta = np.angle(np.exp(1j * (theta - centre_theta)))
        blob = np.exp(
            -0.5 * ((d_theta / size_theta) ** 2 + ((rho - centre_rho) / size_rho) ** 2)
        )
        texture -= rng.uniform(1.0, 2.5) * blob
    return texture.astype(np.float32)


def _rings(rng: np.random.Generator) -> FloatImage:
    radial, angular = _POLAR_SHAPE
    theta = np.linspace(0, 2 * np.pi, angular, endpoint=False)[None, :]
    rho = np.linspace(0, 1, radial)[:, None]

    # Collarette: a bright wavy ring at about a third of the radius.
    phases = rng.uniform(0, 2 * np.pi, 4)
    wave = sum(
        rng.uniform(0.01, 0.04) * np.sin((k + 3) * theta + phases[k]) for k in range(4)
    )
    collarette_rho = rng.uniform(0.25, 0.4) + wave
    texture = 1.2 * np.exp(-0.5 * ((rho - collarette_rho) / 0.03) ** 2)

    # Furrows: faint rings in the ciliary zone, broken along the angle.
    for _ in range(int(rng.integers(2, 5))):
        ring_rho = rng.uniform(0.55, 0.9)
        broken = np.clip(np.sin(rng.integers(2, 7) * theta + rng.uniform(0, 6)), 0, 1)
        texture -= 0.6 * broken * np.exp(-0.5 * ((rho - ring_rho) / 0.015) ** 2)
    result: FloatImage = texture.astype(np.float32)
    return result


def generate_iris_pattern(seed: int, person: int, eye: int) -> IrisPattern:
    """Draw the iris texture of one synthetic eye.

    Args:
        seed: the run's seed.
        person: index of the person.
        eye: 0 for the right eye, 1 for the left.

    Returns:
        The pattern; the same arguments always give the same pattern.
    """
    rng = _eye_rng(seed, person, eye, 0)
    texture = _fibres(rng) + _crypts(rng) + _rings(rng)
    texture += 0.6 * smooth_noise(rng, _POLAR_SHAPE, 4.0)
    # Blur across the seam would be wrong, so blur a tiled copy and cut it.
    tiled = np.concatenate([texture, texture, texture], axis=1)
    angular = _POLAR_SHAPE[1]
    texture = gaussian_blur(tiled, 0.8)[:, angular : 2 * angular]
    texture = (texture - texture.mean()) / (texture.std() + 1e-6)
    return IrisPattern(
        texture=texture.astype(np.float32),
        base_grey=float(rng.uniform(85, 125)),
        iris_radius_px=float(rng.uniform(95, 112)),
    )


@dataclass(frozen=True)
class EyeConditions:
    """Differences of one look into the camera from the last, drawn per capture.

    Attributes:
        centre_px: (row, column) of the pupil centre in the image.
        scale: iris size relative to the nominal distance.
        dilation: pupil radius as a fraction of the iris radius.
        rotation_deg: head tilt, rotating the texture.
        upper_lid: how far the upper lid comes down, as a fraction of the
            iris radius above the centre (1 = lid at the top of the iris).
        lower_lid: the same for the lower lid, below the centre.
        blur_px: defocus, standard deviation in pixels.
        noise_grey: sensor noise, standard deviation in grey levels.
        pupil_offset_px: (row, column) of the pupil centre relative to the
            iris centre; pupils sit off-centre and move as they dilate.
        tissue_change: strength of the capture's own texture change (fibres
            shift as the pupil moves), relative to the texture's spread.
        light_tilt: brightness change across the frame from uneven lamps.
    """

    centre_px: tuple[float, float]
    scale: float
    dilation: float
    rotation_deg: float
    upper_lid: float
    lower_lid: float
    blur_px: float
    noise_grey: float
    pupil_offset_px: tuple[float, float] = (0.0, 0.0)
    tissue_change: float = 0.0
    light_tilt: float = 0.0


def draw_eye_conditions(
    rng: np.random.Generator, shape: tuple[int, int] = IRIS_IMAGE_SHAPE
) -> EyeConditions:
    """Draw capture conditions of the spread seen between real captures."""
    rows, cols = shape
    return EyeConditions(
        centre_px=(rows / 2 + rng.normal(0, 8), cols / 2 + rng.normal(0, 10)),
        scale=float(rng.uniform(0.94, 1.06)),
        dilation=float(rng.uniform(0.3, 0.5)),
        rotation_deg=float(np.clip(rng.normal(0, 4), -10, 10)),
        upper_lid=float(rng.uniform(0.6, 1.05)),
        lower_lid=float(rng.uniform(0.75, 1.15)),
        blur_px=float(rng.uniform(0.4, 1.2)),
        noise_grey=float(rng.uniform(3.0, 7.0)),
        pupil_offset_px=(float(rng.normal(1.5, 1.5)), float(rng.normal(-1.0, 1.5))),
        tissue_change=float(rng.uniform(0.35, 0.6)),
        light_tilt=float(rng.uniform(-0.12, 0.12)),
    )


def render_eye(
    pattern: IrisPattern,
    conditions: EyeConditions,
    rng: np.random.Generator,
    shape: tuple[int, int] = IRIS_IMAGE_SHAPE,
) -> npt.NDArray[np.uint8]:
    """Render one near-infrared camera frame of an eye.

    Args:
        pattern: the eye's iris texture.
        conditions: position, size, dilation, tilt, lids, focus and noise.
        rng: draws lashes, reflections, skin and noise.
        shape: (rows, columns) of the frame.

    Returns:
        The 8-bit grey frame.
    """
    rows, cols = shape
    row_grid, col_grid = np.mgrid[0:rows, 0:cols].astype(np.float32)
    d_row = row_grid - conditions.centre_px[0]
    d_col = col_grid - conditions.centre_px[1]
    radius = np.hypot(d_row, d_col)
    iris_radius = pattern.iris_radius_px * conditions.scale
    pupil_radius = iris_radius * conditions.dilation

    # 1. Skin and sclera around the eye, lit by the near-infrared lamps.
    skin = 165.0 + 15.0 * smooth_noise(rng, shape, 60.0)
    sclera_span = np.clip(1.0 - (d_row / (iris_radius * 0.9)) ** 2, 0, 1)
    sclera_mask = (np.abs(d_col) < iris_radius * 2.2) * sclera_span
    image = skin * (1 - sclera_mask) + 190.0 * sclera_mask

    # 2. Iris: rubber-sheet lookup of the texture, rotated by the head tilt.
    # The tissue stretches unevenly as the pupil dilates (exponent gamma).
    offset_row, offset_col = conditions.pupil_offset_px
    rho, angle = _rubber_sheet_coordinates(
        d_row, d_col, pupil_radius, iris_radius, (offset_row, offset_col)
    )
    gamma = 1.0 + 0.8 * (conditions.dilation - 0.4)
    rho_tissue = np.clip(rho, 0, 1) ** gamma
    capture_texture = pattern.texture + conditions.tissue_change * smooth_noise(
        rng, _POLAR_SHAPE, 1.5
    )
    theta = np.mod(angle - math.radians(conditions.rotation_deg), 2 * np.pi)
    radial, angular = pattern.texture.shape
    texture = sample_bilinear(
        capture_texture,
        (rho_tissue * (radial - 1)).astype(np.float32),
        (theta / (2 * np.pi) * angular).astype(np.float32) % (angular - 1),
        fill=0.0,
    )
    # The iris darkens towards the limbus and is brightest near the collarette.
    iris_grey = pattern.base_grey * (1.05 - 0.25 * np.clip(rho, 0, 1)) + 18.0 * texture
    # Near-infrared light reflects off the stroma under a crypt, so no part of
    # the iris is as dark as the pupil. Without this floor, deep crypts reached
    # 0-16 grey levels and the segmentation mistook one of them for the pupil.
    iris_grey = np.maximum(iris_grey, _IRIS_FLOOR_GREY)
    in_iris = np.clip((iris_radius - radius) * 0.7, 0, 1)
    image = image * (1 - in_iris) + iris_grey * in_iris

    # 3. Pupil: dark, with a soft edge.
    pupil_distance = np.hypot(d_row - offset_row, d_col - offset_col)
    in_pupil = np.clip((pupil_radius - pupil_distance) * 0.8, 0, 1)
    image = image * (1 - in_pupil) + 22.0 * in_pupil

    # 4. Eyelids: parabolas over and under the iris, then lashes.
    image = _draw_lids(
        image, d_row, d_col, iris_radius=iris_radius, conditions=conditions, rng=rng
    )

    # 5. Specular reflections of the lamps, near the pupil centre.
    for _ in range(int(rng.integers(1, 3))):
        spot_row = conditions.centre_px[0] + rng.normal(0, pupil_radius * 0.3)
        spot_col = conditions.centre_px[1] + rng.normal(0, pupil_radius * 0.3)
        spot_radius = rng.uniform(2.0, 4.5)
        spot = np.hypot(row_grid - spot_row, col_grid - spot_col)
        image = np.maximum(image, 250.0 * np.clip(spot_radius + 1 - spot, 0, 1))

    # 6. Uneven lighting, defocus and sensor noise.
    image = image * (1.0 + conditions.light_tilt * (col_grid - cols / 2) / cols)
    image = gaussian_blur(image.astype(np.float32), conditions.blur_px)
    image = image + rng.normal(0, conditions.noise_grey, shape)
    return to_uint8(image.astype(np.float32))


def _rubber_sheet_coordinates(
    d_row: FloatImage,
    d_col: FloatImage,
    pupil_radius: float,
    iris_radius: float,
    pupil_offset_px: tuple[float, float],
) -> tuple[FloatImage, FloatImage]:
    """Return the normalised radius and the angle of each pixel in the iris.

    Daugman's rubber sheet joins the pupil and limbus points of the same
    angle, so that a pixel at (d_row, d_col) from the iris centre lies at

        (1 - rho) * offset + (pupil_radius + rho * (iris_radius - pupil_radius)) * u

    with u the unit vector of the angle. The encoder unwraps the iris this
    way, so a pupil that sits off the iris centre moves no texture point
    relative to the code. A few fixed-point steps solve for (rho, angle),
    because the offset is small against the pupil radius.
    """
    offset_row, offset_col = pupil_offset_px
    span = max(iris_radius - pupil_radius, 1e-3)
    rho = (np.hypot(d_row, d_col) - pupil_radius) / span
    for _ in range(4):
        inner = 1.0 - np.clip(rho, 0.0, 1.0)
        row = d_row - inner * offset_row
        col = d_col - inner * offset_col
        rho = (np.hypot(row, col) - pupil_radius) / span
    angle = np.arctan2(row, col)
    return rho.astype(np.float32), angle.astype(np.float32)


def _draw_lids(
    image: npt.NDArray[np.float64],
    d_row: FloatImage,
    d_col: FloatImage,
    *,
    iris_radius: float,
    conditions: EyeConditions,
    rng: np.random.Generator,
) -> npt.NDArray[np.float64]:
    # Lid edge as a parabola: row offset of the edge at each column offset.
    upper_edge = -conditions.upper_lid * iris_radius + (
        d_col / (2.6 * iris_radius)
    ) ** 2 * (iris_radius * 1.6)
    lower_edge = conditions.lower_lid * iris_radius - (
        d_col / (2.8 * iris_radius)
    ) ** 2 * (iris_radius * 1.2)
    lid_grey = 150.0
    under_upper = np.clip((upper_edge - d_row) * 0.6, 0, 1)
    under_lower = np.clip((d_row - lower_edge) * 0.6, 0, 1)
    covered = np.maximum(under_upper, under_lower)
    image = image * (1 - covered) + lid_grey * covered

    # Lashes: thin dark curves hanging from the upper lid, drawn as points.
    rows, cols = image.shape
    centre_row, centre_col = conditions.centre_px
    lash = np.ones_like(image)
    steps = np.linspace(0, 1, 40)
    for _ in range(int(rng.integers(25, 60))):
        root_col = rng.uniform(-1.8, 1.8) * iris_radius
        root_row = -conditions.upper_lid * iris_radius + (
            root_col / (2.6 * iris_radius)
        ) ** 2 * (iris_radius * 1.6)
        length = rng.uniform(10, 35)
        slant = rng.normal(0, 0.35)
        lash_rows = np.rint(centre_row + root_row + steps * length).astype(int)
        lash_cols = np.rint(
            centre_col
            + root_col
            + slant * steps * length
            + 6 * steps**2 * np.sign(slant)
        ).astype(int)
        keep = (
            (lash_rows >= 0)
            & (lash_rows < rows)
            & (lash_cols >= 0)
            & (lash_cols < cols)
        )
        lash[lash_rows[keep], lash_cols[keep]] = rng.uniform(0.35, 0.6)
    return image * lash


class SyntheticIrises:
    """Deterministic source of synthetic eyes and their camera frames.

    Args:
        seed: the run's seed; every frame follows from it.
        shape: (rows, columns) of the frames.
    """

    def __init__(self, seed: int, shape: tuple[int, int] = IRIS_IMAGE_SHAPE) -> None:
        self._seed = seed
        self._shape = shape
        self._patterns: dict[tuple[int, int], IrisPattern] = {}

    def pattern(self, person: int, eye: int) -> IrisPattern:
        """Return the iris pattern of one eye (0 right, 1 left) of ``person``."""
        key = (person, eye)
        if key not in self._patterns:
            self._patterns[key] = generate_iris_pattern(self._seed, person, eye)
        return self._patterns[key]

    def capture(self, person: int, eye: int, capture: int) -> npt.NDArray[np.uint8]:
        """Return frame number ``capture`` of one eye.

        Each index gives a different position, size, dilation, tilt, lids,
        reflections, focus and noise.
        """
        pattern = self.pattern(person, eye)
        rng = _eye_rng(self._seed, person, eye, capture + 1)
        conditions = draw_eye_conditions(rng, self._shape)
        return render_eye(pattern, conditions, rng, self._shape)
