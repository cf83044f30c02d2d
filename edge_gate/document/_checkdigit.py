"""ICAO 9303 check digits (Doc 9303 Part 3, section 4.9).

Each character maps to a value (``0``-``9`` as themselves, ``A``-``Z`` as
10-35, ``<`` as 0). The values are multiplied by the repeating weights 7, 3, 1
and the sum modulo 10 is the check digit. The tables are built once at import
so that computing a digit is one lookup per character.
"""

from __future__ import annotations

import string

MRZ_ALPHABET = frozenset(string.ascii_uppercase + string.digits + "<")

_CHAR_VALUES: dict[str, int] = {"<": 0}
_CHAR_VALUES.update({digit: int(digit) for digit in string.digits})
_CHAR_VALUES.update(
    {letter: 10 + index for index, letter in enumerate(string.ascii_uppercase)}
)

# One weight per position; MRZ check inputs are at most 61 characters (TD1
# composite), so 90 positions cover every layout.
_WEIGHTS = tuple((7, 3, 1)[i % 3] for i in range(90))

# Value times weight for each (position, character), so the sum is one
# lookup per character.
_WEIGHTED: tuple[dict[str, int], ...] = tuple(
    {char: value * weight for char, value in _CHAR_VALUES.items()}
    for weight in _WEIGHTS
)


def compute_check_digit(text: str) -> str | None:
    """Compute the ICAO 9303 check digit of ``text``.

    Args:
        text: The characters the check digit covers, at most 90 of them.

    Returns:
        The check digit as a one-character string, or None when ``text``
        contains a character outside ``A-Z``, ``0-9`` and ``<``.
    """
    total = 0
    try:
        for position, char in enumerate(text):
            total += _WEIGHTED[position][char]
    except (KeyError, IndexError):
        return None
    return str(total % 10)
