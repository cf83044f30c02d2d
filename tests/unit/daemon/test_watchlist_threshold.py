"""The 1:N watchlist threshold grows with the gallery, never below the 1:1 one."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from edge_gate.daemon._components import watchlist_threshold


@dataclass(frozen=True)
class Threshold:
    threshold: float
    target_fmr: float
    fmr_curve: tuple[tuple[float, float], ...]


CURVE = Threshold(
    threshold=0.40,
    target_fmr=1e-3,
    fmr_curve=(
        (0.30, 1e-2),
        (0.40, 1e-3),
        (0.50, 1e-4),
        (0.60, 1e-5),
        (0.70, 0.0),
    ),
)


@pytest.mark.parametrize(
    ("gallery_size", "expected"),
    [
        pytest.param(0, 0.40, id="empty-gallery"),
        pytest.param(1, 0.40, id="one-template-is-1to1"),
        pytest.param(10, 0.50, id="ten-templates"),
        pytest.param(100, 0.60, id="hundred-templates"),
        pytest.param(50, 0.60, id="between-curve-points"),
    ],
)
def test_threshold_follows_curve(gallery_size: int, expected: float) -> None:
    assert watchlist_threshold(CURVE, gallery_size, "iris") == expected


def test_beyond_curve_uses_zero_rate(caplog: pytest.LogCaptureFixture) -> None:
    assert watchlist_threshold(CURVE, 100_000, "fingerprint") == 0.70
    assert "below what the calibration resolves" in caplog.text


def test_never_below_1to1() -> None:
    loose = Threshold(threshold=0.65, target_fmr=1e-3, fmr_curve=CURVE.fmr_curve)
    assert watchlist_threshold(loose, 10, "iris") == 0.65


def test_no_curve_keeps_1to1() -> None:
    bare = Threshold(threshold=0.4, target_fmr=1e-3, fmr_curve=())
    assert watchlist_threshold(bare, 1000, "iris") == 0.4
