"""Iris accuracy, calibration and speed benchmark, with open-iris as the peer.

Subcommands (all print one JSON report on stdout):

``accuracy``
    Encodes every image of ``$EDGE_GATE_DATA/iris/casia-iris-v1`` (or
    ``--data DIR``, one folder per eye) and scores all pairs. Reports the
    equal error rate over all eyes, the threshold calibrated for FMR 1e-4
    on eyes 001-040, and the FMR and FNMR at that threshold on eyes 041-080.
    Failures to enrol take part with score 0. ``--write-manifest`` stores
    the threshold and the calibration impostors' FMR curve in
    ``models/manifest.json`` under ``thresholds.iris``. ``--threshold T``
    instead reports the rates of a fixed threshold on every eye of the set
    (for held-back sets).

``stress``
    Encodes the calibration eyes 001-040, then each image again after one
    change of the picture (darker or brighter exposure, sensor noise,
    light falling off from one side, defocus, head tilt, a smaller iris in
    a 640 x 480 frame, fewer or more pixels), and compares each changed
    image with the other six images of its eye as they are. Reports, per
    change, failures to enrol, the lowest and 1st-percentile genuine scores
    and the pairs below the manifest's threshold. Use it in place of other
    cameras' images while tuning: it reads no report eye.

``speed``
    Times, on one core: template from a decoded image (median), 1:1
    comparison, and a 1:N search over ``--gallery-size`` templates (default
    1,000,000) built from real codes, checking that the two-stage search
    finds the same best match as the exhaustive one on real probes.

``peer``
    Runs open-iris 1.11.2 in its own virtual environment (``--peer-venv``,
    default ``/tmp/edge-gate-open-iris``; ``--setup-peer`` creates it with
    pip) as a subprocess, and compares its HammingDistanceMatcher with this
    project's matcher on the same codes (the open-iris test vector's
    template, rolled), in the same run.

Run with ``nice`` on a shared machine; every figure is a median of repeats.
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
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

# One core for ONNX Runtime and numpy's threads, before they load.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from edge_gate._models import find_models_dir
from edge_gate.errors import CaptureError
from edge_gate.evaluation import (
    calibrate_threshold,
    equal_error_rate,
    error_rates,
    fnmr_at_fmr,
    rule_of_three,
)
from edge_gate.iris import (
    Circle,
    IrisEncoder,
    IrisGallery,
    IrisTemplate,
    compare_irises,
    load_iris_image,
)
from edge_gate.iris._filters import bilinear
from edge_gate.iris._match import (
    hamming_distances,
    normalise_distance,
    pair_independence,
    row_redundancy,
)

TARGET_FMR = 1e-4
CALIBRATION_EYES = range(1, 41)
REPORT_EYES = range(41, 81)
PEER_VENV = Path("/tmp/edge-gate-open-iris")
PEER_PACKAGE = "open-iris==1.11.2"


def data_root(argument: str | None) -> Path:
    """Return the iris set folder from --data or ``EDGE_GATE_DATA``."""
    if argument:
        return Path(argument)
    base = os.environ.get("EDGE_GATE_DATA")
    if not base:
        sys.exit("set EDGE_GATE_DATA to the evaluation data folder or pass --data")
    return Path(base) / "iris" / "casia-iris-v1"


def encode_set(
    root: Path, encoder: IrisEncoder
) -> tuple[list[str], list[str], list[IrisTemplate | None], list[float]]:
    """Encode every image; return eye ids, names, templates (None = FTE), times."""
    eyes, names, templates, times = [], [], [], []
    for eye_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for path in sorted(eye_dir.iterdir()):
            if path.suffix.lower() not in {".jpg", ".png", ".bmp", ".tif", ".jpeg"}:
                continue
            image = load_iris_image(path)
            start = time.perf_counter()
            try:
                template: IrisTemplate | None = encoder.encode(image)
            except CaptureError:
                template = None
            times.append(time.perf_counter() - start)
            eyes.append(eye_dir.name)
            names.append(path.name)
            templates.append(template)
    return eyes, names, templates, times


def score_matrix(templates: list[IrisTemplate | None]) -> np.ndarray[Any, Any]:
    """Return all-pairs scores; pairs with a failure to enrol score 0."""
    count = len(templates)
    scores = np.zeros((count, count))
    valid = [i for i, t in enumerate(templates) if t is not None]
    usable = [t for t in templates if t is not None]
    gallery = IrisGallery.from_templates([str(i) for i in valid], usable)
    for row, template in zip(valid, usable, strict=True):
        scores[row, valid] = gallery.exhaustive_scores(template)
    return scores


def pair_scores(
    eyes: list[str], scores: np.ndarray[Any, Any], selected: set[int]
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Return genuine and impostor scores over the selected image indices."""
    genuine, impostor = [], []
    for i, j in itertools.combinations(sorted(selected), 2):
        (genuine if eyes[i] == eyes[j] else impostor).append(scores[i, j])
    return np.asarray(genuine), np.asarray(impostor)


