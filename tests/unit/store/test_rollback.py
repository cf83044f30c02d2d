"""Rolling back while another error propagates must not replace that error."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from edge_gate.store._schema import rollback_quietly


def test_rollback_without_transaction_is_quiet(tmp_path: Path) -> None:
    connection = sqlite3.connect(tmp_path / "store.db", isolation_level=None)
    try:
        with pytest.raises(sqlite3.OperationalError):
            connection.execute("ROLLBACK")
        rollback_quietly(connection)
        assert not connection.in_transaction
    finally:
        connection.close()


def test_rollback_keeps_original_error(tmp_path: Path) -> None:
    connection = sqlite3.connect(tmp_path / "store.db", isolation_level=None)

    class Stop(BaseException):
        pass

    try:
        with pytest.raises(Stop):
            try:
                raise Stop
            except BaseException:
                rollback_quietly(connection)
                raise
    finally:
        connection.close()


def test_rollback_undoes_open_transaction(tmp_path: Path) -> None:
    connection = sqlite3.connect(tmp_path / "store.db", isolation_level=None)
    try:
        connection.execute("CREATE TABLE t (x INTEGER)")
        connection.execute("BEGIN")
        connection.execute("INSERT INTO t VALUES (1)")
        rollback_quietly(connection)
        assert connection.execute("SELECT COUNT(*) FROM t").fetchone() == (0,)
    finally:
        connection.close()
