"""Template commands: ``sync``, ``templates`` and ``publish``.

``edge-gate sync`` is the only command that changes ``templates.db``; the
systemd timer runs it. ``edge-gate templates`` shows the applied version,
counts and freshness. ``edge-gate publish`` is the reference publisher for
server operators and tests: it builds, signs and rotates the keys of a
template repository in a folder that any static web server can serve.

Exit status: 0 ok, 1 failed (server unreachable, update rejected, store
error, stopped by Ctrl-C or SIGTERM), 2 usage error (invalid configuration
or arguments). A sync stopped by Ctrl-C or SIGTERM removes its partial
downloads and closes ``templates.db`` as a normal end does. It applies an
update in one transaction, so a stop leaves the previous or the new
version, never a mix.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge_gate.config import GateConfig
from edge_gate.errors import (
    ConfigError,
    EnrolmentRecordError,
    StoreError,
    UpdateError,
    UpdateTransportError,
    UpdateVerificationError,
)

from ._common import add_config_argument, config_from_args

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

# Accepted metadata lifetimes (low, high). Below the low bound the metadata
# expires before a gate can fetch it, and past the high bound a frozen or
# stolen version would stay valid for years.
# NOTE: the bounds are operational estimates, not from a standard.
TIMESTAMP_EXPIRY_H = (0.25, 24.0 * 31)
METADATA_EXPIRY_DAYS = (1.0 / 24, 366.0)
ROOT_EXPIRY_DAYS = (1.0, 3660.0)
# Percentage shown in the help of --allow-delete.
MAX_DELETE_PERCENT = 10


def register(subparsers: Any) -> None:
    """Add ``sync``, ``templates`` and ``publish`` to the subcommands."""
    sync = subparsers.add_parser(
        "sync",
        help="fetch, verify and apply template updates once",
        description="Fetch the latest template update from the server, verify "
        "it with TUF and apply it in one transaction. Transport failures are "
        "retried with backoff ([sync] retries); rejected updates are not.",
    )
    add_config_argument(sync)
    sync.set_defaults(handler=_sync)

    templates = subparsers.add_parser(
        "templates",
        help="show the template version, counts and age",
        description="Show the applied template version, enrolment and template "
        "counts, when they were last verified, and until when they are usable. "
        "Exit status 0 when the templates are usable, 1 when they are not: none "
        "applied yet, past their expiry or maximum offline age, or sealed with "
        "a template key other than [store] key_file (reported on stderr).",
    )
    add_config_argument(templates)
    templates.add_argument("--json", action="store_true", help="print one JSON object")
    templates.set_defaults(handler=_templates)

    _register_publish(subparsers)


def _load_config(args: argparse.Namespace) -> GateConfig | None:
    try:
        return config_from_args(args)
    except ConfigError as err:
        print(f"edge-gate {args.command}: {err}", file=sys.stderr)
        return None


# sync


def _sync(args: argparse.Namespace) -> int:
    from edge_gate.sync import run_sync

    config = _load_config(args)
    if config is None:
        return EXIT_USAGE
    try:
        result = run_sync(config)
    except ConfigError as err:
        print(f"edge-gate sync: {err}", file=sys.stderr)
        return EXIT_USAGE
    except (UpdateError, StoreError) as err:
        if isinstance(err, UpdateVerificationError):
            what = "rejected the update"
        elif isinstance(err, UpdateTransportError):
            what = "server unreachable"
        else:
            what = "sync failed"
        kept = _kept_templates(config)
        print(f"edge-gate sync: {what}: {err}; {kept}", file=sys.stderr)
        return EXIT_FAILED

    if result.outcome == "current":
        print(f"templates current at version {result.version}")
    else:
        print(
            f"templates updated from version {result.previous_version} to "
            f"{result.version} ({len(result.bundles)} bundle(s), "
            f"{result.downloaded_bytes} bytes)"
        )
    return EXIT_OK


def _kept_templates(config: GateConfig) -> str:
    """Describe the templates the gate keeps after a failed sync."""
    from edge_gate.store import TEMPLATES_DB, TemplateStore, load_key

    try:
        key = load_key(config.store.key_file)
        path = Path(config.store.state_dir) / TEMPLATES_DB
        with TemplateStore(path, key, config.store.key_file) as store:
            status = store.status()
    except (ConfigError, StoreError) as err:
        return f"the applied templates could not be read: {err}"
    until = status.usable_until(config.sync.max_offline_age_h * 3600)
    shown = until.isoformat() if until else "never (no verified update yet)"
    return f"the gate keeps template version {status.version}, usable until {shown}"


# templates


def _templates(args: argparse.Namespace) -> int:
    from edge_gate.store import TEMPLATES_DB, TemplateStore, load_key

    config = _load_config(args)
    if config is None:
        return EXIT_USAGE
    try:
        key = load_key(config.store.key_file)
    except ConfigError as err:
        print(f"edge-gate templates: {err}", file=sys.stderr)
        return EXIT_USAGE
    path = Path(config.store.state_dir) / TEMPLATES_DB
    with TemplateStore(path, key, config.store.key_file) as store:
        status = store.status()
        key_problem = store.key_problem()

    now = datetime.datetime.now(datetime.UTC)
    max_age_s = config.sync.max_offline_age_h * 3600
    until = status.usable_until(max_age_s)
    age_s = status.age_s(now)
    report: dict[str, Any] = {
        "version": status.version,
        "enrolments": status.enrolments,
        "watchlisted": status.watchlisted,
        "revoked": status.revoked,
        "fingerprint_templates": status.fingerprint_templates,
        "iris_templates": status.iris_templates,
        "published_at": _iso(status.published_at),
        "updated_at": _iso(status.updated_at),
        "age_s": None if age_s is None else round(age_s),
        "expires_at": _iso(status.expires_at),
        "usable_until": _iso(until),
        "usable": key_problem is None and status.is_usable(now, max_age_s),
        "key_problem": key_problem,
    }
    if key_problem is not None:
        print(f"edge-gate templates: {key_problem}", file=sys.stderr)
    if args.json:
        print(json.dumps(report, indent=1))
        return EXIT_OK if report["usable"] else EXIT_FAILED
    width = max(len(name) for name in report)
    for name, value in report.items():
        if name == "key_problem":
            # Printed on stderr above; the table has one short line per field.
            continue
        shown = "never" if value is None else value
        if isinstance(value, bool):
            shown = "yes" if value else "no"
        print(f"{name.replace('_', ' '):<{width}}  {shown}")
    return EXIT_OK if report["usable"] else EXIT_FAILED


def _iso(value: datetime.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


# publish


def _register_publish(subparsers: Any) -> None:
    publish = subparsers.add_parser(
        "publish",
        help="build and sign a template repository (server side)",
        description="The reference publisher: keeps signing keys, the fleet key "
        "and a TUF repository of encrypted template bundles in one folder; serve "
        "DIR/repository with any static web server.",
    )
    actions = publish.add_subparsers(dest="action", metavar="ACTION", required=True)

    init = actions.add_parser(
        "init", help="create keys, the fleet key and an empty repository"
    )
    _add_dir_and_expiries(init)
    init.set_defaults(handler=_publish_init)

    records = actions.add_parser(
        "records", help="publish the complete current set of enrolments"
    )
    _add_dir_and_expiries(records)
    records.add_argument(
        "--input",
        required=True,
        type=Path,
        metavar="FILE",
        help="JSON lines, one enrolment record per line (see docs/adr)",
    )
    records.add_argument(
        "--models-dir",
        type=Path,
        metavar="DIR",
        help="models for records given as images (default: the shipped models)",
    )
    records.add_argument(
        "--allow-delete",
        type=_non_negative_int,
        default=0,
        metavar="N",
        help="allow up to N removals (published records missing from the input, "
        "watchlist entries no longer watchlisted); without it at most "
        f"{MAX_DELETE_PERCENT}%% of the published records may be deleted and no "
        "watchlist entry removed",
    )
    records.set_defaults(handler=_publish_records)

    refresh = actions.add_parser(
        "refresh",
        help="re-sign the metadata with fresh expiries (run more often than "
        "the timestamp expiry)",
    )
    _add_dir_and_expiries(refresh)
    refresh.set_defaults(handler=_publish_refresh)

    rotate = actions.add_parser("rotate", help="replace a role's signing key")
    _add_dir_and_expiries(rotate)
    rotate.add_argument(
        "--role",
        required=True,
        choices=("root", "targets", "snapshot", "timestamp"),
        help="the TUF role whose key is replaced",
    )
    rotate.set_defaults(handler=_publish_rotate)

    gate_key = actions.add_parser(
        "gate-key", help="write a new template key for one gate (mode 0600)"
    )
    gate_key.add_argument("file", type=Path, metavar="FILE", help="file to create")
    gate_key.set_defaults(handler=_publish_gate_key)


def _non_negative_int(text: str) -> int:
    """Parse a count of 0 or more for argparse (exit status 2 otherwise)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got {text!r}")
    return value


