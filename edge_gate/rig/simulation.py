"""``edge-gate simulate``: the real lane against the rig, start to end.

:func:`run_simulation` carries out these steps:

1. Choose the biometric source (synthetic from the seed, or a real data
   folder) and make the people: travellers plus two watchlisted people.
2. Write their enrolment records (image paths) and enrol them through the
   real publisher, template server and sync client.
3. Start the lane runner against the emulators (:class:`LaneRig`), then
   its control socket.
4. Run the planned crossings, each played by a :class:`TravellerActor`.
5. Read the audit log, keep the lane up for the hold if one was requested,
   and build the :class:`SimulationReport`.

A part of the lane that is not installed makes every crossing "not run",
with the reason, instead of a made-up result.

A crossing that ends without a record, because a lane worker stopped on an
error or because the crossing's limit passed (see
:func:`~edge_gate.rig._crossing.crossing_limit_s`), stops the run. It is
logged as an ERROR naming the crossing and the worker, and the report keeps
the crossings done so far, that crossing without a record and the rest as
"not run", with the reason in its notes. ``edge-gate simulate`` then exits
1, as for any crossing that did not end as expected.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_gate.errors import ModelError
from edge_gate.rig._crossing import CrossingTrace, TravellerActor, machine_ms
from edge_gate.rig._lane_rig import (
    CONFIG_FILE,
    CONTROL_SOCKET,
    ComponentMissingError,
    LaneRig,
    SimulationError,
    today_utc,
)
from edge_gate.rig._limits import (
    MAX_HOLD_S,
    MAX_TIME_SCALE,
    MAX_TRAVELLERS,
    MIN_TRAVELLERS,
)
from edge_gate.rig._plan import (
    EXTRA_PEOPLE,
    PlannedCrossing,
    Population,
    make_population,
    plan_crossings,
)
from edge_gate.rig.report import CrossingResult, SimulationReport
from edge_gate.rig.scenarios import SCENARIOS_BY_NAME, HumanDelays
from edge_gate.rig.synthetic import SyntheticPerson
from edge_gate.rig.travellers import BiometricSource, DatasetSource, SyntheticSource

logger = logging.getLogger(__name__)

# The run's log records, in the work folder (kept with --work-dir).
LOG_FILE_NAME = "simulate.log"

Progress = Callable[[str], None]
# Callback that receives the lane configuration's path (for --config).
AnnounceConfig = Callable[[Path], None]
# Callback that receives the hold's length in seconds and returns when the
# hold ends.
Hold = Callable[[float], None]


class WorkFolderError(SimulationError):
    """Error for a ``--work-dir`` folder that cannot be created or written.

    The CLI reports it as an invalid option. It is also raised when a hold
    is requested and the control socket's path in the work folder is too
    long for a UNIX socket.
    """


@dataclass(frozen=True)
class SimulationOptions:
    """Settings of one simulate run.

    Attributes:
        travellers: enrolled travellers (two watchlisted people are added).
        seed: seed of the synthetic people, fingers and eyes.
        dataset: real data folder; None runs synthetic travellers.
        fingerprint_sets: fingerprint set names under ``dataset``; empty
            takes every set laid out as identities.
        iris_sets: iris set names under ``dataset``; empty takes all.
        iris_skip: eyes left out at the start of the data set's sorted list.
        time_scale: factor applied to simulated delays and lane timeouts.
        genuine_per_traveller: genuine crossings per traveller; None means
            one for synthetic travellers and every remaining capture for a
            real data set.
        scenarios: scenario names to run; empty runs all.
        work_dir: folder for the run's files; None uses a temporary folder
            that is removed afterwards.
        models_dir: models folder; None uses the shipped one.
        hold_s: seconds the lane and its control socket stay up after the
            last crossing, from 0 to MAX_HOLD_S. 0 stops the lane at once.
        delays: realistic human and sensor durations.
    """

    travellers: int = 4
    seed: int = 1
    dataset: Path | None = None
    fingerprint_sets: tuple[str, ...] = ()
    iris_sets: tuple[str, ...] = ()
    iris_skip: int = 0
    time_scale: float = 0.1
    genuine_per_traveller: int | None = None
    scenarios: tuple[str, ...] = ()
    work_dir: Path | None = None
    models_dir: Path | None = None
    hold_s: float = 0.0
    delays: HumanDelays = field(default_factory=HumanDelays)


def _source(options: SimulationOptions) -> BiometricSource:
    if options.dataset is None:
        return SyntheticSource(options.seed)
    return DatasetSource(
        options.dataset,
        options.fingerprint_sets,
        options.iris_sets,
        iris_skip=options.iris_skip,
    )


def _enrolment_record(
    person: SyntheticPerson,
    source: BiometricSource,
    work_dir: Path,
    *,
    watchlisted: bool = False,
    with_document: bool = True,
) -> dict[str, Any]:
    finger_path, iris_path = source.enrolment_paths(person.index, work_dir)
    document = person.document
    return {
        "person_id": person.person_id,
        "enrolment_id": f"enrolment-{person.person_id}",
        "documents": [
            {
                "issuing_state": document.issuing_state,
                "document_number": document.document_number,
                "expiry": document.expiry_date.isoformat(),
            }
        ]
        if with_document
        else [],
        "enrolment_expiry": document.expiry_date.isoformat(),
        "watchlisted": watchlisted,
        "revoked": False,
        "fingerprints": {source.finger: str(finger_path)},
        "irises": {source.eye: str(iris_path)},
    }


def enrolment_records(
    population: Population, source: BiometricSource, work_dir: Path
) -> list[dict[str, Any]]:
    """Return the publisher's input records for everyone in the run."""
    records = [_enrolment_record(p, source, work_dir) for p in population.travellers]
    records.append(
        _enrolment_record(population.watchlisted, source, work_dir, watchlisted=True)
    )
    records.append(
        _enrolment_record(
            population.watchlist_only,
            source,
            work_dir,
            watchlisted=True,
            with_document=False,
        )
    )
    return records


