"""Time the start-up replay of a full audit spool: one commit per record
against the daemon's batched commits.

The daemon keeps audit records that it could not write (a full state disk)
in a spool file and appends them at its next start, before systemd's
``TimeoutStartSec``. This writes a spool of ``--records`` crossings of the
usual size, reports how many crossings the largest spool (64 MiB) holds,
and appends the records to fresh audit logs twice: with
``AuditLog.append`` per record (the peer), and with ``AuditLog.append_many``
in batches of the daemon's ``REPLAY_BATCH`` records. Both logs use WAL with
``synchronous=FULL``, so each commit syncs the disk.

Usage: ``nice .venv/bin/python bench/bench_spool_replay.py [--records 20000]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from edge_gate.daemon._runner import REPLAY_BATCH
from edge_gate.store import AuditLog, AuditRecord, AuditSpool
from edge_gate.store._spool import MAX_SPOOL_BYTES


def crossing(index: int, start: datetime) -> AuditRecord:
    """Return an accepted crossing with every field a real one has."""
    return AuditRecord(
        start + timedelta(milliseconds=index),
        f"lane-1-3fa9c2d1-{index:08d}",
        "accepted",
        "fingerprint and iris matched",
        lane_id="lane-1",
        issuing_state="VNM",
        document_number=f"C{index:08d}",
        scores={"fingerprint": 0.8123, "iris": 0.7712},
        thresholds={"fingerprint": 0.0512, "iris": 0.6414},
        durations_ms={"document": 812.4, "fingerprint": 3411.2, "iris": 2210.9},
        latency_ms=41.2,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    start = datetime.now(UTC)
    records = [crossing(index, start) for index in range(args.records)]
    with tempfile.TemporaryDirectory(dir="/var/tmp") as folder:
        work = Path(folder)
        spool = AuditSpool(work / "spool")
        spool.write(records, written_utc=start, lane_id="lane-1", state_dir="/x")
        per_record = spool.path.stat().st_size / len(records)
        print(
            f"spool: {per_record:.0f} bytes per crossing, so the 64 MiB limit "
            f"holds {MAX_SPOOL_BYTES / per_record:,.0f} crossings"
        )

        def one_commit_each(log: AuditLog) -> None:
            for record in records:
                log.append(record)

        def batched(log: AuditLog) -> None:
            for offset in range(0, len(records), REPLAY_BATCH):
                log.append_many(records[offset : offset + REPLAY_BATCH])

        results: dict[str, float] = {}
        for name, write in (("append", one_commit_each), ("append_many", batched)):
            times = []
            for repeat in range(args.repeats):
                folder_of_run = work / f"{name}-{repeat}"
                folder_of_run.mkdir()
                with AuditLog(folder_of_run / "audit.db") as log:
                    began = time.perf_counter()
                    write(log)
                    times.append(time.perf_counter() - began)
            results[name] = statistics.median(times)
            per_row_ms = 1000 * results[name] / len(records)
            full_s = per_row_ms / 1000 * MAX_SPOOL_BYTES / per_record
            print(
                f"{name}: {results[name]:.2f} s for {len(records):,} records "
                f"({per_row_ms:.3f} ms each; a 64 MiB spool {full_s:.0f} s)"
            )
        print(
            f"append / append_many = {results['append'] / results['append_many']:.1f}"
        )


if __name__ == "__main__":
    main()
