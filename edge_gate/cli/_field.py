"""Field-engineer commands: they talk to the running daemon's control socket.

``status``, ``watch``, ``devices``, ``selftest``, ``open``, ``log`` and
``log verify``. None of them opens a device: commands that move hardware go
through the daemon, which records them in the audit log. ``log --offline``
and ``log verify --offline`` read ``audit.db`` directly, for a lane whose
daemon is stopped.

Output: data on stdout (``--json`` for machine-readable output),
diagnostics on stderr. Document numbers are masked unless
``--show-personal`` is given.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import unicodedata
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from edge_gate.cli._common import (
    add_config_argument,
    add_yes_argument,
    config_from_args,
    control_socket_from_args,
)
from edge_gate.daemon._control import request, watch
from edge_gate.daemon._field import MAX_REASON_CHARS, reason_problem
from edge_gate.errors import ControlError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

# Advice printed after a broken chain. The daemon logs the journal lines
# named here at each start and stop, and the journal is stored outside the
# state directory.
AUDIT_BREAK_ADVICE = (
    "Copy audit.db and audit.head from the [store] state_dir as evidence "
    "before anything writes to them, and report the break. The journal lines "
    "'audit log head at start' and 'audit log head at stop' give the head "
    "row and hash of each daemon run to compare with."
)
# Advice printed when SQLite finds audit.db itself damaged.
AUDIT_DAMAGE_ADVICE = (
    "Copy audit.db, audit.db-wal and audit.head from the [store] state_dir "
    "as evidence before anything writes to them, check the storage for "
    "errors (dmesg), and report the damage. The journal lines 'audit log "
    "head at start' and 'audit log head at stop' give the head row and hash "
    "of each daemon run to compare with."
)
# Advice printed when audit.head is missing, with the head row and hash.
AUDIT_NO_HEAD_ADVICE = (
    "Compare head row {seq} and hash {hash} with the last 'audit log head "
    "at stop' line in the journal (journalctl -u edge-gate.service -g "
    "'audit log head'): a later row there means rows were cut from the end. "
    "Copy audit.db as evidence first. Starting edge-gate.service writes a "
    "new audit.head and records that in the audit log as a service row."
)
LOG_DESCRIPTION = """\
Show audit records, or verify the hash chain.

log prints the newest records, oldest first, with document numbers masked
and control characters in text shown as escapes (ESC as \\x1b). When no
record matches, it prints a note on stderr. Exit status 0, or 1 when the
log cannot be read or a row in it cannot be read (that row is printed as
DAMAGED, the others as usual).

log verify checks every row's hash, and the end of the log against
audit.head. It prints one verdict line:
  intact          every check passed (exit status 0)
  BROKEN          a row, the chain record or audit.head fails its check
                  (exit status 1)
  DAMAGED         SQLite reports audit.db as cut or overwritten outside
                  SQLite (exit status 1)
  END UNVERIFIED  the rows chain correctly, but audit.head is missing, so
                  rows cut from the end cannot be detected; compare with the
                  journal lines 'audit log head at start' and 'audit log
                  head at stop' (exit status 1)
A note on stderr names each row that records a restarted audit.head,
because rows cut from the end before such a row cannot be detected.

