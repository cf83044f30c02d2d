"""``edge-gate simulate`` option checks (no lane is started)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_gate.cli import main


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        pytest.param(["--travellers", "1"], "--travellers", id="one-traveller"),
        pytest.param(
            ["--travellers", "100000000"], "--travellers", id="travellers-unbounded"
        ),
        pytest.param(["--travellers", "two"], "--travellers", id="travellers-word"),
        pytest.param(
            ["--genuine-per-traveller", "0"],
            "--genuine-per-traveller",
            id="zero-genuine",
        ),
        pytest.param(["--time-scale", "0"], "--time-scale", id="zero-time-scale"),
        pytest.param(["--time-scale", "nan"], "--time-scale", id="nan-time-scale"),
        pytest.param(["--time-scale", "11"], "--time-scale", id="time-scale-high"),
        pytest.param(["--seed", "-1"], "--seed", id="negative-seed"),
        pytest.param(["--iris-skip", "-1"], "--iris-skip", id="negative-skip"),
        pytest.param(["--models-dir", "/nope"], "--models-dir", id="no-models-dir"),
        pytest.param(["--dataset", "/nope"], "--dataset", id="no-dataset-dir"),
        pytest.param(["--hold", "-1"], "--hold", id="negative-hold"),
        pytest.param(["--hold", "99999"], "--hold", id="hold-over-an-hour"),
        pytest.param(["--hold", "nan"], "--hold", id="nan-hold"),
        pytest.param(["--hold", "soon"], "--hold", id="hold-word"),
    ],
)
def test_invalid_option_is_named_before_the_run(
    argv: list[str], option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["simulate", *argv])
    assert caught.value.code == 2
    assert f"argument {option}:" in capsys.readouterr().err


def test_models_dir_without_manifest_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["simulate", "--models-dir", str(tmp_path)])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "argument --models-dir:" in err
    assert "manifest.json" in err


def test_set_without_dataset_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--fingerprint-set", "x"]) == 2
    assert "need --dataset DIR" in capsys.readouterr().err


def test_unknown_scenario_is_usage_error() -> None:
    with pytest.raises(SystemExit) as caught:
        main(["simulate", "--scenario", "teleport"])
    assert caught.value.code == 2


def test_dataset_without_layout_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "fingerprints").mkdir()
    (tmp_path / "iris").mkdir()
    assert main(["simulate", "--dataset", str(tmp_path)]) == 2
    assert "fingerprint set" in capsys.readouterr().err


def test_work_dir_must_be_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "old").write_text("x")
    with pytest.raises(SystemExit) as caught:
        main(["simulate", "--work-dir", str(tmp_path)])
    assert caught.value.code == 2
    assert "argument --work-dir:" in capsys.readouterr().err


def test_work_dir_must_not_be_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(SystemExit) as caught:
        main(["simulate", "--work-dir", str(tmp_path / "file")])
    assert caught.value.code == 2
    assert "is a file" in capsys.readouterr().err


def test_api_rejects_too_many_travellers() -> None:
    from edge_gate.rig.simulation import SimulationOptions, run_simulation

    with pytest.raises(ValueError, match="travellers must be from 2 to 1000"):
        run_simulation(SimulationOptions(travellers=1001))


def test_work_dir_empty_path_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["simulate", "--work-dir", " "])
    assert caught.value.code == 2
    assert "empty path" in capsys.readouterr().err


def test_api_names_a_work_dir_it_cannot_create() -> None:
    from edge_gate.rig._lane_rig import SimulationError
    from edge_gate.rig.simulation import SimulationOptions, run_simulation

    unusable = Path("/proc/edge-gate-simulate-test")
    with pytest.raises(SimulationError, match="cannot use /proc/edge-gate-simulate"):
        run_simulation(SimulationOptions(travellers=2, work_dir=unusable))


def test_uncreatable_work_dir_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    # The option check cannot detect every folder where mkdir fails (root
    # passes the access test under /proc), so a mkdir failure in the run also
    # counts as an invalid option.
    assert main(["simulate", "--work-dir", "/proc/edge-gate-simulate-test"]) == 2
    assert "cannot use /proc/edge-gate-simulate-test" in capsys.readouterr().err


def test_hold_error_names_bounds(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["simulate", "--hold", "99999"])
    assert caught.value.code == 2
    assert "give seconds from 0 to 3600" in capsys.readouterr().err


def test_api_rejects_negative_hold() -> None:
    from edge_gate.rig.simulation import SimulationOptions, run_simulation

    with pytest.raises(ValueError, match="hold_s must be from 0 to 3600"):
        run_simulation(SimulationOptions(hold_s=-1.0))


def test_hold_needs_short_socket_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # On Linux a UNIX socket path has at most 107 bytes, and the lane's
    # socket is run/control.sock in the work folder.
    work_dir = tmp_path / ("w" * 100)
    status = main(["simulate", "--work-dir", str(work_dir), "--hold", "5"])

    err = capsys.readouterr().err
    assert status == 2
    assert "a hold needs the lane's control socket" in err
    assert "may have at most 107" in err
    assert not work_dir.exists()
