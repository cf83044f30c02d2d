"""Run one lane in-process: the pure lane core driven by real devices.

:class:`LaneRunner` owns the lane's threads and devices. The ``lane`` thread
is the only one that calls :meth:`edge_gate.gate.Lane.handle`. Every other
thread (document reader, the two capture workers, the watchlist search, the
turnstile's input callbacks, the device monitor, the control socket) puts
its events on one queue, and the lane thread carries out the commands that
the core returns. The lane clock is the injected monotonic ``clock``; wall
time (UTC) is read once per audit record.

The ``housekeeping`` thread retries audit writes, re-checks the service
holds, starts a watchlist reload after a template update and prunes the
audit log. Its SQLite calls and fsyncs can wait long on a busy database or a
slow disk, so it runs as a worker like the others, and a hung pass stops the
watchdog pings. The supervisor in the main thread only calls
:meth:`status_line`, which reads memory and no SQLite or GPIO.

Locks: ``_state_lock`` guards the runner's in-memory state and is always
taken last. No thread holds it across I/O or while it waits for another
lock, so a thread waits for it only briefly.

``edge-gate run`` wraps the runner in a process (notify, watchdog, control
socket); ``edge-gate simulate`` runs it in the same process as the rig, with
the rig's mock pin factory and device paths from the configuration.

Service holds. Besides what the lane core tracks (lost devices, key switch,
tamper), the runner refuses service while the wall clock is not trusted
(behind the latest time the gate persisted), while the templates are past
their offline limit, while audit records wait for a retry after a
failed write or while an invalid audit spool is set aside (see
``_audit_spool``), and while ``audit.db`` is no longer the file the daemon
opened or ``audit.head`` cannot be written (the ``audit_file`` hold, checked
every housekeeping pass). Documents are then ignored, the display shows
``out_of_service``, and the status line gives the reason.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from edge_gate.config import GateConfig
from edge_gate.daemon._audit_spool import SpoolKeeper
from edge_gate.daemon._components import (
    Matcher,
    build_matchers,
    device_paths,
    open_document_reader,
    open_fingerprint_sensor,
    open_iris_camera,
)
from edge_gate.daemon._control import EventHub
from edge_gate.daemon._devices import DeviceMonitor
from edge_gate.daemon._health import ProgressMonitor, Worker
from edge_gate.daemon._lock import DaemonLock, RuntimeLock
from edge_gate.daemon._paths import prepare_state_dir
from edge_gate.daemon._records import (
    audit_record,
    manual_open_record,
    manual_refusal_reason,
)
from edge_gate.daemon._workers import (
    CaptureWorker,
    DeviceWorker,
    DocumentWorker,
    ProbeStore,
    WatchlistWorker,
)
from edge_gate.errors import ControlError, DeviceError, EdgeGateError, StoreError
from edge_gate.gate import (
    CancelTransaction,
    Command,
    DeviceBack,
    DeviceLost,
    EnrolmentFound,
    EnrolmentNotFound,
    Event,
    FireReleaseChanged,
    KeySwitchChanged,
    Lane,
    LaneSettings,
    LaneState,
    LookUpEnrolment,
    ManualOpen,
    RecordAlarm,
    RecordTransaction,
    RunWatchlistSearch,
    ShowMessage,
    StartCapture,
    TamperChanged,
    Tick,
)
from edge_gate.store import AuditRecord, RowsInLostFileError, TemplateStatus

logger = logging.getLogger(__name__)

Clock = Callable[[], float]
WallClock = Callable[[], datetime.datetime]
# Receives a status line while a long start-up step runs.
StartProgress = Callable[[str], object]

# Device names used by the lane core's DeviceLost and DeviceBack events.
LANE_DEVICES = ("document_reader", "fingerprint", "iris_camera", "turnstile")
# Status line text shown when [turnstile] pin_factory = "mock".
MOCK_GPIO_TEXT = 'mock GPIO: no real GPIO line is driven (pin_factory = "mock")'
# Seconds between attempts to load a watchlist that failed to load.
RELOAD_RETRY_S = 60.0
# Seconds between housekeeping passes. A clock or template age hold starts
# or ends about this late.
HOUSEKEEPING_INTERVAL_S = 1.0
# Seconds one housekeeping pass may take before it counts as hung. A pass
# can wait on SQLite busy timeouts (30 s per template store read, 5 s per
# audit write) and on fsync, so this is far above ``worker_stall_s``. This
# is an estimate: raise it if the journal shows slower passes on a healthy
# disk.
HOUSEKEEPING_STALL_S = 120.0
# Spooled audit records appended per commit at start. A spooled crossing
# takes about 560 bytes, so the largest spool (64 MiB) needs about 120
# commits: 3 s here instead of 81 s with one commit per record
# (bench/bench_spool_replay.py).
REPLAY_BATCH = 1000
# States in which the lane core takes a ManualOpen.
_MANUAL_OPEN_STATES = frozenset(
    {LaneState.IDLE, LaneState.DOCUMENT, LaneState.OUT_OF_SERVICE}
)
# Events the stop drains into the lane at most, so a flood cannot hang it.
_STOP_DRAIN_MAX = 1000


@dataclasses.dataclass
class _ManualRequest:
    """A manual opening request waiting for the lane thread to carry it out."""

    event: ManualOpen
    done: threading.Event = dataclasses.field(default_factory=threading.Event)
    claimed: bool = False
    opened: bool = False
    why: str = ""


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class LaneRunner:
    """One lane: devices, matchers, stores, the lane core and its threads.

    Args:
        config: the validated configuration.
        pin_factory: a gpiozero pin factory to use instead of the one the
            configuration names (the rig passes its mock factory). Without
            one, ``pin_factory = "mock"`` logs a WARNING at start, because
            then no real GPIO line is driven outside a test or simulation.
        clock: the lane clock, monotonic seconds.
        wall_clock: UTC now, for audit records, expiry and the clock check.
        use_udev: listen to udev events; None takes ``[daemon] use_udev``.
        housekeeping_stall_s: seconds one housekeeping pass may take before
            the housekeeping worker counts as stalled.
    """

    def __init__(
        self,
        config: GateConfig,
        *,
        pin_factory: Any = None,
        clock: Clock = time.monotonic,
        wall_clock: WallClock = _utc_now,
        use_udev: bool | None = None,
        housekeeping_stall_s: float = HOUSEKEEPING_STALL_S,
    ) -> None:
        self.config = config
        self.monitor = ProgressMonitor(clock)
        self.events = EventHub()
        self._pin_factory = pin_factory
        self._clock = clock
        self._wall_clock = wall_clock
        self._use_udev = config.daemon.use_udev if use_udev is None else use_udev
        self._queue: queue.Queue[Event] = queue.Queue()
        self._state_lock = threading.RLock()
        self._started = False
        self._stopped = False
        self._workers: list[Worker] = []
        self._housekeeping_stall_s = housekeeping_stall_s
        self._housekeeping: _HousekeepingWorker | None = None
        self._lost: dict[str, set[str]] = {name: set() for name in LANE_DEVICES}
        self._holds: dict[str, str] = {}
        # Levels of the inputs that explain a closed lane, as the lane
        # thread last handed them to the lane core.
        self._input_levels: dict[str, bool] = {}
        self._message = "starting"
        self._lane: Lane | None = None
        self._turnstile: Any = None
        self._audit: Any = None
        self._templates: Any = None
        self._trusted_clock: Any = None
        self._daemon_lock: DaemonLock | None = None
        self._runtime_lock: RuntimeLock | None = None
        self._matchers: dict[str, Matcher] = {}
        self._models_dir = Path()
        self._template_version = 0
        # Records appended but not yet written, either in flight or waiting
        # for a retry. Only a failed write sets _audit_write_failed, and
        # only that flag starts the ``audit`` hold, so a record that is
        # still being written never takes the lane out of service.
        self._pending_audit: list[Any] = []
        self._audit_write_failed = False
        # True once the audit log's file problem is recorded in a service row.
        self._is_file_problem_recorded = False
        # The spool mirrors _pending_audit after each write attempt, so the
        # records survive a restart (see _audit_spool).
        self._spool: SpoolKeeper | None = None
        self._reload_thread: threading.Thread | None = None
        self._reloading_version: int | None = None
        self._reload_error = ""
        self._reload_retry_s = 0.0
        self._audit_flush_lock = threading.Lock()
        # One manual opening at a time. The lane thread carries out the request
        # whose event it takes, and drops any other ManualOpen.
        self._manual_lock = threading.Lock()
        self._manual_request: _ManualRequest | None = None
        self._probes = ProbeStore()
        self._enrolled: dict[str, dict[str, dict[str, bytes]]] = {}
        self._captures: dict[str, CaptureWorker] = {}
        self._watchlist: WatchlistWorker | None = None
        self._device_monitor: DeviceMonitor | None = None
        self._counts: dict[str, int] = {}
        self._last_prune_s: float | None = None
        self._last_transaction: dict[str, Any] | None = None
        self._started_wall = wall_clock()

    # Lifecycle

    def start(self, on_progress: StartProgress | None = None) -> None:
        """Load models and stores, open the devices and start every worker.

        Args:
            on_progress: called with a status line during long start-up
                steps (the audit spool replay), so that the caller can extend
                systemd's start timeout.

        Raises:
            ModelError: a model is missing or differs from its manifest.
            ConfigError: the template key is missing or invalid,
                ``[daemon] models_dir`` names a folder without a manifest, or
                ``[store] state_dir`` is not a writable folder.
            StoreError: a store cannot be opened, or the template key does
                not open the templates in ``templates.db``.
            DeviceInitError: the GPIO pins cannot be set up.
            DaemonRunningError: another daemon holds the state folder's lock.
        """
        from edge_gate._models import find_models_dir
        from edge_gate.store import (
            AUDIT_DB_NAME,
            TEMPLATES_DB,
            AuditLog,
            TemplateStore,
            TrustedClock,
            load_key,
        )
        from edge_gate.turnstile import Turnstile

        config = self.config
        # Invalid settings stop the start before the state folder changes.
        self._models_dir = find_models_dir(config.daemon.models_dir)
        template_key = load_key(config.store.key_file)
        state_dir = Path(config.store.state_dir)
        prepare_state_dir(state_dir)

        # Lock the state folder before anything in it is opened, because a
        # second daemon would append to the same audit chain.
        self._daemon_lock = DaemonLock(state_dir)
        # Then the control socket's folder, which contains the audit spool.
        # The same folder as the state folder is locked already.
        socket_path = Path(config.daemon.control_socket)
        if socket_path.parent.resolve() != state_dir.resolve():
            self._runtime_lock = RuntimeLock(socket_path)

        # Stores first: the audit log must take the record of any abort.
        self._audit = AuditLog(state_dir / AUDIT_DB_NAME)
        head_seq, head_hash = self._audit.head()
        logger.info("audit log head at start: row %d, hash %s", head_seq, head_hash)
        self._templates = TemplateStore(
            state_dir / TEMPLATES_DB, template_key, config.store.key_file
        )
        self._trusted_clock = TrustedClock(
            state_dir, max_backward_s=config.store.clock_max_backward_s
        )
        self._replay_spool(on_progress)

        # A store with a key check value fails in the watchlist read below,
        # but an older one has none, so each of its templates is tried here.
        key_problem = self._templates.key_problem()
        if key_problem is not None:
            raise StoreError(key_problem)

        # Models: each is checked against its manifest SHA-256 while loading.
        self._load_matchers()
        self._lane = Lane(
            LaneSettings.from_config(config),
            config.policy,
            {name: m.threshold for name, m in self._matchers.items()},  # type: ignore[misc]
            # A boot token keeps transaction ids unique across restarts.
            lane_id=f"{config.daemon.lane_id}-{uuid.uuid4().hex[:8]}",
        )
        self._warn_if_mock_gpio()
        self._turnstile = Turnstile(
            config.turnstile, pin_factory=self._pin_factory, on_input=self._queue.put
        )
        self._build_workers()

        # The lane starts locked; then it learns every input level and which
        # devices are missing before any document is taken.
        self._execute_all(self._lane.start(self._clock()))
        for event in self._turnstile.read_inputs():
            self._queue.put(event)
        assert self._device_monitor is not None  # built above
        for name in self._device_monitor.missing():
            self._on_path_change(name, False)
        self._check_holds()
        for worker in self._workers:
            worker.start()
        self._started = True
        assert self._housekeeping is not None  # built above
        self._housekeeping.start()
        logger.info("lane runner started with %d workers", len(self._workers) + 1)

    def _warn_if_mock_gpio(self) -> None:
        """Log a WARNING when the lane builds mock pins for itself.

        The rig passes its own mock factory and drives it, so
        ``edge-gate simulate`` and tests stay quiet.
        """
        if self.config.turnstile.pin_factory != "mock":
            return
        if self._pin_factory is not None:
            return
        logger.warning(
            '[turnstile] pin_factory = "mock": the lane drives no real GPIO '
            "line, so the turnstile's outputs and inputs are not connected. "
            'The mock pin factory is for tests. Set pin_factory = "lgpio" on '
            "the lane's board"
        )

    def _replay_spool(self, on_progress: StartProgress | None) -> None:
        """Append the records that an earlier run spooled, before any new one.

        They go first into the pending records, so a failed write keeps
        them, starts the ``audit`` hold and leaves them in the spool, exactly like a
        record of this run. They are appended ``REPLAY_BATCH`` records per
        commit, and ``on_progress`` hears of each commit, so a large spool
        neither takes one ``fsync`` per record nor runs past systemd's
        start timeout unannounced. The spool is rewritten only at the end: a
        kill in between leaves it whole, and the next start skips the
        records already in the log.
        """
        self._spool = SpoolKeeper(self.config, self._wall_clock)
        spooled = self._spool.read_at_start(self._audit)
        if not spooled:
            return
        with self._state_lock:
            self._pending_audit[:0] = spooled
        written = 0
        try:
            while written < len(spooled):
                batch = spooled[written : written + REPLAY_BATCH]
                self._audit.append_many(batch)
                written += len(batch)
                with self._state_lock:
                    del self._pending_audit[: len(batch)]
                if on_progress is not None:
                    on_progress(
                        f"starting: {written} of {len(spooled)} audit spool "
                        "records appended"
                    )
        # Any error, not only the store's own (SQLite's OverflowError, for
        # one): the records stay pending, and a crash here would repeat at
        # every start.
        except Exception as err:
            logger.error(
                "audit spool replay stopped after %d of %d records: %r",
                written,
                len(spooled),
                err,
            )
        # Writes what is left one record at a time (a failure starts the
        # audit hold) and brings the spool up to date.
        self._flush_audit()

    def _load_matchers(self) -> None:
        """Load the models and the watchlist galleries of the applied templates.

        Workers read ``self._matchers`` per request, so replacing the dict
        switches every later search to the new gallery at once.
        """
        version = self._templates.version()
        self._matchers = build_matchers(
            self.config,
            self._models_dir,
            self._templates.watchlist_fingerprints(),
            self._templates.watchlist_irises(),
        )
        self._template_version = version
        sizes = {name: m.gallery_size for name, m in self._matchers.items()}
        logger.info("template version %d: watchlist gallery sizes %s", version, sizes)

    def _start_watchlist_reload(self, version: int) -> None:
        """Load the new watchlist in a thread while the lane holds service.

        The lane takes no traveller until the new galleries are in use, so a
        person listed by the update cannot pass on the old watchlist. The
        supervisor keeps pinging the watchdog meanwhile, because a large
        gallery can take longer to load than the watchdog interval.
        """
        with self._state_lock:
            busy = self._reload_thread is not None and self._reload_thread.is_alive()
            # After stop() joined the reload thread, no new one may start.
            if busy or self._stopped or self._clock() < self._reload_retry_s:
                return
            self._reloading_version = version
            self._reload_thread = threading.Thread(
                target=self._reload_watchlist, name="watchlist-reload", daemon=True
            )
        self._check_holds()
        self._reload_thread.start()

    def _reload_watchlist(self) -> None:
        error = ""
        try:
            self._load_matchers()
        except Exception as err:  # supervision point: keep holding, retry later
            logger.exception("cannot load the watchlist of the new templates")
            error = str(err)
        with self._state_lock:
            self._reloading_version = None
            self._reload_error = error
            self._reload_retry_s = self._clock() + (RELOAD_RETRY_S if error else 0.0)
        self._check_holds()

    def _build_workers(self) -> None:
        config = self.config
        self._workers.append(_LaneWorker(self))
        self._workers.append(
            DocumentWorker(
                lambda: open_document_reader(config),
                self._queue.put,
                self._on_presence,
                self.monitor,
                tolerances=frozenset(config.document_reader.tolerances),
                accepting=lambda: not self._holds,
                today=lambda: self._wall_clock().date(),
            )
        )
        for modality, device, opener, section in (
            ("fingerprint", "fingerprint", open_fingerprint_sensor, config.fingerprint),
            ("iris", "iris_camera", open_iris_camera, config.iris),
        ):
            worker = CaptureWorker(
                modality,
                device,
                lambda opener=opener: opener(config),  # type: ignore[misc]
                matcher=lambda modality=modality: self._matchers[modality],  # type: ignore[misc]
                probes=self._probes,
                emit=self._queue.put,
                report=self._on_presence,
                monitor=self.monitor,
                min_quality=section.min_quality,
                capture_timeout_s=section.capture_timeout_s,
                clock=self._clock,
            )
            self._captures[modality] = worker
            self._workers.append(worker)
        self._watchlist = WatchlistWorker(
            lambda: self._matchers, self._probes, self._queue.put, self.monitor
        )
        self._workers.append(self._watchlist)
        self._device_monitor = DeviceMonitor(
            device_paths(config),
            self._on_path_change,
            self.monitor,
            check_interval_s=config.daemon.device_check_interval_s,
            use_udev=self._use_udev,
        )
        self._workers.append(self._device_monitor)
        self._housekeeping = _HousekeepingWorker(
            self, HOUSEKEEPING_INTERVAL_S, self._housekeeping_stall_s
        )

    def stop(self) -> None:
        """Lock the barrier, abort and record a running transaction, stop.

        Safe to call more than once, and after a failed :meth:`start`.
        """
        with self._state_lock:
            if self._stopped:
                return
            self._stopped = True
        lane_worker = self._workers[0] if self._workers else None

        # Stop housekeeping first, because it writes the stores and starts
        # reloads. A pass hung in SQLite or fsync is logged and left running,
        # and it ends quietly when its call returns (see housekeeping()).
        # NOTE: the audit writes and store closes below then wait for the
        # same locks, so this stop can still hang after STOPPING=1 was sent
        # until systemd's TimeoutStopSec kills the process.
        if self._housekeeping is not None:
            self._housekeeping.stop()
        if self._reload_thread is not None:
            self._reload_thread.join(30.0)

        # Stop the lane thread first, so nothing else drives the outputs.
        if lane_worker is not None and lane_worker.is_alive():
            lane_worker.stop()
        self._drain_into_lane()
        self._safe_lock()
        self._abort_transaction()
        for worker in self._workers[1:]:
            if worker.is_alive():
                worker.stop()
            else:
                worker.close()
        # Records kept after a failed write get one last try. Those that
        # still fail stay in the spool for the next start, and the journal
        # gets a line without personal data for each.
        if self._audit is not None:
            # Housekeeping copies a lost audit.db within a second, but a stop
            # right after the deletion comes first, and closing the log
            # loses the rows of the open file.
            self._audit.check_file()
            if self._pending_audit:
                self._flush_audit()
            self._log_unwritten_audit()
            self._log_unsaved_audit_rows()
        for resource in (self._turnstile, self._templates):
            if resource is not None:
                try:
                    resource.close()
                except (EdgeGateError, OSError) as err:
                    logger.error("closing %s failed: %s", type(resource).__name__, err)
        if self._audit is not None:
            head_seq, head_hash = self._audit.head()
            logger.info("audit log head at stop: row %d, hash %s", head_seq, head_hash)
            self._audit.close()
        # Released last, once nothing in the state folder is open any more.
        if self._runtime_lock is not None:
            self._runtime_lock.close()
        if self._daemon_lock is not None:
            self._daemon_lock.close()
        logger.info("lane runner stopped")

    def _log_unwritten_audit(self) -> None:
        """Log every audit record still unwritten, without personal data."""
        with self._state_lock:
            unwritten = list(self._pending_audit)
        if not unwritten:
            return
        with self._audit_flush_lock:
            is_spooled = self._spool is not None and self._spool.sync(unwritten)
        if is_spooled:
            assert self._spool is not None  # checked just above
            where = (
                f"kept in the audit spool {self._spool.spool.path} for the next start"
            )
        else:
            where = "and not spooled, so its details are lost"
        cause = "check free space and the state directory"
        if self._audit.file_problem:
            cause = "audit.db was deleted, moved or replaced while edge-gate ran"
        for record in unwritten:
            logger.error(
                "audit record not written before stop, %s (%s): %s %s "
                "transaction %s outcome %s: %s",
                where,
                cause,
                record.time_utc.isoformat(timespec="milliseconds"),
                record.kind,
                record.transaction_id or "-",
                record.outcome,
                record.reason,
            )

    def _log_unsaved_audit_rows(self) -> None:
        """Log the rows that the stop loses because audit.db could not be copied."""
        assert self._audit is not None  # called from stop() with an open log
        last_seq = self._audit.unsaved_head_seq
        if last_seq is None:
            return
        spool = self._spool
        if spool is not None and spool.is_current:
            unwritten = (
                f"The records not yet written are kept in the audit spool "
                f"{spool.spool.path} for the next start"
            )
        else:
            unwritten = "The audit spool cannot be written either (see above)"
        logger.error(
            "audit rows up to row %d are lost at this stop: they were only in "
            "the audit log file that edge-gate had open, and it could not be "
            "copied (%s). Keep audit.head and the journal as evidence. %s",
            last_seq,
            self._audit.file_problem,
            unwritten,
        )

    def _drain_into_lane(self) -> None:
        """Hand the queued events and the input levels now to the lane core.

        A traveller who crossed just before the stop is then counted, so the
        stop records the crossing instead of ``no_passage``. Only records
        are carried out: the outputs are locked right after, and no worker
        takes new work any more. Manual openings are dropped.
        """
        lane = self._lane
        if lane is None or self._turnstile is None:
            return
        try:
            for event in self._turnstile.read_inputs():
                self._queue.put(event)
        except (EdgeGateError, OSError) as err:
            logger.error("cannot read turnstile inputs at stop: %s", err)
        for _ in range(_STOP_DRAIN_MAX):
            try:
                event = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(event, ManualOpen):
                continue
            for command in lane.handle(event, self._clock()):
                if isinstance(command, RecordTransaction):
                    self._record_transaction(command)
                elif isinstance(command, RecordAlarm):
                    self._record_alarm(command)

    def _safe_lock(self) -> None:
        if self._turnstile is None:
            return
        try:
            self._turnstile.lock()
            self._turnstile.set_lamps(green=False, red=True)
        except (EdgeGateError, OSError) as err:
            logger.error("cannot lock the barrier at stop: %s", err)

    def _abort_transaction(self) -> None:
        """Record a transaction that the stop cut short.

        Before the decision, a lost turnstile makes the core abort the
        transaction and emit its record. During an accepted passage, the
        core is moved to the passage deadline, so it ends the passage and
        records the accepted transaction with the passages counted so far.
        The lock commands it adds have been carried out already.
        """
        lane = self._lane
        if lane is None or lane.transaction_id is None or self._audit is None:
            return
        now_s = self._clock()
        if lane.state is LaneState.PASSAGE and lane.deadline_s is not None:
            commands = lane.handle(Tick(), max(now_s, lane.deadline_s))
        else:
            commands = lane.handle(DeviceLost("turnstile"), now_s)
        for command in commands:
            if isinstance(command, RecordTransaction):
                self._record_transaction(command)
            elif isinstance(command, RecordAlarm):
                self._record_alarm(command)

    # Events from other threads

    def submit(self, event: Event) -> None:
        """Hand an event to the lane thread (thread-safe)."""
        self._queue.put(event)

    def _on_presence(self, device: str, is_present: bool) -> None:
        self._report_device(device, is_present, source="driver")

    def _on_path_change(self, device: str, is_present: bool) -> None:
        if not is_present:
            for worker in self._workers:
                if isinstance(worker, DeviceWorker) and worker.device_name == device:
                    worker.request_reopen()
        self._report_device(device, is_present, source="path")

    def _report_device(self, device: str, is_present: bool, *, source: str) -> None:
        """Track a device's presence per source (path check, driver error).

        The lane gets DeviceLost while any source reports the device missing.
        """
        with self._state_lock:
            sources = self._lost.setdefault(device, set())
            was_lost = bool(sources)
            if is_present:
                sources.discard(source)
            else:
                sources.add(source)
            is_lost = bool(sources)
        if is_lost == was_lost:
            return
        self._publish({"type": "device", "device": device, "present": not is_lost})
        self._queue.put(DeviceLost(device) if is_lost else DeviceBack(device))  # type: ignore[arg-type]

    # The lane thread's work

    def lane_step(self, timeout_s: float) -> None:
        """Take one event (or a tick after ``timeout_s``) and run its commands.

        Called only from the lane thread.
        """
        assert self._lane is not None  # start() built it
        try:
            event: Event = self._queue.get(timeout=timeout_s)
        except queue.Empty:
            event = Tick()
        if isinstance(event, FireReleaseChanged | KeySwitchChanged | TamperChanged):
            self._note_input_level(event)
        if isinstance(event, ManualOpen):
            self._handle_manual_open(event)
            return
        commands = self._lane.handle(event, self._clock())
        self._execute_all(commands)

    def _note_input_level(
        self, event: FireReleaseChanged | KeySwitchChanged | TamperChanged
    ) -> None:
        """Keep the level of an input that explains a closed lane.

        The status reads these levels instead of the GPIO lines, so it
        does no device I/O and matches the events the lane core received.
        """
        if isinstance(event, FireReleaseChanged):
            name = "fire_release"
        elif isinstance(event, KeySwitchChanged):
            name = "key_switch"
        else:
            name = "tamper"
        with self._state_lock:
            self._input_levels[name] = event.active

    def _handle_manual_open(self, event: ManualOpen) -> None:
        """Carry out the ManualOpen of the waiting request and set its result.

        A ManualOpen that no request waits for (its caller gave up) is
        dropped, so the barrier never opens unless a caller receives the result.
        """
        assert self._lane is not None  # start() built it
        with self._state_lock:
            request = self._manual_request
            if request is None or request.event is not event:
                logger.warning("dropped a manual opening whose request had ended")
                return
            request.claimed = True
        rejected_before = self._lane.rejected_events
        commands = self._lane.handle(event, self._clock())
        self._execute_all(commands)
        request.opened = (
            self._lane.state is LaneState.MANUAL_PASSAGE
            and self._lane.rejected_events == rejected_before
        )
        if not request.opened:
            request.why = (
                self._lane.last_rejection or f"the lane stayed {self._lane.state.value}"
            )
        request.done.set()

    def poll_inputs(self) -> None:
        """Feed every input level to the lane (edges can be missed)."""
        try:
            events = self._turnstile.read_inputs()
        except DeviceError as err:
            logger.error("cannot read turnstile inputs: %s", err)
            return
        for event in events:
            self._queue.put(event)

    def _execute_all(self, commands: list[Command]) -> None:
        for command in commands:
            try:
                self._execute(command)
            except (DeviceError, OSError) as err:
                # Only turnstile commands touch a device in this thread.
                logger.error("command %s failed: %s", type(command).__name__, err)
                self._report_device("turnstile", False, source="driver")

    def _execute(self, command: Command) -> None:
        if self._turnstile.apply(command):
            fields = dataclasses.asdict(command)
            self._publish(
                {"type": "output", "command": type(command).__name__, **fields}
            )
            return
        match command:
            case ShowMessage():
                self._show(command.message)
            case LookUpEnrolment():
                self._look_up(command)
            case StartCapture():
                enrolled = self._enrolled.get(command.transaction_id, {})
                self._captures[command.modality].submit(
                    command, enrolled.get(command.modality, {})
                )
                self._publish(
                    {
                        "type": "capture",
                        "transaction_id": command.transaction_id,
                        "modality": command.modality,
                        "attempt": command.attempt,
                    }
                )
            case RunWatchlistSearch():
                assert self._watchlist is not None  # built in start()
                self._watchlist.submit(command.transaction_id, command.modalities)
            case CancelTransaction():
                for worker in self._captures.values():
                    worker.cancel(command.transaction_id)
            case RecordAlarm():
                self._record_alarm(command)
            case RecordTransaction():
                self._record_transaction(command)

    def _show(self, message: str) -> None:
        with self._state_lock:
            if self._holds and message == "place_document":
                message = "out_of_service"
            changed = message != self._message
            self._message = message
        if changed:
            self._publish({"type": "display", "message": message})

    def _look_up(self, command: LookUpEnrolment) -> None:
        tx = command.transaction_id
        try:
            enrolment = self._templates.lookup(
                command.issuing_state, command.document_number
            )
        except EdgeGateError as err:
            # Send no event, so the lane's lookup deadline aborts the transaction.
            logger.error("enrolment lookup for %s failed: %s", tx, err)
            return
        if enrolment is None:
            self._queue.put(EnrolmentNotFound(tx))
            return
        today = self._wall_clock().date()
        self._enrolled[tx] = {
            "fingerprint": dict(enrolment.fingerprints),
            "iris": dict(enrolment.irises),
        }
        self._queue.put(
            EnrolmentFound(
                tx,
                enrolment_id=enrolment.enrolment_id,
                expired=enrolment.enrolment_expiry < today,
                revoked=enrolment.revoked,
                watchlisted=enrolment.watchlisted,
            )
        )

    def _service_record(self, reason: str, alarms: tuple[str, ...] = ()) -> AuditRecord:
        """Return a ``service`` audit row of this lane, timed now, reason cut to 500."""
        return AuditRecord(
            time_utc=self._wall_clock(),
            kind="service",
            lane_id=self.config.daemon.lane_id,
            transaction_id="",
            outcome="none",
            reason=reason[:500],
            alarms=alarms,
        )

    def _record_alarm(self, command: RecordAlarm) -> None:
        record = command.record
        self._publish({"type": "alarm", **record.to_json_dict()})
        if record.transaction_id is not None:
            return  # part of the transaction's own record
        self._append_audit(
            self._service_record(
                f"alarm {record.alarm.value}: {record.detail}",
                alarms=(record.alarm.value,),
            )
        )

    def _record_transaction(self, command: RecordTransaction) -> None:
        tx = command.record.transaction_id
        durations: dict[str, float] = {}
        for worker in self._captures.values():
            durations.update(worker.durations_ms.pop(tx, {}))
        assert self._watchlist is not None  # built in start()
        watchlist_scores = self._watchlist.pop_scores(tx)
        record = audit_record(
            command.record,
            lane_id=self.config.daemon.lane_id,
            now_utc=self._wall_clock(),
            extra_durations_ms=durations,
            watchlist_scores=watchlist_scores,
            watchlist_thresholds={
                name: self._matchers[name].watchlist_threshold
                for name in watchlist_scores
            },
        )
        self._append_audit(record)
        self._probes.discard(tx)
        self._enrolled.pop(tx, None)
        outcome = command.record.outcome.value
        with self._state_lock:
            self._counts[outcome] = self._counts.get(outcome, 0) + 1
            self._last_transaction = {
                "transaction_id": tx,
                "outcome": outcome,
                "reason": command.record.reason,
                "latency_ms": command.record.latency_ms,
            }
        self._publish({"type": "transaction", **self._last_transaction})

    def _append_audit(self, record: Any) -> None:
        """Append a record, or keep it and hold service until it is written.

        A record that cannot be written (disk full, I/O error) is kept in
        memory and retried by :meth:`housekeeping`. Meanwhile the ``audit``
        hold stops new transactions, so no crossing goes unrecorded.

        A record that the audit log would reject (text that is not valid
        Unicode, such as a reason with a lone surrogate) is written with the
        invalid parts replaced, because it would otherwise block every later
        record and could not be spooled either.
        """
        try:
            record.check()
        except ValueError as err:
            logger.error(
                "audit record of transaction %s is invalid (%s); writing it with "
                "the invalid parts replaced",
                ascii(record.transaction_id)[:100],
                err,
            )
            record = record.sanitized()
        with self._state_lock:
            self._pending_audit.append(record)
        self._flush_audit()

    def _flush_audit(self) -> None:
        # One flush at a time (lane thread and housekeeping), so no record
        # is written twice.
        with self._audit_flush_lock:
            with self._state_lock:
                pending = list(self._pending_audit)
            written = 0
            has_failed = False
            # A retried record may be in the log already: the check after
            # its commit found the audit log's path changed. While the path
            # names another file, the append fails at once, but contains()
            # would wait for the copy of the open file.
            is_retry = self._audit_write_failed and not self._audit.file_problem
            try:
                for record in pending:
                    if not (is_retry and self._audit.contains(record)):
                        self._audit.append(record)
                    written += 1
            # Any error, not only the store's own: an unexpected one must not
            # end the lane thread or the stop with the records unspooled.
            except Exception as err:
                has_failed = True
                logger.error(
                    "audit log write failed, %d records kept for retry: %r",
                    len(pending) - written,
                    err,
                )
            with self._state_lock:
                del self._pending_audit[:written]
                self._audit_write_failed = has_failed
                unwritten = list(self._pending_audit)
            if self._spool is not None:
                self._spool.sync(unwritten)
        # A stopping lane takes no new traveller, and its stores may be closed.
        is_held = "audit" in self._holds or (
            bool(self._audit.file_problem) and "audit_file" in self._holds
        )
        if has_failed != is_held and not self._stopped:
            self._check_holds()

    def _publish(self, event: dict[str, Any]) -> None:
        self.events.publish(
            {"time_utc": self._wall_clock().isoformat(timespec="milliseconds"), **event}
        )

    # Service holds and housekeeping (housekeeping thread)

    def _check_holds(self, templates: TemplateStatus | None = None) -> None:
        """Recompute the service holds.

        A ``templates`` status read by the caller saves a second store read.
        """
        holds: dict[str, str] = {}
        now = self._wall_clock()
        trusted = self._trusted_clock
        if self.config.daemon.require_trusted_clock and trusted is not None:
            latest = trusted.latest()
            if latest is not None and not trusted.clock_is_trustworthy(now):
                holds["clock"] = (
                    f"system clock {now.isoformat(timespec='seconds')} is behind the "
                    f"latest trusted time {latest.isoformat(timespec='seconds')}; "
                    "fix the time (RTC or NTP)"
                )
        if templates is None and self._templates is not None:
            templates = self._templates.status()
        if templates is not None:
            status = templates
            max_age_s = self.config.sync.max_offline_age_h * 3600.0
            if status.file_problem:
                # templates.db was moved or replaced since the start.
                holds["templates"] = status.file_problem
            elif status.key_problem:
                # templates.db was sealed with another key since the start.
                holds["templates"] = status.key_problem
            elif not status.is_usable(now, max_age_s):
                holds["templates"] = (
                    "no template set applied yet; run edge-gate sync"
                    if status.version == 0
                    else "templates are past their offline limit; run edge-gate sync"
                )
        with self._state_lock:
            if self._reloading_version is not None:
                holds["watchlist"] = (
                    f"loading the watchlist of template version "
                    f"{self._reloading_version}"
                )
            elif self._reload_error:
                holds["watchlist"] = (
                    f"cannot load the watchlist of the new templates "
                    f"({self._reload_error}); retrying every {RELOAD_RETRY_S:.0f} s"
                )
            if self._audit is not None and self._audit.head_problem:
                # Refuse service until an engineer has kept the evidence and
                # acknowledged by moving the head file aside.
                holds["audit_chain"] = (
                    f"audit log does not match its head file: "
                    f"{self._audit.head_problem}; copy audit.db and audit.head, "
                    "move audit.head aside and restart edge-gate.service"
                )
            if self._spool is not None and self._spool.problem:
                holds["audit_spool"] = self._spool.problem
            file_problem = self._audit_file_hold()
            if file_problem:
                holds["audit_file"] = file_problem
            if self._audit_write_failed and not self._audit.file_problem:
                holds["audit"] = (
                    f"{len(self._pending_audit)} audit records not yet written; "
                    "check free space and the state directory"
                )
            changed = holds != self._holds
            self._holds = holds
        if changed:
            for reason in holds.values():
                logger.warning("lane out of service: %s", reason)
            if not holds:
                logger.info("lane back in service: no service hold remains")
            self._publish({"type": "service", "holds": dict(holds)})
            self._queue.put(Tick())

    def _audit_file_hold(self) -> str:
        """Return the ``audit_file`` hold's reason, or "" when there is none.

        Call with ``_state_lock`` held.
        """
        if self._audit is None:
            return ""
        problem = str(self._audit.file_problem or self._audit.head_write_problem)
        if not problem or not self._audit.file_problem or not self._pending_audit:
            return problem
        count = len(self._pending_audit)
        records = "1 audit record is" if count == 1 else f"{count} audit records are"
        spool = self._spool
        if spool is None or not spool.is_current:
            return (
                f"{problem}. {records} in memory only, because the audit spool "
                "cannot be written (see the journal), and a stop loses them"
            )
        return (
            f"{problem}. {records} kept in the audit spool {spool.spool.path}, "
            "and the next start appends them"
        )

    def _check_audit_file(self) -> None:
        """Check the audit log's file, and record a new problem in the spool.

        The ``service`` row cannot go into the log, so it waits with the
        other unwritten records and reaches the log at the next start.
        """
        problem = self._audit.check_file()
        if not problem:
            self._is_file_problem_recorded = False
            return
        if self._is_file_problem_recorded:
            return
        self._is_file_problem_recorded = True
        self._append_audit(self._service_record(problem))

    def housekeeping(self) -> None:
        """Run one pass of the periodic work that belongs to no device.

        The pass retries audit writes, re-checks the service holds, starts a
        watchlist reload after a template update and prunes the audit log
        when due. The housekeeping worker calls this every
        ``HOUSEKEEPING_INTERVAL_S`` seconds. It may block on SQLite and
        fsync, so the supervisor's main thread never calls it.

        :meth:`stop` waits up to 5 s for a pass and then closes the
        stores. A pass that the stop overtakes skips its remaining steps,
        and a store error it meets after the stop began is logged at INFO.

        Raises:
            EdgeGateError: a store read for the service holds failed while
                the lane runs. The housekeeping worker then stops with a
                failure.
        """
        if not self._started or self._stopped:
            return
        try:
            self._run_housekeeping_steps()
        except EdgeGateError as err:
            if not self._stopped:
                raise
            logger.info("housekeeping pass ended by the stop: %s", err)

    def _run_housekeeping_steps(self) -> None:
        self._check_audit_file()
        # While the path names no usable audit log, every retry would fail.
        if self._audit_write_failed and not self._audit.file_problem:
            self._flush_audit()
        if self._stopped:
            return
        # One store read serves the holds and the watchlist check.
        templates = self._templates.status()
        self._check_holds(templates)
        if self._stopped:
            return

        # A template update applied by edge-gate sync changes the watchlist.
        if templates.version != self._template_version:
            self._start_watchlist_reload(templates.version)
        if self._stopped:
            return

        interval_s = self.config.audit.prune_interval_h * 3600.0
        now_s = self._clock()
        if self._last_prune_s is None or now_s - self._last_prune_s >= interval_s:
            self._last_prune_s = now_s
            try:
                self._audit.prune(self.config.audit.retention_days)
            except EdgeGateError as err:
                if self._stopped:
                    raise
                logger.error("audit retention failed: %s", err)

    # Status

    def status(self) -> dict[str, Any]:
        """Return a snapshot of the lane for ``edge-gate status``.

        It reads the template store and may wait on SQLite, so the control
        socket's thread calls it and the supervisor never does. After
        :meth:`stop` the state is ``stopped`` and the snapshot leaves out
        the template store, which is closed then. A worker that stopped,
        stalled or whose thread ended makes ``in_service`` false, and
        ``causes`` then names it with its error or the seconds since its
        last progress.
        """
        snapshot = self._memory_status(self.worker_problems())
        snapshot["workers"] = [
            {
                "name": h.name,
                "seconds_since_beat": round(h.seconds_since_beat, 3),
                "deadline_s": h.deadline_s,
                "stalled": h.is_stalled,
                "error": h.error,
            }
            for h in self.monitor.snapshot()
        ]
        if self._templates is not None and snapshot["state"] != "stopped":
            templates = self._templates.status()
            snapshot["templates"] = {
                "version": templates.version,
                "enrolments": templates.enrolments,
                "updated_at": _iso(templates.updated_at),
                "expires_at": _iso(templates.expires_at),
                # The version whose watchlist the 1:N search uses now.
                "watchlist_version": self._template_version,
                "watchlist_sizes": {
                    name: m.gallery_size for name, m in self._matchers.items()
                },
                "watchlist_thresholds": {
                    name: m.watchlist_threshold for name, m in self._matchers.items()
                },
            }
        return snapshot

    def _memory_status(self, worker_problems: list[str]) -> dict[str, Any]:
        """Return the part of :meth:`status` kept in memory (no I/O).

        Args:
            worker_problems: :meth:`worker_problems`, read once by the caller.
        """
        lane = self._lane
        with self._state_lock:
            stopped = self._stopped
            lost = sorted(name for name, sources in self._lost.items() if sources)
            if stopped:
                state = "stopped"
            else:
                state = lane.state.value if lane is not None else "starting"
            return {
                "lane_id": self.config.daemon.lane_id,
                "state": state,
                "in_service": not stopped
                and lane is not None
                and not lost
                and not self._holds
                and not worker_problems
                and lane.state is not LaneState.OUT_OF_SERVICE,
                "message": self._message,
                "devices_lost": lost,
                "causes": self._input_causes() + worker_problems,
                "holds": dict(self._holds),
                "transaction_id": lane.transaction_id if lane is not None else None,
                "counts": dict(self._counts),
                "last_transaction": self._last_transaction,
                "started_utc": self._started_wall.isoformat(timespec="seconds"),
                # True when no real GPIO line is driven ([turnstile]
                # pin_factory = "mock"), even while the lane is in service.
                "mock_gpio": self.config.turnstile.pin_factory == "mock",
            }

    def _input_causes(self) -> list[str]:
        """Return the active inputs that free or close the lane, as text.

        These explain ``emergency`` (fire release) and an out-of-service
        lane closed by the key switch or the tamper contact. The levels are
        those the lane thread last handed to the lane core, so no GPIO line
        is read. After :meth:`stop` the list is empty.
        """
        config = self.config.turnstile
        inputs = (
            ("fire_release", config.fire_release_pin, "fire release input active"),
            ("key_switch", config.key_switch_pin, "key switch set to closed"),
            ("tamper", config.tamper_pin, "tamper contact open"),
        )
        with self._state_lock:
            if self._stopped:
                return []
            levels = dict(self._input_levels)
        return [
            f"{text} (GPIO {pin})" for name, pin, text in inputs if levels.get(name)
        ]

    def worker_problems(self) -> list[str]:
        """Return why a worker keeps the lane out of service, one line each.

        A worker is listed when it stopped on an error, made no progress within
        its deadline, or its thread is no longer running. The list reads
        memory only and is empty before :meth:`start` and after :meth:`stop`.
        """
        with self._state_lock:
            if not self._started or self._stopped:
                return []
        problems: list[str] = []
        named: set[str] = set()
        for health in self.monitor.snapshot():
            if health.problem:
                problems.append(health.problem)
                named.add(health.name)
        # A thread that ended before the stop while its monitor entry still
        # looks healthy (it ended between two beats) is caught here. A
        # thread not started yet has no ident.
        for worker in [*self._workers, self._housekeeping]:
            if worker is None or worker.ident is None or worker.name in named:
                continue
            if not worker.is_alive():
                problems.append(f"worker {worker.name} is not running")
        return problems

    def status_line(self) -> str:
        """Return the one line for ``STATUS=``: state and why not in service.

        A stopped or stalled worker reads "out of service: worker NAME ...".
        Reads memory only, never SQLite or GPIO, because the supervisor calls
        it in the main thread, where a long call would delay SIGTERM.
        """
        worker_problems = self.worker_problems()
        status = self._memory_status(worker_problems)
        parts = [f"lane {status['lane_id']} {status['state']}"]
        if status["mock_gpio"]:
            parts.append(MOCK_GPIO_TEXT)
        parts.extend(c for c in status["causes"] if c not in worker_problems)
        parts.extend(f"out of service: {problem}" for problem in worker_problems)
        if status["devices_lost"]:
            parts.append(f"out of service: {', '.join(status['devices_lost'])} missing")
        for reason in status["holds"].values():
            parts.append(f"out of service: {reason}")
        counts = status["counts"]
        if counts:
            parts.append(
                "transactions "
                + " ".join(f"{k}={v}" for k, v in sorted(counts.items()))
            )
        return "; ".join(parts)

    def devices(self) -> dict[str, Any]:
        """Return each device's path and presence for ``edge-gate devices``."""
        paths = device_paths(self.config)
        with self._state_lock:
            lost = {name: sorted(sources) for name, sources in self._lost.items()}
        result = {
            name: {
                "path": path,
                "present": not lost.get(name),
                "lost_by": lost.get(name, []),
            }
            for name, path in paths.items()
        }
        result["turnstile"] = {
            "path": f"GPIO ({self.config.turnstile.pin_factory})",
            "present": not lost.get("turnstile"),
            "lost_by": lost.get("turnstile", []),
        }
        return result

    def control_handlers(self) -> Mapping[str, Callable[[Mapping[str, Any]], Any]]:
        """Return the control socket's commands, bound to this runner."""
        from edge_gate.daemon._field import FieldCommands

        return FieldCommands(self).handlers()

    # Used by the field commands

    def manual_open(self, reason: str, timeout_s: float = 2.0) -> dict[str, Any]:
        """Let one person through on an engineer's request, and record it.

        The audit row is written before the lane core gets the request, so
        no opening goes unrecorded. Openings run one at a time, and success
        is reported only when the lane thread took this call's ManualOpen
        and entered ``manual_passage``. The core opens only a lane without a
        transaction or fire release. A refused request gets a row with
        outcome ``none``; when the lane does not open within ``timeout_s``,
        a second row records that.

        Raises:
            ControlError: the lane is not running, a transaction is in
                progress, the reason is empty, or the lane did not open.
            StoreError: the audit row could not be written; nothing opened.
        """
        if not self._manual_lock.acquire(timeout=timeout_s + 1.0):
            raise ControlError(
                "another manual opening is in progress; try again in a few seconds"
            )
        try:
            return self._manual_open_locked(reason, timeout_s)
        finally:
            self._manual_lock.release()

    def _manual_open_locked(self, reason: str, timeout_s: float) -> dict[str, Any]:
        lane = self._lane
        if lane is None or not self._started or self._stopped:
            raise ControlError("the lane is not running")
        lane_id = self.config.daemon.lane_id
        # Checked before any row: an empty reason is a usage error.
        record = manual_open_record(reason, lane_id=lane_id, now_utc=self._wall_clock())
        state = lane.state
        refusal = ""
        if state is LaneState.EMERGENCY:
            causes = "; ".join(self._input_causes()) or "fire release active"
            refusal = (
                f"the lane is in emergency ({causes}): the barrier is already "
                "held free, and a manual opening is possible once the fire "
                "release clears"
            )
        elif state not in _MANUAL_OPEN_STATES:
            refusal = (
                f"the lane is in state {state.value}; a manual opening needs an idle "
                "or out-of-service lane, so wait for the transaction to end"
            )
        if refusal:
            self._append_audit(
                dataclasses.replace(
                    record,
                    outcome="none",
                    reason=manual_refusal_reason(state, record.reason),
                )
            )
            raise ControlError(refusal)
        try:
            entry = self._audit.append(record)
        except RowsInLostFileError as err:
            # The row reaches the log with the copy of the open file, so a
            # second row must record that the opening did not happen.
            logger.error("manual opening rejected, the barrier stays locked: %s", err)
            self._record_manual_not_opened(
                err.entries[0].seq, "audit.db was lost while the row was written"
            )
            raise ControlError(f"the barrier stays locked: {err}") from err
        except StoreError as err:
            logger.error("manual opening rejected, the barrier stays locked: %s", err)
            raise ControlError(f"the barrier stays locked: {err}") from err
        request = _ManualRequest(ManualOpen())
        with self._state_lock:
            self._manual_request = request
        # ManualOpen is missing from the gate.Event union; Lane.handle takes it.
        self._queue.put(request.event)

        request.done.wait(timeout_s)
        with self._state_lock:
            # Withdrawn unless the lane thread took it: then it is dropped.
            self._manual_request = None
            claimed = request.claimed
        answered = claimed and request.done.wait(timeout_s)
        if answered and request.opened:
            self._publish({"type": "manual_open", "audit_seq": entry.seq})
            logger.info("manual opening recorded as audit row %d", entry.seq)
            return {"opened": True, "audit_seq": entry.seq}

        failure = (
            request.why if answered else "the lane thread did not take the request"
        )
        self._record_manual_not_opened(entry.seq, failure)
        raise ControlError(f"the lane did not open: {failure}")

    def _record_manual_not_opened(self, seq: int, failure: str) -> None:
        """Append the row that records that the manual opening of row ``seq`` failed."""
        self._append_audit(
            AuditRecord(
                time_utc=self._wall_clock(),
                kind="manual_open",
                lane_id=self.config.daemon.lane_id,
                transaction_id="",
                outcome="none",
                reason=f"manual opening of row {seq} did not happen: {failure}"[:500],
            )
        )

    @property
    def matchers(self) -> dict[str, Matcher]:
        """The loaded matchers by modality (empty before start)."""
        return dict(self._matchers)

    def device_worker(self, name: str) -> DeviceWorker | None:
        """Return the worker thread named ``name`` that owns a device."""
        for worker in self._workers:
            if isinstance(worker, DeviceWorker) and worker.name == name:
                return worker
        return None

    @property
    def audit(self) -> Any:
        """The open audit log."""
        return self._audit

    @property
    def turnstile(self) -> Any:
        """The turnstile, or None before start."""
        return self._turnstile

    @property
    def lane(self) -> Lane | None:
        """The lane core, or None before start."""
        return self._lane


