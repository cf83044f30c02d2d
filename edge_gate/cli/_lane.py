"""``edge-gate run`` (edge-gate.service) and ``edge-gate lane-closed``
(edge-gate-lane-closed.service, run when the lane daemon failed for good)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from edge_gate.cli._common import add_config_argument
from edge_gate.config import load_config, resolve_config_path
from edge_gate.errors import ConfigError

EXIT_OK = 0
EXIT_CONFIG = 2


def register(subparsers: Any) -> None:
    """Add ``run`` and ``lane-closed`` to the ``edge-gate`` subcommands."""
    parser = subparsers.add_parser(
        "run",
        help="run the lane daemon (systemd starts this)",
        description=(
            "Start the devices, load and hash-check the models, open the "
            "stores and run the lane until SIGTERM, SIGINT or SIGHUP. Logs go "
            "to stderr (the "
            "journal); with NOTIFY_SOCKET set, readiness, status and watchdog "
            "pings go to systemd. Exit status: 0 stopped, 1 failed, 2 invalid "
            "configuration."
        ),
    )
    add_config_argument(parser)
    # The daemon handles SIGTERM, SIGINT and SIGHUP itself, as systemd expects.
    parser.set_defaults(handler=run, handles_sigterm=True)

    closed = subparsers.add_parser(
        "lane-closed",
        help="hold the barrier locked and the red lamp on (systemd starts this "
        "after the lane daemon failed)",
        description=(
            "Drive the [turnstile] outputs of the configuration to the closed "
            "lane's levels: the barrier locked as the configured lock type and "
            "polarity require, the red lamp on. The lines are held until "
            "SIGTERM, SIGINT or SIGHUP; the fire release still frees the barrier. Do "
            "not run it while edge-gate run holds the GPIO lines. Exit status: "
            "0 stopped, 1 failed, 2 invalid configuration."
        ),
    )
    add_config_argument(closed)
    closed.set_defaults(handler=lane_closed, handles_sigterm=True)


def run(args: argparse.Namespace) -> int:
    """Run the lane daemon in the foreground."""
    from edge_gate.daemon import run_daemon

    return run_daemon(resolve_config_path(args.config), verbosity=args.verbose)


def lane_closed(args: argparse.Namespace) -> int:
    """Hold the closed lane's output levels until SIGTERM, SIGINT or SIGHUP."""
    from edge_gate.daemon._lane_closed import hold_lane_closed
    from edge_gate.daemon._main import configure_daemon_logging
    from edge_gate.daemon._supervise import StopRequest

    configure_daemon_logging("DEBUG" if args.verbose else "INFO")
    path = resolve_config_path(args.config)
    try:
        config = load_config(path)
    except ConfigError as err:
        print(f"edge-gate lane-closed: {err}", file=sys.stderr)
        return EXIT_CONFIG

    stop = StopRequest()
    stop.install()
    hold_lane_closed(config.turnstile, stop.event)
    return EXIT_OK
