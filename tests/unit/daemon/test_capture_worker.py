"""The capture worker's outcomes for live and cancelled transactions.

The worker's ``step`` runs in a thread the test controls, on a stand-in sensor,
so the lane's cancel can land at a chosen point of the capture.
"""

from __future__ import annotations

import logging
import threading
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from edge_gate.daemon._health import ProgressMonitor
from edge_gate.daemon._workers import CaptureWorker, ProbeStore
from edge_gate.errors import CaptureError, DeviceIOError
from edge_gate.gate import (
    CaptureFailed,
    Event,
    SampleCaptured,
    SampleScored,
    StartCapture,
)

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


class ScoringSensor:
    """A sensor that returns a sample at once and counts its captures."""

    def __init__(self) -> None:
        self.captures = 0

    def capture(self, timeout_s: float) -> Any:
        self.captures += 1
        return np.zeros((8, 8), dtype=np.uint8)

    def close(self) -> None:
        pass


def scoring_worker(
    probes: ProbeStore, sensor: ScoringSensor, emitted: list[Event]
) -> CaptureWorker:
    """Build a fingerprint worker whose samples all give a usable probe."""
    matcher: Any = SimpleNamespace(
        extract=lambda image: SimpleNamespace(quality=0.9),
        compare=lambda probe, data: 0.7,
    )
    return CaptureWorker(
        "fingerprint",
        "fingerprint",
        lambda: sensor,
        matcher=lambda: matcher,
        probes=probes,
        emit=emitted.append,
        report=lambda device, is_present: None,
        monitor=ProgressMonitor(),
        min_quality=0.2,
        capture_timeout_s=5.0,
    )


ENROLLED = {"right_index": b"enrolled template"}


def test_cancel_discards_stored_probe() -> None:
    probes = ProbeStore()
    emitted: list[Event] = []
    worker = scoring_worker(probes, ScoringSensor(), emitted)
    worker.submit(StartCapture(TX, "fingerprint", 1, 5.0), ENROLLED)
    worker.step()
    assert set(probes.get(TX)) == {"fingerprint"}
    assert emitted[-1] == SampleScored(TX, "fingerprint", score=0.7, quality=0.9)

    worker.cancel(TX)
    worker.close()

    assert probes.get(TX) == {}
    assert TX not in probes.probes


class PausingLock:
    """A probe store lock that pauses one thread before it takes the lock.

    The thread named ``paused_thread`` waits at each ``with`` until
    :attr:`release` is set, so another thread can act while it waits.
    """

    def __init__(self, paused_thread: str) -> None:
        self._lock = threading.Lock()
        self._paused_thread = paused_thread
        self.waiting = threading.Event()
        self.release = threading.Event()

    def __enter__(self) -> None:
        if threading.current_thread().name == self._paused_thread:
            self.waiting.set()
            self.release.wait(5.0)
        self._lock.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release()


def test_cancel_during_probe_store_leaves_nothing() -> None:
    lock = PausingLock(paused_thread="capture-step")
    probes = ProbeStore(lock=lock)  # type: ignore[arg-type]
    emitted: list[Event] = []
    worker = scoring_worker(probes, ScoringSensor(), emitted)
    worker.submit(StartCapture(TX, "fingerprint", 1, 5.0), ENROLLED)

    # The capture reaches the probe store after its cancel check.
    capture = threading.Thread(target=worker.step, name="capture-step")
    capture.start()
    assert lock.waiting.wait(5.0)

    # The lane ends the transaction as the runner does: it cancels the
    # work, then its record discards the probes and takes the durations.
    def end_transaction() -> None:
        worker.cancel(TX)
        probes.discard(TX)
        worker.durations_ms.pop(TX, None)

    lane = threading.Thread(target=end_transaction, name="lane")
    lane.start()
    # A worker that checks and stores in one locked step blocks the lane in
    # cancel() until the probe is stored. Otherwise the lane ends at once.
    lane.join(0.2)
    lock.release.set()
    capture.join(5.0)
    lane.join(5.0)
    worker.close()

    assert not capture.is_alive()
    assert not lane.is_alive()
    assert probes.get(TX) == {}
    assert TX not in probes.probes
    assert TX not in worker.durations_ms


def test_cancelled_record_stops_growing() -> None:
    sensor = ScoringSensor()
    emitted: list[Event] = []
    worker = scoring_worker(ProbeStore(), sensor, emitted)

    for number in range(1000):
        worker.cancel(f"lane-1-0000abcd-{number:06d}")
    record_size = len(worker._cancelled)
    for number in range(1000, 2000):
        worker.cancel(f"lane-1-0000abcd-{number:06d}")

    assert len(worker._cancelled) == record_size
    # The newest cancelled transaction's capture is still skipped.
    newest = "lane-1-0000abcd-001999"
    worker.submit(StartCapture(newest, "fingerprint", 1, 5.0), ENROLLED)
    worker.step()
    worker.close()
    assert sensor.captures == 0
    assert emitted == []
