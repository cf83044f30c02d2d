"""``edge-gate simulate`` option checks (no lane is started)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_gate.cli import main


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["--travellers", "1"], id="one-traveller"),
        pytest.param(["--fingerprint-set", "x"], id="set-without-dataset"),
        pytest.param(["--genuine-per-traveller", "0"], id="zero-genuine"),
        pytest.param(["--time-scale", "0"], id="zero-time-scale"),
    ],
)
def test_invalid_options_exit_2(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["simulate", *argv]) == 2
    assert "edge-gate simulate:" in capsys.readouterr().err


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
    assert main(["simulate", "--work-dir", str(tmp_path)]) == 2
    assert "not empty" in capsys.readouterr().err
