"""Wire the real lane runner to the rig's emulated devices, in one process.

:class:`LaneRig` builds a complete lane in a work folder:

1. A template repository built by the real publisher from enrolment
   records, served by :class:`~edge_gate.rig.template_server.TemplateServer`
   on 127.0.0.1, and pulled into ``templates.db`` by the real sync client.
2. The document reader and fingerprint module emulators on
   pseudo-terminals behind stable symlinks, and a camera folder for the
   directory iris camera.
3. gpiozero's mock pin factory, shared by the lane's turnstile and the
   rig's :class:`~edge_gate.rig.walker.Walker`.
4. :class:`edge_gate.daemon.LaneRunner`, unchanged, with a configuration
   that points at all of the above.
5. The lane's control socket, served as ``edge-gate run`` serves it, so
   that the field commands given ``--config`` with the rig's configuration
   reach this lane. It listens from the moment the lane is in service and
   closes before the lane stops.

The lane's timeouts are the defaults multiplied by the run's time scale
(never below the configuration's lower bounds), so that a scaled-down
traveller meets a lane that waits proportionally.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import logging
import queue
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edge_gate._closing import Closing
from edge_gate.config import GateConfig, config_from_mapping
from edge_gate.errors import EdgeGateError
from edge_gate.rig.template_server import TemplateServer

logger = logging.getLogger(__name__)

_READY_TIMEOUT_S = 30.0
# Paths of the lane's configuration and control socket in the work folder.
CONFIG_FILE = Path("gate", "edge-gate.toml")
CONTROL_SOCKET = Path("run", "control.sock")
# Realistic time between two beam or barrier changes of the walking person
# (an estimate: half a stride).
WALK_STEP_S = 0.5


class SimulationError(EdgeGateError):
    """The rig could not be built or the lane did not come up."""


class ComponentMissingError(SimulationError):
    """A part of the lane the rig needs is not in this installation yet."""


def _require(module: str, *names: str) -> list[Any]:
    """Import ``names`` from ``module`` or raise ComponentMissingError."""
    try:
        imported = __import__(module, fromlist=list(names))
        return [getattr(imported, name) for name in names]
    except (ImportError, AttributeError) as err:
        raise ComponentMissingError(
            f"{module}.{'/'.join(names)} is not available: {err}"
        ) from err


def _run_quietly(cli_main: Any, argv: list[str]) -> int:
    """Run an ``edge-gate`` command in-process with its stdout in the log.

    Simulate's own stdout is its report (one JSON object with ``--json``),
    so the publisher's and sync's progress lines go to the debug log.
    Their errors still go to stderr.
    """
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        status: int = cli_main(argv, nested=True)
    for line in captured.getvalue().splitlines():
        logger.debug("edge-gate %s: %s", argv[0], line)
    return status


def _scaled(default_s: float, scale: float, low_s: float) -> float:
    return round(max(low_s, default_s * scale), 3)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def write_toml(path: Path, sections: dict[str, dict[str, Any]]) -> None:
    """Write a configuration of flat tables (strings, numbers, booleans)."""
    lines: list[str] = []
    for name, table in sections.items():
        lines.append(f"[{name}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in table.items())
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")


class LaneRig(Closing):
    """A lane built in ``work_dir`` from emulators and the real daemon code.

    Use as a context manager; every part is closed on exit, in reverse order
    of creation, even when building failed halfway.

    Args:
        work_dir: an empty folder for repository, state, devices and camera.
        time_scale: factor for the lane's timeouts and the rig's sleeps.
        models_dir: the models folder; None uses the shipped one.
        serve_control: whether to serve the lane's control socket. False
            where its path in ``work_dir`` is too long for a UNIX socket.
    """

    def __init__(
        self,
        work_dir: Path,
        *,
        time_scale: float,
        models_dir: Path | None = None,
        serve_control: bool = True,
    ) -> None:
        self.work_dir = work_dir
        self.time_scale = time_scale
        self.models_dir = models_dir
        self.serve_control = serve_control
        self._stack = contextlib.ExitStack()
        self.config: GateConfig | None = None
        self.config_path = work_dir / CONFIG_FILE
        self.control_socket = work_dir / CONTROL_SOCKET
        self.control: Any = None
        self.camera_dir = work_dir / "camera"
        self.server: TemplateServer | None = None
        self.document_reader: Any = None
        self.fingerprint_module: Any = None
        self.pin_factory: Any = None
        self.runner: Any = None
        self.walker: Any = None
        self.events: queue.Queue[dict[str, Any]] | None = None

    def close(self) -> None:
        """Stop the lane and close every emulator and the server."""
        self._stack.close()

    # Enrolment: publisher, server, sync

    def enrol(self, records: Sequence[dict[str, Any]]) -> None:
        """Publish enrolment records and sync them into the gate's store.

        Args:
            records: enrolment records in the publisher's input layout
                (JSON objects; templates as image paths or base64).

        Raises:
            ComponentMissingError: the publisher or sync is not installed.
            EdgeGateError: publishing or syncing failed.
        """
        (cli_main,) = _require("edge_gate.cli", "main")
        (generate_key_file,) = _require("edge_gate.store", "generate_key_file")
        publisher_dir = self.work_dir / "publisher"
        records_path = self.work_dir / "enrolments.jsonl"
        records_path.write_text(
            "".join(json.dumps(r) + "\n" for r in records), encoding="utf-8"
        )

        status = _run_quietly(
            cli_main, ["publish", "init", "--dir", str(publisher_dir)]
        )
        if status != 0:
            raise SimulationError(
                f"edge-gate publish init failed with status {status}; "
                "its error is printed above"
            )
        publish_args = ["publish", "records", "--dir", str(publisher_dir)]
        publish_args += ["--input", str(records_path)]
        if self.models_dir is not None:
            publish_args += ["--models-dir", str(self.models_dir)]
        status = _run_quietly(cli_main, publish_args)
        if status != 0:
            raise SimulationError(
                f"edge-gate publish failed with status {status}; "
                "its error is printed above"
            )

        self.server = self._stack.enter_context(
            TemplateServer(publisher_dir / "repository")
        )
        gate_dir = self.work_dir / "gate"
        gate_dir.mkdir(parents=True, exist_ok=True)
        key_path = gate_dir / "template.key"
        generate_key_file(key_path)
        self._write_config(
            repository_url=self.server.url,
            fleet_key=publisher_dir / "keys" / "fleet.key",
            trusted_root=publisher_dir / "repository" / "metadata" / "1.root.json",
            key_path=key_path,
        )
        status = _run_quietly(cli_main, ["sync", "--config", str(self.config_path)])
        if status != 0:
            raise SimulationError(
                f"edge-gate sync failed with status {status}; "
                "its error is printed above"
            )

    def _write_config(
        self,
        *,
        repository_url: str,
        fleet_key: Path,
        trusted_root: Path,
        key_path: Path,
    ) -> None:
        scale = self.time_scale
        devices = self.work_dir / "dev"
        devices.mkdir(parents=True, exist_ok=True)
        self.camera_dir.mkdir(parents=True, exist_ok=True)
        sections: dict[str, dict[str, Any]] = {
            "document_reader": {
                "port": str(devices / "document-reader"),
                "step_timeout_s": _scaled(30.0, scale, 2.0),
            },
            "fingerprint": {
                "port": str(devices / "fingerprint"),
                "capture_timeout_s": _scaled(15.0, scale, 3.0),
            },
            "iris": {
                "source": "directory",
                "directory": str(self.camera_dir),
                "capture_timeout_s": _scaled(15.0, scale, 3.0),
            },
            "turnstile": {
                "pin_factory": "mock",
                # gpiozero's mock pins start at their pull level (high) until
                # the walker drives them. An active-low tamper loop reads
                # "closed" at that level, so the rig's start raises no alarm.
                "tamper_active_high": False,
                "passage_timeout_s": _scaled(10.0, scale, 2.0),
            },
            "policy": {"referral_display_s": _scaled(5.0, scale, 1.0)},
            "store": {
                "state_dir": str(self.work_dir / "gate" / "state"),
                "key_file": str(key_path),
            },
            "sync": {
                "repository_url": repository_url,
                "fleet_key_file": str(fleet_key),
                "trusted_root_file": str(trusted_root),
                "retries": 0,
                "timeout_s": 10.0,
            },
            "daemon": {
                "control_socket": str(self.control_socket),
                # No control group, because the server accepts root and the
                # rig's own user without one, and a group that does not exist
                # logs a warning.
                "control_group": "",
                "models_dir": str(self.models_dir or ""),
                "use_udev": False,
                "device_check_interval_s": 0.2,
                "log_level": "WARNING",
            },
        }
        write_toml(self.config_path, sections)
        self.config = config_from_mapping(sections, source=str(self.config_path))

    # Devices and the lane

    def start_lane(self) -> None:
        """Start the emulators, the lane runner and the walker; wait for service.

        Then the control socket starts listening, unless ``serve_control``
        is False.

        Raises:
            ComponentMissingError: an emulator, the runner, the walker or the
                control server is not installed.
            SimulationError: the lane did not come into service in time.
            ConfigError: the control socket's folder cannot be created or
                written, or a file that is not a socket is in the way.
            DaemonRunningError: a daemon listens on the control socket, or
                holds the state folder's lock.
            ControlError: the control socket cannot be checked or bound.
        """
        if self.config is None:
            raise SimulationError("enrol() must run before start_lane()")
        config = self.config
        (control_cls,) = _require("edge_gate.daemon._control", "ControlServer")
        (prepare_socket_folder,) = _require(
            "edge_gate.daemon._paths", "prepare_socket_folder"
        )
        # The same check as in edge-gate run. A daemon already listening on
        # the socket, or a folder where it cannot be bound, stops the start
        # before the lane opens anything. A stale socket file is removed
        # later, when the control server binds, because only then does the
        # runner hold the state folder's lock.
        if self.serve_control:
            prepare_socket_folder(self.control_socket)
        (reader_cls,) = _require(
            "edge_gate.rig.document_reader", "DocumentReaderEmulator"
        )
        (module_cls,) = _require(
            "edge_gate.rig.fingerprint_module", "FingerprintModuleEmulator"
        )
        (runner_cls,) = _require("edge_gate.daemon", "LaneRunner")
        walker_cls, wired_mock_factory = _require(
            "edge_gate.rig.walker", "Walker", "wired_mock_factory"
        )

        self.document_reader = self._stack.enter_context(
            reader_cls(link_path=Path(config.document_reader.port))
        )
        self.fingerprint_module = module_cls(
            profile=config.fingerprint.profile, link_path=Path(config.fingerprint.port)
        )
        self._stack.callback(self.fingerprint_module.close)
        # Inputs come up at their wired idle levels, as on the lane, so the
        # runner never reads a fire release before the walker is built.
        self.pin_factory = wired_mock_factory(config.turnstile)
        self._stack.callback(self.pin_factory.close)

        self.runner = runner_cls(config, pin_factory=self.pin_factory, use_udev=False)
        self.events = self.runner.events.subscribe()
        self.runner.start()
        self._stack.callback(self.runner.stop)
        # The walker sets the quiet input levels, so build it after the
        # turnstile has claimed its pins.
        self.walker = walker_cls(
            self.pin_factory,
            config.turnstile,
            step_s=WALK_STEP_S,
            pause=self.sleep,
        )
        self.wait_in_service(_READY_TIMEOUT_S)
        if self.serve_control:
            self._start_control(control_cls)

    def _start_control(self, control_cls: Any) -> None:
        """Serve the control socket with the runner's handlers and events."""
        assert self.config is not None  # start_lane checks this
        control = control_cls(
            self.control_socket,
            self.runner.control_handlers(),
            self.runner.events,
            group=self.config.daemon.control_group,
        )
        # Registered after runner.stop, so the socket closes first (as in
        # edge-gate run) and no command reaches a lane that is stopping.
        self._stack.callback(control.stop)
        control.start()
        self.control = control

    def sleep(self, realistic_s: float) -> None:
        """Sleep a realistic duration multiplied by the time scale."""
        time.sleep(realistic_s * self.time_scale)

    def status(self) -> dict[str, Any]:
        """Return the lane runner's status snapshot."""
        status: dict[str, Any] = self.runner.status()
        return status

    def stopped_workers(self) -> str:
        """Return the lane workers that stopped on an error, as text, or "".

        Such a lane never comes back into service without a restart. Reads
        memory only, so it can be called between two lane events.
        """
        if self.runner is None:
            return ""
        workers = self.runner.monitor.snapshot()
        return "; ".join(health.problem for health in workers if health.error)

    def worker_problems(self) -> str:
        """Return every lane worker that stopped or stalled, as text, or ""."""
        if self.runner is None:
            return ""
        return "; ".join(self.runner.worker_problems())

    def wait_in_service(self, timeout_s: float) -> None:
        """Wait until the lane is idle and in service.

        Raises:
            SimulationError: it is not, after ``timeout_s`` seconds, or a
                lane worker stopped on an error; the message carries the
                lane's status line.
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            status = self.status()
            if status["in_service"] and status["state"] == "idle":
                return
            stopped = self.stopped_workers()
            if stopped:
                raise SimulationError(
                    f"the lane cannot come back into service: {stopped}"
                )
            time.sleep(0.02)
        raise SimulationError(
            f"the lane is not idle and in service after {timeout_s:.0f} s: "
            f"{self.runner.status_line()}"
        )

    def drain_events(self) -> list[dict[str, Any]]:
        """Return the lane events queued since the last call."""
        drained: list[dict[str, Any]] = []
        if self.events is None:
            return drained
        with contextlib.suppress(queue.Empty):
            while True:
                drained.append(self.events.get_nowait())
        return drained

    def next_event(self, timeout_s: float) -> dict[str, Any] | None:
        """Return the next lane event, or None after ``timeout_s`` seconds."""
        if self.events is None:
            return None
        try:
            return self.events.get(timeout=timeout_s)
        except queue.Empty:
            return None

    def audit_entries(self) -> list[Any]:
        """Read every transaction row of the lane's audit log."""
        (audit_cls, audit_name) = _require(
            "edge_gate.store", "AuditLog", "AUDIT_DB_NAME"
        )
        assert self.config is not None
        audit = audit_cls(Path(self.config.store.state_dir) / audit_name)
        try:
            entries: list[Any] = audit.query(kind="transaction", limit=100_000)
        finally:
            audit.close()
        return entries


def today_utc() -> datetime.date:
    """Return today's date in UTC, the lane's reference for expiry."""
    return datetime.datetime.now(datetime.UTC).date()
