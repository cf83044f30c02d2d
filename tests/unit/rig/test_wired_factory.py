"""The rig's wired mock pins: inputs start as in an empty lane."""

from __future__ import annotations

import pytest

from edge_gate.config import TurnstileConfig
from edge_gate.rig.walker import wired_mock_factory
from edge_gate.turnstile import Turnstile


@pytest.mark.parametrize(
    "config",
    [
        TurnstileConfig(pin_factory="mock"),
        TurnstileConfig(pin_factory="mock", input_pull="down"),
        TurnstileConfig(pin_factory="mock", fire_release_normally_closed=False),
    ],
    ids=["pull-up", "pull-down", "fire-normally-open"],
)
def test_inputs_start_quiet(config: TurnstileConfig) -> None:
    factory = wired_mock_factory(config)
    try:
        with Turnstile(config, pin_factory=factory) as turnstile:
            levels = {type(e).__name__: e for e in turnstile.read_inputs()}
            assert levels["FireReleaseChanged"].active is False
            assert levels["TamperChanged"].active is False
            assert levels["KeySwitchChanged"].active is False
            assert levels["BarrierChanged"].closed is True
            assert not turnstile.is_unlocked
            unlock = factory.pin(config.unlock_pin)
            # The unlock line was never driven to its active level.
            assert all(
                state.state == (not config.unlock_active_high)
                for state in unlock.states
            )
    finally:
        factory.close()
