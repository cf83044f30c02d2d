"""Kill -9 the template writer during apply, over and over.

Each iteration starts a child process that applies a full bundle to
``templates.db`` along the same path as ``edge-gate sync`` (``read_bundle``
into one ``TemplateStoreWriter.update`` transaction). The children alternate
between two bundles with different enrolments. The parent sends SIGKILL
after a random delay between 0 and 1.2 times the measured transaction time,
counted from the moment the child reports that its transaction has begun.
After every kill the parent checks:

1. ``PRAGMA integrity_check`` returns ``ok``;
2. the version is the previous one or the next one, never anything else;
3. the enrolment ids are exactly those of the bundle that version belongs
   to (the old set or the new set, never a mixture), the counts in ``meta``
   agree, and sampled templates decrypt to the expected bytes.

Usage: ``nice .venv/bin/python bench/kill_apply.py [--iterations 200]``.
Exits 1 on the first violation.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

KEY = bytes(range(32))
FLEET_KEY = bytes(range(100, 132))
NOW = datetime.datetime(2026, 12, 4, tzinfo=datetime.UTC)


def template(label: str, number: int, position: str) -> bytes:
    seed = hashlib.sha256(f"{label}/{number}/{position}".encode()).digest()
    return seed * 24  # 768 bytes, close to an iris template


def bundle_records(label: str, first: int, count: int) -> list:  # type: ignore[type-arg]
    from edge_gate.store import DocumentRecord, EnrolmentRecord

    return [
        EnrolmentRecord(
            enrolment_id=f"E{n:07d}",
            person_id=f"P{n:07d}",
            documents=(DocumentRecord("UTO", f"K{n:08d}", datetime.date(2031, 1, 1)),),
            enrolment_expiry=datetime.date(2031, 1, 1),
            fingerprints={"right_index": template(label, n, "right_index")},
            irises={
                "left": template(label, n, "left"),
                "right": template(label, n, "right"),
            },
        )
        for n in range(first, first + count)
    ]


SETS = {"A": (0, 1.0), "B": (0.5, 1.0)}  # first record and count, in units of --records


def set_range(label: str, records: int) -> range:
    first, count = SETS[label]
    return range(int(first * records), int(first * records) + int(count * records))


def build_bundles(workdir: Path, records: int) -> dict[str, Path]:
    from edge_gate.sync import BundleHeader, BundleWriter

    paths = {}
    for version, label in enumerate(SETS, start=1):
        span = set_range(label, records)
        path = workdir / f"{label}.egtb"
        header = BundleHeader("full", version, 0, f"bundles/full-{label}.egtb")
        with BundleWriter(path, FLEET_KEY, header) as writer:
            for record in bundle_records(label, span.start, len(span)):
                writer.put(record)
        paths[label] = path
    return paths


def child(store_path: Path, bundle_path: Path) -> None:
    """Apply one bundle as the next version (the process that gets killed)."""
    from edge_gate.store import TemplateStoreWriter
    from edge_gate.sync._bundle import read_bundle, read_header

    with bundle_path.open("rb") as stream:
        header, _raw = read_header(stream)
    with TemplateStoreWriter(store_path, KEY) as writer:
        current = writer.version()
        with (
            writer.update(
                base_version=current,
                new_version=current + 1,
                published_at=NOW,
                updated_at=NOW,
                expires_at=NOW,
            ) as changes,
            bundle_path.open("rb") as stream,
        ):
            # Tell the parent that the transaction has begun.
            sys.stdout.write("begun\n")
            sys.stdout.flush()
            changes.clear()
            for chunk in read_bundle(stream, FLEET_KEY, header):
                changes.put(chunk.puts)


def check(store_path: Path, label: str, records: int, rng: random.Random) -> str | None:
    """Return why the store does not hold exactly set ``label``, or None."""
    from edge_gate.store import TemplateStore

    with sqlite3.connect(store_path) as connection:
        integrity = connection.execute("PRAGMA integrity_check").fetchone()[0]
        ids = {
            row[0] for row in connection.execute("SELECT enrolment_id FROM enrolments")
        }
    if integrity != "ok":
        return f"integrity_check: {integrity}"
    span = set_range(label, records)
    if ids != {f"E{n:07d}" for n in span}:
        return f"enrolment ids are not exactly set {label} ({len(ids)} ids)"
    with TemplateStore(store_path, KEY) as store:
        status = store.status()
        if status.enrolments != len(span) or status.iris_templates != 2 * len(span):
            return f"meta counts {status} do not match set {label}"
        for n in rng.sample(span, 5):
            found = store.lookup("UTO", f"K{n:08d}")
            if found is None or found.irises["left"] != template(label, n, "left"):
                return f"enrolment {n} does not hold set {label}'s template"
    return None


def timed_apply(command: list[str], bundle: Path) -> float:
    """Apply a bundle without killing; return the transaction's seconds."""
    process = subprocess.Popen(
        [*command, str(bundle)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    process.stdout.readline()
    start = time.perf_counter()
    if process.wait() != 0:
        raise SystemExit("the unkilled apply failed")
    process.stdout.close()
    return time.perf_counter() - start


def run(args: argparse.Namespace) -> int:
    workdir: Path = args.workdir
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    bundles = build_bundles(workdir, args.records)
    store_path = workdir / "templates.db"
    command = [sys.executable, __file__, "--child", str(store_path)]

    # The first apply is not killed; it measures the transaction's time.
    transaction_s = timed_apply(command, bundles["A"])
    print(
        f"{args.records} records per bundle; one apply transaction "
        f"{transaction_s:.2f} s"
    )

    rng = random.Random(args.seed)
    version, label = 1, "A"
    outcomes = {"old": 0, "new": 0}
    killed_running = 0
    for iteration in range(1, args.iterations + 1):
        other = "B" if label == "A" else "A"
        process = subprocess.Popen(
            [*command, str(bundles[other])], stdout=subprocess.PIPE, text=True
        )
        assert process.stdout is not None
        process.stdout.readline()
        time.sleep(rng.uniform(0, 1.2 * transaction_s))
        if process.poll() is None:
            killed_running += 1
            os.kill(process.pid, signal.SIGKILL)
        status = process.wait()
        process.stdout.close()
        # A child that ended by itself must have succeeded: a failed apply
        # would look like a kill that left the old set.
        if status not in (0, -signal.SIGKILL):
            print(f"iteration {iteration}: the apply failed with status {status}")
            return 1

        from edge_gate.store import TemplateStore

        with TemplateStore(store_path, KEY) as store:
            after = store.version()
        if after == version + 1:
            version, label = after, other
            outcomes["new"] += 1
        elif after == version:
            outcomes["old"] += 1
        else:
            expected = f"{version} or {version + 1}"
            print(f"iteration {iteration}: version {after}, expected {expected}")
            return 1
        problem = check(store_path, label, args.records, rng)
        if problem:
            print(f"iteration {iteration}: {problem}")
            return 1

    print(
        f"{args.iterations} iterations: {killed_running} killed while running, "
        f"{outcomes['old']} left the old set, {outcomes['new']} the new set, "
        "0 violations (integrity_check ok, never a mixed set)"
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--records", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/h5-kill-apply"))
    parser.add_argument(
        "--child", nargs=2, metavar=("STORE", "BUNDLE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), Path(args.child[1]))
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
