"""ICAO 9303 check digits (Doc 9303 Part 3, section 4.9).

Each character maps to a value (``0``-``9`` as themselves, ``A``-``Z`` as
10-35, ``<`` as 0). The values are multiplied by the repeating weights 7, 3, 1
and the sum modulo 10 is the check digit. The value table is built once at
import.
"""

from __future__ import annotations

import string

MRZ_CHARACTERS = string.ascii_uppercase + string.digits + "<"
MRZ_ALPHABET = frozenset(MRZ_CHARACTERS)

_CHAR_VALUES: dict[str, int] = {"<": 0}
_CHAR_VALUES.update({digit: int(digit) for digit in string.digits})
_CHAR_VALUES.update(
    {letter: 10 + index for index, letter in enumerate(string.ascii_uppercase)}
)

# Byte value to character value; 255 marks a byte outside the alphabet.
_INVALID = 255
_VALUE_TABLE = bytes(_CHAR_VALUES.get(chr(byte), _INVALID) for byte in range(256))


def mrz_values(text: str) -> bytes | None:
    """Translate ``text`` to check-digit values, one byte per character.

    One C-level encode and translate, so a caller can validate the character
    set of whole lines and read check-digit values from slices of the result.

    Returns:
        The values (0-35), or None when ``text`` contains a character outside
        ``A-Z``, ``0-9`` and ``<``.
    """
    try:
        values = text.encode("ascii").translate(_VALUE_TABLE)
    except UnicodeEncodeError:
        return None
    if _INVALID in values:
        return None
    return values


def compute_check_digit(text: str) -> str | None:
    """Compute the ICAO 9303 check digit of ``text``.

    The weights 7, 3, 1 repeat every three characters, so the weighted sum is
    7, 3 and 1 times the sums of every third value. Translating and summing
    stay in C code, which matters because check digits are most of the parse.

    Returns:
        The check digit as a one-character string, or None when ``text``
        contains a character outside ``A-Z``, ``0-9`` and ``<``.
    """
    values = mrz_values(text)
    if values is None:
        return None
    total = 7 * sum(values[0::3]) + 3 * sum(values[1::3]) + sum(values[2::3])
    return DIGITS[total % 10]


#: The check digits in value order, so ``DIGITS[total % 10]`` is the digit.
DIGITS = "0123456789"
