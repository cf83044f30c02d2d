"""The exit barrier and its indicators and sensors, as gpiozero devices.

Outputs and inputs are named by meaning; :class:`TurnstileConfig` maps each
meaning onto a BCM pin and a level.

Safety invariants:

- The unlock function is never asserted by construction, :meth:`close` or a
  failed start: every output is built with ``initial_value=False``, which
  gpiozero writes before the pin becomes an output. For a fail-safe lock the
  output on ``unlock_pin`` drives the hold circuit, so the "unlock" device is
  built with the opposite polarity: inactive then means "hold asserted".
- :meth:`close` drives every output inactive before it releases the pins.
  After that only the hardware (external pulls, the hold circuit) keeps the
  barrier locked, because a GPIO line keeps its value only while the
  process holds it.
- Only :meth:`unlock_for_passage` and :meth:`unlock_hold` assert unlock; the
  lane core decides when to call them.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable
from typing import Any, Literal

from gpiozero import DigitalInputDevice, DigitalOutputDevice

from edge_gate._closing import Closing
from edge_gate.config import TurnstileConfig
from edge_gate.errors import DeviceInitError, DeviceIOError
from edge_gate.gate import (
    BarrierChanged,
    Beam,
    BeamChanged,
    Command,
    FireReleaseChanged,
    InputEvent,
    KeySwitchChanged,
    Lock,
    SetBuzzer,
    SetLamps,
    SetSilentAlarm,
    TamperChanged,
    Unlock,
)

logger = logging.getLogger(__name__)

InputName = Literal[
    "barrier_closed",
    "entrance_beam",
    "inside_beam",
    "exit_beam",
    "fire_release",
    "key_switch",
    "tamper",
]
# The fire release comes first, so that a snapshot frees the barrier before
# anything else is judged.
INPUT_NAMES: tuple[InputName, ...] = (
    "fire_release",
    "barrier_closed",
    "entrance_beam",
    "inside_beam",
    "exit_beam",
    "key_switch",
    "tamper",
)
_BEAMS: dict[InputName, Beam] = {
    "entrance_beam": "entrance",
    "inside_beam": "inside",
    "exit_beam": "exit",
}
MOCK_REVISION = "d04170"  # a Raspberry Pi 5, 8 GB


def build_pin_factory(config: TurnstileConfig) -> Any:
    """Build the gpiozero pin factory that ``config.pin_factory`` names.

    The factory is built explicitly rather than left to gpiozero's search,
    so that a missing library fails loudly, and lgpio (which writes a FIFO
    in the working directory on import) is never imported for the mock.
    The mock factory's inputs start at their wired levels in an empty lane
    (see :func:`~edge_gate.turnstile.wired_mock_factory`), so a daemon on
    mock pins starts locked, with no fire release or open tamper loop.

    Raises:
        DeviceInitError: the factory's library is missing or the GPIO chip
            cannot be opened.
    """
    try:
        if config.pin_factory == "mock":
            # Imported here because _mock imports this module, so a top-level
            # import would be circular.
            from edge_gate.turnstile._mock import wired_mock_factory

            return wired_mock_factory(config)
        from gpiozero.pins.lgpio import LGPIOFactory

        return LGPIOFactory()
    except (ImportError, OSError, RuntimeError) as err:
        raise DeviceInitError(
            f"cannot build the {config.pin_factory!r} GPIO pin factory: {err}; "
            "install lgpio on the board, or set [turnstile] pin_factory = 'mock' "
            "for tests"
        ) from err


def input_levels(config: TurnstileConfig) -> dict[InputName, tuple[int, bool]]:
    """Return each input's pin and whether its active level is high."""
    pulled_down = config.input_pull == "down"
    # A normally closed contact pulls against the resistor while all is well,
    # so the fire release is active at the resistor's own level.
    fire_active_high = config.fire_release_normally_closed != pulled_down
    return {
        "barrier_closed": (
            config.barrier_closed_pin,
            config.barrier_closed_active_high,
        ),
        "entrance_beam": (config.entrance_beam_pin, config.beams_active_high),
        "inside_beam": (config.inside_beam_pin, config.beams_active_high),
        "exit_beam": (config.exit_beam_pin, config.beams_active_high),
        "fire_release": (config.fire_release_pin, fire_active_high),
        "key_switch": (config.key_switch_pin, config.key_switch_active_high),
        "tamper": (config.tamper_pin, config.tamper_active_high),
    }


