"""Kill the audit log's writer with SIGKILL during writes; check nothing is lost.

Each of ``--kills`` rounds:

1. A writer process opens ``audit.db`` (WAL, ``synchronous=FULL``) and
   appends transaction records as fast as it can. After each
   :meth:`AuditLog.append` returns it prints the row's sequence number and
   hash on stdout, so the parent knows every row that was acknowledged.
2. The parent sends SIGKILL after a random delay (5 to 150 ms after the
   writer's first acknowledgement), in the middle of a write most of the
   time.
3. The parent opens the file and checks ``PRAGMA integrity_check``, the
   whole hash chain (:meth:`AuditLog.verify`), and that every acknowledged
   row is present with the hash the writer saw.

A process kill leaves the page cache intact, so this checks SQLite's
journal and the log's transaction boundaries, not the disk: a power cut
needs the rig (or LazyFS).

Peer, in the same run: the same writer with ``synchronous=NORMAL`` (SQLite's
usual WAL setting, which may lose the last commits on a power cut but not
on a process kill); the append rates show what ``FULL`` costs.

Usage: ``nice .venv/bin/python bench/kill_audit.py [--kills 200]``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import random
import select
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WRITER = """
import datetime, sys
from edge_gate.store import AuditLog, AuditRecord
log = AuditLog(__import__("pathlib").Path(sys.argv[1]))
if sys.argv[2] == "normal":
    log._db.execute("PRAGMA synchronous = NORMAL")
n = 0
while True:
    n += 1
    entry = log.append(AuditRecord(
        time_utc=datetime.datetime.now(datetime.UTC),
        transaction_id=f"tx-{n}",
        outcome="accepted",
        reason="both modalities matched",
        lane_id="lane-1",
        issuing_state="VNM",
        document_number=f"C{n:07d}",
        scores={"fingerprint": 0.8, "iris": 0.9},
        thresholds={"fingerprint": 0.4, "iris": 0.6},
        durations_ms={"document": 1000.0, "fingerprint": 3000.0, "iris": 2500.0},
        latency_ms=150.0,
    ))
    sys.stdout.write(f"{entry.seq} {entry.row_hash}\\n")
    sys.stdout.flush()
"""


def run_round(
    path: Path, mode: str, rng: random.Random
) -> tuple[dict[int, str], float]:
    """Run one writer until SIGKILL; return acknowledged rows and rows/s."""
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert writer.stdout is not None
    acknowledged: dict[int, str] = {}
    buffer = b""
    first_ack: float | None = None
    kill_at: float | None = None
    while True:
        now = time.monotonic()
        if kill_at is not None and now >= kill_at:
            writer.send_signal(signal.SIGKILL)
            break
        timeout = 0.05 if kill_at is None else max(0.0, kill_at - now)
        readable, _, _ = select.select([writer.stdout], [], [], timeout)
        if readable:
            chunk = os.read(writer.stdout.fileno(), 65536)
            if not chunk:
                break
            buffer += chunk
            if first_ack is None:
                first_ack = time.monotonic()
                kill_at = first_ack + rng.uniform(0.005, 0.150)
        if writer.poll() is not None:
            break
    writer.wait(10)

    # Rows the writer printed before the kill are acknowledged.
    buffer += writer.stdout.read() or b""
    for line in buffer.decode().splitlines():
        parts = line.split()
        if len(parts) == 2:
            acknowledged[int(parts[0])] = parts[1]
    elapsed = time.monotonic() - (first_ack or time.monotonic())
    rate = (len(acknowledged) - 1) / elapsed if elapsed > 0 else float("nan")
    return acknowledged, rate


def check(path: Path, acknowledged: dict[int, str]) -> list[str]:
    """Return every problem found after a kill (empty when all is well)."""
    from edge_gate.store import AuditLog

    problems = []
    with contextlib.closing(sqlite3.connect(path)) as db:
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
        if integrity != "ok":
            problems.append(f"integrity_check: {integrity}")
        stored = dict(db.execute("SELECT seq, row_hash FROM audit").fetchall())
    for seq, row_hash in acknowledged.items():
        if stored.get(seq) != row_hash:
            problems.append(f"acknowledged row {seq} lost or changed")
    with AuditLog(path) as log:
        result = log.verify()
    if not result.is_intact:
        problems.append(f"chain broken: {result.problem}")
    return problems


def campaign(mode: str, kills: int, seed: int) -> dict[str, float]:
    rng = random.Random(seed)
    folder = Path(tempfile.mkdtemp(prefix=f"eg-kill-{mode}-"))
    path = folder / "audit.db"
    rates, acknowledged_total, problems = [], 0, []
    for _ in range(kills):
        acknowledged, rate = run_round(path, mode, rng)
        acknowledged_total += len(acknowledged)
        rates.append(rate)
        problems += check(path, acknowledged)
    with contextlib.closing(sqlite3.connect(path)) as db:
        rows = db.execute("SELECT COUNT(*) FROM audit").fetchone()[0]
    for problem in problems[:20]:
        print(f"{mode}: {problem}")
    for item in folder.iterdir():
        item.unlink()
    folder.rmdir()
    return {
        "kills": kills,
        "acknowledged": acknowledged_total,
        "rows": rows,
        "problems": len(problems),
        "rate": statistics.median(r for r in rates if r == r),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--kills", type=int, default=200, help="SIGKILL rounds per mode"
    )
    parser.add_argument("--seed", type=int, default=20261204, help="random seed")
    args = parser.parse_args()

    started = datetime.datetime.now(datetime.UTC)
    full = campaign("full", args.kills, args.seed)
    normal = campaign("normal", args.kills, args.seed)
    print(f"kill -9 campaign, {started:%Y-%m-%d %H:%M} UTC, seed {args.seed}")
    print(
        f"{'synchronous':<12} {'kills':>6} {'acked':>7} {'rows':>7} {'problems':>9} "
        f"{'appends/s':>10}"
    )
    for name, result in (("FULL", full), ("NORMAL peer", normal)):
        print(
            f"{name:<12} {result['kills']:>6} {result['acknowledged']:>7} "
            f"{result['rows']:>7} {result['problems']:>9} {result['rate']:>10.0f}"
        )
    print(f"append rate FULL / NORMAL: {full['rate'] / normal['rate']:.2f}")
    return 1 if full["problems"] or normal["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
