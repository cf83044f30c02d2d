"""Fixtures of the fingerprint sensor contract suite.

By default the suite runs against ``FingerprintModuleEmulator`` on a
pseudo-terminal. On a hardware-in-loop rig, set
``EDGE_GATE_HIL_FINGERPRINT_PORT`` (and ``EDGE_GATE_HIL_FINGERPRINT_PROFILE``)
to run the tests that need no fault injection against the real module; the
tests that drive the emulator's knobs skip there.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from edge_gate.config import FingerprintConfig
from edge_gate.fingerprint import SerialFingerprintSensor
from edge_gate.rig.fingerprint_module import FingerprintModuleEmulator

HIL_PORT = os.environ.get("EDGE_GATE_HIL_FINGERPRINT_PORT", "")
HIL_PROFILE = os.environ.get("EDGE_GATE_HIL_FINGERPRINT_PROFILE", "r307")


def ridge_image(
    width: int = 300, height: int = 360, seed: int = 0
) -> npt.NDArray[np.uint8]:
    """A synthetic ridge pattern (concentric sinusoid) on a white background."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    cx, cy = width / 2 + rng.uniform(-20, 20), height / 2 + rng.uniform(-20, 20)
    radius = np.hypot(xs - cx, ys - cy)
    ridges = 128 + 100 * np.sin(radius * 2 * np.pi / 9.0)
    inside = ((xs - cx) / 110) ** 2 + ((ys - cy) / 140) ** 2 <= 1
    return np.where(inside, ridges, 255).clip(0, 255).astype(np.uint8)


@dataclass
class Rig:
    """A sensor and, unless on real hardware, the emulator behind it."""

    emulator: FingerprintModuleEmulator | None
    config: FingerprintConfig

    def need_emulator(self) -> FingerprintModuleEmulator:
        """Return the emulator, or skip on a real module."""
        if self.emulator is None:
            pytest.skip("needs the emulator's fault knobs; running on a real module")
        return self.emulator

    def open(self) -> SerialFingerprintSensor:
        """Open the driver under test."""
        return SerialFingerprintSensor(self.config)


class RigFactory:
    """Starts rigs on demand and stops every emulator at teardown."""

    def __init__(self, tmp_path: Path) -> None:
        self._tmp_path = tmp_path
        self._emulators: list[FingerprintModuleEmulator] = []

    def __call__(
        self, profile: str = "r307", packet_size: int = 128, **config: object
    ) -> Rig:
        """Start an emulator (or point at the HIL module) and return the rig."""
        if HIL_PORT:
            return Rig(None, FingerprintConfig(port=HIL_PORT, profile=HIL_PROFILE))  # type: ignore[arg-type]
        link = self._tmp_path / f"fingerprint-{len(self._emulators)}"
        emulator = FingerprintModuleEmulator(profile, link, packet_size=packet_size)
        self._emulators.append(emulator)
        settings: dict[str, object] = {
            "port": str(link),
            "profile": profile,
            "reply_timeout_s": 0.3,
            "poll_interval_s": 0.02,
            "probe_baudrates": False,
        }
        settings.update(config)
        return Rig(emulator, FingerprintConfig(**settings))  # type: ignore[arg-type]

    def close(self) -> None:
        for emulator in self._emulators:
            emulator.close()


@pytest.fixture
def make_rig(tmp_path: Path) -> Iterator[RigFactory]:
    """A factory of rigs with a chosen profile, packet size and settings."""
    factory = RigFactory(tmp_path)
    yield factory
    factory.close()


@pytest.fixture
def rig(make_rig: RigFactory) -> Rig:
    """A default rig: R307 profile, 128-byte packets."""
    return make_rig()


@pytest.fixture
def finger() -> npt.NDArray[np.uint8]:
    """A synthetic finger image larger than the sensor window."""
    return ridge_image()