def _traveller_count(
    options: SimulationOptions, source: BiometricSource
) -> tuple[int, list[str]]:
    notes: list[str] = []
    available = source.identity_count()
    count = options.travellers
    if available is not None and count + EXTRA_PEOPLE > available:
        count = available - EXTRA_PEOPLE
        notes.append(
            f"travellers capped at {count}: the data set pairs {available} "
            f"identities and {EXTRA_PEOPLE} are the watchlisted people"
        )
    return count, notes


def _result(
    number: int,
    planned: PlannedCrossing,
    trace: CrossingTrace,
    audit_by_tx: dict[str, Any],
) -> CrossingResult:
    transaction = trace.transaction
    if transaction is None:
        return CrossingResult(
            number=number,
            scenario=planned.scenario.name,
            traveller=planned.label,
            outcome=None,
            reason=trace.stuck_reason or "the lane recorded no transaction",
            simulated_s=trace.simulated_s,
        )
    record = audit_by_tx.get(str(transaction.get("transaction_id")))
    alarms: tuple[str, ...] = tuple(sorted(set(trace.alarms)))
    scores: dict[str, float] = {}
    latency_ms = transaction.get("latency_ms")
    if record is not None:
        alarms = tuple(sorted(set(record.alarms)))
        scores = dict(record.scores)
        latency_ms = record.latency_ms
    # Without an audit record only the rig's own estimate is left; a record
    # without a decision (walk-away, fault, fire release) has no machine time.
    machine = machine_ms(trace)
    if record is not None:
        machine = None
        if "to_decision" in record.durations_ms:
            machine = machine_ms_from_durations(record.durations_ms)
    lane_ms = None
    if trace.document_at is not None and trace.ended_at is not None:
        lane_ms = (trace.ended_at - trace.document_at) * 1000.0
    return CrossingResult(
        number=number,
        scenario=planned.scenario.name,
        traveller=planned.label,
        outcome=str(transaction.get("outcome")),
        reason=str(transaction.get("reason", "")),
        alarms=alarms,
        latency_ms=None if latency_ms is None else float(latency_ms),
        lane_ms=lane_ms,
        simulated_s=trace.simulated_s,
        machine_ms=machine,
        scores=scores,
    )


def machine_ms_from_durations(durations_ms: Mapping[str, float]) -> float:
    """Return the lane's own time from document read to decision.

    Steps, on the lane's audit durations:

    1. Start from document read to decision (``to_decision``).
    2. Subtract each capture call (waiting for the traveller, the sensor's
       own work and the image transfer).
    3. Add back the part of the fingerprint extraction that ran while the
       iris was captured, because with no traveller and sensor time there
       is nothing to hide it behind.

    What remains is the lane's processing as if people and sensors took no
    time: lookup, both extractions and comparisons, the watchlist search
    and the decision. Only the last attempt of a modality is recorded, so a
    retried capture makes this an overestimate.
    """
    captures = sum(
        value for key, value in durations_ms.items() if key.endswith("_capture")
    )
    hidden = min(
        durations_ms.get("fingerprint_match", 0.0),
        durations_ms.get("iris_capture", 0.0),
    )
    return max(0.0, durations_ms["to_decision"] - captures + hidden)


def _not_run(plan: list[PlannedCrossing], reason: str) -> tuple[CrossingResult, ...]:
    return tuple(
        CrossingResult(
            number=number,
            scenario=planned.scenario.name,
            traveller=planned.label,
            outcome=None,
            reason=reason,
            ran=False,
        )
        for number, planned in enumerate(plan, start=1)
    )


