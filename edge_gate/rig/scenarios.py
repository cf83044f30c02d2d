"""The crossings ``edge-gate simulate`` runs, and what each must end in.

A scenario names what the traveller and the rig do (whose document, whose
finger and eye, how the traveller walks, which device fails) and the outcome
and alarms the lane must produce. The table is data: the runner interprets
it, and the report compares every crossing with its row.

Simulated human and sensor delays are realistic figures in seconds. The
runner sleeps them multiplied by its time scale, and the report shows the
realistic figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Outcome = Literal["accepted", "rejected", "alert", "aborted", "emergency"]
Walk = Literal["normal", "tailgate", "walk_away", "none"]
# Whose document, finger and eye a crossing uses, relative to the traveller.
Biometrics = Literal["own", "other_person", "watchlisted_person"]
DocumentKind = Literal["own", "other_person", "expired", "not_enrolled", "watchlisted"]
Fault = Literal["none", "fingerprint_unplug", "fire_release"]


@dataclass(frozen=True)
class Scenario:
    """One kind of crossing and its expected result.

    Attributes:
        name: stable identifier, the key in the JSON report.
        description: one line for the table.
        document: which document is presented.
        biometrics: whose finger and eye are presented.
        walk: how the traveller goes through (or does not).
        fault: the device event injected during the transaction.
        expected_outcome: how the transaction must end.
        expected_alarms: alarms the lane must record, by name.
    """

    name: str
    description: str
    document: DocumentKind
    biometrics: Biometrics
    walk: Walk
    fault: Fault
    expected_outcome: Outcome
    expected_alarms: tuple[str, ...] = ()

    @property
    def expected(self) -> str:
        """The expected result as shown in reports: outcome, then alarms."""
        return _describe(self.expected_outcome, self.expected_alarms)


def _describe(outcome: str, alarms: tuple[str, ...]) -> str:
    if not alarms:
        return outcome
    return f"{outcome} + {', '.join(sorted(alarms))}"


def describe_result(outcome: str, alarms: tuple[str, ...]) -> str:
    """Write an observed result the way :attr:`Scenario.expected` is written."""
    return _describe(outcome, alarms)


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "genuine",
        "enrolled traveller, own document, walks through",
        document="own",
        biometrics="own",
        walk="normal",
        fault="none",
        expected_outcome="accepted",
    ),
    Scenario(
        "impostor",
        "someone else's document, own finger and eye",
        document="other_person",
        biometrics="own",
        walk="none",
        fault="none",
        expected_outcome="rejected",
    ),
    Scenario(
        "expired_document",
        "enrolled traveller with an expired document",
        document="expired",
        biometrics="own",
        walk="none",
        fault="none",
        expected_outcome="rejected",
    ),
    Scenario(
        "not_enrolled",
        "valid document that was never enrolled",
        document="not_enrolled",
        biometrics="own",
        walk="none",
        fault="none",
        expected_outcome="rejected",
    ),
    Scenario(
        "watchlisted",
        "watchlisted traveller on own document",
        document="watchlisted",
        biometrics="watchlisted_person",
        walk="none",
        fault="none",
        expected_outcome="alert",
    ),
    Scenario(
        "watchlisted_other_document",
        "watchlisted person on an enrolled traveller's document",
        document="own",
        biometrics="watchlisted_person",
        walk="none",
        fault="none",
        expected_outcome="alert",
    ),
    Scenario(
        "tailgating",
        "accepted traveller, a second person follows",
        document="own",
        biometrics="own",
        walk="tailgate",
        fault="none",
        expected_outcome="accepted",
        expected_alarms=("tailgating",),
    ),
    Scenario(
        "walk_away",
        "traveller leaves after the document step",
        document="own",
        biometrics="own",
        walk="walk_away",
        fault="none",
        expected_outcome="aborted",
    ),
    Scenario(
        "fire_release",
        "fire alarm releases the barrier mid-transaction",
        document="own",
        biometrics="own",
        walk="none",
        fault="fire_release",
        expected_outcome="emergency",
    ),
    Scenario(
        "fingerprint_unplug",
        "fingerprint sensor unplugged mid-transaction, then replugged",
        document="own",
        biometrics="own",
        walk="none",
        fault="fingerprint_unplug",
        expected_outcome="aborted",
    ),
    Scenario(
        "after_replug",
        "same traveller again once the sensor is back, no restart",
        document="own",
        biometrics="own",
        walk="normal",
        fault="none",
        expected_outcome="accepted",
    ),
)

SCENARIOS_BY_NAME: dict[str, Scenario] = {s.name: s for s in SCENARIOS}


@dataclass(frozen=True)
class HumanDelays:
    """Realistic durations of what people and sensors do, in seconds.

    These figures are estimates of a practised traveller at a lane, not
    measurements; tune them from the audit log's timings of a real lane.

    Attributes:
        document_s: placing the document on the reader until the MRZ is read.
        finger_s: moving the finger to the sensor after the prompt.
        finger_hold_s: keeping the finger on the glass.
        look_s: looking into the iris camera after the prompt.
        walk_s: walking from the barrier through the exit beam.
        unplug_s: how long the unplugged sensor stays away.
    """

    document_s: float = 2.5
    finger_s: float = 2.0
    finger_hold_s: float = 1.5
    look_s: float = 2.5
    walk_s: float = 3.0
    unplug_s: float = 2.0
