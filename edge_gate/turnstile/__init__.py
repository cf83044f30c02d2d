"""The exit barrier over GPIO (gpiozero): outputs and sensors by meaning."""

from edge_gate.turnstile._mock import QUIET_INPUTS, wired_mock_factory
from edge_gate.turnstile._turnstile import (
    INPUT_NAMES,
    MOCK_REVISION,
    InputName,
    Turnstile,
    build_pin_factory,
    input_levels,
)

__all__ = [
    "INPUT_NAMES",
    "MOCK_REVISION",
    "QUIET_INPUTS",
    "InputName",
    "Turnstile",
    "build_pin_factory",
    "input_levels",
    "wired_mock_factory",
]
