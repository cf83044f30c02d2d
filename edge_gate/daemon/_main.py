"""The ``edge-gate run`` process: logging, start-up, control socket, shutdown.

Order of events:

1. Logging goes to stderr, which systemd hands to the journal; under the
   journal each line carries its syslog priority as a ``<N>`` prefix.
2. The configuration is loaded; every invalid key is listed and the process
   exits with status 2 before touching any device. The process also exits
   with status 2 when a setting names a missing or invalid file or folder,
   as soon as the start finds it and before ``READY=1``.
3. If another daemon already listens on the control socket or holds the
   state folder's ``daemon.lock``, this start exits with status 1 before
   anything is opened. The lane starts (models checked against their
   manifest, stores opened, devices opened, workers running), the control
   socket opens, and ``READY=1`` goes to systemd with the lane's status line.
4. The supervisor loop runs until SIGTERM or SIGINT, or until a worker
   fails (exit status 1, so that ``Restart=`` starts a fresh process).
5. Shutdown: ``STOPPING=1``, the lane stops (barrier locked, a running
   transaction aborted and recorded), the control socket closes.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import sys
from pathlib import Path

from edge_gate.config import GateConfig, load_config
from edge_gate.daemon._control import ControlServer
from edge_gate.daemon._notify import Notifier, watchdog_interval_s
from edge_gate.daemon._paths import prepare_socket_folder
from edge_gate.daemon._supervise import StopRequest, supervise
from edge_gate.errors import ConfigError, EdgeGateError

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2

# syslog priorities that systemd-journald reads from a "<N>" line prefix.
_PRIORITY = {
    logging.DEBUG: 7,
    logging.INFO: 6,
    logging.WARNING: 4,
    logging.ERROR: 3,
    logging.CRITICAL: 2,
}


class _JournalFormatter(logging.Formatter):
    """Prefix each line with its syslog priority, as journald expects."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        priority = _PRIORITY.get(record.levelno, 6)
        return "\n".join(f"<{priority}>{line}" for line in text.splitlines())


def configure_daemon_logging(level: str = "INFO") -> None:
    """Send log records to stderr; journal priorities when under systemd."""
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("JOURNAL_STREAM"):
        handler.setFormatter(_JournalFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)


def run_daemon(config_path: Path, *, verbosity: int = 0) -> int:
    """Run the lane daemon until it is stopped; return the exit status.

    Args:
        config_path: the TOML configuration file.
        verbosity: ``-v`` count; 1 or more forces DEBUG logging.

    Returns:
        0 after SIGTERM or SIGINT, 1 when start-up or a worker failed,
        2 when the configuration is invalid.
    """
    # The watchdog's SIGABRT then writes every thread's stack to the journal.
    faulthandler.enable()
    configure_daemon_logging("DEBUG" if verbosity else "INFO")
    notifier = Notifier()
    stop = StopRequest()
    stop.install()

    try:
        config = load_config(config_path)
    except ConfigError as err:
        print(f"edge-gate run: {err}", file=sys.stderr)
        notifier.status(f"configuration invalid: {config_path}")
        return EXIT_CONFIG
    if not verbosity:
        logging.getLogger().setLevel(config.daemon.log_level)

    return run_lane(config, notifier, stop)


def run_lane(config: GateConfig, notifier: Notifier, stop: StopRequest) -> int:
    """Start the lane and the control socket, supervise, and shut down."""
    from edge_gate.daemon._runner import LaneRunner

    notifier.status("starting: checking models, opening stores and devices")
    runner = LaneRunner(config)
    try:
        # The socket is bound after the lane has started, but an invalid socket
        # folder or a daemon already listening there must stop the start first.
        prepare_socket_folder(Path(config.daemon.control_socket))
        runner.start(on_progress=notifier.start_progress)
    except ConfigError as err:
        print(f"edge-gate run: {err}", file=sys.stderr)
        notifier.status(f"configuration invalid: {err}")
        runner.stop()
        return EXIT_CONFIG
    except (EdgeGateError, OSError) as err:
        logger.error("start-up failed: %s", err)
        notifier.status(f"start-up failed: {err}")
        runner.stop()
        return EXIT_FAILED
    if stop.event.is_set():
        runner.stop()
        return EXIT_OK

    try:
        control = ControlServer(
            Path(config.daemon.control_socket),
            runner.control_handlers(),
            runner.events,
            group=config.daemon.control_group,
        )
    except EdgeGateError as err:
        logger.error("start-up failed: %s", err)
        notifier.status(f"start-up failed: {err}")
        runner.stop()
        return EXIT_FAILED
    control.start()

    status = EXIT_FAILED
    try:
        notifier.ready(runner.status_line())
        logger.info("lane %s ready: %s", config.daemon.lane_id, runner.status_line())
        status = supervise(
            runner, notifier, stop, watchdog_interval_s=watchdog_interval_s()
        )
    finally:
        notifier.stopping("stopping: locking the barrier and closing the lane")
        control.stop()
        runner.stop()
    logger.info("lane %s stopped (exit status %d)", config.daemon.lane_id, status)
    return status
