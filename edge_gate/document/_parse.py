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

from ._checkdigit import mrz_values
from ._checks import (
    EMPTY_PERSONAL_NUMBER,
    FILLER_CHECK_DIGIT,
    LONG_NUMBER_INCLUDES_FILLER,
    TOLERANCES,
    ParseState,
    read_document_number,
    td1_check_results,
    two_line_check_results,
)
from ._fields import (
    read_birth_date,
    read_expiry_date,
    read_name,
    read_sex,
    read_state,
    strip_fillers,
)
from ._layout import (
    FORMAT_NAMES,
    TD1,
    TD2,
    TD3,
    Layout,
    check_shape,
    detect_layout,
    exact_layout,
)
from ._result import MrzFields, MrzResult, new_fields, new_result

# The tolerance names stay importable from here (the configuration reads them).
__all__ = [
    "FILLER_CHECK_DIGIT",
    "LONG_NUMBER_INCLUDES_FILLER",
    "TOLERANCES",
    "parse_mrz",
]

# The check results of an MRZ whose every check passed, in the order in which
# _verify_checks records them. Each result gets its own copy.
_ALL_PASSED: dict[str, dict[str, bool]] = {
    "TD1": {
        "document_number": True,
        "birth_date": True,
        "expiry_date": True,
        "composite": True,
    },
    "TD2": {
        "document_number": True,
        "birth_date": True,
        "expiry_date": True,
        "composite": True,
    },
    "TD3": {
        "document_number": True,
        "birth_date": True,
        "expiry_date": True,
        "optional_data": True,
        "composite": True,
    },
    "MRVA": {"document_number": True, "birth_date": True, "expiry_date": True},
    "MRVB": {"document_number": True, "birth_date": True, "expiry_date": True},
}

# Position of the 9-character document number and of the optional data when
# the number's check digit verified, per layout: (line index, number start,
# optional data start, optional data end).
_NUMBER_SPANS: dict[str, tuple[int, int, int, int]] = {
    "TD1": (0, 5, 15, 30),
    "TD2": (1, 0, 28, 35),
    "TD3": (1, 0, 28, 42),
    "MRVA": (1, 0, 28, 44),
    "MRVB": (1, 0, 28, 36),
}

# No check known to pass: every check runs in full.
_NONE_PASSED = (False, False, False, False, False)

# The document codes each layout expects, by their first character.
_EXPECTED_CODES: dict[str, tuple[str, ...]] = {
    "TD1": ("A", "C", "I"),
    "TD2": ("A", "C", "I"),
    "TD3": ("P",),
    "MRVA": ("V",),
    "MRVB": ("V",),
}


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

    Lines of a layout's exact shape in ``A-Z 0-9 <`` take a quicker route
    to the same result: see :func:`_parse_well_formed`.

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

    layout = exact_layout(lines)
    if layout is not None:
        values = mrz_values("".join(lines))
        if values is not None:
            return _parse_well_formed(lines, values, layout, today, tolerances)
    return _parse_any_shape(lines, today, tolerances)


def _parse_well_formed(
    lines: Sequence[str],
    values: bytes,
    layout: Layout,
    today: datetime.date,
    tolerances: frozenset[str],
) -> MrzResult:
    """Parse lines of the exact shape of ``layout``, all in ``A-Z 0-9 <``.

    ``values`` contains the character values of all lines joined. Such lines
    have no structural error besides a failed check digit, so when every
    quick check passes, the result needs no :class:`ParseState`. Otherwise
    :func:`_verify_checks` repeats the failed checks one by one, for the
    messages and the tolerances.
    """
    passed = _quick_checks(lines, values, layout)
    if False in passed:
        state = ParseState(today, tolerances)
        number, optional = _verify_checks(lines, layout, state, passed)
        checks, warnings, errors = state.checks, state.warnings, state.errors
        valid = state.structure_errors == 0
    else:
        checks = _ALL_PASSED[layout.name].copy()
        number, optional = _number_and_optional(lines, layout)
        warnings = []
        errors = []
        valid = True

    fields = _read_fields(
        lines, layout, number, optional, today=today, warnings=warnings, errors=errors
    )
    return new_result(
        format=layout.name,
        valid=valid,
        fields=fields,
        checks=checks,
        warnings=tuple(warnings),
        errors=tuple(errors),
    )


