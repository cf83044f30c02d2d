"""Tests of the hash-chained audit log on real SQLite files."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge_gate.errors import StoreError
from edge_gate.store import AuditLog, AuditRecord

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def make_record(
    index: int, *, when: datetime | None = None, **changes: object
) -> AuditRecord:
    values: dict[str, object] = {
        "time_utc": when or T0 + timedelta(minutes=index),
        "transaction_id": f"tx-{index:04d}",
        "outcome": "accepted" if index % 2 == 0 else "rejected",
        "reason": "both modalities matched"
        if index % 2 == 0
        else "fingerprint below threshold",
        "lane_id": "lane-1",
        "issuing_state": "VNM",
        "document_number": f"C{index:07d}",
        "alarms": (),
        "scores": {"fingerprint": 0.81, "iris": 0.93},
        "thresholds": {"fingerprint": 0.42, "iris": 0.61},
        "durations_ms": {"document": 1200.0, "fingerprint": 3400.5, "iris": 2800.0},
        "latency_ms": 180.0,
    }
    values.update(changes)
    return AuditRecord(**values)  # type: ignore[arg-type]


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    path = tmp_path / "audit.db"
    with AuditLog(path) as log:
        for index in range(10):
            log.append(make_record(index))
    return path


def tamper(path: Path, sql: str, *params: object) -> None:
    with sqlite3.connect(path) as db:
        db.execute(sql, params)


def test_append_returns_chained_rows(tmp_path: Path) -> None:
    with AuditLog(tmp_path / "audit.db") as log:
        first = log.append(make_record(0))
        second = log.append(make_record(1))
        assert (first.seq, second.seq) == (1, 2)
        assert first.row_hash != second.row_hash
        assert log.head() == (2, second.row_hash)


def test_append_many_chains_like_single_appends(tmp_path: Path) -> None:
    records = [make_record(index) for index in range(5)]
    (tmp_path / "one").mkdir()
    (tmp_path / "many").mkdir()
    with AuditLog(tmp_path / "one" / "audit.db") as log:
        singles = [log.append(record) for record in records]
    with AuditLog(tmp_path / "many" / "audit.db") as log:
        log.append(records[0])
        batch = log.append_many(records[1:])
        assert log.append_many([]) == []
        assert [entry.seq for entry in batch] == [2, 3, 4, 5]
        assert log.head() == (5, batch[-1].row_hash)
        assert log.verify().is_intact
        assert log.read_head_file() == log.head()
    # The same records give the same hashes either way.
    assert [entry.row_hash for entry in batch] == [e.row_hash for e in singles[1:]]


def test_append_many_writes_nothing_for_one_bad_record(tmp_path: Path) -> None:
    with AuditLog(tmp_path / "audit.db") as log:
        log.append(make_record(0))
        bad = make_record(2, scores={"iris": float("nan")})
        with pytest.raises(ValueError, match="iris"):
            log.append_many([make_record(1), bad])
        assert log.head()[0] == 1


def test_append_many_rolls_back_when_sqlite_fails(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    with AuditLog(path) as log:
        log.append(make_record(0))
        head = log.head()
        # A trigger makes the second insert fail, after the first one ran.
        with sqlite3.connect(path) as db:
            db.execute(
                "CREATE TRIGGER stop BEFORE INSERT ON audit WHEN NEW.seq = 3 "
                "BEGIN SELECT RAISE(ABORT, 'blocked by test'); END"
            )
        with pytest.raises(StoreError, match="cannot append 2 rows to audit log"):
            log.append_many([make_record(1), make_record(2)])
        assert log.head() == head
        assert log.read_head_file() == head
        assert [e.seq for e in log.query()] == [1]


def test_pragmas_are_wal_and_full(tmp_path: Path) -> None:
    with AuditLog(tmp_path / "audit.db") as log:
        assert log._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert log._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_query_round_trips_record(log_path: Path) -> None:
    with AuditLog(log_path) as log:
        entries = log.query()
    assert [e.seq for e in entries] == list(range(1, 11))
    assert entries[0].record == make_record(0)


def test_query_filters_time_and_outcome(log_path: Path) -> None:
    with AuditLog(log_path, read_only=True) as log:
        rejected = log.query(outcome="rejected")
        window = log.query(
            since=T0 + timedelta(minutes=3), until=T0 + timedelta(minutes=6)
        )
        newest = log.query(limit=2)
    assert [e.record.transaction_id for e in rejected] == [
        f"tx-{i:04d}" for i in (1, 3, 5, 7, 9)
    ]
    assert [e.seq for e in window] == [4, 5, 6]
    assert [e.seq for e in newest] == [9, 10]


def test_verify_intact_chain(log_path: Path) -> None:
    with AuditLog(log_path) as log:
        result = log.verify()
    assert result.is_intact, result.problem
    assert result.rows_checked == 10
    assert result.head_seq == 10


@pytest.mark.parametrize(
    ("sql", "params", "bad_seq"),
    [
        pytest.param(
            "UPDATE audit SET outcome = 'accepted' WHERE seq = ?",
            (4,),
            4,
            id="changed-outcome",
        ),
        pytest.param(
            "UPDATE audit SET scores = '{\"fingerprint\": 0.99}' WHERE seq = ?",
            (7,),
            7,
            id="changed-score",
        ),
        pytest.param(
            "DELETE FROM audit WHERE seq = ?", (5,), 5, id="deleted-middle-row"
        ),
        pytest.param(
            "DELETE FROM audit WHERE seq = ?", (1,), 1, id="deleted-first-row"
        ),
        pytest.param(
            "DELETE FROM audit WHERE seq >= ?", (9,), 9, id="deleted-newest-rows"
        ),
        pytest.param(
            "UPDATE audit SET time_utc = '2026-03-01T07:00:00.000000Z' WHERE seq = ?",
            (3,),
            3,
            id="changed-time",
        ),
    ],
)
def test_verify_finds_tampering(
    log_path: Path, sql: str, params: tuple[object, ...], bad_seq: int
) -> None:
    tamper(log_path, sql, *params)
    with AuditLog(log_path, read_only=True) as log:
        result = log.verify()
    assert not result.is_intact
    assert result.first_bad_seq == bad_seq
    assert result.problem


def test_prune_keeps_chain_valid(log_path: Path) -> None:
    now = T0 + timedelta(days=90, minutes=5)
    with AuditLog(log_path) as log:
        deleted = log.prune(90, now=now)
        remaining = log.query()
        result = log.verify()
        log.append(make_record(10))
        after_append = log.verify()
    assert deleted == 5
    assert [e.seq for e in remaining] == [6, 7, 8, 9, 10]
    assert result.is_intact, result.problem
    assert after_append.is_intact, after_append.problem


def test_prune_then_delete_oldest_detected(log_path: Path) -> None:
    with AuditLog(log_path) as log:
        log.prune(90, now=T0 + timedelta(days=90, minutes=5))
    tamper(log_path, "DELETE FROM audit WHERE seq = ?", 6)
    with AuditLog(log_path) as log:
        result = log.verify()
    assert not result.is_intact
    assert result.first_bad_seq == 6


def test_prune_nothing_old(log_path: Path) -> None:
    with AuditLog(log_path) as log:
        assert log.prune(90, now=T0 + timedelta(days=1)) == 0
        assert log.verify().is_intact


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param(
            {"time_utc": datetime(2026, 3, 1)}, "timezone-aware", id="naive-time"
        ),
        pytest.param({"outcome": "maybe"}, "outcome", id="unknown-outcome"),
        pytest.param({"kind": "image"}, "kind", id="unknown-kind"),
        pytest.param(
            {"scores": {"iris": b"\x00template"}}, "number", id="bytes-in-scores"
        ),
        pytest.param({"scores": {"iris": float("nan")}}, "finite", id="nan-score"),
        pytest.param({"reason": "x" * 501}, "500", id="reason-too-long"),
        pytest.param({"document_number": b"C01"}, "text", id="bytes-document-number"),
    ],
)
def test_append_rejects_bad_record(
    tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    with AuditLog(tmp_path / "audit.db") as log:
        with pytest.raises(ValueError, match=message):
            log.append(make_record(0, **changes))
        assert log.head()[0] == 0


def test_read_only_missing_file(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"not found.*state_dir"):
        AuditLog(tmp_path / "absent.db", read_only=True)


def test_not_an_audit_log(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (x)")
    with pytest.raises(StoreError, match="not an audit log"):
        AuditLog(path, read_only=True)


def test_query_rejects_bad_limit(log_path: Path) -> None:
    with AuditLog(log_path) as log, pytest.raises(ValueError, match="limit"):
        log.query(limit=0)


def test_lone_surrogate_rejected_and_log_usable(tmp_path: Path) -> None:
    with AuditLog(tmp_path / "audit.db") as log:
        bad = make_record(0, reason="crew x\ud800")
        with pytest.raises(ValueError, match="reason is not valid Unicode text"):
            log.append(bad)
        with pytest.raises(ValueError, match="lone surrogate"):
            bad.check()
        # Nothing was written and no transaction was left open.
        assert log.head()[0] == 0
        entry = log.append(make_record(1))
        assert entry.seq == 1


def test_sanitized_record_keeps_what_it_can(tmp_path: Path) -> None:
    bad = make_record(
        0,
        reason="crew x\ud800",
        outcome="bogus",
        scores={"iris": float("nan"), "finger\udc80": 0.5},
        alarms=("a" * 600,),
    )
    fixed = bad.sanitized()
    fixed.check()
    assert fixed.reason == "crew x\\ud800"
    assert fixed.outcome == "none"
    assert fixed.scores == {"finger\\udc80": 0.5}
    assert fixed.alarms == ("a" * 500,)
    assert fixed.durations_ms == bad.durations_ms
    with AuditLog(tmp_path / "audit.db") as log:
        log.append(fixed)
        assert log.verify().is_intact


@pytest.mark.parametrize(
    ("sql", "detail"),
    [
        pytest.param(
            "UPDATE audit SET alarms = '[' WHERE seq = 5",
            "audit field alarms is not valid JSON",
            id="alarms-not-json",
        ),
        pytest.param(
            "UPDATE audit SET scores = '[1]' WHERE seq = 5",
            "audit field scores must be a JSON dict",
            id="scores-a-list",
        ),
        pytest.param(
            "UPDATE audit SET time_utc = 'yesterday' WHERE seq = 5",
            "audit field time_utc is invalid",
            id="time-not-iso",
        ),
        pytest.param(
            "UPDATE audit SET latency_ms = 'fast' WHERE seq = 5",
            "audit field latency_ms must be a number",
            id="latency-text",
        ),
    ],
)
def test_unreadable_column_breaks_chain_at_row(
    log_path: Path, sql: str, detail: str
) -> None:
    tamper(log_path, sql)

    with AuditLog(log_path, read_only=True) as log:
        result = log.verify()

    assert not result.is_intact
    assert result.verdict == "broken"
    assert result.first_bad_seq == 5
    assert result.problem.startswith("row 5 was changed after it was written")
    assert detail in result.problem


def test_query_marks_unreadable_row(log_path: Path) -> None:
    tamper(log_path, "UPDATE audit SET alarms = '[' WHERE seq = 5")

    with AuditLog(log_path, read_only=True) as log:
        entries = log.query()

    assert [entry.seq for entry in entries] == list(range(1, 11))
    damaged = entries[4]
    assert "row 5 cannot be read" in damaged.damage
    assert "alarms is not valid JSON" in damaged.damage
    assert set(damaged.to_json_dict()) == {"seq", "damaged", "hash"}
    assert [entry.seq for entry in entries if entry.damage] == [5]
    assert entries[5].to_json_dict()["transaction_id"] == "tx-0005"


def test_contains_skips_unreadable_row(log_path: Path) -> None:
    tamper(log_path, "UPDATE audit SET scores = '{' WHERE seq = 5")
    with AuditLog(log_path, read_only=True) as log:
        assert not log.contains(make_record(4))
        assert log.contains(make_record(3))


def test_whole_numbers_hash_as_the_floats_read_back(tmp_path: Path) -> None:
    record = make_record(
        0, latency_ms=5, scores={"iris": 1}, durations_ms={"document": 1200}
    )
    assert record.to_json_dict()["latency_ms"] == 5.0
    assert isinstance(record.to_json_dict()["latency_ms"], float)
    assert isinstance(record.to_json_dict()["scores"]["iris"], float)

    with AuditLog(tmp_path / "audit.db") as log:
        log.append(record)
        result = log.verify()

    assert result.verdict == "intact", result.problem


def test_whole_number_too_large_for_float_rejected(tmp_path: Path) -> None:
    with AuditLog(tmp_path / "audit.db") as log:
        with pytest.raises(ValueError, match="audit field latency_ms is a whole"):
            log.append(make_record(0, latency_ms=10**400))
        with pytest.raises(ValueError, match=r"audit field scores\.iris is a whole"):
            log.append(make_record(0, scores={"iris": 10**400}))
        # 10**30 fits a float, so it is stored as one.
        log.append(make_record(1, latency_ms=10**30))
        assert log.verify().verdict == "intact"
        assert log.query()[-1].record.latency_ms == 1e30
    cleaned = make_record(2, latency_ms=10**400, scores={"iris": 10**400}).sanitized()
    assert cleaned.latency_ms is None
    assert dict(cleaned.scores) == {}


@pytest.mark.parametrize(
    ("sql", "column"),
    [
        pytest.param(
            "UPDATE audit SET time_utc = replace(time_utc, '-03-01T', '-03-1T') "
            "WHERE seq = 5",
            "time_utc",
            id="unpadded-day",
        ),
        pytest.param(
            """UPDATE audit SET scores = '{"fingerprint": 0.5, "fingerprint": 0.81,'
            || ' "iris": 0.93}' WHERE seq = 5""",
            "scores",
            id="duplicate-key",
        ),
        pytest.param(
            """UPDATE audit SET alarms = '[ ]' WHERE seq = 5""",
            "alarms",
            id="json-spacing",
        ),
    ],
)
def test_column_not_in_written_form_is_damaged(
    log_path: Path, sql: str, column: str
) -> None:
    tamper(log_path, sql)

    with AuditLog(log_path, read_only=True) as log:
        result = log.verify()
        entries = log.query()

    # A time filter compares the stored text and may miss the row, so the
    # verdict is what reveals it.
    assert result.verdict == "broken"
    assert result.first_bad_seq == 5
    assert f"audit field {column} is not stored in the form" in result.problem
    assert [entry.seq for entry in entries if entry.damage] == [5]


def test_deeply_nested_json_column_is_damaged(log_path: Path) -> None:
    tamper(
        log_path,
        "UPDATE audit SET alarms = ? WHERE seq = 5",
        "[" * 100_000 + "]" * 100_000,
    )

    with AuditLog(log_path, read_only=True) as log:
        result = log.verify()
        entries = log.query()

    assert result.verdict == "broken"
    assert result.first_bad_seq == 5
    assert "alarms is not valid JSON" in result.problem
    assert [entry.seq for entry in entries if entry.damage] == [5]


def test_non_utf8_text_damages_row(log_path: Path) -> None:
    tamper(log_path, "UPDATE audit SET reason = CAST(x'ff41' AS TEXT) WHERE seq = 5")

    with AuditLog(log_path, read_only=True) as log:
        result = log.verify()
        entries = log.query()

    assert result.verdict == "broken"
    assert result.first_bad_seq == 5
    assert "audit field reason contains bytes that are not UTF-8" in result.problem
    assert [entry.seq for entry in entries] == list(range(1, 11))
    assert [entry.seq for entry in entries if entry.damage] == [5]
    assert entries[5].record.transaction_id == "tx-0005"
