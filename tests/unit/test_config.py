"""Configuration loading: defaults, types, bounds, and one message per problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_gate.config import (
    GateConfig,
    config_from_mapping,
    load_config,
    resolve_config_path,
)
from edge_gate.errors import ConfigError


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    path = tmp_path / "edge-gate.toml"
    path.write_text("")
    assert load_config(path) == GateConfig()


def test_values_override_defaults(tmp_path: Path) -> None:
    path = tmp_path / "edge-gate.toml"
    path.write_text('[turnstile]\npin_factory = "mock"\nunlock_pulse_s = 1\n')
    config = load_config(path)
    assert config.turnstile.pin_factory == "mock"
    assert config.turnstile.unlock_pulse_s == 1.0
    assert isinstance(config.turnstile.unlock_pulse_s, float)


def test_every_problem_reported_once() -> None:
    raw = {
        "turnstile": {"pin_factory": "gpio", "unlock_pin": 99, "colour": "red"},
        "unknown": {},
    }
    with pytest.raises(ConfigError) as caught:
        config_from_mapping(raw, source="lane.toml")
    problems = caught.value.problems
    assert len(problems) == 4
    assert any('pin_factory = "gpio"' in p and '"lgpio", "mock"' in p for p in problems)
    assert any("unlock_pin = 99" in p and "at most 53" in p for p in problems)
    assert any("colour: unknown key" in p for p in problems)
    assert any("[unknown]: unknown section" in p for p in problems)
    assert "lane.toml" in str(caught.value)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (True, "must be a number"),
        ("10", "must be a number"),
        (0.0, "at least"),
    ],
    ids=["bool-for-float", "string-for-float", "below-minimum"],
)
def test_float_field_rejects(value: object, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        config_from_mapping({"turnstile": {"passage_timeout_s": value}})


def test_bool_field_rejects_number() -> None:
    with pytest.raises(ConfigError, match="true or false"):
        config_from_mapping({"turnstile": {"unlock_active_high": 1}})


def test_section_must_be_table() -> None:
    with pytest.raises(ConfigError, match="must be a table"):
        config_from_mapping({"policy": "both"})


def test_list_field_becomes_tuple() -> None:
    config = config_from_mapping(
        {"document_reader": {"tolerances": ["long_number_includes_filler"]}}
    )
    assert config.document_reader.tolerances == ("long_number_includes_filler",)


def test_missing_file_names_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.toml")


def test_invalid_toml_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[turnstile\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)


def test_path_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGE_GATE_CONFIG", "/from/env.toml")
    assert resolve_config_path("/from/flag.toml") == Path("/from/flag.toml")
    assert resolve_config_path(None) == Path("/from/env.toml")
    monkeypatch.delenv("EDGE_GATE_CONFIG")
    assert resolve_config_path(None) == Path("/etc/edge_gate/edge-gate.toml")


@pytest.mark.parametrize("value", [float("nan"), float("inf")], ids=["nan", "infinity"])
def test_float_field_rejects_non_finite(value: float) -> None:
    with pytest.raises(ConfigError, match="must be a finite number"):
        config_from_mapping({"iris": {"min_quality": value}})


def test_toml_nan_rejected(tmp_path: Path) -> None:
    path = tmp_path / "edge-gate.toml"
    path.write_text("[sync]\nmax_offline_age_h = nan\n")
    with pytest.raises(ConfigError, match="max_offline_age_h = nan"):
        load_config(path)


def test_shared_pin_names_both_keys() -> None:
    with pytest.raises(ConfigError) as caught:
        config_from_mapping({"turnstile": {"unlock_pin": 22}})
    message = str(caught.value)
    assert "GPIO22 is used by unlock_pin and green_pin" in message


def test_default_pins_are_distinct() -> None:
    assert GateConfig().turnstile.unlock_pin == 17


def test_missing_file_from_env_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "absent.toml"
    monkeypatch.setenv("EDGE_GATE_CONFIG", str(missing))
    with pytest.raises(ConfigError, match="named by EDGE_GATE_CONFIG"):
        load_config(resolve_config_path(None))


def test_values_shown_as_toml() -> None:
    with pytest.raises(ConfigError, match="unlock_pin = true: must be a whole"):
        config_from_mapping({"turnstile": {"unlock_pin": True}})
