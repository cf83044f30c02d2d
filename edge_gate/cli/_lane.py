"""``edge-gate run``: the lane daemon (edge-gate.service runs this)."""

from __future__ import annotations

import argparse
from typing import Any

from edge_gate.cli._common import add_config_argument
from edge_gate.config import resolve_config_path


def register(subparsers: Any) -> None:
    """Add ``run`` to the ``edge-gate`` subcommands."""
    parser = subparsers.add_parser(
        "run",
        help="run the lane daemon (systemd starts this)",
        description=(
            "Start the devices, load and hash-check the models, open the "
            "stores and run the lane until SIGTERM. Logs go to stderr (the "
            "journal); with NOTIFY_SOCKET set, readiness, status and watchdog "
            "pings go to systemd. Exit status: 0 stopped, 1 failed, 2 invalid "
            "configuration."
        ),
    )
    add_config_argument(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run the lane daemon in the foreground."""
    from edge_gate.daemon import run_daemon

    return run_daemon(resolve_config_path(args.config), verbosity=args.verbose)
