"""``edge-gate simulate`` ends a run that the lane can no longer serve.

A lane worker that stopped on an error, or a crossing past its limit, ends
the run at once with the report of the crossings so far, instead of
waiting for a record that never comes. The runs use the real rig: the
publisher, the template server, sync, the lane runner and the emulators.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from edge_gate.cli import main
from edge_gate.config import config_from_mapping
from edge_gate.rig import _crossing
from edge_gate.rig.scenarios import HumanDelays
from edge_gate.rig.simulation import SimulationOptions, run_simulation

FAULT = "lane core fault"
RUN = ["--travellers", "2", "--scenario", "genuine", "--time-scale", "0.05"]


def fail_first_document(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the lane core raise on the lane thread's first document, once.

    The lane thread does not handle RuntimeError (a bug in the core), so it
    stops on it.
    """
    from edge_gate.gate import DocumentRead, Lane

    real_handle = Lane.handle
    failed = threading.Event()

    def handle(self: Any, event: Any, now_s: float) -> Any:
        is_lane = threading.current_thread().name == "lane"
        if is_lane and isinstance(event, DocumentRead) and not failed.is_set():
            failed.set()
            raise RuntimeError(FAULT)
        return real_handle(self, event, now_s)

    monkeypatch.setattr(Lane, "handle", handle)


@pytest.mark.slow
def test_dead_lane_worker_ends_run(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    fail_first_document(monkeypatch)
    started = time.monotonic()
    status = main(["simulate", *RUN, "--work-dir", str(tmp_path / "work")])
    elapsed_s = time.monotonic() - started
    output = capsys.readouterr().out

    assert status == 1
    # Ended on the failure, long before the crossing's limit of minutes.
    assert elapsed_s < 60.0
    reason = (
        "the run stopped at crossing 1 of 2 (genuine, traveller t0): the lane "
        "stopped working (worker lane stopped on an error: "
        f"RuntimeError('{FAULT}'))"
    )
    lines = output.splitlines()
    (first,) = [line for line in lines if line.startswith("  1  genuine")]
    assert "no record" in first
    (second,) = [line for line in lines if line.startswith("  2  genuine")]
    assert "not run" in second
    assert reason in lines
    # The same line is logged, and a failed run prints the log on stderr.
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert reason in errors


@pytest.mark.slow
def test_crossing_limit_ends_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No crossing ends within 0.2 s: the traveller alone sleeps 0.7 s.
    monkeypatch.setattr(_crossing, "crossing_limit_s", lambda *args: 0.2)
    report = run_simulation(
        SimulationOptions(
            travellers=2,
            scenarios=("genuine",),
            time_scale=0.05,
            work_dir=tmp_path / "work",
        )
    )

    first, second = report.crossings
    assert first.outcome is None
    assert first.ran
    assert first.reason == (
        "the lane recorded no transaction within 0.2 s "
        "(no lane worker reported a problem)"
    )
    assert not second.ran
    assert second.reason.startswith("the run stopped at crossing 1 of 2 (genuine")
    assert second.reason.endswith(first.reason)
    assert report.notes[-1] == second.reason


def test_crossing_limit_follows_capture_timeout() -> None:
    def limit_s(capture_timeout_s: float) -> float:
        config = config_from_mapping(
            {"fingerprint": {"capture_timeout_s": capture_timeout_s}}
        )
        return _crossing.crossing_limit_s(config, HumanDelays(), 0.1)

    attempts = config_from_mapping({}).fingerprint.max_attempts
    # Doubled: every attempt may wait its whole timeout, twice over.
    assert limit_s(25.0) - limit_s(15.0) == pytest.approx(2 * attempts * 10.0)


def test_crossing_limit_covers_traveller_delays() -> None:
    config = config_from_mapping({})
    slow = dataclasses.replace(HumanDelays(), walk_s=13.0)
    grown_s = _crossing.crossing_limit_s(
        config, slow, 0.5
    ) - _crossing.crossing_limit_s(config, HumanDelays(), 0.5)
    assert grown_s > 10.0 * 0.5