def _parse_any_shape(
    lines: Sequence[str], today: datetime.date, tolerances: frozenset[str]
) -> MrzResult:
    """Parse lines of any shape, reporting every structural problem."""
    state = ParseState(today, tolerances)
    layout = detect_layout(lines, state)
    if layout is None:
        return _unknown_result(lines, state)

    # Lines cut or padded to the layout's shape; their check digits get the
    # quick checks too, unless a character is outside the MRZ set.
    shaped = check_shape(lines, layout, state)
    values = mrz_values("".join(shaped))
    passed = _NONE_PASSED if values is None else _quick_checks(shaped, values, layout)
    number, optional = _verify_checks(shaped, layout, state, passed)

    fields = _read_fields(
        shaped,
        layout,
        number,
        optional,
        today=today,
        warnings=state.warnings,
        errors=state.errors,
    )
    return new_result(
        format=layout.name,
        valid=state.structure_errors == 0,
        fields=fields,
        checks=state.checks,
        warnings=tuple(state.warnings),
        errors=tuple(state.errors),
    )


def _quick_checks(
    lines: Sequence[str], values: bytes, layout: Layout
) -> tuple[bool, ...]:
    """Run the quick check of every check digit, in the layout's check order.

    ``lines`` have the layout's exact shape in ``A-Z 0-9 <``, and ``values``
    contains the character values of all lines joined.
    """
    if layout is TD1:
        return td1_check_results(
            lines[0], lines[1], list(values[0:30]), list(values[30:60])
        )
    return two_line_check_results(
        lines[1], list(values[layout.line_length :]), layout.name
    )


def _number_and_optional(lines: Sequence[str], layout: Layout) -> tuple[str, str]:
    """Read the document number and the optional data, the number verified.

    Verified means the number's check digit is a digit, so the number has at
    most 9 characters and the optional data contains no continuation.

    Returns:
        ``(document number without fillers, optional data as printed)``.
    """
    line_index, start, optional_start, optional_end = _NUMBER_SPANS[layout.name]
    line = lines[line_index]
    return strip_fillers(line[start : start + 9]), line[optional_start:optional_end]


def _verify_checks(
    lines: Sequence[str],
    layout: Layout,
    state: ParseState,
    passed: tuple[bool, ...],
) -> tuple[str, str]:
    """Verify every check digit one by one, recording results and messages.

    ``lines`` have the layout's line count and line length. ``passed`` is
    the quick check results in the layout's check order. A check that passed
    there is recorded as passed without being repeated.

    Returns:
        ``(document number, optional data)``, the number with fillers
        removed and the optional data as printed, without a continued
        document number.
    """
    if layout is TD1:
        return _verify_td1(lines, state, passed)
    return _verify_two_line(lines, state, layout, passed)


def _verify_td1(
    lines: Sequence[str], state: ParseState, passed: tuple[bool, ...]
) -> tuple[str, str]:
    """Verify the check digits of a TD1 (Doc 9303 Part 5)."""
    line1, line2 = lines[0], lines[1]
    checks = state.checks

    if passed[0]:
        checks["document_number"] = True
        number, optional = _number_and_optional(lines, TD1)
    else:
        number, optional = read_document_number(
            line1[5:14],
            line1[14],
            line1[15:30],
            line_number=1,
            positions=(15, 16),
            state=state,
        )
    if passed[1]:
        checks["birth_date"] = True
    else:
        state.check("birth_date", line2[0:6], line2[6], 2, 7)
    if passed[2]:
        checks["expiry_date"] = True
    else:
        state.check("expiry_date", line2[8:14], line2[14], 2, 15)
    if passed[3]:
        checks["composite"] = True
    else:
        # Composite: line 1 positions 6-30, line 2 positions 1-7, 9-15, 19-29.
        state.check(
            "composite",
            line1[5:30] + line2[0:7] + line2[8:15] + line2[18:29],
            line2[29],
            2,
            30,
        )
    return number, optional