Exit status 2 for an invalid option value.
"""


def register(subparsers: Any) -> None:
    """Add the field commands to the ``edge-gate`` subcommands."""
    status = _add(
        subparsers,
        "status",
        "show the lane's state, devices and counts (exit status 1 when the "
        "lane is out of service)",
    )
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.set_defaults(handler=cmd_status)

    watch_parser = _add(
        subparsers,
        "watch",
        "print lane events as they happen, until Ctrl-C or until the daemon "
        "stops; the exit status is then 1",
    )
    watch_parser.add_argument(
        "--json", action="store_true", help="one JSON object a line"
    )
    watch_parser.set_defaults(handler=cmd_watch)

    devices = _add(
        subparsers,
        "devices",
        "list the devices and whether they answer (exit status 1 when one is missing)",
    )
    devices.add_argument("--json", action="store_true", help="print one JSON object")
    devices.set_defaults(handler=cmd_devices)

    selftest = _add(
        subparsers,
        "selftest",
        "check every device, model and store (exit status 1 when a check fails "
        "or the relay pulse is cancelled)",
    )
    selftest.add_argument(
        "--relay",
        action="store_true",
        help="also pulse the unlock relay (opens the barrier; asks unless -y)",
    )
    add_yes_argument(selftest)
    selftest.add_argument("--json", action="store_true", help="print JSON")
    selftest.set_defaults(handler=cmd_selftest)

    open_parser = _add(
        subparsers,
        "open",
        "unlock the barrier for one passage (exit status 1 when cancelled or "
        "refused by the daemon, 2 when the reason is empty, too long or not "
        "plain text)",
    )
    open_parser.add_argument(
        "--reason",
        required=True,
        metavar="TEXT",
        help=f"why, in words (written to the audit log; at most "
        f"{MAX_REASON_CHARS} characters on one line)",
    )
    add_yes_argument(open_parser)
    open_parser.set_defaults(handler=cmd_open)

    log = _add(subparsers, "log", "show audit records, or verify the hash chain")
    log.description = LOG_DESCRIPTION
    log.formatter_class = argparse.RawDescriptionHelpFormatter
    log.add_argument(
        "action", nargs="?", choices=["verify"], help="verify: check the hash chain"
    )
    log.add_argument(
        "--since",
        type=iso_time,
        metavar="TIME",
        help="from this ISO 8601 time, e.g. 2026-03-01T08:00Z (UTC if no offset)",
    )
    log.add_argument(
        "--until",
        type=iso_time,
        metavar="TIME",
        help="before this ISO 8601 time (UTC if no offset)",
    )
    log.add_argument(
        "--outcome",
        choices=[
            "accepted",
            "rejected",
            "alert",
            "aborted",
            "emergency",
            "opened",
            "none",
        ],
        help="only records with this outcome",
    )
    log.add_argument(
        "--limit",
        type=int,
        default=50,
        metavar="N",
        help="newest N records (default 50)",
    )
    log.add_argument(
        "--offline",
        action="store_true",
        help="read audit.db directly instead of asking the daemon",
    )
    log.add_argument(
        "--show-personal", action="store_true", help="print document numbers unmasked"
    )
    log.add_argument("--json", action="store_true", help="one JSON object a line")
    log.set_defaults(handler=cmd_log)


def _add(subparsers: Any, name: str, text: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name, help=text, description=text
    )
    add_config_argument(parser)
    return parser


def _socket(args: argparse.Namespace) -> Path:
    """Return the control socket path from the configuration (or its default)."""
    return control_socket_from_args(args)


def iso_time(text: str) -> str:
    """Check an ISO 8601 time for ``--since``/``--until``; return it with UTC.

    Raises:
        argparse.ArgumentTypeError: the text is not a valid ISO 8601 time, so
            that argparse names the option and exits with status 2.
    """
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a valid ISO 8601 time ({err}); use e.g. 2026-03-01T08:00Z"
        ) from err
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    # The audit log compares times in UTC, where an offset can pass a year edge.
    try:
        moment.astimezone(datetime.UTC)
    except (OverflowError, ValueError):
        raise argparse.ArgumentTypeError(
            f"{text!r} is outside the years 1 to 9999 in UTC; use a time within "
            "them, e.g. 2026-03-01T08:00Z"
        ) from None
    return moment.isoformat()


def _ask_daemon(
    args: argparse.Namespace, message: dict[str, Any], timeout_s: float = 30.0
) -> Any:
    """Send a ``log`` request to the daemon, pointing at ``--offline`` if down.

    Raises:
        ControlError: the daemon is not reachable or rejected the request.
    """
    try:
        return request(_socket(args), message, timeout_s=timeout_s)
    except ControlError as err:
        # Only a missing or refusing socket means the daemon is down.
        if not isinstance(err.__cause__, FileNotFoundError | ConnectionRefusedError):
            raise
        raise ControlError(
            f"{err}; with the daemon stopped, add --offline to read audit.db directly"
        ) from err


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def cmd_status(args: argparse.Namespace) -> int:
    """Print the daemon's status snapshot; exit 1 when out of service."""
    status = request(_socket(args), {"command": "status"})
    if args.json:
        _print_json(status)
        return EXIT_OK if status.get("in_service") else EXIT_FAILED
    print(f"lane        {status['lane_id']}")
    service = "in service" if status["in_service"] else "OUT OF SERVICE"
    print(f"state       {status['state']}  ({service})")
    if status.get("mock_gpio"):
        print(
            "gpio        MOCK: no real GPIO line is driven ([turnstile] "
            'pin_factory = "mock" is for tests)'
        )
    print(f"display     {status['message']}")
    for cause in status.get("causes", []):
        print(f"cause       {cause}")
    for device in status["devices_lost"]:
        print(f"missing     {device}")
    for name, reason in status["holds"].items():
        print(f"hold        {name}: {reason}")
    templates = status.get("templates") or {}
    if templates:
        print(
            f"templates   version {templates['version']}, "
            f"{templates['enrolments']} enrolments, updated "
            f"{templates['updated_at']}, expires {templates['expires_at']}"
        )
    counts = " ".join(f"{k}={v}" for k, v in sorted(status["counts"].items()))
    print(f"counts      {counts or 'none yet'}")
    for worker in status["workers"]:
        flag = "STALLED" if worker["stalled"] else "ok"
        print(
            f"worker      {worker['name']:<16} {flag:<8} "
            f"last progress {worker['seconds_since_beat']:.1f} s ago"
        )
    return EXIT_OK if status["in_service"] else EXIT_FAILED


