"""Turnstile contract: what every backend (mock pins or the real lane) keeps."""

from __future__ import annotations

import time
from typing import Any

import pytest

from edge_gate.errors import DeviceInitError, DeviceIOError
from edge_gate.gate import FireReleaseChanged, Lock, SetLamps, Unlock
from edge_gate.turnstile import INPUT_NAMES, Turnstile


def open_turnstile(backend: Any, **kwargs: Any) -> Turnstile:
    return Turnstile(backend.config, backend.factory, **kwargs)


def wait_until(condition: Any, limit_s: float) -> bool:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return bool(condition())


def test_locked_after_start(backend: Any) -> None:
    with open_turnstile(backend) as turnstile:
        assert not turnstile.is_unlocked


def test_unlock_then_lock(backend: Any) -> None:
    with open_turnstile(backend) as turnstile:
        turnstile.apply(Unlock("accepted"))
        assert wait_until(lambda: turnstile.is_unlocked, 1.0)
        turnstile.apply(Lock())
        assert not turnstile.is_unlocked


def test_accept_unlock_ends_by_itself_only_in_pulse_mode(backend: Any) -> None:
    pulse = backend.config.unlock_mode == "pulse"
    with open_turnstile(backend) as turnstile:
        turnstile.unlock_for_passage()
        ended = wait_until(lambda: not turnstile.is_unlocked, 1.0)
        assert ended is pulse
        turnstile.lock()


def test_fire_unlock_holds(backend: Any) -> None:
    with open_turnstile(backend) as turnstile:
        turnstile.apply(Unlock("fire_release"))
        time.sleep(backend.config.unlock_pulse_s + 0.1)
        assert turnstile.is_unlocked
        turnstile.lock()
        assert not turnstile.is_unlocked


def test_close_while_unlocked_locks(backend: Any) -> None:
    turnstile = open_turnstile(backend)
    turnstile.unlock_hold()
    turnstile.close()
    turnstile.close()
    assert not turnstile.is_unlocked
    with pytest.raises(DeviceIOError):
        turnstile.apply(SetLamps(green=True, red=False))


def test_restart_does_not_unlock(backend: Any) -> None:
    for _ in range(3):
        with open_turnstile(backend) as turnstile:
            assert not turnstile.is_unlocked
    if backend.is_mock:
        pin = backend.factory.pin(backend.config.unlock_pin)
        assert True not in [s.state for s in pin.states[1:]]


def test_snapshot_has_every_input_fire_first(backend: Any) -> None:
    with open_turnstile(backend) as turnstile:
        events = turnstile.read_inputs()
        assert len(events) == len(INPUT_NAMES)
        assert isinstance(events[0], FireReleaseChanged)


def test_second_turnstile_on_same_pins_fails(backend: Any) -> None:
    with open_turnstile(backend) as first:
        with pytest.raises(DeviceInitError):
            open_turnstile(backend)
        assert not first.is_unlocked


def test_input_edges_reach_callback(backend: Any) -> None:
    if not backend.is_mock:
        pytest.skip("driving inputs needs the mock pins (or a person at the lane)")
    from edge_gate.rig.walker import Walker

    events: list[Any] = []
    with open_turnstile(backend, on_input=events.append):
        walker = Walker(backend.factory, backend.config)
        events.clear()
        walker.enter()
        assert len(events) == 3
