"""Benchmark publishing and applying template updates at scale.

One run uses synthetic enrolments of valid templates with random contents in the gate's
template sizes: two fingerprint templates of 60 minutiae (16 + 8 x 60 = 496
bytes, more than the 25 minutiae or 216 bytes of one FVC2002 impression) and
two iris templates of 784 bytes (the encoder's fixed 16 x 128 x 2 code with
its mask). The phases:

1. ``publish``: the reference publisher reads ``--records`` enrolments from a
   JSON lines input file (ready-made templates in base64), writes the full
   bundle and signs the repository. Wall time, peak memory (max RSS of the
   publishing process) and repository size.
2. ``apply``: a fresh gate runs ``sync_once`` against a real HTTP server on
   127.0.0.1: TUF refresh, download, decrypt, seal every template with the
   gate's key and commit in one transaction. Wall time, peak memory of the
   syncing process, and ``templates.db`` size.
3. ``peer``: the same rows inserted into a plain SQLite table in one
   transaction straight from the input file, with no TUF, no bundle and no
   encryption: the floor that the update path is compared with.
4. ``delta``: ``--delta-repeats`` times, the publisher changes ``--delta``
   records and publishes; the gate syncs. The median time of that sync is
   the figure with the 2 s target.

Each measured phase runs in its own process, so its peak memory is its own.
Usage: ``nice .venv/bin/python bench/bench_sync.py [--records 100000]``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

FINGERPRINT_BYTES = 16 + 8 * 60
IRIS_BYTES = 784


def max_rss_mib() -> float:
    """Peak resident memory of this process in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def fingerprint_template(rng: random.Random) -> bytes:
    """Return a valid fingerprint template of 60 random minutiae."""
    from edge_gate.fingerprint import FingerprintTemplate

    generator = np.random.default_rng(rng.getrandbits(64))
    minutiae = np.column_stack(
        [
            generator.uniform(0, 255, 60),
            generator.uniform(0, 287, 60),
            generator.uniform(0, 6.28, 60),
            generator.integers(0, 2, 60),
            generator.uniform(0, 1, 60),
        ]
    ).astype(np.float32)
    data = FingerprintTemplate(minutiae, width=256, height=288).to_bytes()
    assert len(data) == FINGERPRINT_BYTES
    return data


def iris_template(rng: random.Random) -> bytes:
    """Return a valid iris template with random code and mask bits."""
    from edge_gate.iris import IrisTemplate

    generator = np.random.default_rng(rng.getrandbits(64))
    code = generator.random((16, 128, 2)) < 0.5
    mask = generator.random((16, 128)) < 0.9
    data = IrisTemplate(code=code, mask=mask, quality=0.9).to_bytes()
    assert len(data) == IRIS_BYTES
    return data


def synthetic_line(number: int, generation: int, rng: random.Random) -> str:
    def template(data: bytes) -> dict[str, str]:
        return {"template_b64": base64.b64encode(data).decode()}

    return json.dumps(
        {
            "person_id": f"P{number:07d}",
            "documents": [
                {
                    "issuing_state": "UTO",
                    "document_number": f"B{number:08d}",
                    "expiry": "2031-06-30",
                }
            ],
            # A changed record gets a new enrolment expiry per generation.
            "enrolment_expiry": f"2032-01-{generation:02d}"
            if generation
            else "2031-06-30",
            "watchlisted": number % 1000 == 0,
            "revoked": False,
            "fingerprints": {
                "right_index": template(fingerprint_template(rng)),
                "left_index": template(fingerprint_template(rng)),
            },
            "irises": {
                "left": template(iris_template(rng)),
                "right": template(iris_template(rng)),
            },
        }
    )


def write_input(path: Path, records: int, generations: dict[int, int]) -> None:
    """Write the input file; ``generations`` maps changed records to the
    generation of their latest change (unlisted records are generation 0)."""
    rng = random.Random(1234)
    with path.open("w", encoding="utf-8") as handle:
        for number in range(records):
            line = synthetic_line(number, generations.get(number, 0), rng)
            handle.write(line + "\n")


# Phases, each run in a child process


def phase_publish(workdir: Path, input_path: Path) -> dict[str, Any]:
    from edge_gate.sync import Publisher, read_records

    start = time.perf_counter()
    publisher = (
        Publisher(workdir / "publisher")
        if (workdir / "publisher" / "state").exists()
        else Publisher.init(workdir / "publisher")
    )
    records = read_records(input_path)
    read_s = time.perf_counter() - start
    result = publisher.publish(records)
    return {
        "seconds": time.perf_counter() - start,
        "read_seconds": read_s,
        "version": result.version,
        "changed": result.changed,
        "max_rss_mib": max_rss_mib(),
        "repository_bytes": folder_bytes(publisher.repository_dir),
    }