def fmr_curve(impostor: np.ndarray[Any, Any], points: int = 64) -> list[list[float]]:
    """Return [[score, fmr], ...] from the impostor scores, for fused policies."""
    ordered = np.sort(impostor)
    curve = []
    for quantile in np.linspace(0.0, 1.0, points):
        score = float(np.quantile(ordered, quantile))
        curve.append([round(score, 6), float((impostor >= score).mean())])
    top = float(ordered[-1]) + 1e-6
    curve.append([round(top, 6), 0.0])
    return curve


def write_threshold(threshold: float, impostor: np.ndarray[Any, Any]) -> None:
    """Store thresholds.iris in the manifest, touching no other key."""
    path = find_models_dir() / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest.setdefault("thresholds", {})["iris"] = {
        "threshold": round(threshold, 6),
        "target_fmr": TARGET_FMR,
        "calibration_set": "CASIA-IrisV1 eyes 001-040",
        "fmr_curve": fmr_curve(impostor),
    }
    path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def command_accuracy(args: argparse.Namespace) -> dict[str, Any]:
    """Encode the set, score all pairs, calibrate and report."""
    root = data_root(args.data)
    encoder = IrisEncoder(threads=1, min_quality=args.min_quality)
    eyes, names, templates, times = encode_set(root, encoder)
    scores = score_matrix(templates)
    everything = set(range(len(eyes)))
    genuine, impostor = pair_scores(eyes, scores, everything)
    failures = [names[i] for i, t in enumerate(templates) if t is None]
    report: dict[str, Any] = {
        "data": str(root),
        "images": len(eyes),
        "eyes": len(set(eyes)),
        "failure_to_enrol": len(failures) / len(eyes),
        "failed_images": failures,
        "encode_ms_median": 1000 * statistics.median(times),
        "eer_all": equal_error_rate(genuine, impostor),
        "genuine_pairs_all": len(genuine),
        "impostor_pairs_all": len(impostor),
        "fnmr_at_fmr_1e-4_all": fnmr_at_fmr(genuine, impostor, TARGET_FMR).fnmr,
    }
    if args.threshold is not None:
        rates = error_rates(genuine, impostor, args.threshold)
        report.update(threshold=args.threshold, fmr=rates.fmr, fnmr=rates.fnmr)
        return report

    def split(eye_range: range) -> set[int]:
        selected = {f"{eye:03d}" for eye in eye_range}
        return {i for i, eye in enumerate(eyes) if eye in selected}

    cal_genuine, cal_impostor = pair_scores(eyes, scores, split(CALIBRATION_EYES))
    threshold = calibrate_threshold(cal_impostor, TARGET_FMR, cal_genuine)
    rep_genuine, rep_impostor = pair_scores(eyes, scores, split(REPORT_EYES))
    rates = error_rates(rep_genuine, rep_impostor, threshold)
    report.update(
        threshold=threshold,
        calibration_eer=equal_error_rate(cal_genuine, cal_impostor),
        report_fmr=rates.fmr,
        report_fnmr=rates.fnmr,
        report_genuine_pairs=len(rep_genuine),
        report_impostor_pairs=len(rep_impostor),
        report_fnmr_95_upper_if_zero=rule_of_three(len(rep_genuine)),
        report_eer=equal_error_rate(rep_genuine, rep_impostor),
        impostor_max_all=float(impostor.max()),
        genuine_min_all=float(genuine.min()),
    )
    # Worst genuine pairs of the calibration eyes only: naming the report
    # eyes' failures would invite tuning on them.
    worst = sorted(
        (scores[i, j], names[i], names[j])
        for i, j in itertools.combinations(sorted(split(CALIBRATION_EYES)), 2)
        if eyes[i] == eyes[j]
    )[:5]
    report["worst_genuine_calibration"] = [[round(s, 4), a, b] for s, a, b in worst]
    # The matcher's REFERENCE_ROW_AGREEMENT is this median.
    agreements = [
        template.row_agreement
        for index in split(CALIBRATION_EYES)
        if (template := templates[index]) is not None
        and template.row_agreement is not None
    ]
    report["row_agreement_median_calibration"] = round(statistics.median(agreements), 4)
    if args.write_manifest:
        write_threshold(threshold, cal_impostor)
        report["manifest"] = "thresholds.iris written"
    return report


