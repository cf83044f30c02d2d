"""Field-command rehearsal for ``edge-gate simulate``.

The simulated lane serves its control socket as ``edge-gate run`` does, so
the field commands can be rehearsed against a lane with travellers passing.
:func:`print_field_command` prints the command that reaches it from another
shell, and :func:`hold_lane` keeps it up after the last crossing.
"""

from __future__ import annotations

import shlex
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ._signals import Terminated


def edge_gate_command() -> str:
    """Return the shell words that run this ``edge-gate`` from another shell.

    The result is ``edge-gate`` when PATH resolves that name to the script
    running this process, else the script's full path. Without an
    ``edge-gate`` script (``python -m edge_gate``, or ``main()`` called from
    Python) it is ``<python> -m edge_gate``.
    """
    script = Path(sys.argv[0])
    if script.name != "edge-gate":
        return f"{shlex.quote(sys.executable)} -m edge_gate"
    found = shutil.which("edge-gate")
    if found is not None and Path(found).resolve() == script.resolve():
        return "edge-gate"
    return shlex.quote(str(script.absolute()))


def print_field_command(config_path: Path) -> None:
    """Print, on stderr, a status command that reaches this run's lane.

    The simulation calls this once the lane has started and serves its
    control socket.
    """
    config = shlex.quote(str(config_path))
    command = f"{edge_gate_command()} status --config {config}"
    print(
        "edge-gate simulate: the lane is up; from another shell, field "
        f"commands reach it: {command} (also watch, log, devices, selftest, "
        "open)",
        file=sys.stderr,
        flush=True,
    )


def hold_lane(
    seconds: float, *, clear_progress: Callable[[], None] | None = None
) -> None:
    """Sleep ``seconds`` while the lane stays up.

    Ctrl-C, SIGTERM or SIGHUP ends the sleep early and prints one line on stderr.
    The caller then stops the lane and prints its report as usual.
    """
    if clear_progress is not None:
        clear_progress()
    print(
        f"edge-gate simulate: crossings done; the lane and its control socket "
        f"stay up for {seconds:g} s (Ctrl-C, SIGTERM or SIGHUP ends the hold, and the "
        "report follows)",
        file=sys.stderr,
        flush=True,
    )
    try:
        time.sleep(seconds)
    except KeyboardInterrupt:
        ended_by = "Ctrl-C"
    except Terminated as stop:
        # The handler of sigterm_unwinds ignores further SIGTERMs and SIGHUPs
        # until the run returns, so a second one cannot interrupt the lane's stop.
        ended_by = stop.signal_name
    else:
        return
    print(f"edge-gate simulate: hold ended early by {ended_by}", file=sys.stderr)