def phase_apply(workdir: Path, url: str) -> dict[str, Any]:
    from edge_gate.config import GateConfig, StoreConfig, SyncConfig
    from edge_gate.store import generate_key_file
    from edge_gate.sync import sync_once

    gate = workdir / "gate"
    if not (gate / "template.key").exists():
        generate_key_file(gate / "template.key")
    publisher = workdir / "publisher"
    config = GateConfig(
        store=StoreConfig(
            state_dir=str(gate / "state"), key_file=str(gate / "template.key")
        ),
        sync=SyncConfig(
            repository_url=url,
            fleet_key_file=str(publisher / "keys" / "fleet.key"),
            trusted_root_file=str(
                publisher / "repository" / "metadata" / "1.root.json"
            ),
            retries=0,
        ),
    )
    start = time.perf_counter()
    result = sync_once(config)
    seconds = time.perf_counter() - start
    state = gate / "state"
    return {
        "seconds": seconds,
        "version": result.version,
        "bundles": list(result.bundles),
        "downloaded_bytes": result.downloaded_bytes,
        "max_rss_mib": max_rss_mib(),
        "store_bytes": sum(
            p.stat().st_size for p in state.glob("templates.db*") if p.is_file()
        ),
    }


def phase_peer(workdir: Path, input_path: Path) -> dict[str, Any]:
    path = workdir / "peer.db"
    path.unlink(missing_ok=True)
    start = time.perf_counter()
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute(
        "CREATE TABLE templates (person_id TEXT, position TEXT, template BLOB, "
        "PRIMARY KEY (person_id, position)) WITHOUT ROWID"
    )
    connection.execute("BEGIN")
    with input_path.open(encoding="utf-8") as handle:
        for line in handle:
            value = json.loads(line)
            rows = [
                (value["person_id"], name, base64.b64decode(item["template_b64"]))
                for group in ("fingerprints", "irises")
                for name, item in value[group].items()
            ]
            connection.executemany("INSERT INTO templates VALUES (?, ?, ?)", rows)
    connection.execute("COMMIT")
    connection.close()
    return {
        "seconds": time.perf_counter() - start,
        "max_rss_mib": max_rss_mib(),
        "store_bytes": path.stat().st_size,
    }


def run_phase(name: str, *args: str) -> dict[str, Any]:
    """Run one phase in a child process and return its JSON report."""
    output = subprocess.run(
        [sys.executable, __file__, "--phase", name, *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    report: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return report


def serve(folder: Path) -> tuple[ThreadingHTTPServer, threading.Thread]:
    class QuietHandler(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            del format, args

    handler = partial(QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="bench-http")
    thread.start()
    return server, thread


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--delta", type=int, default=1000)
    parser.add_argument("--delta-repeats", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/h5-bench-sync"))
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--arg", action="append", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.phase:
        phases = {"publish": phase_publish, "apply": phase_apply, "peer": phase_peer}
        values = [
            Path(a) if args.phase != "apply" or i == 0 else a
            for i, a in enumerate(args.arg)
        ]
        print(json.dumps(phases[args.phase](*values)))
        return 0

    workdir: Path = args.workdir
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    input_path = workdir / "records.jsonl"
    generations: dict[int, int] = {}
    write_input(input_path, args.records, generations)
    size_mib = input_path.stat().st_size / 2**20
    print(f"{args.records} synthetic enrolments, input {size_mib:.0f} MiB")

    publish = run_phase("publish", "--arg", str(workdir), "--arg", str(input_path))
    print(
        f"publish full: {publish['seconds']:.1f} s "
        f"(reading input {publish['read_seconds']:.1f} s), "
        f"peak {publish['max_rss_mib']:.0f} MiB, "
        f"repository {publish['repository_bytes'] / 2**20:.0f} MiB"
    )
    server, thread = serve(workdir / "publisher" / "repository")
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        apply = run_phase("apply", "--arg", str(workdir), "--arg", url)
        peer = run_phase("peer", "--arg", str(workdir), "--arg", str(input_path))
        print(
            f"apply full (sync_once): {apply['seconds']:.1f} s, "
            f"peak {apply['max_rss_mib']:.0f} MiB, "
            f"templates.db {apply['store_bytes'] / 2**20:.0f} MiB, "
            f"downloaded {apply['downloaded_bytes'] / 2**20:.0f} MiB"
        )
        print(
            "peer (plain SQLite insert, no TUF, no encryption): "
            f"{peer['seconds']:.1f} s, peak {peer['max_rss_mib']:.0f} MiB, "
            f"{peer['store_bytes'] / 2**20:.0f} MiB; "
            f"apply/peer = {apply['seconds'] / peer['seconds']:.2f}"
        )

        delta_seconds = []
        rng = random.Random(99)
        for generation in range(1, args.delta_repeats + 1):
            for number in rng.sample(range(args.records), args.delta):
                generations[number] = generation
            write_input(input_path, args.records, generations)
            republish = run_phase(
                "publish", "--arg", str(workdir), "--arg", str(input_path)
            )
            delta = run_phase("apply", "--arg", str(workdir), "--arg", url)
            assert delta["bundles"] == [
                f"bundles/delta-{generation}-{generation + 1}.egtb"
            ], delta["bundles"]
            delta_seconds.append(delta["seconds"])
            print(
                f"delta {generation}: publish {republish['seconds']:.1f} s "
                f"({republish['changed']} changed), apply {delta['seconds']:.2f} s, "
                f"downloaded {delta['downloaded_bytes'] / 2**10:.0f} KiB"
            )
        median = statistics.median(delta_seconds)
        verdict = "meets" if median <= 2.0 else "MISSES"
        print(
            f"delta of {args.delta} records over {args.records}: median apply "
            f"{median:.2f} s ({verdict} the 2 s target); "
            f"delta/full = {median / apply['seconds']:.3f}"
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
