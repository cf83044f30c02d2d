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

from ._checks import (
    FILLER_CHECK_DIGIT,
    LONG_NUMBER_INCLUDES_FILLER,
    TOLERANCES,
    ParseState,
    read_document_number,
)
from ._fields import (
    read_birth_date,
    read_expiry_date,
    read_name,
    read_sex,
    read_state,
    strip_fillers,
)
from ._layout import FORMAT_NAMES, TD1, TD2, TD3, Layout, check_shape, detect_layout
from ._result import MrzFields, MrzFormat, MrzResult, new_fields, new_result

# The tolerance names stay importable from here (the configuration reads them).
__all__ = [
    "FILLER_CHECK_DIGIT",
    "LONG_NUMBER_INCLUDES_FILLER",
    "TOLERANCES",
    "parse_mrz",
]

# ICAO 9303 Part 4: TD3 positions 29-42 when the personal number is empty.
_EMPTY_PERSONAL_NUMBER = "<" * 14


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
    if tolerances and not tolerances <= TOLERANCES:
        unknown = sorted(tolerances - TOLERANCES)
        raise ValueError(
            f"unknown MRZ tolerance(s) {unknown}; known: {sorted(TOLERANCES)}"
        )

    state = ParseState(today, tolerances)
    layout = detect_layout(lines, state)
    if layout is None:
        return _unknown_result(lines, state)

    shaped = check_shape(lines, layout, state)
    if layout is TD1:
        fields = _parse_td1(shaped, state)
    else:
        fields = _parse_two_line(shaped, state, layout)
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


def _check_document_code(layout: MrzFormat, code: str, state: ParseState) -> None:
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
            f"as {FORMAT_NAMES[layout]} document codes do"
        )


def _read_fields(
    state: ParseState,
    layout: MrzFormat,
    *,
    code_field: str,
    state_field: str,
    nationality_field: str,
    sex_field: str,
    birth_field: str,
    expiry_field: str,
    name_field: str,
    document_number: str,
    optional_data: str,
    optional_data_2: str,
) -> MrzFields:
    """Read the fields every layout shares, with their semantic checks.

    The messages come in field order: document code, dates, states, sex,
    then the name. The document number and optional data come already read.
    """
    warnings, errors, today = state.warnings, state.errors, state.today
    document_type = strip_fillers(code_field)
    _check_document_code(layout, document_type, state)
    birth_date = read_birth_date(birth_field, today, warnings, errors)
    expiry_date = read_expiry_date(expiry_field, today, warnings, errors)
    if birth_date is not None and expiry_date is not None and expiry_date < birth_date:
        errors.append("expiry_date: lies before birth_date")
    issuing_state = read_state("issuing_state", state_field, warnings, errors)
    nationality = read_state("nationality", nationality_field, warnings, errors)
    sex = read_sex(sex_field, warnings, errors)
    surname, given_names = read_name(name_field, warnings)
    return new_fields(
        {
            "document_type": document_type,
            "issuing_state": issuing_state,
            "document_number": document_number,
            "surname": surname,
            "given_names": given_names,
            "nationality": nationality,
            "birth_date": birth_date,
            "sex": sex,
            "expiry_date": expiry_date,
            "optional_data": strip_fillers(optional_data),
            "optional_data_2": strip_fillers(optional_data_2),
        }
    )


def _parse_td1(lines: Sequence[str], state: ParseState) -> MrzFields:
    """Read and check the three 30-character lines of a TD1 (Doc 9303 Part 5)."""
    line1, line2, line3 = lines

    number, optional = read_document_number(
        line1[5:14],
        line1[14],
        line1[15:30],
        line_number=1,
        positions=(15, 16),
        state=state,
    )
    state.check("birth_date", line2[0:6], line2[6], 2, 7)
    state.check("expiry_date", line2[8:14], line2[14], 2, 15)
    # Composite: line 1 positions 6-30, line 2 positions 1-7, 9-15, 19-29.
    state.check(
        "composite",
        line1[5:30] + line2[0:7] + line2[8:15] + line2[18:29],
        line2[29],
        2,
        30,
    )

    return _read_fields(
        state,
        "TD1",
        code_field=line1[0:2],
        state_field=line1[2:5],
        nationality_field=line2[15:18],
        sex_field=line2[7],
        birth_field=line2[0:6],
        expiry_field=line2[8:14],
        name_field=line3,
        document_number=number,
        optional_data=optional,
        optional_data_2=line2[18:29],
    )


def _parse_two_line(
    lines: Sequence[str], state: ParseState, layout: Layout
) -> MrzFields:
    """Read and check a two-line MRZ: TD2, TD3, MRV-A or MRV-B (Parts 4, 6, 7)."""
    line1, line2 = lines
    width = layout.line_length

    if layout is TD2:
        number, optional = read_document_number(
            line2[0:9],
            line2[9],
            line2[28:35],
            line_number=2,
            positions=(10, 29),
            state=state,
        )
    else:
        state.check("document_number", line2[0:9], line2[9], 2, 10)
        number = strip_fillers(line2[0:9])
        optional = line2[28:42] if layout is TD3 else line2[28:width]
    state.check("birth_date", line2[13:19], line2[19], 2, 20)
    state.check("expiry_date", line2[21:27], line2[27], 2, 28)

    if layout is TD3:
        # ICAO 9303 Part 4: position 43 may be '<' when positions 29-42 are all '<'.
        state.check(
            "optional_data",
            optional,
            line2[42],
            2,
            43,
            filler_allowed=optional == _EMPTY_PERSONAL_NUMBER,
        )
    if layout is TD2 or layout is TD3:
        # Composite: positions 1-10, 14-20 and 22 to the one before it.
        state.check(
            "composite",
            line2[0:10] + line2[13:20] + line2[21 : width - 1],
            line2[width - 1],
            2,
            width,
        )

    return _read_fields(
        state,
        layout.name,
        code_field=line1[0:2],
        state_field=line1[2:5],
        nationality_field=line2[10:13],
        sex_field=line2[20],
        birth_field=line2[13:19],
        expiry_field=line2[21:27],
        name_field=line1[5:width],
        document_number=number,
        optional_data=optional,
        optional_data_2="",
    )


def _unknown_result(lines: Sequence[str], state: ParseState) -> MrzResult:
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
