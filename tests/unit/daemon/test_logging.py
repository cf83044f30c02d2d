"""The daemon's log lines: journal priorities under systemd, plain otherwise."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from edge_gate.daemon._main import configure_daemon_logging


@pytest.fixture
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def test_journal_priority_prefix(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    restore_root_logger: None,
) -> None:
    monkeypatch.setenv("JOURNAL_STREAM", "8:12345")
    configure_daemon_logging("INFO")
    logger = logging.getLogger("edge_gate.test")
    logger.warning("reader lost")
    logger.info("lane ready\nsecond line")
    logger.debug("not shown at INFO")
    assert capsys.readouterr().err.splitlines() == [
        "<4>edge_gate.test: reader lost",
        "<6>edge_gate.test: lane ready",
        "<6>second line",
    ]


def test_plain_lines_outside_systemd(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    restore_root_logger: None,
) -> None:
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    configure_daemon_logging("DEBUG")
    logging.getLogger("edge_gate.test").debug("decision")
    (line,) = capsys.readouterr().err.splitlines()
    assert line.endswith("DEBUG edge_gate.test: decision")
