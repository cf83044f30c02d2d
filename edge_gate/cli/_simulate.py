"""``edge-gate simulate``: run the real lane against the test rig.

Exit status 0 means every crossing ran and ended as its scenario expects.
False rejects do not change it, because they are a rate to report (most of
all on real images). Status 1 means a false accept, another unexpected
result or a crossing that could not run, and 2 means invalid options.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from edge_gate.rig.scenarios import SCENARIOS_BY_NAME

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def register(subparsers: Any) -> None:
    """Add ``simulate`` to ``subparsers``."""
    parser = subparsers.add_parser(
        "simulate",
        help="run the lane daemon against emulated devices and travellers",
        description="Enrol travellers through the publisher, sync the gate, then "
        "run crossings (genuine, impostor, expired document, not enrolled, "
        "watchlisted, tailgating, walk-away, sensor unplug, fire release) "
        "through the real lane code and emulated devices. Synthetic travellers "
        "by default; real images with --dataset.",
    )
    parser.add_argument(
        "--travellers",
        type=int,
        default=4,
        metavar="N",
        help="enrolled travellers, at least 2; two watchlisted people are "
        "added (default: 4)",
    )
    parser.add_argument(
        "--dataset",
        type=Path,
        metavar="DIR",
        help="real images: DIR/fingerprints/<set>/ and DIR/iris/<set>/ laid out "
        "as identities; each traveller pairs one finger with one eye, enrols "
        "from the first images and crosses with the others",
    )
    parser.add_argument(
        "--fingerprint-set",
        action="append",
        default=[],
        metavar="NAME",
        help="fingerprint set under DIR/fingerprints to use (repeatable; "
        "default: every set laid out as identities)",
    )
    parser.add_argument(
        "--iris-set",
        action="append",
        default=[],
        metavar="NAME",
        help="iris set under DIR/iris to use (repeatable; default: all)",
    )
    parser.add_argument(
        "--iris-skip",
        type=int,
        default=0,
        metavar="N",
        help="leave out the first N eyes of the iris sets, to use only an "
        "evaluation split (40 for CASIA-IrisV1 eyes 041-080; default: 0)",
    )
    parser.add_argument(
        "--seed", type=int, default=1, metavar="S", help="seed of the synthetic run"
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=0.1,
        metavar="F",
        help="factor applied to the simulated human and sensor delays and to "
        "the lane's timeouts; the report shows the realistic delays "
        "(default: 0.1)",
    )
    parser.add_argument(
        "--genuine-per-traveller",
        type=int,
        metavar="N",
        help="genuine crossings per traveller (default: 1 synthetic, every "
        "remaining image pair on a data set)",
    )
    parser.add_argument(
        "--scenario",
        action="append",
        default=[],
        choices=sorted(SCENARIOS_BY_NAME),
        metavar="NAME",
        help="run only this scenario (repeatable; default: all)",
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        metavar="DIR",
        help="keep the run's repository, state and audit log in DIR "
        "(default: a temporary folder, removed afterwards)",
    )
    parser.add_argument(
        "--models-dir",
        type=Path,
        metavar="DIR",
        help="models folder (default: shipped)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=_simulate)


def _simulate(args: argparse.Namespace) -> int:
    from edge_gate.rig.simulation import SimulationOptions, run_simulation
    from edge_gate.rig.travellers import DatasetError

    if args.iris_skip < 0:
        print("edge-gate simulate: --iris-skip must be 0 or more", file=sys.stderr)
        return EXIT_USAGE
    if args.travellers < 2:
        print("edge-gate simulate: --travellers must be at least 2", file=sys.stderr)
        return EXIT_USAGE
    if args.genuine_per_traveller is not None and args.genuine_per_traveller < 1:
        print(
            "edge-gate simulate: --genuine-per-traveller must be at least 1",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if (
        args.fingerprint_set or args.iris_set or args.iris_skip
    ) and args.dataset is None:
        print(
            "edge-gate simulate: --fingerprint-set, --iris-set and --iris-skip "
            "need --dataset DIR",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if (
        args.work_dir is not None
        and args.work_dir.exists()
        and any(args.work_dir.iterdir())
    ):
        print(
            f"edge-gate simulate: --work-dir {args.work_dir} is not empty; "
            "give a new or empty folder",
            file=sys.stderr,
        )
        return EXIT_USAGE

    options = SimulationOptions(
        travellers=args.travellers,
        seed=args.seed,
        dataset=args.dataset,
        fingerprint_sets=tuple(args.fingerprint_set),
        iris_sets=tuple(args.iris_set),
        iris_skip=args.iris_skip,
        time_scale=args.time_scale,
        genuine_per_traveller=args.genuine_per_traveller,
        scenarios=tuple(args.scenario),
        work_dir=args.work_dir,
        models_dir=args.models_dir,
    )
    try:
        report = run_simulation(options)
    except (ValueError, DatasetError) as err:
        print(f"edge-gate simulate: {err}", file=sys.stderr)
        return EXIT_USAGE

    if args.json:
        print(json.dumps(report.to_json_dict(), indent=2))
    else:
        print(report.format_table())
    unexpected = [c for c in report.crossings if not c.ok and not c.is_false_reject]
    false_accepts = sum(c.is_false_accept for c in report.crossings)
    if unexpected or false_accepts or not report.crossings:
        return EXIT_FAILED
    return EXIT_OK
