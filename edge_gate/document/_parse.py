"""Parse ICAO Doc 9303 machine-readable zones: TD1, TD2, TD3, MRV-A, MRV-B.

Invariants:

* :func:`parse_mrz` never raises on bad input. Every problem becomes a
  message in ``errors`` or ``warnings`` that starts with the field name or
  the line concerned.
* ``valid`` is ICAO 9303 structure only: line count, line lengths, the
  character set ``A-Z 0-9 <`` and every check digit. Date plausibility, sex
  values and state codes never change it.
* Strict ICAO 9303 is the default. Each tolerance in :data:`TOLERANCES`
  relaxes one known national deviation and adds a warning whenever it changes
  a verdict.

Field positions below are 0-based slices of the line; ICAO counts from 1.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass

from ._checkdigit import (
    MRZ_ALPHABET,
    compute_check_digit,
    is_mrz_text,
)
from ._fields import read_date, read_name, read_sex, read_state, strip_fillers
from ._result import MrzFields, MrzFormat, MrzResult, new_fields, new_result

#: Some Belgian identity cards include the ``<`` at position 15 in the check
#: input of a document number longer than 9 characters; ICAO leaves it out.
LONG_NUMBER_INCLUDES_FILLER = "long_number_includes_filler"
#: Some issuers print ``<`` instead of ``0`` as a check digit (for example
#: over an empty date, or over a non-empty personal number). ICAO allows a
#: ``<`` only at TD3 position 43 when the personal number is empty.
FILLER_CHECK_DIGIT = "filler_check_digit"

TOLERANCES = frozenset({LONG_NUMBER_INCLUDES_FILLER, FILLER_CHECK_DIGIT})

_FORMAT_NAMES = {
    "TD1": "TD1",
    "TD2": "TD2",
    "TD3": "TD3",
    "MRVA": "MRV-A",
    "MRVB": "MRV-B",
}


@dataclass(frozen=True, eq=False)
class _Layout:
    """Line count and line length of one ICAO layout."""

    name: MrzFormat
    line_count: int
    line_length: int


_TD1 = _Layout("TD1", 3, 30)
_TD2 = _Layout("TD2", 2, 36)
_TD3 = _Layout("TD3", 2, 44)
_MRVA = _Layout("MRVA", 2, 44)
_MRVB = _Layout("MRVB", 2, 36)


class _Parse:
    """Mutable state of one parse: messages and check results."""

    __slots__ = (
        "checks",
        "errors",
        "structure_errors",
        "today",
        "tolerances",
        "warnings",
    )

    def __init__(self, today: datetime.date, tolerances: frozenset[str]) -> None:
        self.today = today
        self.tolerances = tolerances
        self.warnings: list[str] = []
        self.errors: list[str] = []
        self.structure_errors = 0
        self.checks: dict[str, bool] = {}

    def structural(self, message: str) -> None:
        """Record an error that makes the MRZ invalid ICAO 9303."""
        self.errors.append(message)
        self.structure_errors += 1

    def check(
        self,
        name: str,
        covered: str,
        printed: str,
        where: str,
        *,
        filler_allowed: bool = False,
    ) -> bool:
        """Verify one check digit and record the result under ``name``.

        Args:
            name: The check name (the field name, or ``composite``).
            covered: The characters the check digit covers.
            printed: The check digit as printed.
            where: Its position, for messages (``line 2 position 10``).
            filler_allowed: Whether ICAO allows ``<`` here (TD3 position 43
                over an empty personal number).
        """
        computed = compute_check_digit(covered)
        if computed is None:
            self.structural(
                f"{name}: check digit at {where} cannot be computed, because the "
                "checked characters are not all A-Z, 0-9 or <"
            )
            self.checks[name] = False
            return False
        if printed == computed:
            self.checks[name] = True
            return True
        if printed == "<" and computed == "0":
            if filler_allowed:
                self.checks[name] = True
                return True
            if FILLER_CHECK_DIGIT in self.tolerances:
                self.warnings.append(
                    f"{name}: check digit at {where} is '<' where ICAO 9303 needs "
                    f"'0'; accepted by tolerance {FILLER_CHECK_DIGIT}"
                )
                self.checks[name] = True
                return True
            self.structural(
                f"{name}: check digit at {where} is '<' where ICAO 9303 needs '0' "
                f"(tolerance {FILLER_CHECK_DIGIT} accepts it)"
            )
            self.checks[name] = False
            return False
        self.structural(
            f"{name}: check digit at {where} is {printed!r}, computed {computed!r}"
        )
        self.checks[name] = False
        return False


def parse_mrz(
    lines: Sequence[str],
    *,
    today: datetime.date,
    tolerances: frozenset[str] = frozenset(),
) -> MrzResult:
    """Parse the MRZ lines of one travel document.

    1. Detect the layout from the line count, the line lengths and the
       document code; input in no ICAO layout gives format ``unknown``.
    2. Check the line lengths and the character set of every line.
    3. Read every field and verify every check digit of the layout.
    4. Read names, dates (century resolved against ``today``), sex and state
       codes, adding warnings and errors that leave ``valid`` unchanged.

    Args:
        lines: The MRZ lines, top first, without line ends.
        today: The reference date for the centuries of dates (UTC date of
            the transaction).
        tolerances: Names from :data:`TOLERANCES` to relax strict ICAO 9303.

    Returns:
        The result; it is never an exception, whatever the input.

    Raises:
        ValueError: ``tolerances`` names an unknown tolerance (a
            configuration error, not bad input).
    """
    unknown = tolerances - TOLERANCES if tolerances else tolerances
    if unknown:
        raise ValueError(
            f"unknown MRZ tolerance(s) {sorted(unknown)}; known: {sorted(TOLERANCES)}"
        )

    state = _Parse(today, tolerances)
    layout = _detect_layout(lines, state)
    if layout is None:
        return _unknown_result(lines, state)

    padded = _check_shape(lines, layout, state)
    if layout is _TD1:
        fields = _parse_td1(padded, state)
    else:
        fields = _parse_two_line(padded, state, layout)
    return new_result(
        {
            "format": layout.name,
            "valid": state.structure_errors == 0,
            "fields": fields,
            "checks": state.checks,
            "warnings": tuple(state.warnings),
            "errors": tuple(state.errors),
        }
    )


def _detect_layout(lines: Sequence[str], state: _Parse) -> _Layout | None:
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
            return _MRVA if first[:1] == "V" else _TD3
    elif count == 3 and len(lines[0]) == len(lines[1]) == len(lines[2]) == 30:
        return _TD1

    lengths = [len(line) for line in lines]
    if count == 0:
        state.structural("lines: no MRZ lines given")
        return None
    if count == 1:
        state.structural(
            f"lines: 1 line of {lengths[0]} characters; ICAO 9303 MRZs have 2 lines "
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
            return _TD1
        state.structural(
            f"lines: 3 lines of {lengths} characters; TD1 has 3 lines of 30"
        )
        return None

    is_visa = lines[0][:1] == "V"
    longest = max(lengths)
    if abs(longest - 44) <= 1:
        return _MRVA if is_visa else _TD3
    if abs(longest - 36) <= 1:
        if is_visa:
            return _MRVB
        if _looks_like_french_id(lines):
            state.structural(
                "lines: 2 x 36 French national identity card (pre-2021 layout), "
                "which is not an ICAO 9303 travel document"
            )
            return None
        return _TD2
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


def _check_shape(lines: Sequence[str], layout: _Layout, state: _Parse) -> list[str]:
    """Check line lengths and characters; return lines cut or padded to size.

    The padded copy lets every field be read at its ICAO position even when a
    line has the wrong length; the length error makes the MRZ invalid.
    """
    padded = []
    length = layout.line_length
    for number, line in enumerate(lines, start=1):
        if len(line) == length and is_mrz_text(line):
            padded.append(line)
            continue
        if len(line) != length:
            state.structural(
                f"line {number}: {len(line)} characters, "
                f"{_FORMAT_NAMES[layout.name]} needs {length}"
            )
        if not is_mrz_text(line):
            for position, char in enumerate(line, start=1):
                if char not in MRZ_ALPHABET:
                    state.structural(
                        f"line {number} position {position}: character {char!r} "
                        "is not A-Z, 0-9 or <"
                    )
        padded.append(line[: layout.line_length].ljust(layout.line_length, "<"))
    return padded


def _read_document_number(
    field: str,
    printed: str,
    optional: str,
    *,
    line_number: int,
    positions: tuple[int, int],
    state: _Parse,
) -> tuple[str, str]:
    """Read a TD1 or TD2 document number, continued into the optional data.

    ICAO 9303 Parts 5 and 6: a number longer than 9 characters puts ``<`` in
    the check-digit position; the rest of the number follows in the optional
    data, ended by its check digit. The check covers the whole number
    without that ``<``.

    Args:
        field: The 9-character number field.
        printed: The character in the check-digit position.
        optional: The optional data field that follows the check digit.
        line_number: The line holding both, for messages.
        positions: 1-based positions of the check digit and the optional data.

    Returns:
        ``(document number, optional data left after the continuation)``.
    """
    check_position, optional_position = positions
    if printed != "<" or optional[:1] in ("", "<"):
        state.check(
            "document_number",
            field,
            printed,
            f"line {line_number} position {check_position}",
        )
        return strip_fillers(field), optional

    continuation = optional.split("<", 1)[0]
    number = field + continuation[:-1]
    check_digit = continuation[-1]
    where = f"line {line_number} position {optional_position + len(continuation) - 1}"
    if len(continuation) == 1:
        state.warnings.append(
            "document_number: '<' at the check-digit position but the optional "
            "data continues with the check digit only"
        )
    rest = optional[len(continuation) :]
    if compute_check_digit(number) == check_digit:
        state.checks["document_number"] = True
        return strip_fillers(number), rest

    # Belgian cards include the '<' in the check input.
    with_filler = field + "<" + continuation[:-1]
    if compute_check_digit(with_filler) == check_digit:
        if LONG_NUMBER_INCLUDES_FILLER in state.tolerances:
            state.warnings.append(
                "document_number: the check digit of the long number covers the "
                f"'<' at position {check_position}; accepted by tolerance "
                f"{LONG_NUMBER_INCLUDES_FILLER}"
            )
            state.checks["document_number"] = True
        else:
            state.structural(
                f"document_number: check digit at {where} covers the '<' at "
                f"position {check_position}, which ICAO 9303 leaves out "
                f"(tolerance {LONG_NUMBER_INCLUDES_FILLER} accepts it)"
            )
            state.checks["document_number"] = False
        return strip_fillers(number), rest
    state.check("document_number", number, check_digit, where)
    return strip_fillers(number), rest


def _check_document_code(layout: MrzFormat, code: str, state: _Parse) -> None:
    """Warn about a document code that does not fit the layout."""
    first = code[:1]
    expected: tuple[str, ...]
    if layout in ("TD1", "TD2"):
        expected = ("A", "C", "I")
    elif layout == "TD3":
        expected = ("P",)
    else:
        expected = ("V",)
    if first not in expected:
        state.warnings.append(
            f"document_type: {code!r} does not start with {' or '.join(expected)} "
            f"as {_FORMAT_NAMES[layout]} document codes do"
        )


def _read_common(
    *,
    code_field: str,
    state_field: str,
    nationality_field: str,
    sex_field: str,
    birth_field: str,
    expiry_field: str,
    layout: MrzFormat,
    state: _Parse,
) -> dict[str, object]:
    """Read the fields every layout shares, with their semantic checks."""
    warnings, errors, today = state.warnings, state.errors, state.today
    document_type = strip_fillers(code_field)
    _check_document_code(layout, document_type, state)
    birth_date = read_date("birth_date", birth_field, today, warnings, errors)
    expiry_date = read_date("expiry_date", expiry_field, today, warnings, errors)
    if birth_date is not None and expiry_date is not None and expiry_date < birth_date:
        errors.append("expiry_date: lies before birth_date")
    return {
        "document_type": document_type,
        "issuing_state": read_state("issuing_state", state_field, warnings, errors),
        "nationality": read_state("nationality", nationality_field, warnings, errors),
        "sex": read_sex(sex_field, warnings, errors),
        "birth_date": birth_date,
        "expiry_date": expiry_date,
    }


def _parse_td1(lines: list[str], state: _Parse) -> MrzFields:
    """Read and check the three 30-character lines of a TD1 (Doc 9303 Part 5)."""
    line1, line2, line3 = lines

    number, optional = _read_document_number(
        line1[5:14],
        line1[14],
        line1[15:30],
        line_number=1,
        positions=(15, 16),
        state=state,
    )
    state.check("birth_date", line2[0:6], line2[6], "line 2 position 7")
    state.check("expiry_date", line2[8:14], line2[14], "line 2 position 15")
    # Composite: line 1 positions 6-30, line 2 positions 1-7, 9-15, 19-29.
    state.check(
        "composite",
        line1[5:30] + line2[0:7] + line2[8:15] + line2[18:29],
        line2[29],
        "line 2 position 30",
    )

    common = _read_common(
        code_field=line1[0:2],
        state_field=line1[2:5],
        nationality_field=line2[15:18],
        sex_field=line2[7],
        birth_field=line2[0:6],
        expiry_field=line2[8:14],
        layout="TD1",
        state=state,
    )
    common["surname"], common["given_names"] = read_name(line3, state.warnings)
    common["document_number"] = number
    common["optional_data"] = strip_fillers(optional)
    common["optional_data_2"] = strip_fillers(line2[18:29])
    return new_fields(common)


def _parse_two_line(lines: list[str], state: _Parse, layout: _Layout) -> MrzFields:
    """Read and check a two-line MRZ: TD2, TD3, MRV-A or MRV-B (Parts 4, 6, 7)."""
    line1, line2 = lines
    width = layout.line_length

    if layout is _TD2:
        number, optional = _read_document_number(
            line2[0:9],
            line2[9],
            line2[28:35],
            line_number=2,
            positions=(10, 29),
            state=state,
        )
    else:
        state.check("document_number", line2[0:9], line2[9], "line 2 position 10")
        number = strip_fillers(line2[0:9])
        optional = line2[28:42] if layout is _TD3 else line2[28:width]
    state.check("birth_date", line2[13:19], line2[19], "line 2 position 20")
    state.check("expiry_date", line2[21:27], line2[27], "line 2 position 28")

    if layout is _TD3:
        # ICAO 9303 Part 4: position 43 may be '<' when positions 29-42 are all '<'.
        state.check(
            "optional_data",
            line2[28:42],
            line2[42],
            "line 2 position 43",
            filler_allowed=line2[28:42] == "<" * 14,
        )
    if layout is _TD2 or layout is _TD3:
        # Composite: positions 1-10, 14-20 and 22 to the one before it.
        state.check(
            "composite",
            line2[0:10] + line2[13:20] + line2[21 : width - 1],
            line2[width - 1],
            f"line 2 position {width}",
        )

    common = _read_common(
        code_field=line1[0:2],
        state_field=line1[2:5],
        nationality_field=line2[10:13],
        sex_field=line2[20],
        birth_field=line2[13:19],
        expiry_field=line2[21:27],
        layout=layout.name,
        state=state,
    )
    common["surname"], common["given_names"] = read_name(line1[5:width], state.warnings)
    common["document_number"] = number
    common["optional_data"] = strip_fillers(optional)
    common["optional_data_2"] = ""
    return new_fields(common)


def _unknown_result(lines: Sequence[str], state: _Parse) -> MrzResult:
    """Build the result for input in no ICAO layout.

    A lone upper line of a two-line MRZ (or a lone TD1 name line) still has
    its name read, for the operator; the result stays invalid.
    """
    fields = MrzFields()
    if len(lines) == 1:
        line = lines[0]
        name_field: str | None = None
        if len(line) in (36, 44) and line[:1].isalpha():
            name_field = line[5:]
            fields = MrzFields(
                document_type=strip_fillers(line[0:2]),
                issuing_state=strip_fillers(line[2:5]),
            )
        elif len(line) == 30 and all(char.isalpha() or char == "<" for char in line):
            name_field = line
        if name_field is not None:
            surname, given_names = read_name(name_field, state.warnings)
            fields = MrzFields(
                document_type=fields.document_type,
                issuing_state=fields.issuing_state,
                surname=surname,
                given_names=given_names,
            )
    return MrzResult(
        format="unknown",
        valid=False,
        fields=fields,
        checks={},
        warnings=tuple(state.warnings),
        errors=tuple(state.errors),
    )
