"""The ``edge-gate lane-closed`` process: hold the barrier locked, lane red.

edge-gate-lane-closed.service runs it when edge-gate.service has failed for
good. It builds the same :class:`~edge_gate.turnstile.Turnstile` as the lane
daemon from the same ``[turnstile]`` section, so the lock line gets the safe
level that the configured lock type and polarity call for. A fail-secure
lock gets its unlock output inactive, and a fail-safe lock gets its hold
output asserted. The red lamp is switched on and every line is held until
SIGTERM, SIGINT or SIGHUP, because a GPIO line keeps its value only while a
process holds it.

The fire release still frees the barrier while the lane is closed, and locks
it again when the release ends.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from edge_gate.config import TurnstileConfig
from edge_gate.turnstile import Turnstile

logger = logging.getLogger(__name__)


def hold_lane_closed(
    config: TurnstileConfig,
    stop: threading.Event,
    *,
    pin_factory: Any | None = None,
    ready: threading.Event | None = None,
) -> None:
    """Hold the barrier locked and the red lamp on until ``stop`` is set.

    Args:
        config: the turnstile wiring, as the lane daemon uses it.
        stop: set it to release the lines and return.
        pin_factory: a gpiozero pin factory; None builds the one that
            ``config.pin_factory`` names (lgpio is never imported for
            ``"mock"``).
        ready: set once the outputs hold their closed-lane levels.

    Raises:
        DeviceInitError: the GPIO pins could not be set up.
        DeviceIOError: a GPIO line could not be written.
    """
    with Turnstile(config, pin_factory=pin_factory) as turnstile:
        # The Turnstile starts every output inactive, which is the locked
        # state for both lock types; lock() repeats it explicitly.
        turnstile.lock()
        turnstile.set_lamps(green=False, red=True)
        logger.info(
            "lane closed: barrier locked (%s lock), red lamp on", config.lock_type
        )
        if ready is not None:
            ready.set()

        # Poll the fire release: it must free the barrier in every state.
        is_released = False
        while not stop.wait(config.input_poll_s):
            fire = turnstile.is_active("fire_release")
            if fire and not is_released:
                logger.warning("fire release active: barrier held unlocked")
                turnstile.unlock_hold()
            elif not fire and is_released:
                logger.info("fire release ended: barrier locked again")
                turnstile.lock()
            is_released = fire
    logger.info("lane-closed hold stopped, GPIO lines released")
