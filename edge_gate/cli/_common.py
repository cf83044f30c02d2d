"""Argument helpers shared by the command modules."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from edge_gate.config import (
    CONFIG_ENV,
    GateConfig,
    load_config,
    resolve_config_path,
)
from edge_gate.errors import ConfigError, EdgeGateError

SubParsers = "argparse._SubParsersAction[argparse.ArgumentParser]"


class UsageError(EdgeGateError):
    """A command-line value cannot be used; ``main`` exits with status 2."""


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--config FILE`` (default: EDGE_GATE_CONFIG, then /etc)."""
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="configuration file (default: $EDGE_GATE_CONFIG, "
        "then /etc/edge_gate/edge-gate.toml)",
    )


def config_from_args(args: argparse.Namespace) -> GateConfig:
    """Load the configuration named by ``--config`` or its fallbacks."""
    return load_config(resolve_config_path(getattr(args, "config", None)))


def add_yes_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``-y/--yes`` for commands that move hardware."""
    parser.add_argument(
        "-y", "--yes", action="store_true", help="do not ask for confirmation"
    )


def control_socket_from_args(args: argparse.Namespace) -> Path:
    """Return the control socket named by the configuration for a field command.

    Only when neither ``--config`` nor ``EDGE_GATE_CONFIG`` names a file and
    the default file does not exist do the defaults apply. A file that was
    named must exist, or a mistyped path would send the command to another
    lane's socket.

    Raises:
        UsageError: the named file is missing, unreadable or invalid.
    """
    named = getattr(args, "config", None) or os.environ.get(CONFIG_ENV)
    path = resolve_config_path(getattr(args, "config", None))
    if not named and not path.exists():
        return Path(GateConfig().daemon.control_socket)
    try:
        config = load_config(path)
    except ConfigError as err:
        raise UsageError(str(err)) from err
    return Path(config.daemon.control_socket)
