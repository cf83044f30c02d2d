"""Shared helpers for the lane core tests: thresholds and a lane driver."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import pytest

from edge_gate._models import Threshold
from edge_gate.config import PolicyConfig
from edge_gate.gate import (
    BarrierChanged,
    BeamChanged,
    Command,
    DocumentRead,
    EnrolmentFound,
    Event,
    Lane,
    LaneSettings,
    Modality,
    RecordTransaction,
    SampleCaptured,
    SampleScored,
    TransactionRecord,
    WatchlistResult,
)

# Calibration curves shaped like the manifest's: score rising, FMR falling.
FINGERPRINT = Threshold(
    threshold=0.40,
    target_fmr=1e-3,
    calibration_set="test",
    fmr_curve=((0.0, 1.0), (0.2, 1e-1), (0.4, 1e-3), (0.6, 1e-5)),
)
IRIS = Threshold(
    threshold=0.70,
    target_fmr=1e-4,
    calibration_set="test",
    fmr_curve=((0.0, 1.0), (0.5, 1e-2), (0.7, 1e-4), (0.9, 1e-6)),
)
THRESHOLDS: dict[Modality, Threshold] = {"fingerprint": FINGERPRINT, "iris": IRIS}
BOTH: frozenset[Modality] = frozenset({"fingerprint", "iris"})


@dataclass
class Driver:
    """Feeds events to a lane on a fake clock and keeps every command."""

    lane: Lane
    now_s: float = 0.0
    commands: list[Command] = field(default_factory=list)

    def send(self, event: Event, after_s: float = 0.1) -> list[Command]:
        self.now_s += after_s
        out = self.lane.handle(event, self.now_s)
        self.commands.extend(out)
        return out

    def send_all(self, events: Iterable[Event]) -> list[Command]:
        out: list[Command] = []
        for event in events:
            out.extend(self.send(event))
        return out

    @property
    def tx(self) -> str:
        tx = self.lane.transaction_id
        assert tx is not None, "no transaction in progress"
        return tx

    def records(self) -> list[TransactionRecord]:
        return [c.record for c in self.commands if isinstance(c, RecordTransaction)]

    def of_type(self, kind: type[Command]) -> list[Command]:
        return [c for c in self.commands if isinstance(c, kind)]

    def document(self, *, valid: bool = True, expired: bool = False) -> list[Command]:
        return self.send(DocumentRead("UTO", "L898902C3", valid, expired))

    def enrolled(self, *, watchlisted: bool = False) -> list[Command]:
        return self.send(EnrolmentFound(self.tx, "enr-1", False, False, watchlisted))

    def sample(self, modality: Modality, score: float) -> list[Command]:
        out = self.send(SampleCaptured(self.tx, modality))
        out += self.send(SampleScored(self.tx, modality, score))
        return out

    def to_decision(
        self,
        fingerprint: float = 0.9,
        iris: float = 0.9,
        *,
        hit: bool = False,
        gallery: frozenset[Modality] = BOTH,
    ) -> list[Command]:
        """Run a transaction from the document to its decision."""
        self.document()
        self.enrolled()
        self.sample("fingerprint", fingerprint)
        self.sample("iris", iris)
        searched = frozenset(m for m in BOTH if m in gallery)
        return self.send(WatchlistResult(self.tx, hit, searched, gallery))

    def pass_through(self) -> list[Command]:
        """One person crosses: the same edges as the rig's Walker."""
        return self.send_all(
            [
                BarrierChanged(closed=False),
                BeamChanged("exit", True),
                BeamChanged("inside", False),
                BeamChanged("exit", False),
                BarrierChanged(closed=True),
            ]
        )


def make_lane(policy: PolicyConfig | None = None, **settings: object) -> Lane:
    return Lane(
        LaneSettings(**settings),  # type: ignore[arg-type]
        policy or PolicyConfig(),
        THRESHOLDS,
        lane_id="t",
    )


def start_driver(policy: PolicyConfig | None = None, **settings: object) -> Driver:
    lane = make_lane(policy, **settings)
    drv = Driver(lane)
    drv.commands.extend(lane.start(0.0))
    return drv


@pytest.fixture
def driver() -> Driver:
    """A started lane with default settings and the "both" policy."""
    return start_driver()


@pytest.fixture
def new_driver() -> type[Driver] | object:
    """A function building a started lane: ``new_driver(policy, **settings)``."""
    return start_driver
