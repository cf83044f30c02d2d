"""Fixtures for the daemon tests: a real sd_notify socket, a rig lane."""

from __future__ import annotations

import datetime
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


class NotifyListener:
    """A bound AF_UNIX datagram socket standing in for systemd."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(str(path))
        self.messages: list[tuple[float, str]] = []

    def receive(self, timeout_s: float) -> str | None:
        """Return the next datagram as text, or None after ``timeout_s``."""
        self.socket.settimeout(timeout_s)
        try:
            data = self.socket.recv(65536)
        except TimeoutError:
            return None
        text = data.decode("utf-8")
        self.messages.append((time.monotonic(), text))
        return text

    def wait_for(self, key: str, timeout_s: float) -> str:
        """Receive until a message contains the line ``key`` (like READY=1)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            message = self.receive(max(0.01, deadline - time.monotonic()))
            if message is not None and key in message.splitlines():
                return message
        seen = [m for _, m in self.messages]
        raise AssertionError(f"no {key} within {timeout_s} s; received {seen}")

    def close(self) -> None:
        self.socket.close()
        self.path.unlink(missing_ok=True)


def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Poll ``condition`` every 20 ms until it returns true.

    Raises:
        AssertionError: ``condition`` was still false after ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"condition not met within {timeout_s} s")


@pytest.fixture(name="wait_until")
def wait_until_fixture() -> Callable[..., None]:
    """Return :func:`wait_until`, because test modules cannot import conftest."""
    return wait_until


def stop_daemon(daemon: subprocess.Popen[str]) -> tuple[int, str]:
    """Stop the daemon with SIGTERM and return its exit status and output.

    SIGTERM goes only to a daemon that is still running. The output is
    stderr, or stdout when the caller merged stderr into it. A daemon still
    running 20 s after SIGTERM gets SIGABRT, so faulthandler writes every
    thread's stack into the failure message, and SIGKILL if it outlives
    SIGABRT by 10 s.

    Raises:
        AssertionError: the daemon did not exit within 20 s of SIGTERM.
    """
    output = daemon.stderr if daemon.stderr is not None else daemon.stdout
    assert output is not None, "start the daemon with stdout or stderr piped"
    if daemon.poll() is None:
        daemon.send_signal(signal.SIGTERM)
    try:
        status = daemon.wait(20)
    except subprocess.TimeoutExpired:
        daemon.send_signal(signal.SIGABRT)
        try:
            daemon.wait(10)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait(5)
        message = f"the daemon did not exit within 20 s of SIGTERM:\n{output.read()}"
        raise AssertionError(message) from None
    return status, output.read()


def start_daemon(
    arguments: list[str], notify_socket: Any, *, merge_output: bool = False
) -> subprocess.Popen[str]:
    """Start ``python -X faulthandler ARGUMENTS`` as systemd would start it.

    The process gets the test's ``NOTIFY_SOCKET`` and a 3 s watchdog. With
    ``merge_output`` its stderr goes into stdout.
    """
    env = dict(os.environ, NOTIFY_SOCKET=str(notify_socket.path))
    env["WATCHDOG_USEC"] = "3000000"
    env.pop("WATCHDOG_PID", None)
    return subprocess.Popen(
        [sys.executable, "-X", "faulthandler", *arguments],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge_output else subprocess.PIPE,
        text=True,
    )


@pytest.fixture(name="start_daemon")
def start_daemon_fixture() -> Callable[..., subprocess.Popen[str]]:
    """Return :func:`start_daemon`, because test modules cannot import conftest."""
    return start_daemon


@pytest.fixture(name="stop_daemon")
def stop_daemon_fixture() -> Callable[[subprocess.Popen[str]], tuple[int, str]]:
    """Return :func:`stop_daemon`, because test modules cannot import conftest."""
    return stop_daemon


@pytest.fixture(name="field_status")
def field_status_fixture(
    capsys: pytest.CaptureFixture[str],
) -> Callable[[Path], dict[str, Any]]:
    """Return a function that runs ``edge-gate status --json`` and parses it."""
    from edge_gate.cli import main as cli_main

    def field_status(config_path: Path) -> dict[str, Any]:
        exit_status = cli_main(["status", "--json", "--config", str(config_path)])
        assert exit_status in (0, 1)
        status: dict[str, Any] = json.loads(capsys.readouterr().out)
        return status

    return field_status