def _bounded_float(low: float, high: float) -> Callable[[str], float]:
    """Build an argparse type that accepts a finite number in [low, high]."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"must be a number from {low:g} to {high:g}, got {text!r}"
            )
        return value

    return parse


def _range_help(
    what: str, unit: str, bounds: tuple[float, float], default: float
) -> str:
    low, high = bounds
    # argparse expands %-sequences in help texts, so none may appear here.
    return f"{what}, {low:g} to {high:g} {unit} (default: {default:g})"


def _add_dir_and_expiries(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dir",
        required=True,
        type=Path,
        metavar="DIR",
        help="the publisher's folder (keys/, repository/, state/)",
    )
    parser.add_argument(
        "--timestamp-expiry-h",
        type=_bounded_float(*TIMESTAMP_EXPIRY_H),
        default=24.0,
        metavar="HOURS",
        help=_range_help(
            "timestamp metadata lifetime, the freeze window",
            "hours",
            TIMESTAMP_EXPIRY_H,
            24,
        ),
    )
    parser.add_argument(
        "--metadata-expiry-days",
        type=_bounded_float(*METADATA_EXPIRY_DAYS),
        default=7.0,
        metavar="DAYS",
        help=_range_help(
            "targets and snapshot metadata lifetime", "days", METADATA_EXPIRY_DAYS, 7
        ),
    )
    parser.add_argument(
        "--root-expiry-days",
        type=_bounded_float(*ROOT_EXPIRY_DAYS),
        default=365.0,
        metavar="DAYS",
        help=_range_help("root metadata lifetime", "days", ROOT_EXPIRY_DAYS, 365),
    )


def _expiries(args: argparse.Namespace) -> Any:
    from edge_gate.sync import Expiries

    return Expiries(
        timestamp=datetime.timedelta(hours=args.timestamp_expiry_h),
        snapshot=datetime.timedelta(days=args.metadata_expiry_days),
        targets=datetime.timedelta(days=args.metadata_expiry_days),
        root=datetime.timedelta(days=args.root_expiry_days),
    )


def _publisher(args: argparse.Namespace) -> Any:
    from edge_gate.sync import Publisher

    return Publisher(args.dir, _expiries(args))


def _publish_init(args: argparse.Namespace) -> int:
    from edge_gate.sync import Publisher

    publisher = Publisher.init(args.dir, expiries=_expiries(args))
    root = publisher.trusted_root_path.resolve()
    fleet_key = publisher.fleet_key_path.resolve()
    print(f"repository to serve: {publisher.repository_dir.resolve()}")
    print(f"provision on each gate as sync.trusted_root_file: {root}")
    print(f"provision on each gate as sync.fleet_key_file: {fleet_key}")
    return EXIT_OK


def _publish_records(args: argparse.Namespace) -> int:
    from edge_gate.sync import ImageTemplateLoader, read_records

    publisher = _publisher(args)
    loader = ImageTemplateLoader(args.input.parent, args.models_dir)
    try:
        records = read_records(args.input, load_template=loader)
        result = publisher.publish(records, allow_delete=args.allow_delete)
    except (EnrolmentRecordError, UpdateError) as err:
        print(f"edge-gate publish: {err}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as err:
        print(
            f"edge-gate publish: cannot read {args.input}: {err.strerror or err}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    if result.changed == 0 and result.deleted == 0:
        print(f"no change: version {result.version} stays, metadata re-signed")
    else:
        print(
            f"published version {result.version}: {result.record_count} records, "
            f"{result.changed} new or changed, {result.deleted} deleted"
        )
    return EXIT_OK


def _publish_refresh(args: argparse.Namespace) -> int:
    _publisher(args).refresh()
    print("metadata re-signed")
    return EXIT_OK


def _publish_rotate(args: argparse.Namespace) -> int:
    keyid = _publisher(args).rotate(args.role)
    print(f"new {args.role} key {keyid}")
    return EXIT_OK


def _publish_gate_key(args: argparse.Namespace) -> int:
    from edge_gate.store import generate_key_file

    try:
        path = generate_key_file(args.file)
    except FileExistsError:
        print(
            f"edge-gate publish gate-key: {args.file} exists; a key is never "
            "overwritten: choose another file or remove it on purpose",
            file=sys.stderr,
        )
        return EXIT_FAILED
    print(f"wrote a new template key to {path}")
    return EXIT_OK
