"""A simulated person at the turnstile, on gpiozero's mock pins.

:class:`Walker` drives the passage beams and the barrier-closed switch in the
order a person would, so that the lane receives the same input edges as on the
real lane. It does not sleep by itself: between two steps it calls
``pause(step_s)``, which a test points at a fake clock (and a lane tick) and
a live simulation points at :func:`time.sleep`.

Scenarios start and end with the person where a traveller stands during the
transaction (in the inside beam), unless their name says otherwise.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edge_gate.config import TurnstileConfig
from edge_gate.turnstile import (
    QUIET_INPUTS,
    InputName,
    input_levels,
    wired_mock_factory,
)

# QUIET_INPUTS and wired_mock_factory are defined in the turnstile package,
# because the daemon's "mock" pin factory uses them too. The rig re-exports
# them.
__all__ = ["QUIET_INPUTS", "Walker", "WalkerEvent", "wired_mock_factory"]


@dataclass(frozen=True)
class WalkerEvent:
    """One input the walker set: when (its clock), which, and to what."""

    at_s: float
    input_name: InputName
    active: bool


def _no_pause(_seconds: float) -> None:
    return None


class Walker:
    """Drives the turnstile's mock input pins like a person walking through.

    Build it after the :class:`~edge_gate.turnstile.Turnstile`: gpiozero
    sets each input pin to its pull when the input device is built, and the
    walker then drives the quiet levels (barrier closed, beams clear, no
    fire, key off, tamper closed).

    Args:
        pin_factory: the gpiozero ``MockFactory`` the turnstile uses.
        config: the turnstile wiring, for pins and active levels.
        step_s: time between two steps of a scenario, seconds.
        pause: called with ``step_s`` between steps (default: no pause).
        clock: time source for :attr:`events`, seconds.
    """

    def __init__(
        self,
        pin_factory: Any,
        config: TurnstileConfig,
        *,
        step_s: float = 0.5,
        pause: Callable[[float], None] = _no_pause,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._factory = pin_factory
        self._levels = input_levels(config)
        self._step_s = step_s
        self._pause = pause
        self._clock = clock
        self.events: list[WalkerEvent] = []
        self.quiet()

    def set_input(self, name: InputName, active: bool) -> None:
        """Drive one input to its active or inactive level."""
        pin_number, active_high = self._levels[name]
        pin = self._factory.pin(pin_number)
        if active == active_high:
            pin.drive_high()
        else:
            pin.drive_low()
        self.events.append(WalkerEvent(self._clock(), name, active))

    def _steps(self, *steps: tuple[InputName, bool]) -> None:
        for index, (name, active) in enumerate(steps):
            if index:
                self._pause(self._step_s)
            self.set_input(name, active)

    def quiet(self) -> None:
        """Set every input at once to its level for an empty lane."""
        for name, active in QUIET_INPUTS:
            self.set_input(name, active)

    def enter(self) -> None:
        """Walk in through the entrance and stop in the inside beam."""
        self._steps(
            ("entrance_beam", True), ("inside_beam", True), ("entrance_beam", False)
        )

    def walk_through(self) -> None:
        """Push the barrier open, cross the exit beam, let the barrier close."""
        self._steps(
            ("barrier_closed", False),
            ("exit_beam", True),
            ("inside_beam", False),
            ("exit_beam", False),
            ("barrier_closed", True),
        )

    def force(self) -> None:
        """Force the locked barrier open and walk through (same edges as
        :meth:`walk_through`; the lane distinguishes them by its state)."""
        self.walk_through()

    def tailgate(self) -> None:
        """Let a second person follow in and both cross on one opening."""
        self.enter()
        self._pause(self._step_s)
        self._steps(
            ("barrier_closed", False),
            ("exit_beam", True),
            ("exit_beam", False),
            ("exit_beam", True),
            ("inside_beam", False),
            ("exit_beam", False),
            ("barrier_closed", True),
        )

    def wrong_way(self) -> None:
        """Come in from the exit side through the barrier and leave by the
        entrance (starts and ends outside the lane)."""
        self._steps(
            ("exit_beam", True),
            ("barrier_closed", False),
            ("inside_beam", True),
            ("exit_beam", False),
            ("barrier_closed", True),
            ("entrance_beam", True),
            ("inside_beam", False),
            ("entrance_beam", False),
        )

    def walk_away(self) -> None:
        """Leave the inside beam back through the entrance (ends outside)."""
        self._steps(
            ("entrance_beam", True), ("inside_beam", False), ("entrance_beam", False)
        )

    def hold_barrier_open(self, duration_s: float) -> None:
        """Open the barrier, hold it for ``duration_s`` seconds, let it close."""
        self.set_input("barrier_closed", False)
        self._pause(duration_s)
        self.set_input("barrier_closed", True)