class Turnstile(Closing):
    """The exit barrier's outputs and inputs.

    Input changes arrive as gate input events through ``on_input``, or, when
    it is None, in :attr:`input_queue`. On the board gpiozero calls back from
    its own thread; with the mock factory, from the thread that drives the
    mock pin. Edges can be missed, so the runner should also feed
    :meth:`read_inputs` to the lane every ``config.input_poll_s``.

    Args:
        config: wiring and levels.
        pin_factory: a gpiozero pin factory; None builds the one that
            ``config.pin_factory`` names (and closes it in :meth:`close`).
        on_input: called with each input event.

    Raises:
        DeviceInitError: a pin could not be set up; every device built
            before the failure is closed again.
    """

    def __init__(
        self,
        config: TurnstileConfig,
        pin_factory: Any | None = None,
        on_input: Callable[[InputEvent], None] | None = None,
    ) -> None:
        self._config = config
        self._owns_factory = pin_factory is None
        self._factory = (
            build_pin_factory(config) if pin_factory is None else pin_factory
        )
        self._on_input = on_input
        self.input_queue: queue.SimpleQueue[InputEvent] = queue.SimpleQueue()
        self._outputs: list[DigitalOutputDevice] = []
        self._inputs: dict[InputName, tuple[DigitalInputDevice, bool]] = {}
        self._closed = False
        try:
            self._build_outputs()
            self._build_inputs()
        except Exception as err:
            self.close()
            raise DeviceInitError(
                f"cannot set up the turnstile GPIO pins: {err}"
            ) from err
        logger.info(
            "turnstile ready: %s lock, %s unlock", config.lock_type, config.unlock_mode
        )

    def _output(self, pin: int, active_high: bool) -> DigitalOutputDevice:
        device = DigitalOutputDevice(
            pin, active_high=active_high, initial_value=False, pin_factory=self._factory
        )
        self._outputs.append(device)
        return device

    def _build_outputs(self) -> None:
        config = self._config
        # The unlock device is the lock itself (initial_value=False: locked).
        unlock_high = config.unlock_active_high
        if config.lock_type == "fail_safe":
            # Power to hold: releasing the hold output is what unlocks.
            unlock_high = not unlock_high
        self._unlock = self._output(config.unlock_pin, unlock_high)
        level = config.indicators_active_high
        self._green = self._output(config.green_pin, level)
        self._red = self._output(config.red_pin, level)
        self._buzzer = self._output(config.buzzer_pin, level)
        self._silent_alarm = self._output(config.silent_alarm_pin, level)

    def _build_inputs(self) -> None:
        pull = self._config.input_pull
        for name, (pin, active_high) in input_levels(self._config).items():
            if pull == "none":
                device = DigitalInputDevice(
                    pin, pull_up=None, active_state=True, pin_factory=self._factory
                )
                high_is_value = True
            else:
                device = DigitalInputDevice(
                    pin, pull_up=pull == "up", pin_factory=self._factory
                )
                # With a pull-up gpiozero reports a low pin as value 1.
                high_is_value = pull == "down"
            # Stored: whether the device's value 1 means "active" for us.
            self._inputs[name] = (device, high_is_value == active_high)
            device.when_activated = self._make_callback(name)
            device.when_deactivated = self._make_callback(name)

    def _make_callback(self, name: InputName) -> Callable[[], None]:
        def callback() -> None:
            self._deliver(self._event(name))

        return callback

    # Inputs

    def is_active(self, name: InputName) -> bool:
        """Return whether input ``name`` is active now (beam broken, barrier
        closed, fire release on, key on, tamper open).

        Raises:
            DeviceIOError: the turnstile is closed.
        """
        if self._closed:
            raise DeviceIOError("turnstile is closed")
        device, value_is_active = self._inputs[name]
        return bool(device.value) == value_is_active

    def _event(self, name: InputName) -> InputEvent:
        active = self.is_active(name)
        if name == "barrier_closed":
            return BarrierChanged(closed=active)
        if name == "fire_release":
            return FireReleaseChanged(active)
        if name == "key_switch":
            return KeySwitchChanged(active)
        if name == "tamper":
            return TamperChanged(active)
        return BeamChanged(_BEAMS[name], active)

    def read_inputs(self) -> list[InputEvent]:
        """Return the level of every input as events (fire release first).

        Raises:
            DeviceIOError: the turnstile is closed.
        """
        return [self._event(name) for name in INPUT_NAMES]

    def _deliver(self, event: InputEvent) -> None:
        if self._closed:
            return
        if self._on_input is None:
            self.input_queue.put(event)
            return
        try:
            self._on_input(event)
        except Exception:
            # Supervision point: this runs in gpiozero's callback thread.
            logger.exception("turnstile input callback failed for %s", event)

    # Outputs

    @property
    def is_unlocked(self) -> bool:
        """Whether the unlock function is asserted now."""
        return not self._closed and bool(self._unlock.value)

    def unlock_for_passage(self) -> None:
        """Unlock for one passage: a pulse of ``unlock_pulse_s`` or, in hold
        mode, until :meth:`lock`."""
        self._check_open()
        if self._config.unlock_mode == "pulse":
            self._unlock.blink(
                on_time=self._config.unlock_pulse_s, off_time=0, n=1, background=True
            )
        else:
            self._unlock.on()
        logger.info("turnstile unlocked for one passage")

    def unlock_hold(self) -> None:
        """Hold the barrier unlocked until :meth:`lock` (fire release)."""
        self._check_open()
        self._unlock.on()
        logger.info("turnstile held unlocked")

    def lock(self) -> None:
        """Lock the barrier now, ending any unlock pulse."""
        self._check_open()
        was_unlocked = bool(self._unlock.value)
        self._unlock.off()
        if was_unlocked:
            logger.info("turnstile locked")

    def set_lamps(self, *, green: bool, red: bool) -> None:
        """Switch the green and red lamps."""
        self._check_open()
        self._green.value = green
        self._red.value = red

    def set_buzzer(self, on: bool) -> None:
        """Switch the buzzer."""
        self._check_open()
        self._buzzer.value = on

    def set_silent_alarm(self, on: bool) -> None:
        """Switch the silent alarm output to the officers' post."""
        self._check_open()
        self._silent_alarm.value = on

    def apply(self, command: Command) -> bool:
        """Carry out a lane command that concerns the turnstile.

        Returns:
            True when the command was a turnstile command, False otherwise.

        Raises:
            DeviceIOError: the turnstile is closed.
        """
        if isinstance(command, Unlock):
            if command.reason == "fire_release":
                self.unlock_hold()
            else:
                self.unlock_for_passage()
        elif isinstance(command, Lock):
            self.lock()
        elif isinstance(command, SetLamps):
            self.set_lamps(green=command.green, red=command.red)
        elif isinstance(command, SetBuzzer):
            self.set_buzzer(command.on)
        elif isinstance(command, SetSilentAlarm):
            self.set_silent_alarm(command.on)
        else:
            return False
        return True

    def _check_open(self) -> None:
        if self._closed:
            raise DeviceIOError("turnstile is closed; build a new Turnstile")

    # Lifecycle

    def close(self) -> None:
        """Drive every output inactive, then release all pins. Idempotent."""
        if self._closed:
            return
        self._closed = True
        # Lock first, so that nothing below can leave the barrier unlocked.
        for device in self._outputs:
            try:
                device.off()
            finally:
                device.close()
        for device, _value_is_active in self._inputs.values():
            device.close()
        if self._owns_factory and self._factory is not None:
            self._factory.close()
        logger.info("turnstile closed, outputs released")
