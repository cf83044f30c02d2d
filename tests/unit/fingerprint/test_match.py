"""The MCC matcher on constructed minutiae sets: invariances and bounds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edge_gate.fingerprint import FingerprintTemplate, compare_fingerprints


def minutiae_set(n: int, seed: int) -> np.ndarray:
    """Minutiae spread over a finger-sized area, at least 12 px apart."""
    rng = np.random.default_rng(seed)
    points: list[tuple[float, float]] = []
    while len(points) < n:
        x, y = rng.uniform(40, 260), rng.uniform(40, 320)
        if all(math.hypot(x - px, y - py) >= 12 for px, py in points):
            points.append((x, y))
    m = np.zeros((n, 5), dtype=np.float32)
    m[:, :2] = points
    m[:, 2] = rng.uniform(0, 2 * math.pi, n)
    m[:, 4] = 0.9
    return m


def template(m: np.ndarray) -> FingerprintTemplate:
    """A template on a 600x600 canvas, the set placed 100 px in from the corner."""
    placed = m.astype(np.float32).copy()
    placed[:, :2] += 100
    return FingerprintTemplate(placed, 600, 600)


def moved(
    m: np.ndarray, angle: float, dx: float, dy: float, jitter: float = 0
) -> np.ndarray:
    """Rotate about the centre, shift, and jitter positions by a few pixels."""
    rng = np.random.default_rng(7)
    out = m.copy()
    cx, cy = 150.0, 180.0
    x, y = m[:, 0] - cx, m[:, 1] - cy
    out[:, 0] = cx + dx + math.cos(angle) * x - math.sin(angle) * y
    out[:, 1] = cy + dy + math.sin(angle) * x + math.cos(angle) * y
    out[:, :2] += rng.normal(0, jitter, (len(m), 2))
    out[:, 2] = np.mod(m[:, 2] + angle, 2 * math.pi)
    return out


def test_same_minutiae_score_far_above_different_ones() -> None:
    a = minutiae_set(40, 1)
    same = compare_fingerprints(template(a), template(a))
    other = compare_fingerprints(template(a), template(minutiae_set(40, 2)))
    assert same > 0.5
    assert other < 0.1


@pytest.mark.parametrize(
    ("angle", "dx", "dy"),
    [
        pytest.param(0.0, 30.0, -20.0, id="shifted"),
        pytest.param(math.radians(25), 0.0, 0.0, id="rotated-25-degrees"),
        pytest.param(math.radians(-40), 15.0, 10.0, id="rotated-and-shifted"),
    ],
)
def test_score_survives_rotation_and_translation(
    angle: float, dx: float, dy: float
) -> None:
    a = minutiae_set(40, 3)
    b = moved(a, angle, dx, dy, jitter=2.0)
    genuine = compare_fingerprints(template(a), template(b))
    impostor = compare_fingerprints(template(a), template(minutiae_set(40, 4)))
    assert genuine > 3 * impostor
    assert genuine > 0.3


def test_score_is_symmetric_and_bounded() -> None:
    a, b = (
        template(minutiae_set(35, 5)),
        template(moved(minutiae_set(35, 5), 0.3, 5, 5, 3)),
    )
    ab, ba = compare_fingerprints(a, b), compare_fingerprints(b, a)
    assert 0.0 <= ab <= 1.0
    assert ab == pytest.approx(ba, abs=0.05)


@pytest.mark.parametrize("n", [0, 1, 2, 3], ids=lambda n: f"{n}-minutiae")
def test_too_few_minutiae_score_zero(n: int) -> None:
    sparse = template(minutiae_set(n, 6)) if n else template(np.zeros((0, 5)))
    assert compare_fingerprints(sparse, template(minutiae_set(40, 6))) == 0.0
