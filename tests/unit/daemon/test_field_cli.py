"""The field commands' command-line side: output, masking, exit codes."""

from __future__ import annotations

import datetime
import json
import sqlite3
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from edge_gate.cli import main as cli_main
from edge_gate.cli._field import format_entry, mask
from edge_gate.config import DEFAULT_CONFIG_PATH
from edge_gate.daemon import (
    ControlServer,
    EventHub,
    Notifier,
    ProgressMonitor,
    StopRequest,
    supervise,
)
from edge_gate.daemon._field import MAX_REASON_CHARS
from edge_gate.store import AuditLog, AuditRecord


@pytest.fixture
def config_with_audit(short_tmp: Path) -> Path:
    state = short_tmp / "state"
    state.mkdir()
    with AuditLog(state / "audit.db") as log:
        for index, outcome in enumerate(["accepted", "rejected", "alert"]):
            log.append(
                AuditRecord(
                    time_utc=datetime.datetime(
                        2026, 3, 1, 8, index, tzinfo=datetime.UTC
                    ),
                    transaction_id=f"lane-1-00000{index}",
                    outcome=outcome,
                    reason="test",
                    issuing_state="VNM",
                    document_number="C4X7M2Q91",
                    scores={"iris": 0.91},
                )
            )
    config = short_tmp / "edge-gate.toml"
    config.write_text(
        f'[store]\nstate_dir = "{state}"\n'
        f'[daemon]\ncontrol_socket = "{short_tmp / "control.sock"}"\n'
        'control_group = ""\n',
        encoding="utf-8",
    )
    return config


def test_log_offline_masks_document(config_with_audit: Path, capsys: Any) -> None:
    status = cli_main(["log", "--offline", "--config", str(config_with_audit)])
    lines = capsys.readouterr().out.splitlines()
    assert status == 0
    assert len(lines) == 3
    assert "C4*****91" in lines[0]
    assert "C4X7M2Q91" not in "".join(lines)


def test_log_offline_filter_json(config_with_audit: Path, capsys: Any) -> None:
    args = ["log", "--offline", "--json", "--outcome", "alert", "--show-personal"]
    assert cli_main([*args, "--config", str(config_with_audit)]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    row = json.loads(line)
    assert row["outcome"] == "alert"
    assert row["document_number"] == "C4X7M2Q91"


def test_log_verify_offline(config_with_audit: Path, capsys: Any) -> None:
    config = ["--config", str(config_with_audit)]
    assert cli_main(["log", "verify", "--offline", *config]) == 0
    assert "audit log intact: 3 rows" in capsys.readouterr().out

    state = config_with_audit.parent / "state"
    with sqlite3.connect(state / "audit.db") as db:
        db.execute("UPDATE audit SET outcome = 'accepted' WHERE seq = 3")
    assert cli_main(["log", "verify", "--offline", *config]) == 1
    assert "BROKEN at row 3" in capsys.readouterr().out


def test_log_through_socket(config_with_audit: Path, capsys: Any) -> None:
    from edge_gate.daemon._field import FieldCommands

    state = config_with_audit.parent / "state"
    socket_path = config_with_audit.parent / "control.sock"
    with AuditLog(state / "audit.db") as audit:
        handlers = {
            "log": lambda r: FieldCommands.query_audit(audit, r),
            "log_verify": lambda r: audit.verify().to_json_dict(),
        }
        control = ControlServer(socket_path, handlers, EventHub())
        control.start()
        try:
            config = ["--config", str(config_with_audit)]
            assert cli_main(["log", "--since", "2026-03-01T08:01Z", *config]) == 0
            lines = capsys.readouterr().out.splitlines()
            assert cli_main(["log", "verify", "--json", *config]) == 0
            verify = json.loads(capsys.readouterr().out)
        finally:
            control.stop()
    assert [line.split()[3] for line in lines] == ["rejected", "alert"]
    assert verify["intact"]


def test_log_verify_reports_lost_file(config_with_audit: Path, capsys: Any) -> None:
    # The reply of a daemon whose audit.db was deleted under it: the open
    # file's chain is intact, but it is no longer at its path.
    state = config_with_audit.parent / "state"
    socket_path = config_with_audit.parent / "control.sock"
    problem = f"audit log {state / 'audit.db'} was deleted, moved or replaced"
    with AuditLog(state / "audit.db") as audit:

        def log_verify(request: Any) -> Any:
            return {**audit.verify().to_json_dict(), "file_problem": problem}

        control = ControlServer(socket_path, {"log_verify": log_verify}, EventHub())
        control.start()
        try:
            config = ["--config", str(config_with_audit)]
            text_status = cli_main(["log", "verify", *config])
            text = capsys.readouterr()
            json_status = cli_main(["log", "verify", "--json", *config])
            report = json.loads(capsys.readouterr().out)
        finally:
            control.stop()
    assert text_status == 1
    assert text.out.startswith("audit log intact")
    assert f"not at its path any more: {problem}" in text.err
    assert json_status == 1
    assert report["file_problem"] == problem


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("yesterday", id="word"),
        pytest.param("2026-13-01T00:00Z", id="month-13"),
    ],
)
@pytest.mark.parametrize("option", ["--since", "--until"])
def test_log_bad_time_is_usage_error(
    config_with_audit: Path, capsys: Any, option: str, value: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["log", option, value, "--config", str(config_with_audit)])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert f"argument {option}" in error
    assert f"{value!r} is not a valid ISO 8601 time" in error


