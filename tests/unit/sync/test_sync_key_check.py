"""Sync and templates with a template key other than the one that sealed
templates.db: the real publisher, a real HTTP server on 127.0.0.1 and real
SQLite files."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from edge_gate.cli import main
from edge_gate.errors import StoreError
from edge_gate.store import (
    TEMPLATES_DB,
    TemplateStore,
    generate_key_file,
    load_key,
)
from edge_gate.store._crypto import TemplateCipher
from edge_gate.sync import Publisher, sync_once

# A running daemon keeps the file it opened, so the fix stops the service first.
WHAT_TO_DO = (
    "Restore the key that sealed templates.db, or stop edge-gate.service, "
    "move templates.db aside with its -wal and -shm files, run edge-gate sync, "
    "and start edge-gate.service again"
)


def state_digest(state_dir: Path) -> dict[str, str]:
    """Hash every file in the state folder, to show that nothing changed."""
    return {
        str(path.relative_to(state_dir)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(state_dir.rglob("*"))
        if path.is_file() and path.name != "sync.lock"
    }


def with_other_key(config: Any, gate_dir: Path) -> Any:
    """Return ``config`` pointing ``[store] key_file`` at a new key."""
    other = generate_key_file(gate_dir / "other.key")
    return dataclasses.replace(
        config, store=dataclasses.replace(config.store, key_file=str(other))
    )


def open_store(config: Any) -> TemplateStore:
    path = Path(config.store.state_dir) / TEMPLATES_DB
    return TemplateStore(path, load_key(config.store.key_file))


def every_document_opens(config: Any, numbers: range) -> bool:
    with open_store(config) as store:
        found = [store.lookup("UTO", f"D{n:08d}") for n in numbers]
    return all(enrolment is not None for enrolment in found)


def test_sync_with_other_key_writes_nothing(
    publisher: Publisher,
    http_server: Any,
    configure: Any,
    records: Any,
    gate_dir: Path,
) -> None:
    publisher.publish([records(n) for n in range(1, 4)])
    config = configure(http_server.url)
    sync_once(config)
    publisher.publish([records(1), records(2, watchlisted=True), records(3)])
    other = with_other_key(config, gate_dir)
    state_dir = Path(config.store.state_dir)
    before = state_digest(state_dir)
    requests_before = len(http_server.requests)

    with pytest.raises(StoreError) as raised:
        sync_once(other)

    message = str(raised.value)
    assert f"the template key {gate_dir / 'other.key'} is not the key" in message
    assert f"sealed {state_dir / TEMPLATES_DB}" in message
    assert WHAT_TO_DO in message
    assert state_digest(state_dir) == before
    assert len(http_server.requests) == requests_before
    with open_store(config) as store:
        assert store.version() == 1
    assert every_document_opens(config, range(1, 4))


def test_right_key_syncs_after_rejection(
    publisher: Publisher,
    http_server: Any,
    configure: Any,
    records: Any,
    gate_dir: Path,
) -> None:
    publisher.publish([records(n) for n in range(1, 4)])
    config = configure(http_server.url)
    sync_once(config)
    publisher.publish([records(1), records(2, watchlisted=True), records(3)])
    with pytest.raises(StoreError):
        sync_once(with_other_key(config, gate_dir))

    result = sync_once(config)

    assert result.outcome == "updated"
    assert result.previous_version == 1
    assert result.version == 2
    with open_store(config) as store:
        assert store.status().key_problem is None
        assert [eid for eid, _ in store.watchlist_irises()] == ["E000002", "E000002"]
    assert every_document_opens(config, range(1, 4))


def test_older_store_rejects_other_key(
    publisher: Publisher,
    http_server: Any,
    configure: Any,
    records: Any,
    gate_dir: Path,
) -> None:
    publisher.publish([records(n) for n in range(1, 4)])
    config = configure(http_server.url)
    sync_once(config)
    path = Path(config.store.state_dir) / TEMPLATES_DB
    # A store written before the key check value existed.
    connection = sqlite3.connect(path)
    with connection:
        connection.execute("DELETE FROM meta WHERE name = 'key_check'")
    connection.close()
    publisher.publish([records(1), records(2, watchlisted=True), records(3)])

    with pytest.raises(
        StoreError, match=re.escape("other.key is not the key that sealed")
    ):
        sync_once(with_other_key(config, gate_dir))
    result = sync_once(config)

    assert result.version == 2
    assert every_document_opens(config, range(1, 4))
    with open_store(config) as store:
        assert store.status().key_problem is None
    connection = sqlite3.connect(path)
    stored = connection.execute(
        "SELECT value FROM meta WHERE name = 'key_check'"
    ).fetchone()
    connection.close()
    expected = TemplateCipher(load_key(config.store.key_file)).key_check_value
    assert stored == (expected,)


def test_cli_sync_and_templates_report_key(
    tmp_path: Path,
    gate_toml: Any,
    publisher: Publisher,
    http_server: Any,
    configure: Any,
    records: Any,
    gate_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    publisher.publish([records(1), records(2)])
    config = configure(http_server.url)
    toml = gate_toml(tmp_path / "gate.toml", config)
    other_toml = gate_toml(tmp_path / "other.toml", with_other_key(config, gate_dir))
    assert main(["sync", "--config", str(toml)]) == 0
    publisher.publish([records(1, watchlisted=True), records(2)])
    capsys.readouterr()

    sync_status = main(["sync", "--config", str(other_toml)])
    sync_output = capsys.readouterr()
    text_status = main(["templates", "--config", str(other_toml)])
    text_output = capsys.readouterr()
    json_status = main(["templates", "--config", str(other_toml), "--json"])
    report = json.loads(capsys.readouterr().out)
    right_status = main(["templates", "--config", str(toml)])
    right_output = capsys.readouterr()

    assert sync_status == 1
    assert "templates updated" not in sync_output.out
    assert "other.key is not the key that sealed" in sync_output.err
    assert WHAT_TO_DO in sync_output.err
    assert "keeps template version 1" in sync_output.err
    assert text_status == 1
    assert re.search(r"^usable +no$", text_output.out, re.MULTILINE)
    assert "other.key is not the key that sealed" in text_output.err
    assert WHAT_TO_DO in text_output.err
    assert json_status == 1
    assert report["usable"] is False
    assert report["version"] == 1
    assert "other.key is not the key that sealed" in report["key_problem"]
    assert right_status == 0
    assert re.search(r"^usable +yes$", right_output.out, re.MULTILINE)
    assert right_output.err == ""


def test_templates_reports_mixed_older_store(
    tmp_path: Path,
    gate_toml: Any,
    publisher: Publisher,
    http_server: Any,
    configure: Any,
    records: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    publisher.publish([records(1), records(2)])
    config = configure(http_server.url)
    toml = gate_toml(tmp_path / "gate.toml", config)
    assert main(["sync", "--config", str(toml)]) == 0
    # The state an older sync left: no key check value, and the rows of one
    # enrolment sealed with another key.
    path = Path(config.store.state_dir) / TEMPLATES_DB
    other = TemplateCipher(bytes(range(32)))
    connection = sqlite3.connect(path)
    with connection:
        connection.execute("DELETE FROM meta WHERE name = 'key_check'")
        rows = connection.execute(
            "SELECT kind, position FROM templates WHERE enrolment_id = 'E000001'"
        ).fetchall()
        for kind, position in rows:
            connection.execute(
                "UPDATE templates SET sealed = ? WHERE enrolment_id = 'E000001' "
                "AND kind = ? AND position = ?",
                (other.seal("E000001", kind, position, b"x"), kind, position),
            )
    connection.close()
    capsys.readouterr()

    templates_status = main(["templates", "--config", str(toml)])
    templates_output = capsys.readouterr()
    sync_status = main(["sync", "--config", str(toml)])
    sync_output = capsys.readouterr()

    assert templates_status == 1
    assert re.search(r"^usable +no$", templates_output.out, re.MULTILINE)
    assert "4 of the 8 templates" in templates_output.err
    assert "rows sealed with two keys" in templates_output.err
    assert sync_status == 1
    assert "templates current" not in sync_output.out
    assert "rows sealed with two keys" in sync_output.err
