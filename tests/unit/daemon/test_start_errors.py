"""Settings that name a wrong file or folder stop ``edge-gate run``.

Each one exits with status 2 and one message that names the setting and its
value, before ``READY=1`` and before the lane writes its state folder.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge_gate.store import AUDIT_DB_NAME


def write_config(path: Path, setup: Any, **changes: dict[str, Any]) -> None:
    """Write the setup's configuration with the tables in ``changes`` updated."""
    sections = {name: dict(table) for name, table in setup.sections.items()}
    for name, table in changes.items():
        sections[name].update(table)
    dataclasses.replace(setup, sections=sections).write_toml(path)


def run_to_end(
    config_path: Path, notify_socket: Any, start_daemon: Callable[..., Any]
) -> tuple[int, str]:
    """Run ``edge-gate run`` until it exits; return its status and stderr."""
    daemon = start_daemon(
        ["-m", "edge_gate", "run", "--config", str(config_path)], notify_socket
    )
    exit_status: int = daemon.wait(60)
    stderr: str = daemon.stderr.read()
    daemon.stdout.close()
    daemon.stderr.close()
    return exit_status, stderr


def notify_lines(notify_socket: Any) -> list[str]:
    """Return every line the exited daemon sent to the notify socket."""
    lines = []
    while (message := notify_socket.receive(0.2)) is not None:
        lines.extend(message.splitlines())
    return lines


def test_models_dir_without_manifest(
    lane_setup: Any, notify_socket: Any, start_daemon: Callable[..., Any]
) -> None:
    empty = lane_setup.work / "no-models"
    empty.mkdir()
    config_path = lane_setup.work / "edge-gate.toml"
    write_config(config_path, lane_setup, daemon={"models_dir": str(empty)})

    exit_status, stderr = run_to_end(config_path, notify_socket, start_daemon)

    assert exit_status == 2, stderr
    assert f'[daemon] models_dir = "{empty}": the folder contains no manifest.json' in (
        stderr
    )
    assert "Traceback" not in stderr
    lines = notify_lines(notify_socket)
    assert "READY=1" not in lines
    assert any(
        line.startswith("STATUS=configuration invalid: [daemon] models_dir")
        for line in lines
    ), lines
    assert not (lane_setup.state_dir / AUDIT_DB_NAME).exists()