@pytest.mark.parametrize(
    "command",
    [pytest.param(["log"], id="log"), pytest.param(["log", "verify"], id="verify")],
)
def test_log_without_daemon_points_offline(
    config_with_audit: Path, capsys: Any, command: list[str]
) -> None:
    assert cli_main([*command, "--config", str(config_with_audit)]) == 1
    error = capsys.readouterr().err
    assert "is edge-gate.service running?" in error
    assert "--offline" in error


def test_log_offline_missing_state_dir(short_tmp: Path, capsys: Any) -> None:
    state = short_tmp / "absent"
    config = short_tmp / "edge-gate.toml"
    config.write_text(f'[store]\nstate_dir = "{state}"\n', encoding="utf-8")
    assert cli_main(["log", "--offline", "--config", str(config)]) == 1
    error = capsys.readouterr().err
    assert str(state / "audit.db") in error
    assert "[store] state_dir" in error


def test_log_verify_deleted_chain_verdict(config_with_audit: Path, capsys: Any) -> None:
    state = config_with_audit.parent / "state"
    with sqlite3.connect(state / "audit.db") as db:
        db.execute("DELETE FROM audit")
        db.execute("DELETE FROM chain")
    config = ["--config", str(config_with_audit)]
    assert cli_main(["log", "verify", "--offline", *config]) == 1
    output = capsys.readouterr().out
    assert output.startswith("audit log BROKEN: the chain table has no head record")


def test_open_without_terminal_needs_yes(config_with_audit: Path, capsys: Any) -> None:
    args = ["open", "--reason", "ambulance", "--config", str(config_with_audit)]
    assert cli_main(args) == 1
    assert "pass -y" in capsys.readouterr().err


def test_status_without_daemon(config_with_audit: Path, capsys: Any) -> None:
    assert cli_main(["status", "--config", str(config_with_audit)]) == 1
    assert "is edge-gate.service running?" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        pytest.param("C4X7M2Q91", "C4*****91", id="nine-characters"),
        pytest.param("AB12", "****", id="four-characters"),
        pytest.param("", "", id="empty"),
    ],
)
def test_mask(number: str, masked: str) -> None:
    assert mask(number) == masked


def test_format_entry_line() -> None:
    line = format_entry(
        {
            "seq": 7,
            "time_utc": "2026-03-01T08:00:00.000000Z",
            "kind": "transaction",
            "outcome": "accepted",
            "transaction_id": "lane-1-000007",
            "issuing_state": "VNM",
            "document_number": "C4*****91",
            "reason": "both_passed",
            "scores": {"iris": 0.9123},
            "alarms": ["tailgating"],
            "latency_ms": 181.4,
        }
    )
    assert "scores[iris=0.912]" in line
    assert "alarms[tailgating]" in line
    assert line.endswith("latency=181ms")


class FailingLane:
    def __init__(self) -> None:
        self.monitor = ProgressMonitor()
        self.monitor.register("iris", 5.0)
        self.monitor.fail("iris", RuntimeError("camera driver crashed"))

    def status_line(self) -> str:
        return "lane test idle"


def test_supervise_exits_1_on_worker_failure(notify_socket: Any) -> None:
    status = supervise(
        FailingLane(), Notifier(), StopRequest(), watchdog_interval_s=0.1
    )
    assert status == 1
    message = notify_socket.receive(1.0)
    assert message == "STATUS=failed: worker iris stopped on an error"


def test_watch_prints_until_daemon_stops(config_with_audit: Path, capsys: Any) -> None:
    import threading
    import time

    hub = EventHub()
    socket_path = config_with_audit.parent / "control.sock"
    control = ControlServer(socket_path, {}, hub)
    control.start()
    result: list[int] = []
    watcher = threading.Thread(
        target=lambda: result.append(
            cli_main(["watch", "--json", "--config", str(config_with_audit)])
        ),
        name="watch-cli",
    )
    watcher.start()
    deadline = time.monotonic() + 5
    while not hub._subscribers and time.monotonic() < deadline:
        time.sleep(0.02)
    hub.publish({"type": "display", "message": "place_document"})
    time.sleep(0.2)
    control.stop()
    watcher.join(5)
    out, err = capsys.readouterr()
    assert result == [1]
    assert json.loads(out.splitlines()[0]) == {
        "type": "display",
        "message": "place_document",
    }
    assert "closed the connection" in err


