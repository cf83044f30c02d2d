"""The capture worker's outcomes for live and cancelled transactions.

The worker's ``step`` runs in the test's thread against a stand-in sensor,
so the lane's cancel can land at a chosen point of the capture.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from edge_gate.daemon._health import ProgressMonitor
from edge_gate.daemon._workers import CaptureWorker, ProbeStore
from edge_gate.errors import CaptureError, DeviceIOError
from edge_gate.gate import CaptureFailed, Event, SampleCaptured, StartCapture

TX = "lane-1-0000abcd-000001"


class CancellingSensor:
    """A sensor whose capture ends as ``result`` names.

    With ``cancel_during_capture`` the lane cancels the transaction while
    the capture runs, as an abort after a DeviceLost does.
    """

    def __init__(self, result: str) -> None:
        self.result = result
        self.worker: CaptureWorker | None = None
        self.cancel_during_capture = False

    def capture(self, timeout_s: float) -> Any:
        assert self.worker is not None
        if self.cancel_during_capture:
            self.worker.cancel(TX)
        if self.result == "device_lost":
            raise DeviceIOError("reading the fingerprint module failed: unplugged")
        if self.result == "no_sample":
            raise CaptureError(f"no finger within {timeout_s} s")
        return np.zeros((8, 8), dtype=np.uint8)

    def close(self) -> None:
        pass


def extract_nothing(image: Any) -> Any:
    raise CaptureError("no minutiae")


def run_one_capture(
    result: str, *, cancel_during_capture: bool
) -> tuple[list[Event], list[int]]:
    """Serve one StartCapture and return the events sent and the extractions."""
    sensor = CancellingSensor(result)
    sensor.cancel_during_capture = cancel_during_capture
    emitted: list[Event] = []
    extractions: list[int] = []

    def extract(image: Any) -> Any:
        extractions.append(image.size)
        return extract_nothing(image)

    matcher: Any = SimpleNamespace(extract=extract)
    worker = CaptureWorker(
        "fingerprint",
        "fingerprint",
        lambda: sensor,
        matcher=lambda: matcher,
        probes=ProbeStore(),
        emit=emitted.append,
        report=lambda device, is_present: None,
        monitor=ProgressMonitor(),
        min_quality=0.2,
        capture_timeout_s=5.0,
    )
    sensor.worker = worker
    worker.submit(StartCapture(TX, "fingerprint", 1, 5.0), {})
    worker.step()
    worker.close()
    return emitted, extractions


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        pytest.param(
            "device_lost",
            [CaptureFailed(TX, "fingerprint", "device_lost")],
            id="unplugged",
        ),
        pytest.param(
            "no_sample", [CaptureFailed(TX, "fingerprint", "no_sample")], id="no-finger"
        ),
        pytest.param(
            "sample",
            [
                SampleCaptured(TX, "fingerprint"),
                CaptureFailed(TX, "fingerprint", "failure_to_enrol"),
            ],
            id="sample-without-template",
        ),
    ],
)
def test_live_capture_outcome_sent(result: str, expected: list[Event]) -> None:
    emitted, _ = run_one_capture(result, cancel_during_capture=False)
    assert emitted == expected


@pytest.mark.parametrize(
    "result",
    [
        pytest.param("device_lost", id="unplugged"),
        pytest.param("no_sample", id="no-finger"),
        pytest.param("sample", id="sample"),
    ],
)
def test_cancelled_capture_outcome_dropped(
    result: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="edge_gate.daemon._workers")
    emitted, extractions = run_one_capture(result, cancel_during_capture=True)

    assert emitted == []
    # A sample of an ended transaction is not turned into a template.
    assert extractions == []
    dropped = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert len(dropped) == 1
    assert dropped[0].levelname == "DEBUG"
    assert TX in dropped[0].getMessage()
