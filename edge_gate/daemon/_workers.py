"""The lane's device and matcher workers.

Each worker is a :class:`~edge_gate.daemon._health.Worker`: a named thread
whose every blocking call has a timeout below its progress deadline. Results
go back to the lane thread as gate events through ``emit``. A device error
closes the driver and reports the device lost. The worker then reopens it
with a growing back-off (50 ms to 2 s) and reports it back once it has
responded, so an unplugged reader or sensor comes back without a restart.
A device that stays lost is logged once when lost and then at most once a
minute, with the number of failed attempts.

Nothing here logs personal data: documents, templates and scores stay in
events and in the audit log.
"""

from __future__ import annotations

import datetime
import logging
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edge_gate.daemon._components import (
    DocumentSource,
    Matcher,
    Probe,
    SampleSource,
)
from edge_gate.daemon._health import ProgressMonitor, Worker
from edge_gate.errors import BiometricError, DeviceError, EdgeGateError
from edge_gate.gate import (
    CaptureFailed,
    DocumentRead,
    Event,
    SampleCaptured,
    SampleScored,
    StartCapture,
    WatchlistResult,
)

logger = logging.getLogger(__name__)

Emit = Callable[[Event], None]
PresenceReport = Callable[[str, bool], None]

# Back-off between reopen attempts of a lost device, in seconds.
REOPEN_MIN_S = 0.05
REOPEN_MAX_S = 2.0
# Maximum wait for a request before a worker beats again, in seconds.
POLL_S = 0.2
# Minimum interval between "still lost" warnings of one device, in seconds.
LOST_REPEAT_LOG_S = 60.0
# Maximum number of cancelled transaction ids a capture worker keeps. The
# oldest is dropped first. The
# worker skips a cancelled request as soon as it takes it from its queue, so
# only transactions started while one capture and its extraction ran
# (capture_timeout_s is at most 120 s) can still have work here. An estimate:
# 256 allows a new transaction, with its document read and lookup, every
# half second over that time. If a transaction left the record too early,
# its outcome would reach the lane and its probe would stay stored.
CANCELLED_KEPT = 256


class DeviceWorker(Worker):
    """A worker that owns one device and reopens it after an error."""

    def __init__(
        self,
        name: str,
        device_name: str,
        opener: Callable[[], Any],
        *,
        report: PresenceReport,
        monitor: ProgressMonitor,
        deadline_s: float,
    ) -> None:
        super().__init__(name, monitor, deadline_s)
        self.device_name = device_name
        self._opener = opener
        self._report = report
        self.device: Any = None
        self.last_response_s: float | None = None
        self._reopen = threading.Event()
        self._backoff_s = REOPEN_MIN_S
        self._next_open_s = 0.0
        self._is_reported_lost = False
        self._failures_since_log = 0
        self._last_lost_log_s = 0.0

    def request_reopen(self) -> None:
        """Ask the worker to close its device and open it again (thread-safe).

        The device monitor calls this when the device's path disappears, so
        the worker drops a handle to a device that is gone.
        """
        self._reopen.set()

    @property
    def is_connected(self) -> bool:
        """Whether the device is open, port included.

        A driver that opens its port lazily (the document reader) says so
        through its own ``is_connected``; for the others an open driver has
        finished its handshake.
        """
        if self.device is None:
            return False
        return bool(getattr(self.device, "is_connected", True))

    def ensure_open(self) -> bool:
        """Open the device if needed; return whether it is open.

        After a loss the next attempt waits for the back-off. A driver whose
        port is connected after opening has responded, and is reported back
        if it was lost.
        """
        if self._reopen.is_set():
            self._reopen.clear()
            self.close()
        if self.device is not None:
            return True
        self.stop_event.wait(max(0.0, self._next_open_s - time.monotonic()))
        if self.stop_event.is_set():
            return False
        try:
            self.device = self._opener()
        except (EdgeGateError, OSError, ImportError) as err:
            # A missing driver library disables only this device.
            self.lost(err)
            return False
        if self.is_connected:
            self.responded()
        return True

    def responded(self) -> None:
        """Record that the device responded; report it back if it was lost.

        A driver that is open but not connected has not responded, so this
        does nothing then.
        """
        if not self.is_connected:
            return
        self.last_response_s = time.monotonic()
        self._backoff_s = REOPEN_MIN_S
        if self._is_reported_lost:
            self._is_reported_lost = False
            logger.info(
                "%s responds again after %d failed attempts",
                self.device_name,
                self._failures_since_log,
            )
            self._failures_since_log = 0
            self._report(self.device_name, True)

    def lost(self, error: BaseException) -> None:
        """Close the device after an error, report it lost once, back off.

        Repeated failures while lost are counted and logged at most once
        every ``LOST_REPEAT_LOG_S``.
        """
        self.close()
        now_s = time.monotonic()
        self._next_open_s = now_s + self._backoff_s
        self._backoff_s = min(self._backoff_s * 2, REOPEN_MAX_S)
        if not self._is_reported_lost:
            self._is_reported_lost = True
            self._failures_since_log = 0
            self._last_lost_log_s = now_s
            logger.warning("%s lost: %s", self.device_name, error)
            self._report(self.device_name, False)
            return
        self._failures_since_log += 1
        if now_s - self._last_lost_log_s >= LOST_REPEAT_LOG_S:
            logger.warning(
                "%s still lost, %d failed attempts since the last message: %s",
                self.device_name,
                self._failures_since_log,
                error,
            )
            self._failures_since_log = 0
            self._last_lost_log_s = now_s

    def close(self) -> None:
        """Close the device; the next step reopens it."""
        device, self.device = self.device, None
        if device is not None:
            try:
                device.close()
            except (EdgeGateError, OSError) as err:
                logger.warning("closing %s failed: %s", self.device_name, err)


