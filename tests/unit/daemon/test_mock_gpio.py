"""A lane on mock GPIO pins reports it, unless the rig drives the pins.

``edge-gate run`` with ``[turnstile] pin_factory = "mock"`` can come up in
service while no real GPIO line is driven. The start logs one WARNING, and
``edge-gate status`` shows it. The rig passes its own mock factory, so
``edge-gate simulate`` logs no such WARNING.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge_gate.cli import main as cli_main

WARNING_TEXT = "the lane drives no real GPIO line"


def test_run_on_mock_pins_warns(
    lane_setup: Any,
    notify_socket: Any,
    capsys: Any,
    field_status: Callable[[Path], dict[str, Any]],
    start_daemon: Callable[..., Any],
    stop_daemon: Callable[..., tuple[int, str]],
) -> None:
    config_path = lane_setup.work / "edge-gate.toml"
    lane_setup.write_toml(config_path)

    daemon = start_daemon(
        ["-m", "edge_gate", "run", "--config", str(config_path)], notify_socket
    )
    try:
        notify_socket.wait_for("READY=1", timeout_s=30)
        status = field_status(config_path)
        cli_main(["status", "--config", str(config_path)])
        status_text = capsys.readouterr().out
    finally:
        exit_status, stderr = stop_daemon(daemon)

    assert exit_status == 0, stderr
    warnings = [line for line in stderr.splitlines() if WARNING_TEXT in line]
    assert len(warnings) == 1, stderr
    assert " WARNING " in warnings[0]
    assert status["mock_gpio"] is True
    assert "gpio        MOCK: no real GPIO line is driven" in status_text


def test_rig_pins_do_not_warn(
    lane_setup: Any,
    start_lane: Any,
    caplog: Any,
    wait_until: Callable[..., None],
) -> None:
    # The rig and these tests pass their own mock factory, as simulate does.
    with caplog.at_level(logging.WARNING, logger="edge_gate.daemon._runner"):
        running = start_lane(lane_setup)
        wait_until(running.idle_in_service)

    assert not [r for r in caplog.records if WARNING_TEXT in r.getMessage()]
    assert running.status()["mock_gpio"] is True
    assert running.status()["in_service"] is True
    assert "no real GPIO line is driven" in running.runner.status_line()
