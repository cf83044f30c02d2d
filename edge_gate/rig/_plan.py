"""The crossings of a simulate run: who, with which document and sample.

The run's people are the travellers (indices 0 to N-1) plus two watchlisted
people: one enrolled with a document and the watchlist flag, and one known
only by biometrics (no document), who tries to cross on a traveller's
document. Each person's identity number in the biometric source is their
index.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import numpy as np

from edge_gate.rig.scenarios import SCENARIOS, Scenario
from edge_gate.rig.synthetic import (
    SyntheticDocument,
    SyntheticPerson,
    expired_copy,
    generate_people,
    unenrolled_document,
)

# Extra people beyond the travellers: the flagged one and the gallery-only one.
EXTRA_PEOPLE = 2
# Traveller index per single-traveller scenario. The unplug and the retry
# after the replug must be the same person.
_FIXED_TRAVELLER = {
    "tailgating": 0,
    "walk_away": 1,
    "fingerprint_unplug": 2,
    "after_replug": 2,
    "fire_release": 0,
}


@dataclass(frozen=True)
class Population:
    """Everyone in a run.

    Attributes:
        travellers: enrolled, not watchlisted.
        watchlisted: enrolled with a document and the watchlist flag.
        watchlist_only: in the watchlist gallery, with no document enrolled.
    """

    travellers: tuple[SyntheticPerson, ...]
    watchlisted: SyntheticPerson
    watchlist_only: SyntheticPerson


def make_population(travellers: int, seed: int, today: datetime.date) -> Population:
    """Generate ``travellers`` travellers and the two watchlisted people.

    Raises:
        ValueError: fewer than 2 travellers (the impostor needs another
            traveller's document).
    """
    if travellers < 2:
        raise ValueError(
            f"--travellers must be at least 2 (an impostor uses another "
            f"traveller's document), got {travellers}"
        )
    people = generate_people(travellers + EXTRA_PEOPLE, seed, today)
    return Population(
        travellers=tuple(people[:travellers]),
        watchlisted=people[travellers],
        watchlist_only=people[travellers + 1],
    )


@dataclass(frozen=True)
class PlannedCrossing:
    """One crossing to run.

    Attributes:
        scenario: what happens and what must come out.
        document_holder: the person whose document data is printed in the
            MRZ shown (after any change, such as expiry).
        document: the document shown.
        presenter: identity number whose finger and eye are presented.
        capture: capture index of the finger and eye (0 is the enrolment).
        label: short name of the traveller for the report.
    """

    scenario: Scenario
    document_holder: SyntheticPerson
    document: SyntheticDocument
    presenter: int
    capture: int
    label: str


class _CaptureCounter:
    """Hands out capture indices 1, 2, ... per identity, wrapping at a limit."""

    def __init__(self, limits: dict[int, int | None]) -> None:
        self._limits = limits
        self._next: dict[int, int] = {}

    def take(self, identity: int) -> int:
        index = self._next.get(identity, 1)
        limit = self._limits.get(identity)
        self._next[identity] = index + 1
        if limit is None:
            return index
        # Captures 1 .. limit-1 exist; reuse them when a person crosses again.
        return 1 + (index - 1) % max(1, limit - 1)


def plan_crossings(
    population: Population,
    today: datetime.date,
    *,
    capture_limits: dict[int, int | None],
    genuine_per_traveller: int,
    scenario_names: tuple[str, ...] = (),
) -> list[PlannedCrossing]:
    """List the run's crossings in order.

    Every traveller crosses ``genuine_per_traveller`` times on their own
    document and tries once on the next traveller's document (impostor).
    Each other scenario runs once.

    Args:
        population: the run's people.
        today: the simulated date (expired documents end before it).
        capture_limits: captures each identity has, enrolment included;
            None for unlimited.
        genuine_per_traveller: genuine crossings per traveller.
        scenario_names: scenarios to run; empty runs all.

    Returns:
        The crossings, genuine ones first.
    """
    requested = set(scenario_names) if scenario_names else {s.name for s in SCENARIOS}
    travellers = population.travellers
    captures = _CaptureCounter(capture_limits)
    rng = np.random.default_rng(len(travellers))
    plan: list[PlannedCrossing] = []

    def add(
        scenario: Scenario,
        holder: SyntheticPerson,
        document: SyntheticDocument,
        presenter: SyntheticPerson,
        label: str,
    ) -> None:
        plan.append(
            PlannedCrossing(
                scenario=scenario,
                document_holder=holder,
                document=document,
                presenter=presenter.index,
                capture=captures.take(presenter.index),
                label=label,
            )
        )

    for scenario in SCENARIOS:
        if scenario.name not in requested:
            continue
        first = travellers[0]
        second = travellers[1]
        if scenario.name == "genuine":
            for _ in range(genuine_per_traveller):
                for person in travellers:
                    add(scenario, person, person.document, person, f"t{person.index}")
        elif scenario.name == "impostor":
            for person in travellers:
                victim = travellers[(person.index + 1) % len(travellers)]
                add(
                    scenario,
                    victim,
                    victim.document,
                    person,
                    f"t{person.index}>t{victim.index}",
                )
        elif scenario.name == "expired_document":
            add(scenario, first, expired_copy(first.document, today), first, "t0")
        elif scenario.name == "not_enrolled":
            document = unenrolled_document(rng, today)
            add(scenario, second, document, second, "t1 new doc")
        elif scenario.name == "watchlisted":
            person = population.watchlisted
            add(scenario, person, person.document, person, "watchlisted")
        elif scenario.name == "watchlisted_other_document":
            person = population.watchlist_only
            add(scenario, first, first.document, person, "listed>t0")
        else:
            person = travellers[_FIXED_TRAVELLER[scenario.name] % len(travellers)]
            add(scenario, person, person.document, person, f"t{person.index}")
    return plan