class DocumentWorker(DeviceWorker):
    """Read documents and hand each parsed MRZ to the lane."""

    def __init__(
        self,
        opener: Callable[[], DocumentSource],
        emit: Emit,
        report: PresenceReport,
        monitor: ProgressMonitor,
        *,
        tolerances: frozenset[str],
        accepting: Callable[[], bool],
        today: Callable[[], datetime.date],
        read_timeout_s: float = 0.5,
    ) -> None:
        super().__init__(
            "document-reader",
            "document_reader",
            opener,
            report=report,
            monitor=monitor,
            deadline_s=read_timeout_s + 10.0,
        )
        self._emit = emit
        self._tolerances = tolerances
        self._accepting = accepting
        self._today = today
        self._read_timeout_s = read_timeout_s

    def step(self) -> None:
        """Wait up to the read timeout for a document and emit it."""
        if not self.ensure_open():
            return
        try:
            lines = self.device.read_document(self._read_timeout_s)
        except DeviceError as err:
            self.lost(err)
            return
        self.responded()
        if lines is None:
            return
        if not self._accepting():
            logger.info("document ignored: the lane is out of service")
            return
        self._emit(parse_document(lines, self._today(), self._tolerances))


def parse_document(
    lines: list[str], today: datetime.date, tolerances: frozenset[str]
) -> DocumentRead:
    """Parse MRZ lines into the lane's document event.

    ``dates_plausible`` is False when the parser reported an impossible or
    missing date (an entry in ``errors`` naming a date field).
    """
    from edge_gate.document import is_expired, parse_mrz

    result = parse_mrz(lines, today=today, tolerances=tolerances)
    date_errors = [
        e for e in result.errors if e.startswith(("birth_date", "expiry_date"))
    ]
    expired = result.fields.expiry_date is not None and is_expired(result, today)
    return DocumentRead(
        issuing_state=result.fields.issuing_state,
        document_number=result.fields.document_number,
        valid=result.valid and not result.errors,
        expired=expired,
        dates_plausible=not date_errors,
    )


@dataclass
class _CaptureRequest:
    command: StartCapture
    enrolled: dict[str, bytes]


@dataclass
class ProbeStore:
    """Probes of the transaction in progress, for the watchlist search."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    probes: dict[str, dict[str, Probe]] = field(default_factory=dict)

    def put(self, transaction_id: str, modality: str, probe: Probe) -> None:
        """Keep the best-quality probe of each modality."""
        with self.lock:
            kept = self.probes.setdefault(transaction_id, {})
            if modality not in kept or probe.quality > kept[modality].quality:
                kept[modality] = probe

    def get(self, transaction_id: str) -> dict[str, Probe]:
        """Return the probes kept for a transaction."""
        with self.lock:
            return dict(self.probes.get(transaction_id, {}))

    def discard(self, transaction_id: str) -> None:
        """Forget a transaction's probes."""
        with self.lock:
            self.probes.pop(transaction_id, None)