def _check_options(options: SimulationOptions) -> None:
    unknown = sorted(set(options.scenarios) - set(SCENARIOS_BY_NAME))
    if unknown:
        raise ValueError(
            f"unknown scenario(s) {', '.join(unknown)}; "
            f"known: {', '.join(SCENARIOS_BY_NAME)}"
        )
    scale = options.time_scale
    if not (math.isfinite(scale) and 0 < scale <= MAX_TIME_SCALE):
        raise ValueError(
            f"time_scale must be more than 0 and at most {MAX_TIME_SCALE:g}, "
            f"got {scale}"
        )
    if not MIN_TRAVELLERS <= options.travellers <= MAX_TRAVELLERS:
        raise ValueError(
            f"travellers must be from {MIN_TRAVELLERS} to {MAX_TRAVELLERS}, "
            f"got {options.travellers}"
        )
    hold_s = options.hold_s
    if not (math.isfinite(hold_s) and 0 <= hold_s <= MAX_HOLD_S):
        raise ValueError(
            f"hold_s must be from 0 to {MAX_HOLD_S:g} seconds, got {hold_s}"
        )


def _no_progress(message: str) -> None:
    del message


def _no_announcement(config_path: Path) -> None:
    del config_path


def sleep_until_interrupted(seconds: float) -> None:
    """Sleep ``seconds`` unless Ctrl-C (KeyboardInterrupt) ends the sleep early."""
    try:
        time.sleep(seconds)
    except KeyboardInterrupt:
        logger.info("hold ended early by SIGINT")


def _control_socket_problem(socket_path: Path) -> str:
    """Return the reason a control socket cannot be served at ``socket_path``.

    The result is "" when the path is short enough for a UNIX socket.
    """
    from edge_gate.daemon._paths import MAX_SOCKET_PATH_BYTES

    length = len(os.fsencode(socket_path))
    if length <= MAX_SOCKET_PATH_BYTES:
        return ""
    return (
        f"its path {socket_path} is {length} bytes long, and a UNIX socket "
        f"path may have at most {MAX_SOCKET_PATH_BYTES}. Give a work folder "
        "with a shorter path"
    )


def run_simulation(
    options: SimulationOptions,
    *,
    progress: Progress = _no_progress,
    announce_config: AnnounceConfig = _no_announcement,
    hold: Hold = sleep_until_interrupted,
) -> SimulationReport:
    """Enrol the travellers, run every planned crossing and report.

    The root logger's records during the run also go to ``simulate.log``
    in the work folder. The lane serves its control socket while it runs,
    unless the socket's path in the work folder is too long for a UNIX
    socket. The report then carries a note with the reason.

    Args:
        options: the run's settings.
        progress: called with a short line (no personal data) as the run
            enters each step and before each crossing.
        announce_config: called once, when the lane has started, with the
            path of the lane's configuration file, if the control socket is
            served. Field commands given that path as ``--config`` reach the
            lane from then on.
        hold: called after the last crossing with ``options.hold_s``, if
            that is more than 0 and the control socket is served. The lane
            and the socket stay up until it returns. The default sleeps,
            and Ctrl-C ends the sleep early.

    Raises:
        ValueError: an option is out of range (travellers outside 2 to
            1000, an unknown scenario, a time scale outside (0, 10], a
            hold outside 0 to 3600 s).
        DatasetError: ``options.dataset`` is not laid out as identities.
        WorkFolderError: the work folder cannot be created, or a hold is
            requested and the control socket's path is too long.
        EdgeGateError: publishing, syncing or starting the lane or its
            control socket failed for a reason other than a missing
            component.
    """
    _check_options(options)

    # 1. Source and people.
    source = _source(options)
    count, notes = _traveller_count(options, source)
    if isinstance(source, DatasetSource):
        everyone_count = count + EXTRA_PEOPLE
        notes.append(
            "pairs (finger + eye): "
            + ", ".join(
                f"{index}={'+'.join(source.pair_names(index))}"
                for index in range(everyone_count)
            )
        )
    today = today_utc()
    population = make_population(count, options.seed, today)
    everyone = [
        *population.travellers,
        population.watchlisted,
        population.watchlist_only,
    ]
    limits = {p.index: source.capture_count(p.index) for p in everyone}
    genuine = options.genuine_per_traveller
    if genuine is None:
        smallest = min((n for n in limits.values() if n is not None), default=None)
        genuine = 1 if smallest is None else max(1, smallest - 1)
    plan = plan_crossings(
        population,
        today,
        capture_limits=limits,
        genuine_per_traveller=genuine,
        scenario_names=options.scenarios,
    )

    work_dir = options.work_dir
    temporary = work_dir is None
    # The folder contains the template key, signing keys and enrolment
    # images, so only the owner may read it (mkdtemp creates it so).
    if work_dir is None:
        work_dir = Path(tempfile.mkdtemp(prefix="edge-gate-simulate-"))
    try:
        # Checked before the folder is created, so that a rejected hold
        # leaves no empty work folder behind.
        socket_problem = _control_socket_problem(work_dir / CONTROL_SOCKET)
        if socket_problem and options.hold_s:
            raise WorkFolderError(
                f"a hold needs the lane's control socket, but {socket_problem}"
            )
        try:
            work_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            # An existing empty folder keeps its mode unless it is set here.
            work_dir.chmod(0o700)
        except OSError as err:
            raise WorkFolderError(
                f"cannot use {work_dir} as the work folder ({err.strerror}); "
                "give a new or empty folder you can write to"
            ) from err
        if socket_problem:
            notes.append(f"control socket not served: {socket_problem}")
        log_handler = logging.FileHandler(work_dir / LOG_FILE_NAME, encoding="utf-8")
        log_handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
        logging.getLogger().addHandler(log_handler)
        try:
            crossings = _run_plan(
                options,
                source,
                population=population,
                plan=plan,
                work_dir=work_dir,
                notes=notes,
                progress=progress,
                serve_control=not socket_problem,
                announce_config=announce_config,
                hold=hold,
            )
        finally:
            logging.getLogger().removeHandler(log_handler)
            log_handler.close()
    finally:
        if temporary:
            shutil.rmtree(work_dir, ignore_errors=True)
    return SimulationReport(
        source=source.describe(),
        time_scale=options.time_scale,
        crossings=crossings,
        notes=tuple(notes),
    )