def _affine(
    image: np.ndarray[Any, Any],
    shape: tuple[int, int],
    scale: float = 1.0,
    degrees: float = 0.0,
) -> np.ndarray[Any, Any]:
    """Return ``image`` scaled and turned about its centre into ``shape``.

    Pixels outside the source repeat its nearest edge, so no artificial
    border enters the frame.
    """
    height, width = shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = np.radians(degrees)
    dy, dx = ys - (height - 1) / 2, xs - (width - 1) / 2
    source_y = (np.cos(angle) * dy - np.sin(angle) * dx) / scale
    source_x = (np.sin(angle) * dy + np.cos(angle) * dx) / scale
    rows = source_y + (image.shape[0] - 1) / 2
    cols = source_x + (image.shape[1] - 1) / 2
    sampled = bilinear(image.astype(np.float32), rows, cols)
    return np.clip(sampled + 0.5, 0, 255).astype(np.uint8)


# Illuminator highlights as (x, y, radius) in pupil radii from the pupil
# centre: two inside the pupil and one across its edge into the iris. The
# CASIA publisher flattened its pupils; gate cameras show such spots.
PUPIL_HIGHLIGHTS = ((-0.35, -0.2, 0.22), (0.35, -0.2, 0.22), (0.85, 0.0, 0.25))


def _with_highlights(
    image: np.ndarray[Any, Any], pupil: Circle, level: float = 250.0
) -> np.ndarray[Any, Any]:
    """Return ``image`` with bright discs (edges one pixel soft) in the pupil."""
    grey = image.astype(np.float64)
    ys, xs = np.mgrid[0 : image.shape[0], 0 : image.shape[1]]
    for dx, dy, size in PUPIL_HIGHLIGHTS:
        x = pupil.x + dx * pupil.radius
        y = pupil.y + dy * pupil.radius
        cover = np.clip(size * pupil.radius + 1 - np.hypot(xs - x, ys - y), 0, 1)
        grey = grey * (1 - cover) + level * cover
    return np.asarray(grey, dtype=np.uint8)


