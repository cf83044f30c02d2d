"""The simulate plan: who crosses with which document and capture."""

from __future__ import annotations

import datetime
from collections import Counter
from pathlib import Path

import pytest

from edge_gate.config import load_config
from edge_gate.rig._lane_rig import write_toml
from edge_gate.rig._plan import make_population, plan_crossings
from edge_gate.rig.scenarios import SCENARIOS_BY_NAME

TODAY = datetime.date(2026, 12, 4)


def test_plan_covers_every_scenario() -> None:
    population = make_population(3, seed=1, today=TODAY)
    plan = plan_crossings(population, TODAY, capture_limits={}, genuine_per_traveller=2)
    counts = Counter(c.scenario.name for c in plan)
    assert set(counts) == set(SCENARIOS_BY_NAME)
    assert counts["genuine"] == 6
    assert counts["impostor"] == 3
    assert counts["fire_release"] == 1


def test_impostor_shows_next_travellers_document() -> None:
    population = make_population(3, seed=1, today=TODAY)
    plan = plan_crossings(
        population,
        TODAY,
        capture_limits={},
        genuine_per_traveller=1,
        scenario_names=("impostor",),
    )
    for crossing in plan:
        assert crossing.document_holder.index == (crossing.presenter + 1) % 3
        assert crossing.document == crossing.document_holder.document


def test_special_documents() -> None:
    population = make_population(2, seed=4, today=TODAY)
    plan = {
        c.scenario.name: c
        for c in plan_crossings(
            population, TODAY, capture_limits={}, genuine_per_traveller=1
        )
    }
    assert plan["expired_document"].document.expiry_date < TODAY
    numbers = {p.document.document_number for p in population.travellers}
    assert plan["not_enrolled"].document.document_number not in numbers
    assert plan["watchlisted"].presenter == population.watchlisted.index
    other = plan["watchlisted_other_document"]
    assert other.presenter == population.watchlist_only.index
    assert other.document_holder == population.travellers[0]
    assert plan["fingerprint_unplug"].presenter == plan["after_replug"].presenter


def test_captures_are_fresh_then_wrap() -> None:
    population = make_population(2, seed=1, today=TODAY)
    limits = {p.index: 4 for p in population.travellers}
    plan = plan_crossings(
        population,
        TODAY,
        capture_limits=limits,
        genuine_per_traveller=4,
        scenario_names=("genuine",),
    )
    captures = [c.capture for c in plan if c.presenter == 0]
    # Captures 1 to 3 exist besides the enrolment (0); the fourth reuses 1.
    assert captures == [1, 2, 3, 1]


def test_population_needs_two_travellers() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        make_population(1, seed=1, today=TODAY)


def test_rig_config_loads(tmp_path: Path) -> None:
    path = tmp_path / "edge-gate.toml"
    write_toml(
        path,
        {
            "iris": {"source": "directory", "directory": "/tmp/camera"},
            "turnstile": {"pin_factory": "mock", "passage_timeout_s": 2.0},
            "daemon": {"use_udev": False},
        },
    )
    config = load_config(path)
    assert config.iris.directory == "/tmp/camera"
    assert config.turnstile.pin_factory == "mock"
    assert config.turnstile.passage_timeout_s == 2.0
    assert config.daemon.use_udev is False
