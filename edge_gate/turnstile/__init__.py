"""The exit barrier over GPIO (gpiozero): outputs and sensors by meaning."""

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
    "InputName",
    "Turnstile",
    "build_pin_factory",
    "input_levels",
]