class _LaneWorker(Worker):
    """The thread that owns the lane core."""

    def __init__(self, runner: LaneRunner) -> None:
        super().__init__(
            "lane", runner.monitor, deadline_s=runner.config.daemon.worker_stall_s
        )
        self._runner = runner
        self._poll_s = runner.config.turnstile.input_poll_s
        self._next_poll = 0.0

    def step(self) -> None:
        now = time.monotonic()
        if now >= self._next_poll:
            self._runner.poll_inputs()
            self._next_poll = now + self._poll_s
        self._runner.lane_step(timeout_s=min(self._poll_s, 0.1))


class _HousekeepingWorker(Worker):
    """The thread that runs :meth:`LaneRunner.housekeeping` every interval.

    Its deadline is the interval plus ``stall_s``, the time one pass may
    take, so a pass hung in SQLite or fsync stops the watchdog pings.
    """

    def __init__(self, runner: LaneRunner, interval_s: float, stall_s: float) -> None:
        super().__init__(
            "housekeeping", runner.monitor, deadline_s=interval_s + stall_s
        )
        self._runner = runner
        self._interval_s = interval_s

    def step(self) -> None:
        self._runner.housekeeping()
        self.stop_event.wait(self._interval_s)


def _iso(moment: datetime.datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="seconds")
