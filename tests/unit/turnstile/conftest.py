"""Shared fixtures for the turnstile tests: a mock pin factory acting as a Pi 5."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from edge_gate.turnstile import MOCK_REVISION


@pytest.fixture
def factory() -> Iterator[Any]:
    """A fresh gpiozero MockFactory; its pins are reset afterwards."""
    mock = MockFactory(revision=MOCK_REVISION)
    yield mock
    mock.reset()
    mock.close()


class Rig:
    """A lane, the real Turnstile on mock pins and a Walker, wired the way
    the daemon wires them, on a fake clock."""

    def __init__(self, factory: Any, config: Any, policy: Any = None) -> None:
        from edge_gate._models import Threshold
        from edge_gate.config import PolicyConfig
        from edge_gate.gate import Lane, LaneSettings
        from edge_gate.rig.walker import Walker
        from edge_gate.turnstile import Turnstile

        thresholds = {
            "fingerprint": Threshold(0.4, 1e-3, "test", ((0.0, 1.0), (0.4, 1e-3))),
            "iris": Threshold(0.7, 1e-4, "test", ((0.0, 1.0), (0.7, 1e-4))),
        }
        self.factory = factory
        self.config = config
        self.now_s = 0.0
        self.commands: list[Any] = []
        self.lane = Lane(LaneSettings(), policy or PolicyConfig(), thresholds, "rig")
        start = self.lane.start(self.now_s)
        self.turnstile = Turnstile(config, factory, on_input=self.feed)
        self.apply(start)
        self.walker = Walker(
            factory, config, step_s=0.5, pause=self.advance, clock=lambda: self.now_s
        )
        for event in self.turnstile.read_inputs():
            self.feed(event)

    def apply(self, commands: list[Any]) -> None:
        self.commands.extend(commands)
        for command in commands:
            self.turnstile.apply(command)

    def feed(self, event: Any) -> None:
        self.apply(self.lane.handle(event, self.now_s))

    def advance(self, seconds: float) -> None:
        from edge_gate.gate import Tick

        self.now_s += seconds
        self.feed(Tick())

    def decide(self, fingerprint: float = 0.9, iris: float = 0.9) -> None:
        """Run one transaction from the document to the decision."""
        from edge_gate.gate import (
            DocumentRead,
            EnrolmentFound,
            SampleScored,
            WatchlistResult,
        )

        both = frozenset({"fingerprint", "iris"})
        self.feed(DocumentRead("UTO", "L898902C3", True, False))
        tx = self.lane.transaction_id
        assert tx is not None
        self.feed(EnrolmentFound(tx, "enr-1", False, False, False))
        self.feed(SampleScored(tx, "fingerprint", fingerprint))
        self.feed(SampleScored(tx, "iris", iris))
        self.feed(WatchlistResult(tx, False, both, both))

    def alarms(self) -> list[Any]:
        from edge_gate.gate import RecordAlarm

        return [c.record.alarm for c in self.commands if isinstance(c, RecordAlarm)]

    def records(self) -> list[Any]:
        from edge_gate.gate import RecordTransaction

        return [c.record for c in self.commands if isinstance(c, RecordTransaction)]

    def unlock_level(self) -> bool:
        """The physical level on the unlock pin that means "unlocked"."""
        energised = bool(self.config.unlock_active_high)
        if self.config.lock_type == "fail_safe":
            return not energised
        return energised

    def unlock_pin_active(self) -> bool:
        pin = self.factory.pin(self.config.unlock_pin)
        return bool(pin.state) == self.unlock_level()

    def close(self) -> None:
        self.turnstile.close()


@pytest.fixture
def make_rig(factory: Any) -> Iterator[Any]:
    """A function building a :class:`Rig` on the test's mock factory."""
    rigs: list[Rig] = []

    def build(config: Any, policy: Any = None) -> Rig:
        rig = Rig(factory, config, policy)
        rigs.append(rig)
        return rig

    yield build
    for rig in rigs:
        rig.close()


@pytest.fixture
def rig_class() -> type[Rig]:
    """The :class:`Rig` class, for tests that build many rigs themselves."""
    return Rig