def cmd_watch(args: argparse.Namespace) -> int:
    """Print lane events until interrupted or the daemon stops."""
    for event in watch(_socket(args)):
        if args.json:
            print(json.dumps(event, ensure_ascii=False), flush=True)
            continue
        fields = " ".join(
            f"{k}={round(v, 1) if isinstance(v, float) else v}"
            for k, v in event.items()
            if k not in ("time_utc", "type")
        )
        print(
            f"{event.get('time_utc', '')} {event.get('type', '?'):<12} {fields}",
            flush=True,
        )
    print("edge-gate watch: the daemon closed the connection", file=sys.stderr)
    return EXIT_FAILED


def cmd_devices(args: argparse.Namespace) -> int:
    """List each device with its path and presence; exit 1 if one is missing."""
    devices = request(_socket(args), {"command": "devices"})
    if args.json:
        _print_json(devices)
    else:
        for name, info in devices.items():
            state = "present" if info["present"] else "MISSING"
            print(f"{name:<16} {state:<8} {info['path']}")
    return EXIT_OK if all(d["present"] for d in devices.values()) else EXIT_FAILED


def cmd_selftest(args: argparse.Namespace) -> int:
    """Run the daemon's self-test; exit 1 when any check failed."""
    if (
        args.relay
        and not args.yes
        and not _confirm("Pulse the unlock relay (the barrier opens)?")
    ):
        print("edge-gate selftest: cancelled", file=sys.stderr)
        return EXIT_FAILED
    results = request(_socket(args), {"command": "selftest", "relay": bool(args.relay)})
    if args.json:
        _print_json(results)
    else:
        for result in results:
            mark = "ok  " if result["ok"] else "FAIL"
            print(f"{mark} {result['check']:<18} {result['detail']}")
    return EXIT_OK if all(r["ok"] for r in results) else EXIT_FAILED


def cmd_open(args: argparse.Namespace) -> int:
    """Unlock the barrier for one passage after confirmation."""
    problem = reason_problem(args.reason)
    if problem is not None:
        print(f"edge-gate open: --reason {problem}", file=sys.stderr)
        return EXIT_USAGE
    if not args.yes and not _confirm("Unlock the barrier for one passage?"):
        print("edge-gate open: cancelled", file=sys.stderr)
        return EXIT_FAILED
    result = request(_socket(args), {"command": "open", "reason": args.reason})
    print(f"barrier unlocked for one passage; audit row {result['audit_seq']}")
    return EXIT_OK


