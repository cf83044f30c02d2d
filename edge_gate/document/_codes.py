"""The three-letter state codes accepted in issuing state and nationality.

The codes are data (``data/country_codes.txt``), not code, so that a wrong
or missing entry is fixed without touching the parser.
"""

from __future__ import annotations

import functools
from importlib import resources


@functools.cache
def known_state_codes() -> frozenset[str]:
    """Return the known state codes, fillers removed (Germany is ``D``)."""
    text = (
        resources.files("edge_gate.document")
        .joinpath("data/country_codes.txt")
        .read_text(encoding="ascii")
    )
    codes: set[str] = set()
    for line in text.splitlines():
        if not line.startswith("#"):
            codes.update(line.split())
    return frozenset(codes)


@functools.cache
def known_state_fields() -> frozenset[str]:
    """Return the known state codes as printed: padded with ``<`` to 3 characters."""
    return frozenset(code.ljust(3, "<") for code in known_state_codes())
