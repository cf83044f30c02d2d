"""Fixtures for the turnstile contract suite: mock pins, or the real lane.

By default the suite runs on gpiozero's MockFactory. On a hardware-in-loop
rig, set ``EDGE_GATE_HIL_TURNSTILE_CONFIG`` to a configuration file whose
``[turnstile]`` section names ``pin_factory = "lgpio"`` and the rig's pins:
the suite then drives the real outputs, holding an exclusive lock on
``/run/lock/edge-gate-gpio.lock`` while it does, so that two runs never
drive the same pins. Nothing on the barrier side may be able to move while
the suite runs: it pulses the real unlock output.
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from edge_gate.config import TurnstileConfig, load_config
from edge_gate.turnstile import MOCK_REVISION

HIL_ENV = "EDGE_GATE_HIL_TURNSTILE_CONFIG"
LOCK_PATH = Path("/run/lock/edge-gate-gpio.lock")


@dataclasses.dataclass
class Backend:
    """Where the suite runs: its config, and the mock factory if any."""

    config: TurnstileConfig
    factory: Any | None

    @property
    def is_mock(self) -> bool:
        return self.factory is not None


@pytest.fixture(params=["pulse", "hold"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """The turnstile backend, in pulse and in hold unlock mode."""
    mode = request.param
    hil_path = os.environ.get(HIL_ENV)
    if not hil_path:
        factory = MockFactory(revision=MOCK_REVISION)
        config = TurnstileConfig(
            pin_factory="mock", unlock_mode=mode, unlock_pulse_s=0.2
        )
        yield Backend(config, factory)
        factory.reset()
        factory.close()
        return

    config = dataclasses.replace(
        load_config(hil_path).turnstile, unlock_mode=mode, unlock_pulse_s=0.2
    )
    with LOCK_PATH.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield Backend(config, None)
