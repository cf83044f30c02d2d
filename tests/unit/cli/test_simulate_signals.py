"""``edge-gate simulate`` and other commands stopped by SIGHUP or SIGTERM.

A closed terminal or SSH session sends SIGHUP. The run must end as after
SIGTERM: one line on stderr, exit status 1, and no temporary work folder
(audit log, keys, template store) left behind.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edge_gate.cli._signals import Terminated, sigterm_unwinds

ROOT = Path(__file__).resolve().parents[3]
SIMULATE = ("-m", "edge_gate", "simulate", "--travellers", "2")


@pytest.mark.parametrize(
    "signum", [signal.SIGHUP, signal.SIGTERM], ids=["sighup", "sigterm"]
)
def test_signal_removes_temporary_work_folder(
    tmp_path: Path, signum: signal.Signals
) -> None:
    # The run's temporary folder lands in TMPDIR, here tmp_path.
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    # Start with SIGHUP at its default action: a run started under an
    # ignored SIGHUP (nohup) keeps ignoring it, so the test must not depend
    # on the disposition that its own process inherited.
    default_sighup = (
        "import os, signal, sys; signal.signal(signal.SIGHUP, signal.SIG_DFL); "
        "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", default_sighup, *SIMULATE],
        cwd=ROOT,
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
        process.send_signal(signum)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert process.returncode == 1, err
    assert f"edge-gate simulate: stopped by {signum.name}" in err
    assert "Traceback" not in err
    assert not list(tmp_path.glob("edge-gate-simulate-*"))


def test_sighup_raises_terminated_then_is_ignored() -> None:
    caught: list[str] = []
    with sigterm_unwinds():
        try:
            os.kill(os.getpid(), signal.SIGHUP)
            time.sleep(5)
        except Terminated as stop:
            caught.append(stop.signal_name)
        # During the cleanup a second signal of either kind is ignored.
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
    assert caught == ["SIGHUP"]
    assert signal.getsignal(signal.SIGHUP) == signal.SIG_DFL


def test_ignored_sighup_stays_ignored() -> None:
    # A command started with nohup keeps running when the terminal closes.
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with sigterm_unwinds():
            assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGHUP)
            time.sleep(0.1)
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)
