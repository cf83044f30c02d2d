"""Fingerprint template format: round trip, size and every corruption named."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edge_gate.errors import TemplateError
from edge_gate.fingerprint import FORMAT_VERSION, FingerprintTemplate


def make_template(n: int = 40, seed: int = 0) -> FingerprintTemplate:
    rng = np.random.default_rng(seed)
    minutiae = np.zeros((n, 5), dtype=np.float32)
    minutiae[:, 0] = rng.integers(0, 256, n)
    minutiae[:, 1] = rng.integers(0, 288, n)
    minutiae[:, 2] = rng.uniform(0, 2 * math.pi, n)
    minutiae[:, 3] = rng.integers(0, 2, n)
    minutiae[:, 4] = rng.uniform(0.55, 1.0, n)
    return FingerprintTemplate(minutiae, 256, 288, 500, 0.75)


def test_round_trip_keeps_minutiae_within_quantisation() -> None:
    template = make_template()
    data = template.to_bytes()
    parsed = FingerprintTemplate.from_bytes(data)
    assert len(data) == 16 + 8 * len(template)
    assert data[:4] == b"EGFP" and data[4] == FORMAT_VERSION
    assert (parsed.width, parsed.height, parsed.dpi) == (256, 288, 500)
    assert parsed.quality == pytest.approx(0.75, abs=1 / 255)
    assert np.array_equal(
        parsed.minutiae[:, [0, 1, 3]], template.minutiae[:, [0, 1, 3]]
    )
    turn = np.angle(np.exp(1j * (parsed.minutiae[:, 2] - template.minutiae[:, 2])))
    assert np.abs(turn).max() <= math.pi / 65536 + 1e-6
    assert np.abs(parsed.minutiae[:, 4] - template.minutiae[:, 4]).max() <= 1 / 255
    assert parsed.to_bytes() == data


def test_empty_template_round_trips() -> None:
    empty = FingerprintTemplate(np.zeros((0, 5), np.float32), 256, 288)
    assert len(FingerprintTemplate.from_bytes(empty.to_bytes())) == 0


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        pytest.param(lambda d: d[:10], "shorter than", id="truncated-header"),
        pytest.param(lambda d: b"XXXX" + d[4:], "magic", id="wrong-magic"),
        pytest.param(
            lambda d: d[:4] + b"\x09" + d[5:], "version 9", id="future-version"
        ),
        pytest.param(lambda d: d[:-3], "announces", id="truncated-records"),
        pytest.param(lambda d: d + b"\x00", "announces", id="trailing-bytes"),
        pytest.param(
            lambda d: d[:16] + b"\xff\xff" + d[18:],
            "outside",
            id="minutia-outside-image",
        ),
        pytest.param(lambda d: d[:22] + b"\x07" + d[23:], "kind", id="unknown-kind"),
    ],
)
def test_corrupt_templates_are_rejected(mutate: object, message: str) -> None:
    data = make_template().to_bytes()
    with pytest.raises(TemplateError, match=message):
        FingerprintTemplate.from_bytes(mutate(data))  # type: ignore[operator]


def test_invalid_fields_are_rejected() -> None:
    with pytest.raises(TemplateError, match="shape"):
        FingerprintTemplate(np.zeros((3, 4), np.float32), 10, 10)
    with pytest.raises(TemplateError, match="quality"):
        FingerprintTemplate(np.zeros((0, 5), np.float32), 10, 10, quality=1.5)
    with pytest.raises(TemplateError, match="limit"):
        FingerprintTemplate(np.zeros((129, 5), np.float32), 10, 10)