@pytest.fixture
def notify_socket(monkeypatch: pytest.MonkeyPatch) -> Iterator[NotifyListener]:
    """Bind a notify socket (short path: AF_UNIX paths hold 108 bytes)."""
    folder = Path(tempfile.mkdtemp(prefix="eg-notify-"))
    listener = NotifyListener(folder / "notify.sock")
    monkeypatch.setenv("NOTIFY_SOCKET", str(listener.path))
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    yield listener
    listener.close()
    os.rmdir(folder)


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A temporary folder with a short path, for UNIX socket files."""
    folder = Path(tempfile.mkdtemp(prefix="eg-"))
    yield folder
    for child in sorted(folder.rglob("*"), reverse=True):
        if child.is_dir():
            child.rmdir()
        else:
            child.unlink()
    folder.rmdir()


# A lane on the rig's emulators, for the runner and process tests.

REPO = Path(__file__).resolve().parents[3]
MRZ_TD3 = {
    "document_number": "C4X7M2Q91",
    "surname": "NGUYEN",
    "given_names": "THI MAI",
    "issuing_state": "VNM",
    "nationality": "VNM",
    "birth_date": "850312",
    "sex": "F",
    "expiry_date": datetime.date(2031, 5, 20),
}


@dataclass
class LaneSetup:
    """Paths and parts of a lane built in a temporary folder."""

    work: Path
    sections: dict[str, dict[str, Any]]
    state_dir: Path
    key_file: Path
    reader: Any
    fingerprint_module: Any

    def config(self, **overrides: dict[str, Any]) -> Any:
        from edge_gate.config import config_from_mapping

        sections = {name: dict(table) for name, table in self.sections.items()}
        for name, table in overrides.items():
            sections.setdefault(name, {}).update(table)
        return config_from_mapping(sections)

    def write_templates(self, **options: Any) -> None:
        write_templates(self.state_dir, self.key_file, **options)

    def mrz_lines(self) -> list[str]:
        from edge_gate.document import build_mrz

        return build_mrz("TD3", **MRZ_TD3)

    def write_toml(self, path: Path) -> None:
        lines: list[str] = []
        for name, table in self.sections.items():
            lines.append(f"[{name}]")
            for key, value in table.items():
                lines.append(f"{key} = {json.dumps(value)}")
            lines.append("")
        path.write_text("\n".join(lines), encoding="utf-8")


def models_with_thresholds(target: Path) -> Path:
    """Copy the shipped models; add an iris threshold if none is calibrated.

    The copy keeps every model file and hash, so the daemon's SHA-256 check
    runs on the real models.
    """
    shutil.copytree(REPO / "models", target)
    manifest_path = target / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    # Stand-ins until both are calibrated: synthetic iris pairs scored about
    # 0.88 genuine and 0.64 impostor here, so 0.8 separates them.
    stand_ins = {"fingerprint": 0.05, "iris": 0.8}
    for modality, threshold in stand_ins.items():
        manifest["thresholds"].setdefault(
            modality,
            {"threshold": threshold, "target_fmr": 1e-4, "calibration_set": "test"},
        )
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    return target


def write_templates(
    state_dir: Path,
    key_file: Path,
    *,
    enrolled: bool = False,
    expires_in: datetime.timedelta = datetime.timedelta(days=1),
    fingerprints: dict[str, bytes] | None = None,
    irises: dict[str, bytes] | None = None,
    extra_records: list[Any] | None = None,
) -> None:
    """Apply one template version, with the MRZ_TD3 traveller if enrolled."""
    from edge_gate.store import (
        DocumentRecord,
        EnrolmentRecord,
        TemplateStoreWriter,
        load_key,
    )

    now = datetime.datetime.now(datetime.UTC)
    records = []
    if enrolled:
        records.append(
            EnrolmentRecord(
                enrolment_id="enr-1",
                person_id="person-1",
                documents=(
                    DocumentRecord(
                        issuing_state=MRZ_TD3["issuing_state"],
                        document_number=MRZ_TD3["document_number"],
                        expiry=MRZ_TD3["expiry_date"],
                    ),
                ),
                enrolment_expiry=datetime.date(2031, 5, 20),
                fingerprints=fingerprints or {"right_index": b"not a template"},
                irises=irises or {"left": b"not a template"},
            )
        )
    records.extend(extra_records or [])
    with TemplateStoreWriter(state_dir / "templates.db", load_key(key_file)) as writer:
        applied = writer.version()
        with writer.update(
            base_version=applied,
            new_version=applied + 1,
            published_at=now,
            updated_at=now,
            expires_at=now + expires_in,
        ) as update:
            update.put(records)


@pytest.fixture
def lane_setup(short_tmp: Path) -> Iterator[LaneSetup]:
    """Emulated reader and fingerprint module, camera folder, stores, config."""
    from edge_gate.rig.document_reader import DocumentReaderEmulator
    from edge_gate.rig.fingerprint_module import FingerprintModuleEmulator
    from edge_gate.store import generate_key_file

    work = short_tmp
    models = models_with_thresholds(work / "models")
    state_dir = work / "state"
    state_dir.mkdir()
    key_file = generate_key_file(work / "template.key")
    write_templates(state_dir, key_file)
    (work / "camera").mkdir()
    sections: dict[str, dict[str, Any]] = {
        "document_reader": {"port": str(work / "doc")},
        "fingerprint": {"port": str(work / "fp"), "capture_timeout_s": 5.0},
        "iris": {"source": "directory", "directory": str(work / "camera")},
        "turnstile": {"pin_factory": "mock", "passage_timeout_s": 2.0},
        "store": {"state_dir": str(state_dir), "key_file": str(key_file)},
        "daemon": {
            "control_socket": str(work / "run" / "control.sock"),
            "control_group": "",
            "models_dir": str(models),
            "use_udev": False,
            "device_check_interval_s": 0.1,
        },
    }
    with (
        DocumentReaderEmulator(link_path=work / "doc") as reader,
        FingerprintModuleEmulator(link_path=work / "fp") as module,
    ):
        yield LaneSetup(work, sections, state_dir, key_file, reader, module)


class RunningLane:
    """A started lane runner on the setup's emulators, with quiet inputs.

    ``runner_options`` are keyword arguments for :class:`LaneRunner`, and
    ``overrides`` are configuration tables.
    """

    def __init__(
        self,
        setup: LaneSetup,
        runner_options: dict[str, Any] | None = None,
        **overrides: dict[str, Any],
    ) -> None:
        from edge_gate.daemon import LaneRunner
        from edge_gate.rig.walker import Walker, wired_mock_factory

        self.setup = setup
        self.config = setup.config(**overrides)
        # Inputs come up at their wired levels, as on the lane and in the
        # rig. With the default wiring a plain mock pin's pull level reads as
        # a fire release and an open tamper loop until the walker runs.
        self.pins = wired_mock_factory(self.config.turnstile)
        self.runner = LaneRunner(
            self.config, pin_factory=self.pins, **(runner_options or {})
        )
        self.events = self.runner.events.subscribe()
        self.runner.start()
        # The walker drives the quiet input levels: barrier closed, beams clear.
        self.walker = Walker(
            self.pins, self.config.turnstile, step_s=0.05, pause=time.sleep
        )

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = self.runner.status()
        return status

    def idle_in_service(self) -> bool:
        status = self.status()
        return bool(status["in_service"]) and status["state"] == "idle"

    def audit(self) -> list[Any]:
        entries: list[Any] = self.runner.audit.query()
        return entries

    def drain_events(self) -> list[dict[str, Any]]:
        seen = []
        while not self.events.empty():
            seen.append(self.events.get_nowait())
        return seen

    def event_types(self) -> list[str]:
        return [event["type"] for event in self.drain_events()]

    def close(self) -> None:
        self.runner.stop()
        self.pins.close()


@pytest.fixture
def start_lane() -> Iterator[Any]:
    """Return a function that starts a RunningLane; every one is closed after."""
    started: list[RunningLane] = []

    def start(
        setup: LaneSetup,
        runner_options: dict[str, Any] | None = None,
        **overrides: dict[str, Any],
    ) -> RunningLane:
        running = RunningLane(setup, runner_options, **overrides)
        started.append(running)
        return running

    yield start
    for running in started:
        running.close()


@pytest.fixture
def lane(lane_setup: LaneSetup, start_lane: Any) -> RunningLane:
    """A started lane with an empty template set."""
    running: RunningLane = start_lane(lane_setup)
    return running
