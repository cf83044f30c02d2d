"""Whole crossings: the real lane runner against the rig, every scenario.

These runs use the shipped models and thresholds, real pseudo-terminals,
gpiozero's mock pins, a real HTTP template server and real SQLite stores.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge_gate.rig.scenarios import SCENARIOS_BY_NAME
from edge_gate.rig.simulation import SimulationOptions, run_simulation

pytestmark = pytest.mark.slow


def test_synthetic_run_every_scenario(tmp_path: Path) -> None:
    report = run_simulation(
        SimulationOptions(travellers=2, seed=1, time_scale=0.05, work_dir=tmp_path)
    )
    summary = report.to_json_dict()

    assert set(summary["scenarios"]) == set(SCENARIOS_BY_NAME)
    for name, scenario in summary["scenarios"].items():
        assert scenario["ok"], f"{name}: {scenario}\n{report.format_table()}"
    assert summary["false_accepts"] == 0
    assert summary["false_rejects"] == 0
    assert summary["accepted"] >= 3
    assert summary["alerts"] == 2
    # Every crossing that reached a decision after captures has a latency.
    assert summary["latency_ms"]["p95"] is not None
    assert summary["machine_ms"]["max"] is not None


def test_run_leaves_audit_chain_intact(tmp_path: Path) -> None:
    from edge_gate.store import AUDIT_DB_NAME, AuditLog

    report = run_simulation(
        SimulationOptions(
            travellers=2,
            seed=2,
            time_scale=0.05,
            work_dir=tmp_path,
            scenarios=("genuine", "impostor"),
        )
    )
    audit = AuditLog(tmp_path / "gate" / "state" / AUDIT_DB_NAME)
    try:
        verified = audit.verify()
        rows = audit.query(kind="transaction", limit=1000)
    finally:
        audit.close()

    assert verified.is_intact, verified.problem
    assert len(rows) == len(report.crossings) == 4
    assert report.to_json_dict()["false_accepts"] == 0


@pytest.mark.data
def test_real_images_run(tmp_path: Path, data_dir: Path) -> None:
    report = run_simulation(
        SimulationOptions(
            travellers=3,
            dataset=data_dir,
            fingerprint_sets=("FVC2002_DB1_B",),
            iris_sets=("casia-iris-v1",),
            iris_skip=40,
            genuine_per_traveller=2,
            time_scale=0.05,
            work_dir=tmp_path,
        )
    )
    summary = report.to_json_dict()

    assert summary["false_accepts"] == 0
    # False rejects on real images are a measured rate, reported, not
    # asserted; every other scenario must end as expected.
    for name, scenario in summary["scenarios"].items():
        if name not in ("genuine", "after_replug", "tailgating"):
            assert scenario["ok"], f"{name}: {scenario}\n{report.format_table()}"


def test_cli_json_is_one_object(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from edge_gate.cli import main

    status = main(
        [
            "simulate",
            "--travellers",
            "2",
            "--scenario",
            "genuine",
            "--time-scale",
            "0.05",
            "--json",
        ]
    )
    summary = json.loads(capsys.readouterr().out)

    assert status == 0
    assert set(summary) >= {
        "crossings",
        "accepted",
        "rejected",
        "alerts",
        "false_accepts",
        "false_rejects",
        "false_alerts",
        "scenarios",
        "latency_ms",
    }
    assert summary["crossings"] == 2
    assert summary["scenarios"]["genuine"] == {
        "expected": "accepted",
        "observed": "accepted",
        "ok": True,
    }
    assert set(summary["latency_ms"]) == {"p50", "p95", "max"}


def _edge_gate() -> str:
    return str(Path(sys.executable).with_name("edge-gate"))


def _run_cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_edge_gate(), *argv],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


# A short run: two travellers at a twentieth of the realistic delays.
_SHORT = ("--travellers", "2", "--time-scale", "0.05")
# Scenarios whose warnings (tailgating alarm, unplugged sensor) are expected.
_NOISY = ("--scenario", "tailgating", "--scenario", "fingerprint_unplug")


def test_passing_run_keeps_expected_warnings_in_the_log(tmp_path: Path) -> None:
    work_dir = tmp_path / "work"
    # An existing empty folder readable by all must end up private.
    work_dir.mkdir(mode=0o755)
    done = _run_cli(
        "simulate", *_SHORT, *_NOISY, "--work-dir", str(work_dir), "--progress"
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert stat.S_IMODE(work_dir.stat().st_mode) == 0o700
    assert "WARNING" not in done.stderr, done.stderr
    assert "edge-gate simulate: enrolling 4 people" in done.stderr
    config = work_dir / "gate" / "edge-gate.toml"
    assert f"status --config {config}" in done.stderr
    assert not (work_dir / "run" / "control.sock").exists()
    log = (work_dir / "simulate.log").read_text(encoding="utf-8")
    assert "alarm tailgating" in log
    assert "fingerprint" in log


def test_verbose_run_shows_the_warnings(tmp_path: Path) -> None:
    done = _run_cli("-v", "simulate", *_SHORT, "--scenario", "tailgating")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "alarm tailgating" in done.stderr


def test_sigterm_removes_the_temporary_work_folder(tmp_path: Path) -> None:
    # The run's temporary folder lands in TMPDIR, here tmp_path.
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    process = subprocess.Popen(
        [_edge_gate(), "simulate", *_SHORT],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 120.0
        folders: list[Path] = []
        while time.monotonic() < deadline and process.poll() is None:
            folders = list(tmp_path.glob("edge-gate-simulate-*"))
            if folders and (folders[0] / "gate" / "template.key").exists():
                break
            time.sleep(0.05)
        assert folders, "simulate created no temporary work folder"
        assert stat.S_IMODE(folders[0].stat().st_mode) == 0o700
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert process.returncode == 1, err
    assert "stopped by SIGTERM" in err
    assert not list(tmp_path.glob("edge-gate-simulate-*"))


def _wait_for_text(path: Path, text: str, process: subprocess.Popen[str]) -> str:
    """Return the file's text once it contains ``text``, failing if the run ends."""
    deadline = time.monotonic() + 180.0
    content = ""
    while time.monotonic() < deadline and process.poll() is None:
        content = path.read_text(encoding="utf-8")
        if text in content:
            return content
        time.sleep(0.1)
    pytest.fail(
        f"simulate never printed {text!r} (status {process.poll()}):\n{content}"
    )