def _changed(
    image: np.ndarray[Any, Any], change: str, pupil: Circle | None = None
) -> np.ndarray[Any, Any]:
    """Return ``image`` after one of the ``STRESS_CHANGES``.

    ``pupil`` (from the unchanged image's segmentation) places the
    highlights of the ``pupil highlights`` change.
    """
    grey = image.astype(np.float64)
    height, width = image.shape
    if change == "pupil highlights":
        if pupil is None:
            raise ValueError(
                "pupil circle missing: the pupil highlights change needs it"
            )
        return _with_highlights(image, pupil)
    if change.startswith("gamma "):
        power = float(change.split()[1])
        return np.asarray(255 * (grey / 255) ** power, dtype=np.uint8)
    if change == "noise sd 8":
        noise = np.random.default_rng(0).normal(0, 8, image.shape)
        return np.asarray(np.clip(grey + noise, 0, 255), dtype=np.uint8)
    if change == "vignette 0.8":
        ys, xs = np.mgrid[0:height, 0:width]
        corner = np.hypot(
            (xs - width / 2) / (width / 2), (ys - height / 2) / (height / 2)
        )
        return np.asarray(
            np.clip(grey * (1 - 0.8 * corner**2 / 2), 0, 255), dtype=np.uint8
        )
    if change == "light ramp -40..+40":
        ramp = np.linspace(-40.0, 40.0, width)[None, :]
        return np.asarray(np.clip(grey + ramp, 0, 255), dtype=np.uint8)
    if change == "blur sd 1.5":
        blurred = Image.fromarray(image).filter(ImageFilter.GaussianBlur(1.5))
        return np.asarray(blurred, dtype=np.uint8)
    if change == "tilt 8 deg":
        return _affine(image, (height, width), degrees=8.0)
    if change == "0.85x in 640 x 480":
        return _affine(image, (480, 640), scale=0.85)
    if change.startswith("resize "):
        scale = float(change.split()[1].rstrip("x"))
        return _affine(image, (round(height * scale), round(width * scale)), scale)
    raise ValueError(f"unknown change {change!r}")


STRESS_CHANGES = (
    "gamma 1.5",
    "gamma 0.7",
    "noise sd 8",
    "light ramp -40..+40",
    "blur sd 1.5",
    "tilt 8 deg",
    "0.85x in 640 x 480",
    "resize 0.7x",
    "resize 1.6x",
    "pupil highlights",
    "vignette 0.8",
)


def command_stress(args: argparse.Namespace) -> dict[str, Any]:
    """Score changed calibration images against their eyes' other images."""
    root = data_root(args.data)
    manifest = json.loads((find_models_dir() / "manifest.json").read_text("utf-8"))
    threshold = float(manifest["thresholds"]["iris"]["threshold"])
    encoder = IrisEncoder(threads=1, min_quality=args.min_quality)
    eyes, names, images, templates, pupils = [], [], [], [], []
    selected = {f"{eye:03d}" for eye in CALIBRATION_EYES}
    for eye_dir in sorted(p for p in root.iterdir() if p.name in selected):
        for path in sorted(eye_dir.iterdir()):
            image = load_iris_image(path)
            template: IrisTemplate | None = None
            pupil: Circle | None = None
            try:
                encoding = encoder.encode_with_details(image)
            except CaptureError:
                pass
            else:
                template = encoding.template
                pupil = encoding.segmentation.pupil
            eyes.append(eye_dir.name)
            names.append(path.name)
            images.append(image)
            templates.append(template)
            pupils.append(pupil)
    report: dict[str, Any] = {"images": len(images), "threshold": threshold}
    for change in STRESS_CHANGES:
        failures, scores = 0, []
        for index, image in enumerate(images):
            if change == "pupil highlights" and pupils[index] is None:
                continue  # no pupil to place them in: a failure to enrol already
            try:
                changed = encoder.encode(_changed(image, change, pupils[index]))
            except CaptureError:
                failures += 1
                continue
            scores += [
                compare_irises(changed, other)
                for other_index, other in enumerate(templates)
                if eyes[other_index] == eyes[index]
                and other_index != index
                and other is not None
            ]
        values = np.asarray(scores)
        report[change] = {
            "failure_to_enrol": failures,
            "genuine_pairs": len(values),
            "genuine_min": round(float(values.min()), 4),
            "genuine_p1": round(float(np.quantile(values, 0.01)), 4),
            "below_threshold": int((values < threshold).sum()),
        }
    return report