class CaptureWorker(DeviceWorker):
    """Capture, extract and compare one modality on request.

    Extraction runs in this worker's thread after ``SampleCaptured`` went to
    the lane, so the lane can start the next modality's capture meanwhile.
    An outcome for a transaction that the lane cancelled (it ended the
    transaction, for example after a device loss) is dropped here, and no
    probe of a cancelled transaction stays in the probe store.
    """

    def __init__(
        self,
        modality: str,
        device_name: str,
        opener: Callable[[], SampleSource],
        *,
        matcher: Callable[[], Matcher],
        probes: ProbeStore,
        emit: Emit,
        report: PresenceReport,
        monitor: ProgressMonitor,
        min_quality: float,
        capture_timeout_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            modality,
            device_name,
            opener,
            report=report,
            monitor=monitor,
            # A capture may wait the whole capture timeout, then extract.
            deadline_s=capture_timeout_s + 30.0,
        )
        self.modality = modality
        self._matcher = matcher
        self._probes = probes
        self._emit = emit
        self._min_quality = min_quality
        self._clock = clock
        self._requests: queue.Queue[_CaptureRequest] = queue.Queue()
        self._cancelled: deque[str] = deque(maxlen=CANCELLED_KEPT)
        # Acquired before the probe store's lock, never while that lock is held.
        self._cancel_lock = threading.Lock()
        self.durations_ms: dict[str, dict[str, float]] = {}

    def submit(self, command: StartCapture, enrolled: dict[str, bytes]) -> None:
        """Queue a capture for the lane's StartCapture command."""
        self._requests.put(_CaptureRequest(command, dict(enrolled)))

    def cancel(self, transaction_id: str) -> None:
        """Drop queued requests, results and stored probes of a transaction.

        It discards the probes of every modality, because the lane cancels a
        transaction only when it ends it. It runs under the cancel lock, as
        the check before a probe is stored does. So a probe stored before the
        cancel is discarded here, and none is stored after it while the
        transaction is among the last ``CANCELLED_KEPT`` cancelled.
        """
        with self._cancel_lock:
            if transaction_id not in self._cancelled:
                self._cancelled.append(transaction_id)
            self._probes.discard(transaction_id)

    def _is_cancelled(self, transaction_id: str) -> bool:
        with self._cancel_lock:
            return transaction_id in self._cancelled

    def step(self) -> None:
        """Serve one capture request, or keep the device open while idle."""
        try:
            request = self._requests.get(timeout=POLL_S)
        except queue.Empty:
            self.ensure_open()
            return
        command = request.command
        tx = command.transaction_id
        if self._is_cancelled(tx):
            return
        if not self.ensure_open():
            self._send_outcome(CaptureFailed(tx, command.modality, "device_lost"))
            return

        started = self._clock()
        try:
            image = self.device.capture(command.timeout_s)
        except BiometricError as err:
            self.responded()
            logger.info("%s capture %s: no sample (%s)", self.modality, tx, err)
            self._send_outcome(CaptureFailed(tx, command.modality, "no_sample"))
            return
        except DeviceError as err:
            self.lost(err)
            self._send_outcome(CaptureFailed(tx, command.modality, "device_lost"))
            return
        self.responded()
        captured = self._clock()
        if self._send_outcome(SampleCaptured(tx, command.modality)):
            self._score(request, image, started, captured)

    def _send_outcome(
        self, event: SampleCaptured | SampleScored | CaptureFailed
    ) -> bool:
        """Emit a capture outcome unless the lane cancelled its transaction.

        The lane cancels a transaction only when it ends it, so it would
        reject the outcome. The usual case is a capture that was running
        when its device was unplugged.

        Returns:
            Whether the event was emitted to the lane.
        """
        tx = event.transaction_id
        if self._is_cancelled(tx):
            logger.debug(
                "%s capture %s: %s dropped because the lane cancelled the transaction",
                self.modality,
                tx,
                type(event).__name__,
            )
            return False
        self._emit(event)
        return True

    def _compare_enrolled(
        self, matcher: Any, probe: Any, tx: str, position: str, data: bytes
    ) -> float:
        """Return the probe's score against one enrolled template.

        A template that cannot be parsed scores 0, so it never matches, and
        the journal names it. Sync rejects such templates, so only a store
        written by an older edge-gate can contain one.
        """
        try:
            return float(matcher.compare(probe, data))
        except BiometricError as err:
            logger.error(
                "%s capture %s: enrolled template %s cannot be read, scored 0: "
                "%s. Publish the enrolment again with the current edge-gate "
                "publish, then run edge-gate sync",
                self.modality,
                tx,
                position,
                err,
            )
            return 0.0

    def _score(
        self, request: _CaptureRequest, image: Any, started: float, captured: float
    ) -> None:
        command = request.command
        tx = command.transaction_id
        matcher = self._matcher()
        try:
            probe = matcher.extract(image)
        except BiometricError as err:
            logger.info("%s capture %s: no template (%s)", self.modality, tx, err)
            self._send_outcome(CaptureFailed(tx, command.modality, "failure_to_enrol"))
            return
        if probe.quality < self._min_quality:
            self._send_outcome(CaptureFailed(tx, command.modality, "low_quality"))
            return
        scores = [
            self._compare_enrolled(matcher, probe, tx, position, data)
            for position, data in request.enrolled.items()
        ]
        durations_ms = {
            f"{self.modality}_capture": (captured - started) * 1000.0,
            f"{self.modality}_match": (self._clock() - captured) * 1000.0,
        }

        # Checked and stored under the cancel lock, so a cancel() either comes
        # first and nothing is stored, or comes after and discards the probe.
        with self._cancel_lock:
            is_cancelled = tx in self._cancelled
            if not is_cancelled:
                self._probes.put(tx, self.modality, probe)
                self.durations_ms.setdefault(tx, {}).update(durations_ms)
        if is_cancelled:
            logger.debug(
                "%s capture %s: probe dropped because the lane cancelled the "
                "transaction",
                self.modality,
                tx,
            )
            return
        self._send_outcome(
            SampleScored(
                tx,
                command.modality,
                # A NaN would win or lose max() by position; it counts as 0.
                score=max((s for s in scores if not math.isnan(s)), default=0.0),
                quality=float(probe.quality),
            )
        )


