"""The ICAO 9303 MRZ layouts, and the line count, length and character checks.

A layout is found from the line count, the line lengths and the document
code. Every problem with the shape of the input is a structural error, so it
makes the MRZ invalid.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ._checkdigit import MRZ_ALPHABET, compute_check_digit
from ._checks import ParseState
from ._result import MrzFormat

FORMAT_NAMES = {
    "TD1": "TD1",
    "TD2": "TD2",
    "TD3": "TD3",
    "MRVA": "MRV-A",
    "MRVB": "MRV-B",
}


@dataclass(frozen=True, eq=False)
class Layout:
    """Line count and line length of one ICAO layout."""

    name: MrzFormat
    line_count: int
    line_length: int


TD1 = Layout("TD1", 3, 30)
TD2 = Layout("TD2", 2, 36)
TD3 = Layout("TD3", 2, 44)
MRVA = Layout("MRVA", 2, 44)
MRVB = Layout("MRVB", 2, 36)

# One C-level scan of all lines joined, instead of one scan per line.
_match_mrz_text = re.compile("[A-Z0-9<]*").fullmatch


def exact_layout(lines: Sequence[str]) -> Layout | None:
    """Return the layout whose exact line count and line lengths ``lines`` have.

    This is the common case at a lane, and it gives the layout that
    :func:`detect_layout` gives for such lines, without recording anything.
    None means the lines need :func:`detect_layout`: no exact shape, or 2 x
    36 lines that look like the French identity card.
    """
    count = len(lines)
    if count == 2:
        first, second = lines
        length = len(first)
        if length != len(second):
            return None
        is_visa = first[:1] == "V"
        if length == 44:
            return MRVA if is_visa else TD3
        if length == 36:
            if is_visa:
                return MRVB
            return None if _looks_like_french_id(lines) else TD2
    elif count == 3 and len(lines[0]) == len(lines[1]) == len(lines[2]) == 30:
        return TD1
    return None


def detect_layout(lines: Sequence[str], state: ParseState) -> Layout | None:
    """Pick the layout of ``lines``, or record why there is none.

    A layout matches when the line count is exact and every line is within
    one character of the layout's length, so that a line with one character
    too many or too few is reported against the layout it was meant for.
    The 2 x 36 French national identity card (before 2021) is told apart
    from TD2 by content.
    """
    count = len(lines)
    # Fast path for the exact shapes, the common case at a lane.
    if count == 2:
        first, second = lines
        if len(first) == len(second) == 44:
            return MRVA if first[:1] == "V" else TD3
    elif count == 3 and len(lines[0]) == len(lines[1]) == len(lines[2]) == 30:
        return TD1

    lengths = [len(line) for line in lines]
    if count == 0:
        state.structural("lines: no MRZ lines given")
        return None
    if count == 1:
        state.structural(
            f"lines: 1 line of {lengths[0]} character"
            f"{'' if lengths[0] == 1 else 's'}; ICAO 9303 MRZs have 2 lines "
            "(TD2, TD3, MRV-A, MRV-B) or 3 lines (TD1)"
        )
        return None
    if count > 3:
        state.structural(
            f"lines: {count} lines; ICAO 9303 MRZs have 2 lines (TD2, TD3, MRV-A, "
            "MRV-B) or 3 lines (TD1)"
        )
        return None

    if count == 3:
        if all(abs(length - 30) <= 2 for length in lengths):
            return TD1
        state.structural(
            f"lines: 3 lines of {lengths} characters; TD1 has 3 lines of 30"
        )
        return None

    is_visa = lines[0][:1] == "V"
    longest = max(lengths)
    if abs(longest - 44) <= 1:
        return MRVA if is_visa else TD3
    if abs(longest - 36) <= 1:
        if is_visa:
            return MRVB
        if _looks_like_french_id(lines):
            state.structural(
                "lines: 2 x 36 French national identity card (pre-2021 layout), "
                "which is not an ICAO 9303 travel document"
            )
            return None
        return TD2
    state.structural(
        f"lines: 2 lines of {lengths} characters match no ICAO 9303 layout "
        "(TD2 and MRV-B have 36 characters, TD3 and MRV-A 44)"
    )
    return None


def _looks_like_french_id(lines: Sequence[str]) -> bool:
    """Tell the French 2 x 36 identity card (before 2021) from a TD2 by content.

    The French card's line 2 has its number at positions 1-12 with a check
    digit at 13, and the birth date at 28-33 with a check digit at 34. TD2
    has its number at 1-9 (check digit 10) and the birth date at 14-19
    (check digit 20). A line 2 that passes the TD2 checks stays a TD2.
    """
    if not lines[0].startswith("IDFRA"):
        return False
    line2 = lines[1]
    french_checks = (
        compute_check_digit(line2[0:12]) == line2[12:13]
        and compute_check_digit(line2[27:33]) == line2[33:34]
    )
    td2_checks = (
        compute_check_digit(line2[0:9]) == line2[9:10]
        and compute_check_digit(line2[13:19]) == line2[19:20]
    )
    td2_shape = line2[10:13].isalpha() and line2[13:19].isdigit()
    french_shape = line2[27:33].isdigit() and line2[34:35] in ("M", "F")
    if td2_checks:
        return False
    return french_checks or (french_shape and not td2_shape)


def check_shape(
    lines: Sequence[str], layout: Layout, state: ParseState
) -> Sequence[str]:
    """Check line lengths and characters; return lines cut or padded to size.

    The padded copy lets every field be read at its ICAO position even when a
    line has the wrong length; the length error makes the MRZ invalid.
    Well-formed lines come back unchanged, without a copy.
    """
    length = layout.line_length
    lengths = list(map(len, lines))
    if lengths.count(length) == len(lines) and _match_mrz_text("".join(lines)):
        return lines

    padded = []
    for number, line in enumerate(lines, start=1):
        if len(line) != length:
            state.structural(
                f"line {number}: {len(line)} characters, "
                f"{FORMAT_NAMES[layout.name]} needs {length}"
            )
        if not _match_mrz_text(line):
            for position, char in enumerate(line, start=1):
                if char not in MRZ_ALPHABET:
                    state.structural(
                        f"line {number} position {position}: character {char!r} "
                        "is not A-Z, 0-9 or <"
                    )
        padded.append(line[:length].ljust(length, "<"))
    return padded
