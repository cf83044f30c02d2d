"""gpiozero mock pins whose inputs start at their idle wired levels.

On the lane the contacts and beams drive each input to its level before the
daemon starts. A plain gpiozero mock pin instead reads its pull resistor's
level until something drives it. With the default wiring (pull-up, normally
closed fire contact, tamper active high) that reads as a fire release and an
open tamper loop, so a lane on plain mock pins starts in emergency with the
barrier held free. The pins built here start quiet: barrier closed, beams
clear, no fire release, key off, tamper loop closed.

Only the ``mock`` pin factory uses these pins. On the board an undriven
normally closed fire input still reads as a fire release through its
pull-up, as a cut wire must.
"""

from __future__ import annotations

from typing import Any

from edge_gate.config import TurnstileConfig
from edge_gate.turnstile._turnstile import MOCK_REVISION, InputName, input_levels

# Active state of each input in an empty lane: barrier closed, beams clear,
# no fire release, key off, tamper loop closed.
QUIET_INPUTS: tuple[tuple[InputName, bool], ...] = (
    ("fire_release", False),
    ("key_switch", False),
    ("tamper", False),
    ("barrier_closed", True),
    ("entrance_beam", False),
    ("inside_beam", False),
    ("exit_beam", False),
)


def wired_mock_factory(config: TurnstileConfig) -> Any:
    """Build a gpiozero ``MockFactory`` whose inputs start as in an empty lane.

    gpiozero sets an input pin's pull when the input device is built, and a
    plain mock pin then takes the pull's level. Pins built by this factory
    go to their quiet level right after the pull is set, so the lane never
    reads a fire release or an open tamper loop that no wire reported.
    Tests and the rig still drive the pins afterwards as usual.
    """
    from gpiozero.pins.mock import MockFactory, MockPin

    quiet = dict(QUIET_INPUTS)
    high_when_quiet = {
        pin: quiet[name] == active_high
        for name, (pin, active_high) in input_levels(config).items()
    }

    class WiredMockPin(MockPin):  # type: ignore[misc]
        """Mock pin whose idle input level comes from the wiring."""

        def _set_pull(self, value: str) -> None:
            super()._set_pull(value)
            level = high_when_quiet.get(int(self.info.name.removeprefix("GPIO")))
            if level is True:
                self.drive_high()
            elif level is False:
                self.drive_low()

    return MockFactory(revision=MOCK_REVISION, pin_class=WiredMockPin)