def test_watch_text_rounds_floats(config_with_audit: Path, capsys: Any) -> None:
    import threading
    import time

    hub = EventHub()
    control = ControlServer(config_with_audit.parent / "control.sock", {}, hub)
    control.start()
    watcher = threading.Thread(
        target=cli_main,
        args=(["watch", "--config", str(config_with_audit)],),
        name="watch-cli",
    )
    watcher.start()
    deadline = time.monotonic() + 5
    while not hub._subscribers and time.monotonic() < deadline:
        time.sleep(0.02)
    hub.publish(
        {"type": "transaction", "outcome": "accepted", "latency_ms": 20.48818999901414}
    )
    time.sleep(0.2)
    control.stop()
    watcher.join(5)
    line = capsys.readouterr().out.splitlines()[0]
    assert line.endswith("outcome=accepted latency_ms=20.5")


@pytest.fixture
def open_server(config_with_audit: Path) -> Iterator[list[str]]:
    """Serve ``open`` on the configured socket; yield the reasons it got."""
    reasons: list[str] = []

    def record_open(request: Mapping[str, Any]) -> Any:
        reasons.append(request["reason"])
        return {"audit_seq": len(reasons)}

    control = ControlServer(
        config_with_audit.parent / "control.sock", {"open": record_open}, EventHub()
    )
    control.start()
    yield reasons
    control.stop()


@pytest.mark.parametrize(
    ("reason", "named"),
    [
        pytest.param(
            "caf\udcff", "--reason is not valid UTF-8 text (character 4", id="latin-1"
        ),
        pytest.param(
            "x" * (MAX_REASON_CHARS + 1),
            f"at most {MAX_REASON_CHARS}",
            id="one-too-many-characters",
        ),
        pytest.param("\u200b", "format character U+200B", id="zero-width-space"),
        pytest.param("\u200e\u200f", "format character U+200E", id="marks"),
        pytest.param("\ufeff", "format character U+FEFF", id="bom"),
        pytest.param("\u2060", "format character U+2060", id="word-joiner"),
        pytest.param("?!", "has no letter or digit", id="punctuation"),
        pytest.param(
            "x\x1b]0;owned\x07", "control character U+001B at character 2", id="esc"
        ),
        pytest.param("two\nlines", "control character U+000A", id="newline"),
        pytest.param("   ", "--reason is empty", id="blank"),
    ],
)
@pytest.mark.parametrize("confirm", [["-y"], []], ids=["yes", "asking"])
def test_open_unusable_reason_is_usage_error(
    config_with_audit: Path,
    open_server: list[str],
    capsys: Any,
    reason: str,
    named: str,
    confirm: list[str],
) -> None:
    args = ["open", *confirm, "--reason", reason, "--config", str(config_with_audit)]
    assert cli_main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("edge-gate open: --reason ")
    assert named in err
    assert "internal error" not in err
    assert "pass -y" not in err
    assert open_server == []


def test_open_sends_valid_reason(
    config_with_audit: Path, open_server: list[str], capsys: Any
) -> None:
    reason = "x" * (MAX_REASON_CHARS - 1) + "é"
    args = ["open", "-y", "--reason", reason, "--config", str(config_with_audit)]
    assert cli_main(args) == 0
    assert open_server == [reason]
    assert "audit row 1" in capsys.readouterr().out


@pytest.mark.parametrize(
    "command",
    [["status"], ["devices"], ["selftest"], ["open", "-y", "--reason", "x"], ["watch"]],
    ids=["status", "devices", "selftest", "open", "watch"],
)
def test_missing_config_flag_is_usage_error(
    short_tmp: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.delenv("EDGE_GATE_CONFIG", raising=False)
    missing = short_tmp / "typo.toml"
    assert cli_main([*command, "--config", str(missing)]) == 2
    err = capsys.readouterr().err
    assert f"configuration file {missing} not found" in err
    assert "/run/edge_gate" not in err


def test_missing_config_from_env_is_usage_error(
    short_tmp: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = short_tmp / "lane-2.toml"
    monkeypatch.setenv("EDGE_GATE_CONFIG", str(missing))
    assert cli_main(["status"]) == 2
    err = capsys.readouterr().err
    assert f"configuration file {missing} (named by EDGE_GATE_CONFIG) not found" in err


def test_invalid_config_is_usage_error(short_tmp: Path, capsys: Any) -> None:
    config = short_tmp / "edge-gate.toml"
    config.write_text('[daemon]\ncontrol_socket = "control.sock"\n', encoding="utf-8")
    assert cli_main(["status", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert '[daemon] control_socket = "control.sock": is a relative path' in err


@pytest.mark.skipif(
    DEFAULT_CONFIG_PATH.exists(), reason="this machine has a lane configuration"
)
def test_no_config_uses_default_socket(
    capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EDGE_GATE_CONFIG", raising=False)
    assert cli_main(["status"]) == 1
    err = capsys.readouterr().err
    assert "control socket /run/edge_gate/control.sock" in err


@pytest.mark.parametrize("command", ["status", "devices", "selftest", "open", "watch"])
def test_help_states_exit_status(command: str, capsys: Any) -> None:
    with pytest.raises(SystemExit):
        cli_main([command, "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "exit status" in help_text


def test_open_help_states_reason_limit(capsys: Any) -> None:
    with pytest.raises(SystemExit):
        cli_main(["open", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"at most {MAX_REASON_CHARS} characters" in help_text
