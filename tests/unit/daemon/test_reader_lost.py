"""A missing document reader is reported lost once, and back only when open."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pytest


def messages(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "edge_gate.daemon._workers" and text in record.getMessage()
    ]


def selftest_reader(lane: Any) -> dict[str, Any]:
    results = lane.runner.control_handlers()["selftest"]({"relay": False})
    (reader,) = [r for r in results if r["check"] == "document_reader"]
    return dict(reader)


def test_missing_reader_lost_once(
    lane: Any, caplog: pytest.LogCaptureFixture, wait_until: Callable[..., None]
) -> None:
    caplog.set_level(logging.INFO, logger="edge_gate.daemon._workers")
    wait_until(lane.idle_in_service)
    lane.setup.reader.unplug()
    wait_until(lambda: lane.status()["devices_lost"] == ["document_reader"])

    # Several reopen attempts pass; none of them is reported as a response.
    time.sleep(3.0)
    assert len(messages(caplog, "document_reader lost")) == 1
    assert messages(caplog, "responds again") == []
    assert lane.status()["devices_lost"] == ["document_reader"]
    reader = selftest_reader(lane)
    assert not reader["ok"], reader

    lane.setup.reader.replug()
    wait_until(lambda: lane.status()["devices_lost"] == [])
    back = messages(caplog, "responds again")
    assert len(back) == 1
    assert "failed attempts" in back[0]
    assert selftest_reader(lane)["ok"]


def test_still_lost_repeats_rate_limited(
    lane: Any,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    wait_until: Callable[..., None],
) -> None:
    from edge_gate.daemon import _workers

    monkeypatch.setattr(_workers, "LOST_REPEAT_LOG_S", 1.0)
    caplog.set_level(logging.INFO, logger="edge_gate.daemon._workers")
    wait_until(lane.idle_in_service)
    lane.setup.reader.unplug()
    wait_until(lambda: len(messages(caplog, "still lost")) >= 1, timeout_s=10.0)
    time.sleep(1.5)
    repeats = messages(caplog, "still lost")
    # One line a second at most, each with its count of failed attempts.
    assert 1 <= len(repeats) <= 3
    assert "failed attempts since the last message" in repeats[0]
    assert len(messages(caplog, "document_reader lost")) == 1
