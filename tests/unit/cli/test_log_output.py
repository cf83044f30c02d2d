"""``edge-gate log --offline`` output: escapes, no match, unreadable rows.

Each case writes an audit log with the real :class:`AuditLog` and runs the
command on the real files.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge_gate.cli import main
from edge_gate.cli._field import format_entry, printable
from edge_gate.daemon._field import FieldCommands
from edge_gate.store import AuditLog, AuditRecord

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
# A reason that would turn the terminal red and fake a second row.
HOSTILE_REASON = "ambulance\x1b[31m\n     99 2026-03-01 accepted\u202eevil\x1b[0m"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    state.mkdir()
    with AuditLog(state / "audit.db") as log:
        for index in range(5):
            log.append(
                AuditRecord(
                    time_utc=T0 + timedelta(minutes=index),
                    transaction_id=f"lane-1-{index:06d}",
                    outcome="accepted",
                    reason="both modalities matched",
                    alarms=("tailgating",) if index == 2 else (),
                )
            )
        log.append(
            AuditRecord(
                time_utc=T0 + timedelta(minutes=10),
                kind="manual_open",
                transaction_id="",
                outcome="opened",
                reason=HOSTILE_REASON,
            )
        )
    path = tmp_path / "edge-gate.toml"
    path.write_text(f'[store]\nstate_dir = "{state}"\n', encoding="utf-8")
    return path


def run_log(config: Path, *options: str) -> int:
    return main(["log", "--offline", *options, "--config", str(config)])


def test_log_escapes_control_characters(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = run_log(config)

    out = capsys.readouterr().out
    assert status == 0
    lines = out.splitlines()
    assert len(lines) == 6
    assert "\x1b" not in out
    assert "\u202e" not in out
    assert lines[5].endswith(
        "ambulance\\x1b[31m\\n     99 2026-03-01 accepted\\u202eevil\\x1b[0m"
    )


def test_log_json_keeps_reason_exact(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = run_log(config, "--json", "--outcome", "opened")

    out = capsys.readouterr().out
    assert status == 0
    assert "\x1b" not in out
    (line,) = out.splitlines()
    assert json.loads(line)["reason"] == HOSTILE_REASON


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        pytest.param("plain text", "plain text", id="plain"),
        pytest.param("Nguyễn Văn An", "Nguyễn Văn An", id="vietnamese"),
        pytest.param("a\tb\rc", "a\\tb\\rc", id="tab-and-return"),
        pytest.param("x\x00y\x7f", "x\\x00y\\x7f", id="nul-and-delete"),
        pytest.param("line\u2028next", "line\\u2028next", id="line-separator"),
        pytest.param("x\ud800", "x\\ud800", id="lone-surrogate"),
    ],
)
def test_printable(text: str, shown: str) -> None:
    assert printable(text) == shown


def test_log_no_match_noted(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = run_log(config, "--outcome", "emergency")

    captured = capsys.readouterr()
    assert status == 0
    assert captured.out == ""
    assert "edge-gate log: no audit rows match (--outcome emergency)" in (captured.err)


def test_log_empty_audit_log_noted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    AuditLog(state / "audit.db").close()
    config = tmp_path / "edge-gate.toml"
    config.write_text(f'[store]\nstate_dir = "{state}"\n', encoding="utf-8")

    status = run_log(config, "--json")

    captured = capsys.readouterr()
    assert status == 0
    assert captured.out == ""
    assert "no audit rows match: the audit log has no rows" in captured.err


def test_log_names_unreadable_row(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with sqlite3.connect(config.parent / "state" / "audit.db") as db:
        db.execute("UPDATE audit SET alarms = '[' WHERE seq = 3")

    status = run_log(config)

    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert status == 1
    assert len(lines) == 6
    assert lines[2].startswith("      3 DAMAGED row 3 cannot be read")
    assert "alarms is not valid JSON" in lines[2]
    assert "lane-1-000003" in lines[3]
    assert "edge-gate log: cannot read row 3" in captured.err
    assert "internal error" not in captured.err


def test_log_json_names_unreadable_row(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with sqlite3.connect(config.parent / "state" / "audit.db") as db:
        db.execute("UPDATE audit SET scores = 'nan' WHERE seq = 2")

    status = run_log(config, "--json")

    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert status == 1
    assert [row["seq"] for row in rows] == [1, 2, 3, 4, 5, 6]
    assert set(rows[1]) == {"seq", "damaged", "hash"}
    assert "scores" in rows[1]["damaged"]


def test_format_entry_damaged_row() -> None:
    line = format_entry({"seq": 4, "damaged": "row 4 cannot be read\x1b[2J"})
    assert line == "      4 DAMAGED row 4 cannot be read\\x1b[2J"


def test_log_names_each_unreadable_row(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with sqlite3.connect(config.parent / "state" / "audit.db") as db:
        db.execute("UPDATE audit SET alarms = '[' WHERE seq IN (2, 4)")

    status = run_log(config)

    captured = capsys.readouterr()
    assert status == 1
    assert captured.out.count(" DAMAGED ") == 2
    assert "edge-gate log: cannot read rows 2, 4, shown as DAMAGED" in captured.err


@pytest.mark.parametrize(
    "value",
    ["[" * 100_000 + "]" * 100_000, None],
    ids=["deep-json", "not-utf8"],
)
def test_log_prints_other_rows_around_undecodable_row(
    config: Path, capsys: pytest.CaptureFixture[str], value: str | None
) -> None:
    with sqlite3.connect(config.parent / "state" / "audit.db") as db:
        if value is None:
            db.execute("UPDATE audit SET reason = CAST(x'ff41' AS TEXT) WHERE seq = 3")
        else:
            db.execute("UPDATE audit SET alarms = ? WHERE seq = 3", (value,))

    status = run_log(config)
    captured = capsys.readouterr()
    verify_status = run_log(config, "verify")
    verify = capsys.readouterr()

    lines = captured.out.splitlines()
    assert status == 1
    assert len(lines) == 6
    assert lines[2].startswith("      3 DAMAGED row 3 cannot be read")
    assert "lane-1-000003" in lines[3]
    assert "edge-gate log: cannot read row 3" in captured.err
    assert verify_status == 1
    assert verify.out.startswith("audit log BROKEN at row 3:")
    assert "internal error" not in captured.err + verify.err


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--until", "9999-12-31T23:59-01:00"),
        ("--since", "0001-01-01T00:00+01:00"),
    ],
)
def test_log_time_beyond_utc_years_named(
    config: Path, capsys: pytest.CaptureFixture[str], option: str, value: str
) -> None:
    with pytest.raises(SystemExit) as leaving:
        run_log(config, option, value)

    err = capsys.readouterr().err
    assert leaving.value.code == 2
    assert f"{value!r} is outside the years 1 to 9999 in UTC" in err
    assert option in err


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("until", "9999-12-31T23:59:59-23:59"),
        ("since", "0001-01-01T00:00+01:00"),
    ],
)
def test_log_request_time_beyond_utc_years_named(
    config: Path, name: str, value: str
) -> None:
    path = config.parent / "state" / "audit.db"
    with (
        AuditLog(path, read_only=True) as audit,
        pytest.raises(ValueError, match="outside the years 1 to 9999") as error,
    ):
        FieldCommands.query_audit(audit, {name: value})
    assert f"{name} {value!r}" in str(error.value)


def test_log_time_with_offset_filters_in_utc(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 09:02+01:00 is 08:02 UTC: rows at 08:02 and later.
    status = run_log(config, "--json", "--since", "2026-03-01T09:02+01:00")

    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert status == 0
    assert [row["seq"] for row in rows] == [3, 4, 5, 6]