def _run_plan(
    options: SimulationOptions,
    source: BiometricSource,
    *,
    population: Population,
    plan: list[PlannedCrossing],
    work_dir: Path,
    notes: list[str],
    progress: Progress,
    serve_control: bool,
    announce_config: AnnounceConfig,
    hold: Hold,
) -> tuple[CrossingResult, ...]:
    with LaneRig(
        work_dir,
        time_scale=options.time_scale,
        models_dir=options.models_dir,
        serve_control=serve_control,
    ) as rig:
        try:
            people = len(population.travellers) + EXTRA_PEOPLE
            progress(f"enrolling {people} people (publish, serve, sync)")
            rig.enrol(enrolment_records(population, source, work_dir))
            progress("starting the lane")
            rig.start_lane()
        except (ComponentMissingError, ModelError) as err:
            # An installation without a lane component or model reports
            # every crossing as not run, with the reason, instead of failing.
            notes.append(f"not run: {err}")
            return _not_run(plan, str(err))
        if serve_control:
            announce_config(work_dir / CONFIG_FILE)

        actor = TravellerActor(rig, options.delays, source.fingerprint, source.iris)
        traces: list[CrossingTrace] = []
        stop_reason = ""
        for number, planned in enumerate(plan, start=1):
            logger.info(
                "crossing %d of %d: %s", number, len(plan), planned.scenario.name
            )
            progress(f"crossing {number} of {len(plan)}: {planned.scenario.name}")
            trace = actor.run(planned)
            traces.append(trace)
            if trace.stuck_reason:
                when = "at" if trace.transaction is None else "after"
                stop_reason = (
                    f"the run stopped {when} crossing {number} of {len(plan)} "
                    f"({planned.scenario.name}, traveller {planned.label}): "
                    f"{trace.stuck_reason}"
                )
                logger.error("%s", stop_reason)
                notes.append(stop_reason)
                break
        audit_by_tx = {
            entry.record.transaction_id: entry.record for entry in rig.audit_entries()
        }
        if options.hold_s and rig.control is not None:
            logger.info("holding the lane for %g s", options.hold_s)
            hold(options.hold_s)

    results = [
        _result(number, planned, trace, audit_by_tx)
        for number, (planned, trace) in enumerate(
            zip(plan[: len(traces)], traces, strict=True), start=1
        )
    ]
    for number, planned in enumerate(plan[len(traces) :], start=len(traces) + 1):
        results.append(
            CrossingResult(
                number=number,
                scenario=planned.scenario.name,
                traveller=planned.label,
                outcome=None,
                reason=stop_reason,
                ran=False,
            )
        )
    return tuple(results)


__all__ = [
    "LOG_FILE_NAME",
    "AnnounceConfig",
    "Hold",
    "Progress",
    "SimulationOptions",
    "enrolment_records",
    "run_simulation",
    "sleep_until_interrupted",
]
