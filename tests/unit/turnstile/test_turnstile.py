"""Turnstile devices on gpiozero's MockFactory: levels, pulses, inputs, close."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from gpiozero import DigitalOutputDevice

from edge_gate.config import TurnstileConfig
from edge_gate.errors import DeviceInitError, DeviceIOError
from edge_gate.gate import (
    BarrierChanged,
    BeamChanged,
    FireReleaseChanged,
    KeySwitchChanged,
    Lock,
    SetBuzzer,
    SetLamps,
    SetSilentAlarm,
    ShowMessage,
    TamperChanged,
    Unlock,
)
from edge_gate.turnstile import Turnstile, build_pin_factory

UNLOCK_PIN = TurnstileConfig().unlock_pin


def mock_config(**fields: Any) -> TurnstileConfig:
    return TurnstileConfig(pin_factory="mock", **fields)


def unlock_level(config: TurnstileConfig) -> bool:
    """The physical level on unlock_pin that means "unlocked"."""
    energised = config.unlock_active_high
    return energised if config.lock_type == "fail_secure" else not energised


WIRINGS = [
    pytest.param("fail_secure", True, id="fail-secure-active-high"),
    pytest.param("fail_secure", False, id="fail-secure-active-low"),
    pytest.param("fail_safe", True, id="fail-safe-active-high"),
    pytest.param("fail_safe", False, id="fail-safe-active-low"),
]


@pytest.mark.parametrize(("lock_type", "active_high"), WIRINGS)
def test_unlock_never_asserted_by_start_or_close(
    factory: Any, lock_type: str, active_high: bool
) -> None:
    config = mock_config(lock_type=lock_type, unlock_active_high=active_high)
    unlocked = unlock_level(config)
    turnstile = Turnstile(config, factory)
    pin = factory.pin(UNLOCK_PIN)
    assert pin.function == "output"
    assert pin.state is (not unlocked)
    assert not turnstile.is_unlocked
    turnstile.close()
    # Every level driven from construction to release (states[0] is the
    # pin's level before it became an output).
    driven = [s.state for s in pin.states[1:]]
    assert unlocked not in driven
    assert pin.function == "input"


@pytest.mark.parametrize(("lock_type", "active_high"), WIRINGS)
def test_hold_mode_unlocks_until_lock(
    factory: Any, lock_type: str, active_high: bool
) -> None:
    config = mock_config(
        lock_type=lock_type, unlock_active_high=active_high, unlock_mode="hold"
    )
    pin = factory.pin(UNLOCK_PIN)
    with Turnstile(config, factory) as turnstile:
        turnstile.unlock_for_passage()
        assert pin.state is unlock_level(config)
        assert turnstile.is_unlocked
        turnstile.lock()
        assert pin.state is not unlock_level(config)
        assert not turnstile.is_unlocked


def test_close_while_unlocked_locks_first(factory: Any) -> None:
    config = mock_config(unlock_mode="hold")
    pin = factory.pin(UNLOCK_PIN)
    turnstile = Turnstile(config, factory)
    turnstile.unlock_hold()
    turnstile.close()
    assert pin.states[-1].state is False
    turnstile.close()  # idempotent
    assert not turnstile.is_unlocked


def wait_until(condition: Any, limit_s: float = 2.0) -> bool:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_pulse_mode_ends_by_itself(factory: Any) -> None:
    config = mock_config(unlock_mode="pulse", unlock_pulse_s=0.1)
    with Turnstile(config, factory) as turnstile:
        turnstile.unlock_for_passage()
        assert wait_until(lambda: turnstile.is_unlocked, 1.0)
        assert wait_until(lambda: not turnstile.is_unlocked)
        levels = [s.state for s in factory.pin(UNLOCK_PIN).states]
        assert levels[-2:] == [True, False]


def test_lock_cuts_a_pulse_short(factory: Any) -> None:
    config = mock_config(unlock_mode="pulse", unlock_pulse_s=5.0)
    with Turnstile(config, factory) as turnstile:
        turnstile.unlock_for_passage()
        assert wait_until(lambda: turnstile.is_unlocked, 1.0)
        turnstile.lock()
        assert not turnstile.is_unlocked


def test_fire_hold_ignores_pulse_mode(factory: Any) -> None:
    config = mock_config(unlock_mode="pulse", unlock_pulse_s=0.1)
    with Turnstile(config, factory) as turnstile:
        turnstile.apply(Unlock("fire_release"))
        time.sleep(0.2)
        assert turnstile.is_unlocked


@pytest.mark.parametrize(
    "active_high", [True, False], ids=["active-high", "active-low"]
)
def test_indicators_follow_commands(factory: Any, active_high: bool) -> None:
    config = mock_config(indicators_active_high=active_high)
    pins = {
        name: factory.pin(getattr(config, f"{name}_pin"))
        for name in ("green", "red", "buzzer", "silent_alarm")
    }
    with Turnstile(config, factory) as turnstile:
        for pin in pins.values():
            assert pin.state is (not active_high)
        assert turnstile.apply(SetLamps(green=True, red=False))
        assert turnstile.apply(SetBuzzer(True))
        assert turnstile.apply(SetSilentAlarm(True))
        assert pins["green"].state is active_high
        assert pins["red"].state is (not active_high)
        assert pins["buzzer"].state is active_high
        assert pins["silent_alarm"].state is active_high


def test_apply_reports_foreign_commands(factory: Any) -> None:
    config = mock_config(unlock_mode="hold")
    with Turnstile(config, factory) as turnstile:
        assert not turnstile.apply(ShowMessage("proceed"))
        assert turnstile.apply(Unlock("accepted"))
        assert turnstile.is_unlocked
        assert turnstile.apply(Lock())
        assert not turnstile.is_unlocked


@pytest.mark.parametrize(
    ("pull", "pin_attr", "drive_high", "expected"),
    [
        pytest.param(
            "up", "exit_beam_pin", True, BeamChanged("exit", True), id="beam-up"
        ),
        pytest.param(
            "up", "exit_beam_pin", False, BeamChanged("exit", False), id="beam-clear"
        ),
        pytest.param(
            "down", "inside_beam_pin", True, BeamChanged("inside", True), id="beam-down"
        ),
        pytest.param(
            "none",
            "entrance_beam_pin",
            True,
            BeamChanged("entrance", True),
            id="beam-none",
        ),
        pytest.param(
            "up", "barrier_closed_pin", False, BarrierChanged(True), id="barrier-up"
        ),
        pytest.param(
            "up", "fire_release_pin", True, FireReleaseChanged(True), id="fire-nc-open"
        ),
        pytest.param(
            "up",
            "fire_release_pin",
            False,
            FireReleaseChanged(False),
            id="fire-nc-closed",
        ),
        pytest.param(
            "down",
            "fire_release_pin",
            False,
            FireReleaseChanged(True),
            id="fire-nc-pulldown",
        ),
        pytest.param(
            "none",
            "fire_release_pin",
            True,
            FireReleaseChanged(True),
            id="fire-nc-external",
        ),
        pytest.param(
            "up", "key_switch_pin", False, KeySwitchChanged(True), id="key-on"
        ),
        pytest.param("up", "tamper_pin", True, TamperChanged(True), id="tamper-open"),
    ],
)
def test_input_levels_become_events(
    factory: Any, pull: str, pin_attr: str, drive_high: bool, expected: Any
) -> None:
    config = mock_config(input_pull=pull)
    events: list[Any] = []
    pin = factory.pin(getattr(config, pin_attr))
    with Turnstile(config, factory, on_input=events.append) as turnstile:
        # Start from the opposite level, so that the drive below is an edge.
        (pin.drive_low if drive_high else pin.drive_high)()
        events.clear()
        (pin.drive_high if drive_high else pin.drive_low)()
        assert events == [expected]
        assert expected in turnstile.read_inputs()


def test_fire_release_normally_open(factory: Any) -> None:
    config = mock_config(fire_release_normally_closed=False)
    pin = factory.pin(config.fire_release_pin)
    with Turnstile(config, factory) as turnstile:
        pin.drive_high()
        assert not turnstile.is_active("fire_release")
        pin.drive_low()
        assert turnstile.is_active("fire_release")


def test_unwired_nc_fire_input_reads_as_fire(factory: Any) -> None:
    with Turnstile(mock_config(), factory) as turnstile:
        # Nothing drives the pin: the pull-up wins, as with a broken wire.
        assert turnstile.is_active("fire_release")
        assert turnstile.read_inputs()[0] == FireReleaseChanged(True)


def test_events_go_to_queue_without_callback(factory: Any) -> None:
    config = mock_config()
    with Turnstile(config, factory) as turnstile:
        factory.pin(config.exit_beam_pin).drive_low()
        factory.pin(config.exit_beam_pin).drive_high()
        assert turnstile.input_queue.get_nowait() == BeamChanged("exit", False)
        assert turnstile.input_queue.get_nowait() == BeamChanged("exit", True)


def test_callback_error_is_logged_not_raised(
    factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(_event: object) -> None:
        raise ValueError("runner bug")

    config = mock_config()
    with Turnstile(config, factory, on_input=broken):
        with caplog.at_level(logging.ERROR):
            factory.pin(config.exit_beam_pin).drive_low()
        assert "callback failed" in caplog.text


def test_closed_turnstile_rejects_use(factory: Any) -> None:
    config = mock_config()
    events: list[Any] = []
    turnstile = Turnstile(config, factory, on_input=events.append)
    turnstile.close()
    with pytest.raises(DeviceIOError, match="closed"):
        turnstile.unlock_for_passage()
    with pytest.raises(DeviceIOError, match="closed"):
        turnstile.read_inputs()
    assert not turnstile.is_unlocked


def test_pin_conflict_raises_and_releases(factory: Any) -> None:
    config = mock_config()
    blocker = DigitalOutputDevice(config.tamper_pin, pin_factory=factory)
    try:
        with pytest.raises(DeviceInitError, match="GPIO"):
            Turnstile(config, factory)
        unlock = factory.pin(UNLOCK_PIN)
        assert unlock.function == "input"
        assert True not in [s.state for s in unlock.states[1:]]
    finally:
        blocker.close()
    # Everything was released: a new turnstile gets every pin.
    Turnstile(config, factory).close()


def test_builds_and_closes_own_mock_factory() -> None:
    with Turnstile(mock_config()) as turnstile:
        assert not turnstile.is_unlocked


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({}, id="pull-up"),
        pytest.param({"input_pull": "down"}, id="pull-down"),
        pytest.param({"input_pull": "none"}, id="external-pulls"),
        pytest.param({"fire_release_normally_closed": False}, id="fire-normally-open"),
    ],
)
def test_configured_mock_inputs_start_quiet(fields: dict[str, Any]) -> None:
    # As with pin_factory = "mock" in a daemon config, no walker drives the pins.
    config = mock_config(**fields)
    factory = build_pin_factory(config)
    try:
        with Turnstile(config, factory) as turnstile:
            events = turnstile.read_inputs()
            assert FireReleaseChanged(False) in events
            assert TamperChanged(False) in events
            assert KeySwitchChanged(False) in events
            assert BarrierChanged(closed=True) in events
            assert not turnstile.is_unlocked
    finally:
        factory.close()


def test_configured_mock_fire_input_follows_pin() -> None:
    config = mock_config()
    factory = build_pin_factory(config)
    try:
        with Turnstile(config, factory) as turnstile:
            # High is what a cut wire on the normally closed contact reads
            # through the pull-up.
            factory.pin(config.fire_release_pin).drive_high()
            assert turnstile.is_active("fire_release")
            factory.pin(config.fire_release_pin).drive_low()
            assert not turnstile.is_active("fire_release")
    finally:
        factory.close()


def test_lgpio_factory_missing_is_init_error() -> None:
    try:
        import lgpio  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("lgpio is installed: this checks a machine without it")
    with pytest.raises(DeviceInitError, match="lgpio"):
        build_pin_factory(TurnstileConfig(pin_factory="lgpio"))
