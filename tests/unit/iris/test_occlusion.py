"""Tests of the eyelid fits, side lashes, angular high-pass and coarse search."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edge_gate.iris import (
    IrisEncoder,
    IrisGallery,
    IrisTemplate,
    compare_irises,
    load_iris_image,
)
from edge_gate.iris._encoder import EncodingParams
from edge_gate.iris._normalize import (
    IrisStrip,
    NormalizationParams,
    fit_lower_eyelid,
    fit_upper_eyelid,
    unwrap_iris,
)
from edge_gate.iris._segment import segment_eye

# Upper lid of the drawn eyes: y = LID_CURVE (x - 160)^2 + LID_APEX.
LID_APEX = 80.0
LID_CURVE = 0.004
# Lower lid: y = LOWER_APEX - LID_CURVE (x - 160)^2, sagging below the eye.
LOWER_APEX = 205.0


def with_upper_lid(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """Paint skin a little brighter than the iris above the lid parabola."""
    painted = image.copy()
    ys, xs = np.mgrid[0 : image.shape[0], 0 : image.shape[1]]
    painted[ys < LID_CURVE * (xs - 160.0) ** 2 + LID_APEX] = 150
    return painted


def with_lower_lid(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """Paint skin a little brighter than the iris below the lower lid."""
    painted = image.copy()
    ys, xs = np.mgrid[0 : image.shape[0], 0 : image.shape[1]]
    painted[ys > LOWER_APEX - LID_CURVE * (xs - 160.0) ** 2] = 150
    return painted


def lower_valid_share(strip: IrisStrip) -> float:
    columns = strip.valid.shape[1]
    angles = np.arange(columns) * (2 * math.pi / columns)
    return float(strip.valid[:, np.sin(angles) > 0.5].mean())


def upper_valid_share(strip: IrisStrip) -> float:
    columns = strip.valid.shape[1]
    angles = np.arange(columns) * (2 * math.pi / columns)
    upper = np.sin(angles) < -0.5
    return float(strip.valid[:, upper].mean())


def test_upper_lid_fitted_where_drawn(eye_drawer: Any) -> None:
    segmentation = segment_eye(with_upper_lid(eye_drawer()))
    lid = fit_upper_eyelid(segmentation)
    assert lid is not None
    for x in (130.0, 160.0, 190.0):
        expected = LID_CURVE * (x - 160.0) ** 2 + LID_APEX
        assert abs(float(np.polyval(lid, x)) - expected) <= 4.0, x


def test_samples_above_the_lid_masked(eye_drawer: Any) -> None:
    segmentation = segment_eye(with_upper_lid(eye_drawer()))
    masked = unwrap_iris(segmentation)
    unmasked = unwrap_iris(segmentation, NormalizationParams(upper_lid_margin=None))
    # Between the iris top (y 41) and the lid apex (y 80) lies about a third
    # of the upper sector's samples; the skin is within the iris's grey levels,
    # so only the fitted lid removes it.
    assert upper_valid_share(unmasked) - upper_valid_share(masked) > 0.2
    # Nothing below the lid's sides is lost.
    lower = np.sin(np.arange(256) * (2 * math.pi / 256)) > 0.5
    assert masked.valid[:, lower].mean() == unmasked.valid[:, lower].mean()


def test_open_eye_keeps_its_upper_iris(eye_drawer: Any) -> None:
    segmentation = segment_eye(eye_drawer())
    masked = unwrap_iris(segmentation)
    unmasked = unwrap_iris(segmentation, NormalizationParams(upper_lid_margin=None))
    # A fit may follow the iris's own top edge; it then removes a rim only.
    assert upper_valid_share(unmasked) - upper_valid_share(masked) < 0.15


def smooth_texture(seed: int) -> npt.NDArray[np.float32]:
    rng = np.random.default_rng(seed)
    noise = rng.normal(0.0, 1.0, size=(32, 256))
    # Blur along the angle (cyclic) so the texture has the filter's scale.
    kernel = np.exp(-0.5 * (np.arange(-6, 7) / 2.5) ** 2)
    blurred = sum(
        weight * np.roll(noise, shift, axis=1)
        for shift, weight in zip(range(-6, 7), kernel, strict=True)
    )
    return np.asarray(20.0 * blurred / blurred.std() + 120.0, dtype=np.float32)


def agreement(encoder: IrisEncoder, clean: IrisStrip, shaded: IrisStrip) -> float:
    first = encoder._to_template(encoder._run(clean), clean, 1.0)
    second = encoder._to_template(encoder._run(shaded), shaded, 1.0)
    both = first.mask & second.mask
    return float((first.code == second.code).all(axis=2)[both].mean())


def test_shading_along_the_angle_leaves_the_code() -> None:
    # Illumination from one side: brightness changes slowly around the eye.
    # With the running mean removed, the code hardly changes; with only the
    # global mean removed, the odd filter's bits follow the shading.
    texture = smooth_texture(5)
    angles = np.arange(256) * (2 * math.pi / 256)
    shading = (60.0 * np.cos(angles))[None, :].astype(np.float32)
    valid = np.ones((32, 256), dtype=bool)
    clean = IrisStrip(values=texture, valid=valid)
    shaded = IrisStrip(values=texture + shading, valid=valid)
    high_pass = IrisEncoder(encoding=EncodingParams(fragile_share=0.0))
    global_mean = IrisEncoder(
        encoding=EncodingParams(fragile_share=0.0, highpass_columns=0)
    )
    high_pass_agreement = agreement(high_pass, clean, shaded)
    assert high_pass_agreement > 0.9
    assert high_pass_agreement > agreement(global_mean, clean, shaded) + 0.1


def test_masked_coarse_rows_do_not_hide_the_mate() -> None:
    # 400 decoys agree with the probe on the few coarse-row bits they have
    # valid, a raw distance of 0. The mate disagrees on a fifth of its
    # bits. Normalised for the bit count, the mate still ranks first, so
    # it reaches the fine stage (300 candidates).
    rng = np.random.default_rng(11)
    probe = IrisTemplate(
        code=rng.random((16, 128, 2)) < 0.5,
        mask=np.ones((16, 128), dtype=bool),
        quality=1.0,
    )
    flips = rng.random(probe.code.shape) < 0.2
    mate = IrisTemplate(code=probe.code ^ flips, mask=probe.mask, quality=1.0)
    decoys = []
    for _ in range(400):
        code = rng.random((16, 128, 2)) < 0.5
        mask = np.ones((16, 128), dtype=bool)
        mask[:12] = False
        keep = rng.integers(0, 128, size=6)
        code[:, keep] = probe.code[:, keep]
        mask[:12][:, keep] = True
        decoys.append(IrisTemplate(code=code, mask=mask, quality=1.0))
    gallery = IrisGallery.from_templates(
        [f"decoy-{i}" for i in range(400)] + ["mate"], [*decoys, mate]
    )
    assert gallery.search(probe, top_k=1)[0][0] == "mate"


def test_lid_no_steeper_than_the_iris(eye_drawer: Any) -> None:
    # Skin above an arch with a radius of curvature of 33 px over an iris of
    # 100 px. No eyelid is rounder than the iris, so the fit stays within
    # a <= 0.5 / iris radius, while a loose bound follows the drawn arch.
    image = eye_drawer()
    segmentation = segment_eye(image)
    ys, xs = np.mgrid[0 : image.shape[0], 0 : image.shape[1]]
    painted = image.astype(np.float32)
    painted[ys < 0.015 * (xs - 160.0) ** 2 + LID_APEX] = 150
    steep = dataclasses.replace(segmentation, filled=painted)
    bound = 0.5 / segmentation.iris.radius
    loose = fit_upper_eyelid(steep, max_curvature=4.0)
    assert loose is not None
    assert loose[0] > 2 * bound
    lid = fit_upper_eyelid(steep)
    assert lid is None or 0.0 <= lid[0] <= bound


def test_lower_lid_fitted_where_drawn(eye_drawer: Any) -> None:
    segmentation = segment_eye(with_lower_lid(eye_drawer()))
    lid = fit_lower_eyelid(segmentation)
    assert lid is not None
    assert lid[0] < 0  # it sags: lowest in the middle
    for x in (130.0, 160.0, 190.0):
        expected = LOWER_APEX - LID_CURVE * (x - 160.0) ** 2
        assert abs(float(np.polyval(lid, x)) - expected) <= 4.0, x
    # The upper fit finds no lid in the same image, which has none above.
    upper = fit_upper_eyelid(segmentation)
    assert upper is None or float(np.polyval(upper, 160.0)) < 60.0


def test_samples_below_the_lower_lid_masked(eye_drawer: Any) -> None:
    segmentation = segment_eye(with_lower_lid(eye_drawer()))
    masked = unwrap_iris(segmentation)
    unmasked = unwrap_iris(segmentation, NormalizationParams(lower_lid_margin=None))
    # The lid apex (y 205) lies 64 px below the iris centre (y 141) on a
    # 100 px iris: the lowest third of the lower sector is skin that lies
    # within the iris's grey levels.
    assert lower_valid_share(unmasked) - lower_valid_share(masked) > 0.15
    # The upper sector is untouched.
    assert upper_valid_share(masked) == upper_valid_share(unmasked)


def test_open_eye_keeps_its_lower_iris(eye_drawer: Any) -> None:
    segmentation = segment_eye(eye_drawer())
    masked = unwrap_iris(segmentation)
    unmasked = unwrap_iris(segmentation, NormalizationParams(lower_lid_margin=None))
    assert lower_valid_share(unmasked) - lower_valid_share(masked) < 0.15


def with_hanging_lashes(
    image: npt.NDArray[np.uint8], columns: tuple[int, ...]
) -> npt.NDArray[np.uint8]:
    """Paint 2 px wide lashes from the top down to 10 px above the pupil centre.

    At grey level 75 they stay above the iris's dark-outlier limit (about
    66), as thin lashes blurred into the iris do in a camera image.
    """
    painted = image.copy()
    for column in columns:
        painted[:130, column : column + 2] = 75
    return painted


# Lash columns over the drawn iris's left and right sides (pupil 120-200,
# iris 62-262 in x).
LASH_COLUMNS = (70, 78, 90, 232, 244, 252)


def side_lash_samples(segmentation: Any, strip: IrisStrip) -> npt.NDArray[np.bool_]:
    """Return the strip samples within 1 px of a painted lash column."""
    pupil, iris = segmentation.pupil, segmentation.iris
    rows, columns = strip.valid.shape
    theta = np.arange(columns) * (2 * math.pi / columns)
    rho = np.linspace(0.04, 0.92, rows)[:, None]
    xs = (1 - rho) * (pupil.x + pupil.radius * np.cos(theta)) + rho * (
        iris.x + iris.radius * np.cos(theta)
    )
    ys = (1 - rho) * (pupil.y + pupil.radius * np.sin(theta)) + rho * (
        iris.y + iris.radius * np.sin(theta)
    )
    near = np.zeros(strip.valid.shape, dtype=bool)
    for column in LASH_COLUMNS:
        near |= (xs >= column - 0.5) & (xs <= column + 1.5)
    # Keep samples above the lash ends (row 130) and outside the top sector,
    # which the eyelid rules cover.
    return near & (ys < 130) & (np.sin(theta) > -0.7)[None, :]


def test_hanging_side_lashes_masked(eye_drawer: Any) -> None:
    # In a narrow eye the upper lashes hang over the sides of the iris,
    # where the grey-level rules do not look for them.
    segmentation = segment_eye(with_hanging_lashes(eye_drawer(), LASH_COLUMNS))
    masked = unwrap_iris(segmentation)
    unmasked = unwrap_iris(segmentation, NormalizationParams(side_lash_limit=None))
    on_lashes = side_lash_samples(segmentation, masked)
    assert on_lashes.sum() > 100
    assert unmasked.valid[on_lashes].mean() > 0.85
    assert masked.valid[on_lashes].mean() < 0.2


def test_iris_texture_not_taken_for_lashes(eye_drawer: Any) -> None:
    # Without lashes, the rule masks less than 1% of the textured iris strip.
    segmentation = segment_eye(eye_drawer())
    masked = unwrap_iris(segmentation)
    unmasked = unwrap_iris(segmentation, NormalizationParams(side_lash_limit=None))
    assert unmasked.valid.mean() - masked.valid.mean() < 0.01


def test_narrow_eye_matches_with_lash_mask(data_dir: Path) -> None:
    # CASIA eye 041 is narrow, and in 041_2_2 the lashes hang over both sides
    # of the iris down to the pupil. Unmasked, they made the pair score like
    # unrelated eyes (0.557) before the matcher turned the iris halves apart.
    # Since then the pair scores 0.621 unmasked and 0.659 masked.
    folder = data_dir / "iris" / "casia-iris-v1" / "041"
    images = [
        load_iris_image(folder / f"{name}.jpg") for name in ("041_1_2", "041_2_2")
    ]
    scores = {}
    for limit in (None, 5.0):
        encoder = IrisEncoder(normalization=NormalizationParams(side_lash_limit=limit))
        first, second = (encoder.encode(image) for image in images)
        scores[limit] = compare_irises(first, second)
    assert scores[5.0] > scores[None] + 0.02
