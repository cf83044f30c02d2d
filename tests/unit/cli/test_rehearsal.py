"""``edge-gate simulate``'s field-command line and hold, with real signals."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from edge_gate.cli._rehearsal import edge_gate_command, hold_lane, print_field_command
from edge_gate.cli._signals import sigterm_unwinds


def _script(folder: Path) -> Path:
    script = folder / "edge-gate"
    script.write_text("#!/bin/sh\n", encoding="utf-8")
    script.chmod(0o755)
    return script


def test_command_is_plain_name_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = _script(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(script), "simulate"])
    monkeypatch.setenv("PATH", str(tmp_path))

    assert edge_gate_command() == "edge-gate"


def test_command_is_full_path_off_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "my venv" / "bin"
    bin_dir.mkdir(parents=True)
    script = _script(bin_dir)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["my venv/bin/edge-gate", "simulate"])
    monkeypatch.setenv("PATH", str(tmp_path / "elsewhere"))

    assert edge_gate_command() == f"'{script}'"


def test_command_without_script_uses_module(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["/usr/lib/python3/pytest"])

    assert edge_gate_command() == f"{sys.executable} -m edge_gate"


def test_field_command_line_names_config(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["/usr/lib/python3/pytest"])
    print_field_command(Path("/srv/sim work/gate/edge-gate.toml"))

    captured = capsys.readouterr()
    assert captured.out == ""
    assert "status --config '/srv/sim work/gate/edge-gate.toml'" in captured.err, (
        captured.err
    )


def test_hold_lasts_its_seconds(capsys: pytest.CaptureFixture[str]) -> None:
    started_s = time.monotonic()
    hold_lane(0.2)

    assert time.monotonic() - started_s >= 0.2
    err = capsys.readouterr().err
    assert "stay up for 0.2 s" in err
    assert "ended early" not in err


@pytest.mark.parametrize(
    ("signum", "name"),
    [
        pytest.param(signal.SIGTERM, "SIGTERM", id="sigterm"),
        pytest.param(signal.SIGHUP, "SIGHUP", id="sighup"),
        pytest.param(signal.SIGINT, "Ctrl-C", id="sigint"),
    ],
)
def test_signal_ends_hold_early(
    signum: int, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sender = threading.Timer(0.2, os.kill, (os.getpid(), signum))
    started_s = time.monotonic()
    with sigterm_unwinds():
        sender.start()
        try:
            hold_lane(30.0)
        finally:
            sender.join()

    assert time.monotonic() - started_s < 10.0
    assert f"hold ended early by {name}" in capsys.readouterr().err


def test_field_command_says_when_it_works(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["/usr/lib/python3/pytest"])
    print_field_command(Path("/srv/sim/gate/edge-gate.toml"))

    err = capsys.readouterr().err
    assert "the lane is up; from another shell" in err
    assert "status --config /srv/sim/gate/edge-gate.toml" in err
