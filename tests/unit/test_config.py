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


@pytest.mark.parametrize(
    ("section", "key", "value", "fragment"),
    [
        pytest.param("store", "state_dir", "", "is empty", id="state-dir-empty"),
        pytest.param(
            "store", "state_dir", "relative/state", "relative path", id="state-dir-rel"
        ),
        pytest.param("store", "key_file", "", "or credential:NAME", id="key-empty"),
        pytest.param("store", "key_file", "t.key", "relative path", id="key-relative"),
        pytest.param("daemon", "control_socket", "", "is empty", id="socket-empty"),
        pytest.param(
            "daemon", "control_socket", "c.sock", "relative path", id="socket-relative"
        ),
        pytest.param(
            "daemon", "models_dir", "models", "relative", id="models-relative"
        ),
        pytest.param("document_reader", "port", "", "is empty", id="reader-port-empty"),
        pytest.param("fingerprint", "port", "ttyS0", "relative", id="fingerprint-port"),
        pytest.param("iris", "device", "video0", "relative", id="camera-relative"),
        pytest.param(
            "iris", "directory", "camera", "relative", id="directory-relative"
        ),
        pytest.param("sync", "trusted_root_file", "", "is empty", id="root-empty"),
        pytest.param(
            "sync", "fleet_key_file", "f.key", "relative", id="fleet-relative"
        ),
        pytest.param("sync", "ca_file", "ca.pem", "relative", id="ca-relative"),
        pytest.param("store", "state_dir", "/var/\0", "NUL", id="state-dir-nul"),
    ],
)
def test_path_setting_must_be_absolute(
    section: str, key: str, value: str, fragment: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        config_from_mapping({section: {key: value}})
    (problem,) = caught.value.problems
    assert problem.startswith(f"[{section}] {key} = ")
    assert fragment in problem
    assert "absolute path" in problem


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        pytest.param("store", "key_file", "credential:template.key", id="credential"),
        pytest.param("daemon", "models_dir", "", id="models-dir-unset"),
        pytest.param("sync", "ca_file", "", id="ca-file-unset"),
        pytest.param("iris", "directory", "", id="directory-unset-for-v4l2"),
        pytest.param("store", "state_dir", "/srv/lane 2/state", id="absolute"),
    ],
)
def test_path_setting_accepts(section: str, key: str, value: str) -> None:
    config = config_from_mapping({section: {key: value}})
    assert getattr(getattr(config, section), key) == value


def test_directory_source_needs_folder() -> None:
    with pytest.raises(ConfigError) as caught:
        config_from_mapping({"iris": {"source": "directory"}})
    (problem,) = caught.value.problems
    assert problem.startswith('[iris]: directory = "" but source = "directory"')
    assert 'source = "v4l2"' in problem


def test_rejected_key_skips_cross_checks() -> None:
    with pytest.raises(ConfigError) as caught:
        config_from_mapping({"iris": {"source": "directory", "directory": "cam"}})
    (problem,) = caught.value.problems
    assert problem.startswith('[iris] directory = "cam": is a relative path')


@pytest.mark.parametrize(
    "lane_id",
    [
        pytest.param("", id="empty"),
        pytest.param("x" * 65, id="65-characters"),
        pytest.param("a\nb", id="newline"),
        pytest.param("lane 1", id="space"),
        pytest.param("lane/1", id="slash"),
        pytest.param("läne", id="non-ascii"),
    ],
)
def test_lane_id_rejected(lane_id: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config_from_mapping({"daemon": {"lane_id": lane_id}})
    (problem,) = caught.value.problems
    assert problem.startswith("[daemon] lane_id = ")
    assert "1 to 64 characters of A-Z, a-z, 0-9" in problem


@pytest.mark.parametrize(
    "lane_id",
    ["lane-1", "L", "gate_3.north", "x" * 64],
    ids=["usual", "one", "dots", "64"],
)
def test_lane_id_accepted(lane_id: str) -> None:
    assert (
        config_from_mapping({"daemon": {"lane_id": lane_id}}).daemon.lane_id == lane_id
    )


def test_backoff_above_maximum_rejected() -> None:
    with pytest.raises(ConfigError) as caught:
        config_from_mapping({"sync": {"backoff_s": 100, "backoff_max_s": 10}})
    (problem,) = caught.value.problems
    assert "backoff_s = 100.0 is above backoff_max_s = 10.0" in problem
    assert problem.startswith("[sync]: ")


def test_config_not_utf8_advice(tmp_path: Path) -> None:
    path = tmp_path / "edge-gate.toml"
    path.write_bytes(b'[daemon]\nlane_id = "caf\xe9"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert f"configuration file {path} is not UTF-8 text (byte 0xe9" in message
    assert "save it as UTF-8" in message


def test_config_folder_unreadable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    message = str(caught.value)
    assert f"cannot read configuration file {tmp_path}: Is a directory" in message
    assert "check the path" in message


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        pytest.param("store", "key_file", "credential:", id="empty-name"),
        pytest.param("store", "key_file", "credential:a/b", id="slash"),
        pytest.param("store", "key_file", "credential:..", id="parent"),
        pytest.param("sync", "fleet_key_file", "credential:../../x", id="fleet-up"),
    ],
)
def test_credential_name_checked_with_config(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    section: str,
    key: str,
    value: str,
) -> None:
    from edge_gate.cli import main as cli_main
    from edge_gate.store import resolve_key_path

    with pytest.raises(ConfigError) as caught:
        config_from_mapping({section: {key: value}})
    (problem,) = caught.value.problems
    assert problem.startswith(f'[{section}] {key} = "{value}": the credential name')
    assert "such as credential:template.key" in problem
    # The key reader rejects the name with the same words.
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    with pytest.raises(ConfigError) as reader:
        resolve_key_path(value)
    assert problem.split(": ", 1)[1] in str(reader.value)
    # A command that loads the file reports it as a usage error.
    path = tmp_path / "edge-gate.toml"
    path.write_text(f'[{section}]\n{key} = "{value}"\n', encoding="utf-8")
    assert cli_main(["status", "--config", str(path)]) == 2
    assert problem in capsys.readouterr().err
