"""The ``edge-gate`` entry point: exit statuses and failure lines."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from edge_gate import cli
from edge_gate.cli._signals import Terminated


def _register_failing(subparsers: Any) -> None:
    def fail(_args: argparse.Namespace) -> int:
        raise KeyError("boom")

    subparsers.add_parser("explode").set_defaults(handler=fail)


@pytest.fixture
def exploding(monkeypatch: pytest.MonkeyPatch) -> None:
    class Group:
        register = staticmethod(_register_failing)

    monkeypatch.setattr(cli, "_GROUPS", (*cli._GROUPS, Group))


def test_unexpected_error_one_line(
    exploding: None, capsys: pytest.CaptureFixture[str]
) -> None:
    status = cli.main(["explode"])
    err = capsys.readouterr().err
    assert status == 1
    assert "internal error KeyError" in err
    assert "Traceback" not in err


def test_unexpected_error_debug_raises(exploding: None) -> None:
    with pytest.raises(KeyError):
        cli.main(["--debug", "explode"])


def test_no_command_is_usage_error() -> None:
    assert cli.main([]) == 2


def test_broken_pipe_is_quiet(tmp_path: Path) -> None:
    cases = tmp_path / "cases.jsonl"
    cases.write_text(
        "".join(f'{{"id": {n}, "lines": ["P<UTO"]}}\n' for n in range(20000))
    )
    command = (
        f"{sys.executable} -m edge_gate mrz --batch < {cases} 2> {tmp_path}/err"
        " | head -c 10 > /dev/null"
    )
    subprocess.run(["bash", "-c", command], check=True, timeout=120)
    err = (tmp_path / "err").read_text()
    assert "Broken pipe" not in err
    assert "Traceback" not in err


class _InterruptedInput:
    def read(self) -> str:
        raise KeyboardInterrupt


def test_ctrl_c_ends_a_command_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", _InterruptedInput())

    assert cli.main(["mrz"]) == 1
    assert capsys.readouterr().err == "edge-gate: interrupted\n"


def test_nested_ctrl_c_propagates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("sys.stdin", _InterruptedInput())

    with pytest.raises(KeyboardInterrupt):
        cli.main(["mrz"], nested=True)


def _register_terminated(subparsers: Any) -> None:
    def stop(_args: argparse.Namespace) -> int:
        raise Terminated(15)

    subparsers.add_parser("stopped").set_defaults(handler=stop)


@pytest.fixture
def terminated(monkeypatch: pytest.MonkeyPatch) -> None:
    class Group:
        register = staticmethod(_register_terminated)

    monkeypatch.setattr(cli, "_GROUPS", (*cli._GROUPS, Group))


def test_sigterm_ends_command_with_one_line(
    terminated: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["stopped"]) == 1
    assert capsys.readouterr().err == "edge-gate stopped: stopped by SIGTERM\n"


def test_sighup_names_its_signal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def stop(_args: argparse.Namespace) -> int:
        raise Terminated(signal.SIGHUP)

    class Group:
        @staticmethod
        def register(subparsers: Any) -> None:
            subparsers.add_parser("hungup").set_defaults(handler=stop)

    monkeypatch.setattr(cli, "_GROUPS", (*cli._GROUPS, Group))
    assert cli.main(["hungup"]) == 1
    assert capsys.readouterr().err == "edge-gate hungup: stopped by SIGHUP\n"


def test_nested_sigterm_propagates(terminated: None) -> None:
    with pytest.raises(Terminated):
        cli.main(["stopped"], nested=True)


@pytest.mark.parametrize("command", ["run", "lane-closed"])
def test_daemons_keep_own_sigterm_handler(command: str) -> None:
    args = cli.build_parser().parse_args([command])
    assert args.handles_sigterm


def test_other_commands_unwind_on_sigterm() -> None:
    args = cli.build_parser().parse_args(["sync"])
    assert not getattr(args, "handles_sigterm", False)
