"""``edge-gate lane-closed``: the closed lane's GPIO levels on MockFactory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from edge_gate.config import TurnstileConfig
from edge_gate.daemon._lane_closed import hold_lane_closed
from edge_gate.turnstile import MOCK_REVISION

DEFAULTS = TurnstileConfig()

# The level on unlock_pin that keeps the barrier locked, written out per
# wiring rather than derived, so that a polarity slip in the code shows.
LOCKED_LEVEL = [
    pytest.param("fail_secure", True, False, id="fail-secure-active-high"),
    pytest.param("fail_secure", False, True, id="fail-secure-active-low"),
    pytest.param("fail_safe", True, True, id="fail-safe-hold-high"),
    pytest.param("fail_safe", False, False, id="fail-safe-hold-low"),
]


@pytest.fixture
def factory() -> Iterator[Any]:
    mock = MockFactory(revision=MOCK_REVISION)
    yield mock
    mock.reset()
    mock.close()


class ClosedLane:
    """hold_lane_closed running in a thread on the given mock factory."""

    def __init__(self, config: TurnstileConfig, factory: Any) -> None:
        self.stop = threading.Event()
        ready = threading.Event()
        self.thread = threading.Thread(
            target=hold_lane_closed,
            args=(config, self.stop),
            kwargs={"pin_factory": factory, "ready": ready},
            name="lane-closed-test",
        )
        self.thread.start()
        assert ready.wait(5.0), "the closed lane did not set its outputs"

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5.0)
        assert not self.thread.is_alive()


def wait_for_level(pin: Any, level: bool, timeout_s: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pin.state is level:
            return True
        time.sleep(0.01)
    return False


def config_for(lock_type: str, active_high: bool, **extra: Any) -> TurnstileConfig:
    # A normally open fire contact reads inactive through the mock pull-up.
    return TurnstileConfig(
        pin_factory="mock",
        lock_type=lock_type,  # type: ignore[arg-type]
        unlock_active_high=active_high,
        fire_release_normally_closed=False,
        **extra,
    )


@pytest.mark.parametrize(("lock_type", "active_high", "locked"), LOCKED_LEVEL)
def test_closed_lane_holds_locked_level(
    factory: Any, lock_type: str, active_high: bool, locked: bool
) -> None:
    lane = ClosedLane(config_for(lock_type, active_high), factory)
    try:
        unlock = factory.pin(DEFAULTS.unlock_pin)
        assert unlock.function == "output"
        assert unlock.state is locked
        # Still held after several polls of the inputs.
        time.sleep(0.3)
        assert unlock.state is locked
        assert factory.pin(DEFAULTS.red_pin).state is True
        assert factory.pin(DEFAULTS.green_pin).state is False
    finally:
        lane.close()


@pytest.mark.parametrize(
    ("indicators_high", "red_on"),
    [
        pytest.param(True, True, id="lamps-active-high"),
        pytest.param(False, False, id="lamps-active-low"),
    ],
)
def test_closed_lane_red_lamp_polarity(
    factory: Any, indicators_high: bool, red_on: bool
) -> None:
    config = config_for("fail_secure", True, indicators_active_high=indicators_high)
    lane = ClosedLane(config, factory)
    try:
        assert factory.pin(DEFAULTS.red_pin).state is red_on
        assert factory.pin(DEFAULTS.green_pin).state is (not red_on)
    finally:
        lane.close()


@pytest.mark.parametrize(("lock_type", "active_high", "locked"), LOCKED_LEVEL)
def test_closed_lane_fire_release_frees(
    factory: Any, lock_type: str, active_high: bool, locked: bool
) -> None:
    lane = ClosedLane(config_for(lock_type, active_high), factory)
    try:
        unlock = factory.pin(DEFAULTS.unlock_pin)
        fire = factory.pin(DEFAULTS.fire_release_pin)
        fire.drive_low()
        assert wait_for_level(unlock, not locked)
        fire.drive_high()
        assert wait_for_level(unlock, locked)
    finally:
        lane.close()


# Run the console command with the mock factory; importing lgpio fails
# the process, since lgpio writes a FIFO into the working directory.
_RUNNER = """
import sys
class BlockLgpio:
    def find_spec(self, name, path=None, target=None):
        if name == "lgpio" or name.startswith("gpiozero.pins.lgpio"):
            raise ImportError("lgpio imported under the mock factory")
        return None
sys.meta_path.insert(0, BlockLgpio())
from edge_gate.cli import main
sys.exit(main(["lane-closed", "--config", sys.argv[1]]))
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_lane_closed_command_stops_on_signal(tmp_path: Path, signum: int) -> None:
    # SIGHUP comes from a closed SSH session; its default action would end
    # the process without logging that the lines were released.
    config = tmp_path / "edge-gate.toml"
    config.write_text(
        '[turnstile]\npin_factory = "mock"\nlock_type = "fail_safe"\n',
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    process = subprocess.Popen(
        [sys.executable, "-c", _RUNNER, str(config)],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        assert process.stderr is not None
        lines: list[str] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line:
                break
            lines.append(line)
            if "lane closed: barrier locked (fail_safe lock)" in line:
                break
        assert any("lane closed" in line for line in lines), "".join(lines)
        # Let the closed lane poll its inputs a few times (every 0.1 s).
        time.sleep(0.5)
        process.send_signal(signum)
        rest = process.stderr.read()
        assert process.wait(timeout=30) == 0, "".join(lines) + rest
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "lgpio imported" not in rest
    assert "GPIO lines released" in rest
    # The mock inputs start at their wired levels, so no fire release frees
    # the barrier of the closed lane.
    assert "fire release active" not in rest


def test_lane_closed_invalid_config_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "edge-gate.toml"
    config.write_text('[turnstile]\nlock_type = "magnetic"\n', encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "edge_gate", "lane-closed", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "lock_type" in result.stderr
