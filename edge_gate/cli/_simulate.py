"""Subcommands of this group; filled in by the component that owns them."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    """Add this group's subcommands to subparsers."""
    # TODO: add the subcommands of this group; until then it adds none.
    del subparsers


__all__ = ["argparse", "register"]
