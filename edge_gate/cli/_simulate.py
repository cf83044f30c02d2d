"""``edge-gate simulate``: run the real lane against the test rig.

Exit status 0 means every crossing ran and ended as its scenario expects.
False rejects and false watchlist alerts do not change it, because they
are the matchers' error rates, counted in the report. Status 1 means a
false accept, another unexpected result, a crossing that could not run or
a stop by SIGTERM or SIGHUP, and 2 means invalid options.

While the lane runs, it serves its control socket in the work folder, and
one line on stderr at the start gives the ``edge-gate status --config``
command that reaches it from another shell. A work folder whose path is
too long for a UNIX socket leaves the socket out, with a note in the
report, and makes ``--hold`` a usage error. ``--hold`` keeps the lane up
after the last crossing. Ctrl-C, SIGTERM or SIGHUP during the hold ends only the
hold, and the report and exit status follow as without one.

The lane logs warnings that the scenarios cause on purpose (an unplugged
sensor, a tailgating alarm). Without ``-v`` they stay off stderr unless the
run is not as expected, and then they are printed after the report. The
work folder's ``simulate.log`` keeps them either way. A SIGTERM, or a SIGHUP
from a closed terminal or SSH session, stops the run like Ctrl-C: the lane
stops and a temporary work folder is removed.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from edge_gate._models import load_manifest
from edge_gate.errors import ModelError
from edge_gate.rig._limits import (
    MAX_GENUINE_PER_TRAVELLER,
    MAX_HOLD_S,
    MAX_SEED,
    MAX_TIME_SCALE,
    MAX_TRAVELLERS,
    MIN_TRAVELLERS,
)
from edge_gate.rig.scenarios import SCENARIOS_BY_NAME

from ._rehearsal import hold_lane, print_field_command
from ._signals import Terminated, sigterm_unwinds

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

# Without a terminal, one progress line at most this often.
_PROGRESS_INTERVAL_S = 10.0


def _whole_number(text: str, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a whole number; give one from {low} to {high}"
        ) from None
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(
            f"{value} is out of range; give a number from {low} to {high}"
        )
    return value


def _travellers(text: str) -> int:
    return _whole_number(text, MIN_TRAVELLERS, MAX_TRAVELLERS)


def _genuine(text: str) -> int:
    return _whole_number(text, 1, MAX_GENUINE_PER_TRAVELLER)


def _seed(text: str) -> int:
    return _whole_number(text, 0, MAX_SEED)


def _iris_skip(text: str) -> int:
    return _whole_number(text, 0, 100_000)


def _time_scale(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and 0 < value <= MAX_TIME_SCALE):
        raise argparse.ArgumentTypeError(
            f"{text} is out of range; give a factor more than 0 and at most "
            f"{MAX_TIME_SCALE:g} (0.1 sleeps a tenth of the realistic delays)"
        )
    return value


def _hold_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and 0 <= value <= MAX_HOLD_S):
        raise argparse.ArgumentTypeError(
            f"{text} is out of range; give seconds from 0 to {MAX_HOLD_S:g}"
        )
    return value


def _folder(text: str) -> Path:
    path = Path(text).expanduser()
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is not a folder")
    return path.resolve()


def _models_folder(text: str) -> Path:
    path = _folder(text)
    try:
        load_manifest(path)
    except ModelError as err:
        raise argparse.ArgumentTypeError(
            f"{err}; give the models folder, the one that contains manifest.json"
        ) from None
    return path


def _work_folder(text: str) -> Path:
    if not text.strip():
        raise argparse.ArgumentTypeError("empty path; give a new or empty folder")
    path = Path(text).expanduser()
    parent = next((p for p in path.absolute().parents if p.exists()), None)
    if not path.exists() and (parent is None or not os.access(parent, os.W_OK)):
        raise argparse.ArgumentTypeError(
            f"{text} cannot be created here; give a folder under one you can write to"
        )
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(
            f"{text} is a file; give a new or empty folder"
        )
    if path.is_dir() and any(path.iterdir()):
        raise argparse.ArgumentTypeError(
            f"{text} is not empty; give a new or empty folder"
        )
    return path.resolve()


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
        type=_travellers,
        default=4,
        metavar="N",
        help=f"enrolled travellers, {MIN_TRAVELLERS} to {MAX_TRAVELLERS}; two "
        "watchlisted people are added; each traveller adds two crossings "
        "(default: 4)",
    )
    parser.add_argument(
        "--dataset",
        type=_folder,
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
        type=_iris_skip,
        default=0,
        metavar="N",
        help="leave out the first N eyes of the iris sets, to use only an "
        "evaluation split (40 for CASIA-IrisV1 eyes 041-080; default: 0)",
    )
    parser.add_argument(
        "--seed",
        type=_seed,
        default=1,
        metavar="S",
        help=f"seed of the synthetic run, 0 to {MAX_SEED} (default: 1)",
    )
    parser.add_argument(
        "--time-scale",
        type=_time_scale,
        default=0.1,
        metavar="F",
        help="factor applied to the simulated human and sensor delays and to "
        f"the lane's timeouts, more than 0 and at most {MAX_TIME_SCALE:g}; the "
        "report shows the realistic delays (default: 0.1)",
    )
    parser.add_argument(
        "--genuine-per-traveller",
        type=_genuine,
        metavar="N",
        help=f"genuine crossings per traveller, 1 to {MAX_GENUINE_PER_TRAVELLER} "
        "(default: 1 synthetic, every remaining image pair on a data set)",
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
        type=_work_folder,
        metavar="DIR",
        help="keep the run's repository, state, audit log and simulate.log in "
        "DIR, a new or empty folder (default: a temporary folder, removed "
        "afterwards)",
    )
    parser.add_argument(
        "--models-dir",
        type=_models_folder,
        metavar="DIR",
        help="models folder (default: shipped)",
    )
    parser.add_argument(
        "--hold",
        type=_hold_seconds,
        default=0.0,
        metavar="SECONDS",
        help="after the last crossing, keep the lane and its control socket "
        f"up for this many seconds, 0 to {MAX_HOLD_S:g}, so that field commands "
        "can be tried by hand; Ctrl-C, SIGTERM or SIGHUP ends the hold early, and the "
        "report follows (default: 0)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show progress on stderr (default: only when stderr is a "
        "terminal; without one, a line every 10 s)",
    )
    parser.set_defaults(handler=_simulate)


class _HeldRecords:
    """Keeps log records back from the stderr handlers, to replay later."""

    def __init__(self) -> None:
        self.records: list[tuple[logging.Handler, logging.LogRecord]] = []
        self._handlers: list[logging.Handler] = []

    def attach(self) -> None:
        for handler in logging.getLogger().handlers:
            stream = getattr(handler, "stream", None)
            if isinstance(handler, logging.FileHandler) or stream not in (
                sys.stderr,
                sys.__stderr__,
            ):
                continue
            handler.addFilter(_HandlerFilter(self, handler))
            self._handlers.append(handler)

    def detach(self) -> None:
        for handler in self._handlers:
            for item in list(handler.filters):
                if isinstance(item, _HandlerFilter) and item.owner is self:
                    handler.removeFilter(item)
        self._handlers.clear()

    def replay(self) -> None:
        if not self.records:
            return
        print(
            "edge-gate simulate: the lane's log during the run follows",
            file=sys.stderr,
        )
        for handler, record in self.records:
            handler.handle(record)
        self.records.clear()


class _HandlerFilter(logging.Filter):
    def __init__(self, owner: _HeldRecords, handler: logging.Handler) -> None:
        super().__init__()
        self.owner = owner
        self._handler = handler

    def filter(self, record: logging.LogRecord) -> bool:
        self.owner.records.append((self._handler, record))
        return False


class _ProgressLine:
    """Progress on stderr: one line redrawn on a terminal, else throttled."""

    def __init__(self, stream: TextIO, *, redraw: bool) -> None:
        self._stream = stream
        self._redraw = redraw
        self._last_s: float | None = None
        self._width = 0

    def __call__(self, message: str) -> None:
        line = f"edge-gate simulate: {message}"
        if self._redraw:
            self._stream.write("\r" + line.ljust(self._width))
            self._width = len(line)
        else:
            now_s = time.monotonic()
            if self._last_s is not None and now_s - self._last_s < (
                _PROGRESS_INTERVAL_S
            ):
                return
            self._last_s = now_s
            self._stream.write(line + "\n")
        self._stream.flush()

    def finish(self) -> None:
        if self._redraw and self._width:
            self._stream.write("\r" + " " * self._width + "\r")
            self._stream.flush()


def _progress(args: argparse.Namespace) -> _ProgressLine | None:
    is_terminal = sys.stderr.isatty()
    requested = is_terminal if args.progress is None else args.progress
    if not requested:
        return None
    return _ProgressLine(sys.stderr, redraw=is_terminal)


def _simulate(args: argparse.Namespace) -> int:
    from edge_gate.rig.simulation import SimulationOptions

    if (
        args.fingerprint_set or args.iris_set or args.iris_skip
    ) and args.dataset is None:
        print(
            "edge-gate simulate: --fingerprint-set, --iris-set and --iris-skip "
            "need --dataset DIR",
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
        hold_s=args.hold,
    )
    stderr_records = _HeldRecords()
    if not getattr(args, "verbose", 0):
        stderr_records.attach()
    status = EXIT_FAILED
    try:
        status = _run(args, options, _progress(args))
    finally:
        stderr_records.detach()
        if status != EXIT_OK:
            stderr_records.replay()
    return status


def _run(
    args: argparse.Namespace,
    options: Any,
    progress: _ProgressLine | None,
) -> int:
    from edge_gate.rig.simulation import WorkFolderError, run_simulation
    from edge_gate.rig.travellers import DatasetError

    report_progress: Callable[[str], None] = progress or (lambda message: None)

    def hold(seconds: float) -> None:
        hold_lane(seconds, clear_progress=progress.finish if progress else None)

    try:
        with sigterm_unwinds():
            report = run_simulation(
                options,
                progress=report_progress,
                announce_config=print_field_command,
                hold=hold,
            )
    except (ValueError, DatasetError, WorkFolderError) as err:
        print(f"edge-gate simulate: {err}", file=sys.stderr)
        return EXIT_USAGE
    except Terminated as stop:
        print(f"edge-gate simulate: stopped by {stop.signal_name}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        if progress is not None:
            progress.finish()

    if args.json:
        print(json.dumps(report.to_json_dict(), indent=2))
    else:
        print(report.format_table())
    unexpected = [c for c in report.crossings if not c.ok and not c.is_matcher_error]
    false_accepts = sum(c.is_false_accept for c in report.crossings)
    if unexpected or false_accepts or not report.crossings:
        return EXIT_FAILED
    return EXIT_OK