def _verify_two_line(
    lines: Sequence[str], state: ParseState, layout: Layout, passed: tuple[bool, ...]
) -> tuple[str, str]:
    """Verify the check digits of a TD2, TD3, MRV-A or MRV-B (Parts 4, 6, 7)."""
    line2 = lines[1]
    width = layout.line_length
    checks = state.checks

    if layout is TD2 and not passed[0]:
        number, optional = read_document_number(
            line2[0:9],
            line2[9],
            line2[28:35],
            line_number=2,
            positions=(10, 29),
            state=state,
        )
    else:
        if passed[0]:
            checks["document_number"] = True
        else:
            state.check("document_number", line2[0:9], line2[9], 2, 10)
        number, optional = _number_and_optional(lines, layout)
    if passed[1]:
        checks["birth_date"] = True
    else:
        state.check("birth_date", line2[13:19], line2[19], 2, 20)
    if passed[2]:
        checks["expiry_date"] = True
    else:
        state.check("expiry_date", line2[21:27], line2[27], 2, 28)

    if layout is TD3 and passed[3]:
        checks["optional_data"] = True
    elif layout is TD3:
        # ICAO 9303 Part 4: position 43 may be '<' when positions 29-42 are all '<'.
        state.check(
            "optional_data",
            optional,
            line2[42],
            2,
            43,
            filler_allowed=optional == EMPTY_PERSONAL_NUMBER,
        )
    composite_index = 4 if layout is TD3 else 3
    if (layout is TD2 or layout is TD3) and passed[composite_index]:
        checks["composite"] = True
    elif layout is TD2 or layout is TD3:
        # Composite: positions 1-10, 14-20 and 22 to the one before it.
        state.check(
            "composite",
            line2[0:10] + line2[13:20] + line2[21 : width - 1],
            line2[width - 1],
            2,
            width,
        )
    return number, optional


def _read_fields(
    lines: Sequence[str],
    layout: Layout,
    number: str,
    optional: str,
    *,
    today: datetime.date,
    warnings: list[str],
    errors: list[str],
) -> MrzFields:
    """Read the fields of ``layout`` from ``lines``, with their semantic checks.

    ``lines`` have the layout's line count and line length; ``number`` (no
    fillers) and ``optional`` (as printed) come from the check-digit stage.
    The messages come in field order: document code, dates, states, sex,
    then the name.
    """
    line1, line2 = lines[0], lines[1]
    if layout is TD1:
        nationality_field, sex_field = line2[15:18], line2[7]
        birth_field, expiry_field = line2[0:6], line2[8:14]
        name_field, optional_data_2 = lines[2], strip_fillers(line2[18:29])
    else:
        nationality_field, sex_field = line2[10:13], line2[20]
        birth_field, expiry_field = line2[13:19], line2[21:27]
        name_field, optional_data_2 = line1[5:], ""

    document_type = strip_fillers(line1[0:2])
    expected = _EXPECTED_CODES[layout.name]
    if document_type[:1] not in expected:
        warnings.append(
            f"document_type: {document_type!r} does not start with "
            f"{' or '.join(expected)} as {FORMAT_NAMES[layout.name]} document "
            "codes do"
        )
    birth_date = read_birth_date(birth_field, today, warnings, errors)
    expiry_date = read_expiry_date(expiry_field, today, warnings, errors)
    if birth_date is not None and expiry_date is not None and expiry_date < birth_date:
        errors.append("expiry_date: lies before birth_date")
    issuing_state = read_state("issuing_state", line1[2:5], warnings, errors)
    nationality = read_state("nationality", nationality_field, warnings, errors)
    sex = read_sex(sex_field, warnings, errors)
    surname, given_names = read_name(name_field, warnings)

    return new_fields(
        document_type=document_type,
        issuing_state=issuing_state,
        document_number=number,
        surname=surname,
        given_names=given_names,
        nationality=nationality,
        birth_date=birth_date,
        sex=sex,
        expiry_date=expiry_date,
        optional_data=strip_fillers(optional),
        optional_data_2=optional_data_2,
    )


def _unknown_result(lines: Sequence[str], state: ParseState) -> MrzResult:
    """Build the result for input in no ICAO layout.

    A lone upper line of a two-line MRZ (or a lone TD1 name line) still has
    its name read, for the operator; the result stays invalid.
    """
    document_type = issuing_state = surname = given_names = ""
    if len(lines) == 1:
        line = lines[0]
        name_field: str | None = None
        if len(line) in (36, 44) and line[:1].isalpha():
            name_field = line[5:]
            document_type = strip_fillers(line[0:2])
            issuing_state = strip_fillers(line[2:5])
        elif len(line) == 30 and all(char.isalpha() or char == "<" for char in line):
            name_field = line
        if name_field is not None:
            surname, given_names = read_name(name_field, state.warnings)
    fields = new_fields(
        document_type=document_type,
        issuing_state=issuing_state,
        document_number="",
        surname=surname,
        given_names=given_names,
        nationality="",
        birth_date=None,
        sex="",
        expiry_date=None,
        optional_data="",
        optional_data_2="",
    )
    return new_result(
        format="unknown",
        valid=False,
        fields=fields,
        checks={},
        warnings=tuple(state.warnings),
        errors=tuple(state.errors),
    )
