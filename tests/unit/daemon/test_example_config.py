"""The example configuration in docs/ must load and match the defaults."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from edge_gate.config import GateConfig, load_config

EXAMPLE = Path(__file__).resolve().parents[3] / "docs" / "edge-gate.example.toml"


def test_example_loads() -> None:
    load_config(EXAMPLE)


def test_example_shows_daemon_defaults() -> None:
    # The example documents the defaults; a changed default must change it.
    example = load_config(EXAMPLE)
    assert example.daemon == GateConfig().daemon
    assert example.audit == GateConfig().audit


def test_example_covers_daemon_and_audit() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    for section in ("daemon", "audit"):
        for field in dataclasses.fields(getattr(GateConfig(), section)):
            assert f"\n{field.name} = " in text, f"[{section}] {field.name} missing"
