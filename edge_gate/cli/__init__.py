"""The ``edge-gate`` console script: one subcommand per field task.

Each command group lives in its own module with a ``register(subparsers)``
function that adds its subcommands and sets ``handler`` on them. A handler
takes the parsed arguments and returns the exit status: 0 ok, 1 failed,
2 usage error. Data goes to stdout, diagnostics to stderr; a traceback
appears only with ``--debug``.

SIGTERM or SIGHUP ends a command like Ctrl-C does: its cleanup runs, one
line goes to stderr and the exit status is 1. A command whose parser sets
``handles_sigterm`` (the daemons ``run`` and ``lane-closed``) installs its
own handlers instead.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from edge_gate import __version__
from edge_gate.errors import EdgeGateError

from . import _biometrics, _field, _lane, _mrz, _simulate, _templates
from ._common import UsageError
from ._signals import Terminated, sigterm_unwinds

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

_GROUPS = (_mrz, _biometrics, _lane, _field, _templates, _simulate)


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="edge-gate",
        description="Automated border-control lane: daemon and field commands.",
    )
    parser.add_argument(
        "--version", action="version", version=f"edge-gate {__version__}"
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="more diagnostics on stderr; repeat for DEBUG",
    )
    parser.add_argument(
        "--debug", action="store_true", help="show a traceback when a command fails"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in _GROUPS:
        group.register(subparsers)
    return parser


def configure_logging(verbosity: int) -> None:
    """Send log records to stderr at WARNING, INFO (-v) or DEBUG (-vv)."""
    level = logging.WARNING - 10 * min(verbosity, 2)
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s",
    )


def main(argv: Sequence[str] | None = None, *, nested: bool = False) -> int:
    """Run one ``edge-gate`` command and return its exit status.

    With ``nested`` (a command run inside another, as ``simulate`` runs
    ``publish`` and ``sync``) Ctrl-C and SIGTERM propagate to the outer
    command instead of ending this one as a failure of its own.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    if args.command != "run":
        configure_logging(args.verbose)
    try:
        if getattr(args, "handles_sigterm", False):
            status: int = args.handler(args)
        else:
            with sigterm_unwinds():
                status = args.handler(args)
    except KeyboardInterrupt:
        if nested:
            raise
        print("edge-gate: interrupted", file=sys.stderr)
        return EXIT_FAILED
    except Terminated as stop:
        if nested:
            raise
        print(
            f"edge-gate {args.command}: stopped by {stop.signal_name}", file=sys.stderr
        )
        return EXIT_FAILED
    except UsageError as err:
        if args.debug:
            raise
        print(f"edge-gate {args.command}: {err}", file=sys.stderr)
        return EXIT_USAGE
    except EdgeGateError as err:
        if args.debug:
            raise
        print(f"edge-gate {args.command}: {err}", file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:
        # The reader of stdout went away (``edge-gate log | head``): stop
        # quietly, and keep the interpreter from failing on its final flush.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED
    except OSError as err:
        if args.debug:
            raise
        print(f"edge-gate {args.command}: {err}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as err:
        # Supervision point: a bug must still end with one readable line.
        if args.debug:
            raise
        print(
            f"edge-gate {args.command}: internal error {type(err).__name__}: {err}; "
            "run again with --debug for the traceback and report it",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return status


if __name__ == "__main__":
    sys.exit(main())
