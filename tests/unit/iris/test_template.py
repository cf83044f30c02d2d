"""Tests of the iris template format and the open-iris import."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge_gate.errors import TemplateError
from edge_gate.iris import IrisTemplate, compare_irises
from edge_gate.iris._template import HEADER_BYTES


def random_template(
    seed: int = 0, shape: tuple[int, int, int] = (16, 128, 2)
) -> IrisTemplate:
    rng = np.random.default_rng(seed)
    return IrisTemplate(
        code=rng.random(shape) < 0.5,
        mask=rng.random(shape[:2]) < 0.8,
        quality=0.75,
    )


def test_round_trip_keeps_bits() -> None:
    template = random_template()
    restored = IrisTemplate.from_bytes(template.to_bytes())
    assert np.array_equal(restored.code, template.code)
    assert np.array_equal(restored.mask, template.mask)
    assert restored.quality == pytest.approx(0.75, abs=1 / 255)


def test_lane_template_fits_one_kib() -> None:
    data = random_template().to_bytes()
    assert len(data) == HEADER_BYTES + 512 + 256
    assert len(data) <= 1024


@pytest.mark.parametrize(
    ("offset", "reason"),
    [(0, "magic"), (4, "version"), (HEADER_BYTES + 3, "CRC")],
    ids=["bad-magic", "bad-version", "flipped-body-byte"],
)
def test_corrupt_bytes_rejected(offset: int, reason: str) -> None:
    data = bytearray(random_template().to_bytes())
    data[offset] ^= 0xFF
    with pytest.raises(TemplateError, match=reason):
        IrisTemplate.from_bytes(bytes(data))


def test_truncated_bytes_rejected() -> None:
    data = random_template().to_bytes()
    with pytest.raises(TemplateError, match="bytes"):
        IrisTemplate.from_bytes(data[:-1])
    with pytest.raises(TemplateError, match="header"):
        IrisTemplate.from_bytes(data[:5])


def test_mask_shape_checked() -> None:
    with pytest.raises(TemplateError, match="mask"):
        IrisTemplate(
            code=np.zeros((16, 128, 2), bool),
            mask=np.zeros((16, 64), bool),
            quality=1.0,
        )


@pytest.mark.parametrize("shape", [(16, 128, 0), (0, 128, 2), (16, 0, 2)])
def test_empty_grid_rejected(shape: tuple[int, int, int]) -> None:
    with pytest.raises(TemplateError, match="is empty"):
        IrisTemplate(
            code=np.zeros(shape, bool), mask=np.ones(shape[:2], bool), quality=1.0
        )


def test_open_iris_vector_imports(data_dir: Path) -> None:
    vector = data_dir / "iris" / "open-iris-testvector" / "expected_orb_output.json"
    data = json.loads(vector.read_text(encoding="utf-8"))
    template = IrisTemplate.from_open_iris(data["iris_template"])
    assert template.shape == (16, 256, 4)
    # The README gives 0.737 and 0.752 valid bits per wavelet; a cell here
    # needs all four of its bits valid, so its share is at most the lower one.
    assert 0.5 < template.valid_fraction <= 0.737 + 1e-3
    rolled = IrisTemplate(
        code=np.roll(template.code, 7, axis=1),
        mask=np.roll(template.mask, 7, axis=1),
        quality=1.0,
    )
    assert compare_irises(template, rolled) == pytest.approx(
        compare_irises(template, template)
    )
    restored = IrisTemplate.from_bytes(template.to_bytes())
    assert np.array_equal(restored.code, template.code)


def test_open_iris_import_rejects_garbage() -> None:
    with pytest.raises(TemplateError, match="open-iris"):
        IrisTemplate.from_open_iris({"iris_codes": "***"})
