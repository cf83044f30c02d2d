"""docs/edge-gate.example.toml: generated, complete, loadable, the defaults."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from edge_gate.config import GateConfig, load_config

DOCS = Path(__file__).resolve().parents[3] / "docs"
EXAMPLE = DOCS / "edge-gate.example.toml"
SECTIONS = [section.name for section in dataclasses.fields(GateConfig)]


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "make_example_config", DOCS / "make_example_config.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_loads() -> None:
    load_config(EXAMPLE)


def test_example_is_generated() -> None:
    # Rerun docs/make_example_config.py after changing edge_gate/config.py.
    assert EXAMPLE.read_text(encoding="utf-8") == generator().render()


@pytest.mark.parametrize("section", SECTIONS)
def test_example_shows_defaults(section: str) -> None:
    example = load_config(EXAMPLE)
    assert getattr(example, section) == getattr(GateConfig(), section)


@pytest.mark.parametrize("section", SECTIONS)
def test_example_lists_every_key(section: str) -> None:
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    for field in dataclasses.fields(getattr(GateConfig(), section)):
        matches = [
            i for i, line in enumerate(lines) if line.startswith(f"{field.name} = ")
        ]
        assert matches, f"[{section}] {field.name} missing"
        # Each key has its own comment line right above it.
        assert any(lines[i - 1].startswith("# ") for i in matches), field.name


def test_generator_rejects_undescribed_field() -> None:
    module = generator()
    del module.DESCRIPTIONS["turnstile"]["unlock_active_high"]
    with pytest.raises(KeyError, match=r"\[turnstile\] unlock_active_high"):
        module.render()
