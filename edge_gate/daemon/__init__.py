"""The lane daemon: lane runner, supervision, control socket, device watch.

- :class:`LaneRunner` runs one lane in-process (``edge-gate run`` and
  ``edge-gate simulate``).
- :func:`run_daemon` is the ``edge-gate run`` process: systemd notify and
  watchdog, SIGTERM, the control socket.
- :class:`Notifier` sends sd_notify messages; :func:`request` and
  :func:`watch` are the field commands' side of the control socket.
"""

from edge_gate.daemon._control import ControlServer, EventHub, request, watch
from edge_gate.daemon._health import ProgressMonitor, Worker, WorkerHealth
from edge_gate.daemon._main import run_daemon
from edge_gate.daemon._notify import Notifier, watchdog_interval_s
from edge_gate.daemon._runner import LaneRunner
from edge_gate.daemon._supervise import StopRequest, supervise

__all__ = [
    "ControlServer",
    "EventHub",
    "LaneRunner",
    "Notifier",
    "ProgressMonitor",
    "StopRequest",
    "Worker",
    "WorkerHealth",
    "request",
    "run_daemon",
    "supervise",
    "watch",
    "watchdog_interval_s",
]