def synthetic_gallery(
    templates: list[IrisTemplate], size: int, seed: int
) -> IrisGallery:
    """Return a gallery of ``size`` templates recombined from real codes.

    Each synthetic eye takes every code row (with its mask row) from a
    randomly chosen real template, and the whole code is rotated by a random
    number of columns. Its bit statistics are those of real codes, but it
    matches no real eye. Rows from different eyes do not agree as a real
    code's rows do, so each synthetic eye takes the row redundancy of one
    real template instead of its own.
    """
    rng = np.random.default_rng(seed)
    codes = np.stack([t.code for t in templates])
    masks = np.stack([t.mask for t in templates])
    count, rows, columns, _ = codes.shape
    gallery_codes = []
    gallery_masks = []
    block = 50_000
    from edge_gate.iris._gallery import _pack

    for start in range(0, size, block):
        n = min(block, size - start)
        source = rng.integers(0, count, size=(n, rows))
        shift = rng.integers(0, columns, size=n)
        column_index = (np.arange(columns)[None, :] - shift[:, None]) % columns
        row_index = np.arange(rows)[None, :, None]
        picked_codes = codes[source[:, :, None], row_index, column_index[:, None, :]]
        picked_masks = masks[source[:, :, None], row_index, column_index[:, None, :]]
        expanded = np.repeat(picked_masks[..., None], codes.shape[3], axis=3)
        gallery_codes.append(_pack(picked_codes.reshape(n, -1)))
        gallery_masks.append(_pack(expanded.reshape(n, -1)))
    ids = [f"synthetic-{i}" for i in range(size)]
    real_redundancies = np.array([row_redundancy(t) for t in templates])
    return IrisGallery(
        ids,
        np.concatenate(gallery_codes),
        np.concatenate(gallery_masks),
        templates[0].shape,
        real_redundancies[rng.integers(0, count, size=size)],
    )


def command_speed(args: argparse.Namespace) -> dict[str, Any]:
    """Time encoding, 1:1 comparison and the 1:N search."""
    root = data_root(args.data)
    encoder = IrisEncoder(threads=1, min_quality=0.0)
    eyes, _, templates, times = encode_set(root, encoder)
    usable = [(e, t) for e, t in zip(eyes, templates, strict=True) if t is not None]
    report: dict[str, Any] = {
        "encode_ms_median": 1000 * statistics.median(times),
        "encode_ms_p90": 1000 * float(np.quantile(times, 0.9)),
        "template_bytes": len(usable[0][1].to_bytes()),
    }
    pair_times = []
    for (_, first), (_, second) in itertools.islice(
        itertools.combinations(usable, 2), 2000
    ):
        start = time.perf_counter()
        compare_irises(first, second)
        pair_times.append(time.perf_counter() - start)
    report["compare_us_median"] = 1e6 * statistics.median(pair_times)

    # 1:N: enrol session-1 images of every eye into a large synthetic
    # gallery, probe with session-2 images.
    by_eye: dict[str, list[IrisTemplate]] = {}
    for eye, template in usable:
        by_eye.setdefault(eye, []).append(template)
    enrolled = [(eye, ts[0]) for eye, ts in sorted(by_eye.items())]
    probes = [(eye, ts[-1]) for eye, ts in sorted(by_eye.items()) if len(ts) > 1]
    real_gallery = IrisGallery.from_templates(
        [e for e, _ in enrolled], [t for _, t in enrolled]
    )
    background = synthetic_gallery(
        [t for _, t in usable], args.gallery_size - len(enrolled), seed=7
    )
    gallery = IrisGallery(
        [e for e, _ in enrolled] + [f"synthetic-{i}" for i in range(len(background))],
        np.concatenate([real_gallery._codes, background._codes]),
        np.concatenate([real_gallery._masks, background._masks]),
        real_gallery._shape,
        np.concatenate([real_gallery._row_redundancies, background._row_redundancies]),
    )
    search_times, agree, top1 = [], 0, 0
    for eye, probe in probes[: args.probes]:
        start = time.perf_counter()
        result = gallery.search(probe, top_k=5)
        search_times.append(time.perf_counter() - start)
        exhaustive = gallery.exhaustive_scores(probe)
        best = int(np.argmax(exhaustive))
        agree += result[0][1] >= float(exhaustive[best]) - 1e-9
        top1 += result[0][0] == eye
    report.update(
        gallery_size=len(gallery),
        gallery_bytes_per_template=gallery.template_bytes,
        search_s_median=statistics.median(search_times),
        search_probes=len(search_times),
        search_agrees_with_exhaustive=agree / len(search_times),
        search_rank1_identification=top1 / len(search_times),
        fine_stage_candidates=gallery.candidates_for(len(gallery)),
    )
    return report