def test_hold_serves_field_commands_until_sigterm(tmp_path: Path) -> None:
    work_dir = tmp_path / "work"
    config = work_dir / "gate" / "edge-gate.toml"
    socket_path = work_dir / "run" / "control.sock"
    stderr_path = tmp_path / "simulate.err"
    argv = [_edge_gate(), "simulate", *_SHORT, "--scenario", "genuine"]
    argv += ["--work-dir", str(work_dir), "--hold", "600", "--json"]
    with stderr_path.open("w", encoding="utf-8") as stderr:
        process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=stderr, text=True
        )
    try:
        _wait_for_text(stderr_path, "crossings done", process)
        is_socket_during_hold = socket_path.is_socket()
        status = _run_cli("status", "--json", "--config", str(config))
        log = _run_cli("log", "--json", "--config", str(config))
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    err = stderr_path.read_text(encoding="utf-8")

    # The command printed at the start is the one used here.
    assert f"status --config {config}" in err
    assert is_socket_during_hold
    assert status.returncode == 0, status.stdout + status.stderr
    snapshot = json.loads(status.stdout)
    assert snapshot["lane_id"] == "lane-1"
    assert snapshot["state"] == "idle"
    assert snapshot["in_service"] is True
    assert snapshot["counts"] == {"accepted": 2}
    assert log.returncode == 0, log.stdout + log.stderr
    rows = [json.loads(line) for line in log.stdout.splitlines()]
    crossings = [row for row in rows if row["kind"] == "transaction"]
    assert [row["outcome"] for row in crossings] == ["accepted", "accepted"]
    assert {row["lane_id"] for row in crossings} == {"lane-1"}
    # SIGTERM ends only the hold, so the report and exit status still follow.
    assert "hold ended early by SIGTERM" in err
    assert process.returncode == 0, err
    assert json.loads(out)["crossings"] == 2
    assert not socket_path.exists()


def test_failed_hold_closes_socket(tmp_path: Path) -> None:
    from edge_gate.daemon import request

    socket_path = tmp_path / "run" / "control.sock"
    announced: list[Path] = []
    responses: list[dict[str, object]] = []

    def announce(config_path: Path) -> None:
        # Announced once the lane serves: the file exists and status replies.
        assert config_path.is_file()
        responses.append(request(socket_path, {"command": "status"}))
        announced.append(config_path)

    def failing_hold(seconds: float) -> None:
        responses.append(request(socket_path, {"command": "status"}))
        raise RuntimeError(f"hold of {seconds:g} s failed")

    with pytest.raises(RuntimeError, match="hold of 5 s failed"):
        run_simulation(
            SimulationOptions(
                travellers=2,
                time_scale=0.05,
                scenarios=("genuine",),
                work_dir=tmp_path,
                hold_s=5.0,
            ),
            announce_config=announce,
            hold=failing_hold,
        )

    assert announced == [tmp_path / "gate" / "edge-gate.toml"]
    assert [response["state"] for response in responses] == ["idle", "idle"]
    assert not socket_path.exists()
