"""Argument helpers shared by the command modules."""

from __future__ import annotations

import argparse

from edge_gate.config import GateConfig, load_config, resolve_config_path

SubParsers = "argparse._SubParsersAction[argparse.ArgumentParser]"


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