@dataclass
class _SearchRequest:
    transaction_id: str
    modalities: frozenset[str]


class WatchlistWorker(Worker):
    """Search a transaction's probes 1:N against the watchlist galleries."""

    def __init__(
        self,
        matchers: Callable[[], dict[str, Matcher]],
        probes: ProbeStore,
        emit: Emit,
        monitor: ProgressMonitor,
        *,
        deadline_s: float = 60.0,
    ) -> None:
        super().__init__("watchlist", monitor, deadline_s)
        self._matchers = matchers
        self._probes = probes
        self._emit = emit
        self._requests: queue.Queue[_SearchRequest] = queue.Queue()
        self._lock = threading.Lock()
        self._scores: dict[str, dict[str, float]] = {}

    def pop_scores(self, transaction_id: str) -> dict[str, float]:
        """Return and forget a transaction's best watchlist score per modality."""
        with self._lock:
            return self._scores.pop(transaction_id, {})

    def submit(self, transaction_id: str, modalities: frozenset[str]) -> None:
        """Queue a search for the lane's RunWatchlistSearch command."""
        self._requests.put(_SearchRequest(transaction_id, modalities))

    def step(self) -> None:
        """Serve one search request."""
        try:
            request = self._requests.get(timeout=POLL_S)
        except queue.Empty:
            return
        matchers = self._matchers()
        probes = self._probes.get(request.transaction_id)
        gallery = frozenset(
            name for name, m in matchers.items() if m.search is not None
        )
        searched: set[str] = set()
        hit = False
        for name in sorted(request.modalities & gallery):
            probe = probes.get(name)
            search = matchers[name].search
            if probe is None or search is None:
                continue
            searched.add(name)
            score = search(probe)
            with self._lock:
                self._scores.setdefault(request.transaction_id, {})[name] = score
            if score >= matchers[name].watchlist_threshold:
                hit = True
        self._emit(
            WatchlistResult(
                request.transaction_id,
                hit=hit,
                searched=frozenset(searched),  # type: ignore[arg-type]
                gallery=gallery,  # type: ignore[arg-type]
            )
        )