PEER_SCRIPT = r"""
import json, sys, time, base64, statistics
import numpy as np
import iris
from iris.nodes.matcher.hamming_distance_matcher import HammingDistanceMatcher
data = json.load(open(sys.argv[1]))
template = iris.IrisTemplate.deserialize(data["iris_template"])
shape = template.iris_codes[0].shape
rolled = iris.IrisTemplate(
    iris_codes=[np.roll(c, 7, axis=1) for c in template.iris_codes],
    mask_codes=[np.roll(m, 7, axis=1) for m in template.mask_codes],
    iris_code_version=template.iris_code_version,
)
matcher = HammingDistanceMatcher(rotation_shift=15)
times = []
for _ in range(200):
    start = time.perf_counter()
    distance = matcher.run(template, rolled)
    times.append(time.perf_counter() - start)
print(json.dumps({"version": iris.__version__, "distance": float(distance),
                  "compare_us_median": 1e6 * statistics.median(times)}))
"""


def command_peer(args: argparse.Namespace) -> dict[str, Any]:
    """Compare 1:1 matching speed with open-iris on the same codes."""
    venv = Path(args.peer_venv)
    python = venv / "bin" / "python"
    if args.setup_peer and not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", PEER_PACKAGE], check=True
        )
    if not python.exists():
        return {"peer": f"no open-iris venv at {venv}; run with --setup-peer"}
    root = data_root(args.data).parent / "open-iris-testvector"
    vector = root / "expected_orb_output.json"
    completed = subprocess.run(
        [str(python), "-c", PEER_SCRIPT, str(vector)],
        check=False,
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    if completed.returncode != 0:
        return {"peer": "open-iris failed", "stderr": completed.stderr[-2000:]}
    peer = json.loads(completed.stdout.strip().splitlines()[-1])

    # Same codes on this side: the imported template against its roll.
    data = json.loads(vector.read_text(encoding="utf-8"))
    template = IrisTemplate.from_open_iris(data["iris_template"])
    rolled = IrisTemplate(
        code=np.roll(template.code, 7, axis=1),
        mask=np.roll(template.mask, 7, axis=1),
        quality=1.0,
    )
    # The same rotation range as the peer's rotation_shift=15 (31 shifts).
    times = []
    score = 0.0
    for _ in range(200):
        fresh = IrisTemplate(code=rolled.code, mask=rolled.mask, quality=1.0)
        start = time.perf_counter()
        distance, bits = hamming_distances(template, fresh, max_shift=15)
        normalised = normalise_distance(
            distance, bits, pair_independence(template, fresh)
        )
        score = min(1.0, 1.0 - float(normalised.min()))
        times.append(time.perf_counter() - start)
    ours = 1e6 * statistics.median(times)
    return {
        "peer": peer,
        "ours": {"score": score, "compare_us_median": ours},
        "speed_ratio_peer_over_ours": peer["compare_us_median"] / ours,
    }


def main() -> None:
    """Parse the command line and print the chosen report as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["accuracy", "stress", "speed", "peer"])
    parser.add_argument("--data", help="iris set folder (one sub-folder per eye)")
    parser.add_argument("--min-quality", type=float, default=0.0)
    parser.add_argument("--threshold", type=float, default=None)
    parser.add_argument("--write-manifest", action="store_true")
    parser.add_argument("--gallery-size", type=int, default=1_000_000)
    parser.add_argument("--probes", type=int, default=20)
    parser.add_argument("--peer-venv", default=str(PEER_VENV))
    parser.add_argument("--setup-peer", action="store_true")
    args = parser.parse_args()
    commands = {
        "accuracy": command_accuracy,
        "stress": command_stress,
        "speed": command_speed,
        "peer": command_peer,
    }
    print(json.dumps(commands[args.command](args), indent=2))


if __name__ == "__main__":
    main()