def cmd_log(args: argparse.Namespace) -> int:
    """Print audit records, or verify the chain.

    Returns:
        0 when the records were printed or the chain is intact. 1 when a row
        cannot be read, or the chain is broken, the file damaged or
        ``audit.head`` missing (see ``LOG_DESCRIPTION``). 2 for a bad limit.
    """
    if not 1 <= args.limit <= 100_000:
        print("edge-gate log: --limit must be 1 to 100000", file=sys.stderr)
        return EXIT_USAGE
    if args.action == "verify":
        return _print_verify(args, _verify(args))

    entries = _query(args)
    damaged: list[int] = []
    for entry in entries:
        if "damaged" in entry:
            damaged.append(entry["seq"])
        elif not args.show_personal:
            entry["document_number"] = mask(entry.get("document_number", ""))
        if args.json:
            print(json.dumps(entry, ensure_ascii=False))
        else:
            print(format_entry(entry))
    if not entries:
        print(
            f"edge-gate log: no audit rows match{_filters_text(args)}", file=sys.stderr
        )
    if damaged:
        rows = ("row " if len(damaged) == 1 else "rows ") + ", ".join(map(str, damaged))
        print(
            f"edge-gate log: cannot read {rows}, shown as DAMAGED; run "
            "edge-gate log verify to check the chain",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return EXIT_OK


def _filters_text(args: argparse.Namespace) -> str:
    """Return the filters given on the command line, for the no-match note."""
    filters = [
        f"{option} {value}"
        for option, value in (
            ("--since", args.since),
            ("--until", args.until),
            ("--outcome", args.outcome),
        )
        if value is not None
    ]
    return f" ({', '.join(filters)})" if filters else ": the audit log has no rows"


def _print_verify(args: argparse.Namespace, result: Mapping[str, Any]) -> int:
    """Print a verify result as JSON, or as a verdict line with advice."""
    # A daemon older than the verdict field reports only "intact".
    verdict = result.get("verdict") or ("intact" if result["intact"] else "broken")
    # Set by a running daemon whose audit.db path no longer names its file.
    file_problem = result.get("file_problem") or ""
    failed = verdict != "intact" or bool(file_problem)
    if args.json:
        _print_json(result)
        return EXIT_FAILED if failed else EXIT_OK

    if verdict == "intact":
        print(
            f"audit log intact: {result['rows_checked']} rows, head row "
            f"{result['head_seq']} hash {result['head_hash']}"
        )
    else:
        print(verify_verdict(result))
    if verdict == "end_unverified":
        advice = AUDIT_NO_HEAD_ADVICE.format(
            seq=result["head_seq"], hash=result["head_hash"]
        )
        print(advice, file=sys.stderr)
    elif verdict == "damaged":
        print(AUDIT_DAMAGE_ADVICE, file=sys.stderr)
    elif verdict != "intact":
        print(AUDIT_BREAK_ADVICE, file=sys.stderr)

    restarts = result.get("head_restart_seqs") or []
    if restarts:
        rows = ", ".join(map(str, restarts))
        records = f"row {rows} records" if len(restarts) == 1 else f"rows {rows} record"
        print(
            f"note: {records} that audit.head was missing and was "
            "started again. Rows cut from the end before such a row cannot "
            "be detected: read it with edge-gate log and compare it with the "
            "journal lines 'audit log head at stop'.",
            file=sys.stderr,
        )
    if file_problem:
        print(
            f"but the file checked is not at its path any more: {file_problem}",
            file=sys.stderr,
        )
    return EXIT_FAILED if failed else EXIT_OK


def verify_verdict(result: Mapping[str, Any]) -> str:
    """Format the verdict line for a chain that is not intact.

    A log truncated at the end is reported by its last remaining row,
    because the first bad row no longer exists. Control characters in the
    problem text are escaped.
    """
    problem = printable(str(result["problem"]))
    sentence = problem[:1].upper() + problem[1:]
    verdict = result.get("verdict")
    if verdict == "damaged":
        return f"audit log DAMAGED: {problem}"
    if verdict == "end_unverified":
        return (
            f"audit log END UNVERIFIED: {result['rows_checked']} rows chain "
            f"correctly to head row {result['head_seq']} hash "
            f"{result['head_hash']}, but {problem}"
        )
    cut_after = result.get("cut_after_seq")
    if cut_after == 0:
        return f"audit log BROKEN: no row is left. {sentence}"
    if cut_after is not None:
        return f"audit log BROKEN: the log was cut after row {cut_after}. {sentence}"
    if result["first_bad_seq"] is None:
        return f"audit log BROKEN: {problem}"
    return f"audit log BROKEN at row {result['first_bad_seq']}: {problem}"


def _query(args: argparse.Namespace) -> list[dict[str, Any]]:
    filters = {
        "since": args.since,
        "until": args.until,
        "outcome": args.outcome,
        "limit": args.limit,
    }
    if not args.offline:
        result: list[dict[str, Any]] = _ask_daemon(args, {"command": "log", **filters})
        return result
    from edge_gate.daemon._field import FieldCommands

    with _open_audit(args) as audit:
        return list(FieldCommands.query_audit(audit, filters))


def _verify(args: argparse.Namespace) -> dict[str, Any]:
    if not args.offline:
        result: dict[str, Any] = _ask_daemon(
            args, {"command": "log_verify"}, timeout_s=600
        )
        return result
    with _open_audit(args) as audit:
        return dict(audit.verify().to_json_dict())


def _open_audit(args: argparse.Namespace) -> Any:
    from edge_gate.store import AUDIT_DB_NAME, AuditLog

    config = config_from_args(args)
    return AuditLog(Path(config.store.state_dir) / AUDIT_DB_NAME, read_only=True)


def mask(document_number: str) -> str:
    """Keep the first and last two characters of a document number."""
    if len(document_number) <= 4:
        return "*" * len(document_number)
    return document_number[:2] + "*" * (len(document_number) - 4) + document_number[-2:]


def format_entry(entry: Mapping[str, Any]) -> str:
    """Format one audit row as a line for the terminal.

    Every text is passed through :func:`printable`. A row that the audit
    log could not read (``damaged``) is printed as DAMAGED with the reason.
    """
    if "damaged" in entry:
        return f"{entry['seq']:>7} DAMAGED {printable(str(entry['damaged']))}"
    scores = ",".join(
        f"{printable(str(k))}={v:.3f}" for k, v in entry.get("scores", {}).items()
    )
    alarms = ",".join(printable(str(alarm)) for alarm in entry.get("alarms", []))
    latency = entry.get("latency_ms")
    parts: Sequence[str] = [
        f"{entry['seq']:>7}",
        printable(str(entry["time_utc"])),
        f"{printable(str(entry['kind'])):<11}",
        f"{printable(str(entry['outcome'])):<9}",
        printable(str(entry.get("transaction_id") or "-")),
        printable(str(entry.get("issuing_state") or "-")),
        printable(str(entry.get("document_number") or "-")),
        printable(str(entry["reason"])),
        f"scores[{scores}]" if scores else "",
        f"alarms[{alarms}]" if alarms else "",
        f"latency={latency:.0f}ms" if latency is not None else "",
    ]
    return " ".join(p for p in parts if p)


def printable(text: str) -> str:
    """Return ``text`` with control and format characters as escapes.

    Reasons are typed by people and stored as given, so they may carry
    terminal escape sequences (ESC), line breaks or bidirectional overrides
    that would rewrite or hide what the terminal shows. Each character of a
    Unicode category C (control, format, surrogate, private use, unassigned)
    or a line or paragraph separator is written as its Python escape, such
    as ``\\x1b`` or ``\\u202e``. Backslashes are kept as they are.
    """
    return "".join(
        char.encode("unicode_escape").decode("ascii")
        if unicodedata.category(char)[0] == "C"
        or unicodedata.category(char) in ("Zl", "Zp")
        else char
        for char in text
    )


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        print(
            f"{question} cancelled: no terminal to confirm on; pass -y", file=sys.stderr
        )
        return False
    answer = input(f"{question} [y/N] ")
    return answer.strip().lower() in ("y", "yes")
