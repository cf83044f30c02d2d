"""Benchmark the lane daemon process: start to READY, idle CPU, memory.

One run builds a lane in a temporary folder (document reader and fingerprint
module emulators on pseudo-terminals in this process, a camera folder, mock
GPIO pins, a template store with one applied version, the shipped models)
and then, ``--repeats`` times:

1. ``edge-gate run`` starts pinned to one core (``taskset -c 0``) under a
   bound ``NOTIFY_SOCKET``. The time from ``exec`` to ``READY=1`` includes
   Python start-up, the SHA-256 check and loading of both ONNX models, and
   opening the stores and devices.
2. The daemon idles for ``--idle-s`` seconds with no traveller; its CPU time
   over that window (``utime + stime`` from ``/proc/PID/stat``) divided by
   the window is the idle CPU share of one core.
3. Resident memory: ``VmRSS`` at the end of the idle window and the peak
   ``VmHWM``.
4. SIGTERM; the time to ``STOPPING=1`` and to the exit.

Peer, measured the same way in the same run: a bare Python process that
imports sdnotify, sends ``READY=1`` and sleeps; it is the floor of start
time and memory for any Python daemon here.

Targets (issue): READY within 2 s on one core, idle CPU at most 1 %,
resident memory at most 250 MB.

Usage: ``nice .venv/bin/python bench/bench_daemon.py [--repeats 5]``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

PEER = (
    "import sdnotify, time\n"
    "sdnotify.SystemdNotifier().notify('READY=1')\n"
    "time.sleep(3600)\n"
)


def build_lane(work: Path) -> Path:
    """Write models, stores and a configuration into ``work``; return the config."""
    from edge_gate.store import TemplateStoreWriter, generate_key_file, load_key

    models = work / "models"
    shutil.copytree(REPO / "models", models)
    manifest_path = models / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    for modality in ("fingerprint", "iris"):
        # Thresholds do not change start-up cost; add one only if missing.
        manifest["thresholds"].setdefault(
            modality, {"threshold": 0.5, "target_fmr": 1e-4, "calibration_set": "bench"}
        )
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")

    state = work / "state"
    state.mkdir()
    key = generate_key_file(work / "template.key")
    now = datetime.datetime.now(datetime.UTC)
    writer = TemplateStoreWriter(state / "templates.db", load_key(key))
    with (
        writer,
        writer.update(
            base_version=0,
            new_version=1,
            published_at=now,
            updated_at=now,
            expires_at=now + datetime.timedelta(days=1),
        ),
    ):
        pass
    (work / "camera").mkdir()
    config = work / "edge-gate.toml"
    config.write_text(
        f"""
[document_reader]
port = "{work / "doc"}"
[fingerprint]
port = "{work / "fp"}"
[iris]
source = "directory"
directory = "{work / "camera"}"
[turnstile]
pin_factory = "mock"
[store]
state_dir = "{state}"
key_file = "{key}"
[daemon]
control_socket = "{work / "control.sock"}"
control_group = ""
models_dir = "{models}"
use_udev = false
""",
        encoding="utf-8",
    )
    return config


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 (1-based) of proc(5).
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def memory_mib(pid: int) -> tuple[float, float]:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def wait_message(listener: socket.socket, key: str, timeout_s: float) -> float:
    """Return the monotonic time a datagram with line ``key`` arrived."""
    deadline = time.monotonic() + timeout_s
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no {key} within {timeout_s} s")
        listener.settimeout(remaining)
        data = listener.recv(65536).decode("utf-8")
        if key in data.splitlines():
            return time.monotonic()


def measure(command: list[str], notify_path: Path, idle_s: float) -> dict[str, float]:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(notify_path))
    env = dict(os.environ, NOTIFY_SOCKET=str(notify_path))
    try:
        started = time.monotonic()
        process = subprocess.Popen(
            ["taskset", "-c", "0", *command],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        ready = wait_message(listener, "READY=1", 60) - started

        time.sleep(1.0)  # let start-up work settle before the idle window
        cpu_before, window_start = cpu_seconds(process.pid), time.monotonic()
        time.sleep(idle_s)
        cpu_share = (cpu_seconds(process.pid) - cpu_before) / (
            time.monotonic() - window_start
        )
        rss, peak = memory_mib(process.pid)

        stop_sent = time.monotonic()
        process.send_signal(signal.SIGTERM)
        stopping = None
        if "edge_gate" in command:
            stopping = wait_message(listener, "STOPPING=1", 20) - stop_sent
        process.wait(30)
        exited = time.monotonic() - stop_sent
    finally:
        listener.close()
        notify_path.unlink(missing_ok=True)
    return {
        "ready_s": ready,
        "idle_cpu_percent": cpu_share * 100,
        "rss_mib": rss,
        "peak_rss_mib": peak,
        "stopping_s": stopping if stopping is not None else float("nan"),
        "exit_s": exited,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs per process")
    parser.add_argument("--idle-s", type=float, default=20.0, help="idle window (s)")
    args = parser.parse_args()
    if shutil.which("taskset") is None:
        print("bench_daemon: taskset (util-linux) is required", file=sys.stderr)
        return 2

    from edge_gate.rig.document_reader import DocumentReaderEmulator
    from edge_gate.rig.fingerprint_module import FingerprintModuleEmulator

    work = Path(tempfile.mkdtemp(prefix="eg-bench-"))
    results: dict[str, list[dict[str, float]]] = {"edge-gate run": [], "peer": []}
    try:
        config = build_lane(work)
        daemon = [sys.executable, "-X", "faulthandler", "-m", "edge_gate"]
        daemon += ["run", "--config", str(config)]
        peer = [sys.executable, "-c", PEER]
        with (
            DocumentReaderEmulator(link_path=work / "doc"),
            FingerprintModuleEmulator(link_path=work / "fp"),
        ):
            for _ in range(args.repeats):
                results["edge-gate run"].append(
                    measure(daemon, work / "notify.sock", args.idle_s)
                )
                results["peer"].append(measure(peer, work / "notify.sock", args.idle_s))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    setting = f"one core (taskset -c 0), idle window {args.idle_s} s"
    print(f"{args.repeats} runs each, {setting}")
    print(f"{'metric':<20} {'edge-gate run':>14} {'peer':>10} {'ratio':>8}  target")
    targets = {
        "ready_s": "<= 2 s",
        "idle_cpu_percent": "<= 1 %",
        "rss_mib": "<= 250 MB",
        "peak_rss_mib": "",
        "stopping_s": "",
        "exit_s": "< 20 s",
    }
    for metric, target in targets.items():
        ours = statistics.median(r[metric] for r in results["edge-gate run"])
        theirs = statistics.median(r[metric] for r in results["peer"])
        ratio = ours / theirs if theirs else float("nan")
        print(f"{metric:<20} {ours:>14.3f} {theirs:>10.3f} {ratio:>8.1f}  {target}")
    worst_ready = max(r["ready_s"] for r in results["edge-gate run"])
    worst_cpu = max(r["idle_cpu_percent"] for r in results["edge-gate run"])
    print(f"worst READY {worst_ready:.3f} s, worst idle CPU {worst_cpu:.2f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
