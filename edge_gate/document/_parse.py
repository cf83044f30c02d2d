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

from ._checkdigit import compute_check_digit, mrz_values
from ._checks import (
    EMPTY_PERSONAL_NUMBER,
    FILLER_CHECK_DIGIT,
    LONG_NUMBER_INCLUDES_FILLER,
    TOLERANCES,
    ParseState,
    check_digits_by_field,
    continues_number,
    read_document_number,
    td1_check_digits,
    two_line_check_digits,
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
    "mrz_is_valid",
    "parse_mrz",
]

# The check results of an MRZ whose every check passed, in the order in which
# _record_checks records them. Each result gets its own copy.
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
# the number does not continue into the optional data, per layout: (line
# index, number start, optional data start, optional data end).
_NUMBER_SPANS: dict[str, tuple[int, int, int, int]] = {
    "TD1": (0, 5, 15, 30),
    "TD2": (1, 0, 28, 35),
    "TD3": (1, 0, 28, 42),
    "MRVA": (1, 0, 28, 44),
    "MRVB": (1, 0, 28, 36),
}

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
    if tolerances:
        _check_tolerances(tolerances)
    layout = exact_layout(lines)
    if layout is not None:
        values = mrz_values("".join(lines))
        if values is not None:
            return _parse_well_formed(lines, values, layout, today, tolerances)
    return _parse_any_shape(lines, today, tolerances)


# Any date serves: the verdict depends on structure only, never on dates.
_VERDICT_REFERENCE_DATE = datetime.date(2000, 1, 1)


def mrz_is_valid(
    lines: Sequence[str], *, tolerances: frozenset[str] = frozenset()
) -> bool:
    """Return ``parse_mrz(lines, ...).valid`` without reading the fields.

    For callers that need only the ICAO 9303 verdict, for example to sort a
    batch before reading it. Under strict ICAO 9303 (no ``tolerances``),
    lines of a layout's exact shape are decided here. A character outside
    ``A-Z 0-9 <`` or a failed check digit makes them invalid. The one
    exception is a TD1 or TD2 number whose check digit is ``<``: it goes
    through the long-number rule. Lines of no exact shape are invalid.
    Two cases go through :func:`parse_mrz` instead: 2 x 36 lines that look
    like a French identity card, and any mismatch under tolerances. The
    property tests check that both functions give the same verdict.

    Raises:
        ValueError: ``tolerances`` names an unknown tolerance.
    """
    if tolerances:
        _check_tolerances(tolerances)
    layout = exact_layout(lines)
    if layout is None:
        if tolerances or (len(lines) == 2 and len(lines[0]) == len(lines[1]) == 36):
            return _parsed_verdict(lines, tolerances)
        return False
    values = mrz_values("".join(lines))
    if values is None:
        # Outside the character set: no tolerance covers that.
        return _parsed_verdict(lines, tolerances) if tolerances else False
    digits = _quick_check_digits(values, layout)
    printed = _printed_check_digits(lines, layout)
    if digits == printed:
        return True
    if tolerances:
        return _parsed_verdict(lines, tolerances)
    if printed[0] != "<" or layout not in (TD1, TD2) or digits[1:] != printed[1:]:
        return False
    # ICAO 9303 Parts 5 and 6: the number continues into the optional data,
    # which ends it with its check digit; the '<' itself is not checked.
    line_index, start, optional_start, optional_end = _NUMBER_SPANS[layout.name]
    line = lines[line_index]
    optional = line[optional_start:optional_end]
    if not continues_number("<", optional):
        return False
    continuation = optional.split("<", 1)[0]
    number = line[start : start + 9] + continuation[:-1]
    return compute_check_digit(number) == continuation[-1]


def _check_tolerances(tolerances: frozenset[str]) -> None:
    if not tolerances <= TOLERANCES:
        unknown = sorted(tolerances - TOLERANCES)
        raise ValueError(
            f"unknown MRZ tolerance(s) {unknown}; known: {sorted(TOLERANCES)}"
        )


def _parsed_verdict(lines: Sequence[str], tolerances: frozenset[str]) -> bool:
    return parse_mrz(lines, today=_VERDICT_REFERENCE_DATE, tolerances=tolerances).valid


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
    check digit matches, the result needs no :class:`ParseState`.
    Otherwise :func:`_record_checks` records the checks one by one, for the
    messages and the tolerances.
    """
    digits = _quick_check_digits(values, layout)
    if digits == _printed_check_digits(lines, layout):
        checks = _ALL_PASSED[layout.name].copy()
        number, optional = _number_and_optional(lines, layout)
        warnings: list[str] = []
        errors: list[str] = []
        valid = True
    else:
        state = ParseState(today, tolerances)
        number, optional = _record_checks(lines, layout, digits, state)
        checks, warnings, errors = state.checks, state.warnings, state.errors
        valid = state.structure_errors == 0

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

    # Lines cut or padded to the layout's shape; their check digits come
    # from the quick computation unless a character is outside the MRZ set.
    shaped = check_shape(lines, layout, state)
    values = mrz_values("".join(shaped))
    digits: Sequence[str | None]
    if values is None:
        digits = check_digits_by_field(shaped, layout.name)
    else:
        digits = _quick_check_digits(values, layout)
    number, optional = _record_checks(shaped, layout, digits, state)

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


def _quick_check_digits(values: bytes, layout: Layout) -> tuple[str, ...]:
    """Compute every check digit from the values of all lines joined."""
    if layout is TD1:
        return td1_check_digits(values[0:30], values[30:60])
    return two_line_check_digits(values[layout.line_length :], layout.name)


def _printed_check_digits(lines: Sequence[str], layout: Layout) -> tuple[str, ...]:
    """Return the check digits as printed, in the order of the computed ones.

    ICAO 9303 Part 4 allows ``<`` for ``0`` at TD3 position 43 when the
    personal number (positions 29-42) is empty, so that ``<`` comes back
    as ``0``.
    """
    line2 = lines[1]
    if layout is TD1:
        return lines[0][14], line2[6], line2[14], line2[29]
    if layout is TD3:
        optional = line2[42]
        if optional == "<" and line2[28:42] == EMPTY_PERSONAL_NUMBER:
            optional = "0"
        return line2[9], line2[19], line2[27], optional, line2[43]
    if layout is TD2:
        return line2[9], line2[19], line2[27], line2[35]
    return line2[9], line2[19], line2[27]


def _number_and_optional(lines: Sequence[str], layout: Layout) -> tuple[str, str]:
    """Read the document number and the optional data, the number not continued.

    Returns:
        ``(document number without fillers, optional data as printed)``.
    """
    line_index, start, optional_start, optional_end = _NUMBER_SPANS[layout.name]
    line = lines[line_index]
    return strip_fillers(line[start : start + 9]), line[optional_start:optional_end]


def _record_checks(
    lines: Sequence[str],
    layout: Layout,
    digits: Sequence[str | None],
    state: ParseState,
) -> tuple[str, str]:
    """Record every check of the computed ``digits``, with their messages.

    ``lines`` have the layout's line count and line length, and ``digits``
    are their computed check digits in the layout's check order (None where
    the covered characters are not all in ``A-Z 0-9 <``). A TD1 or TD2
    document number that continues into the optional data is read and
    checked by :func:`read_document_number` instead.

    Returns:
        ``(document number, optional data)``, the number with fillers
        removed and the optional data as printed, without a continued
        document number.
    """
    if layout is TD1:
        return _record_td1(lines, digits, state)
    return _record_two_line(lines, layout, digits, state)


def _record_td1(
    lines: Sequence[str], digits: Sequence[str | None], state: ParseState
) -> tuple[str, str]:
    """Record the checks of a TD1 (Doc 9303 Part 5)."""
    line1, line2 = lines[0], lines[1]

    if continues_number(line1[14], line1[15:30]):
        number, optional = read_document_number(
            line1[5:14],
            line1[14],
            line1[15:30],
            line_number=1,
            positions=(15, 16),
            state=state,
        )
    else:
        state.record("document_number", digits[0], line1[14], 1, 15)
        number, optional = _number_and_optional(lines, TD1)
    state.record("birth_date", digits[1], line2[6], 2, 7)
    state.record("expiry_date", digits[2], line2[14], 2, 15)
    state.record("composite", digits[3], line2[29], 2, 30)
    return number, optional


def _record_two_line(
    lines: Sequence[str],
    layout: Layout,
    digits: Sequence[str | None],
    state: ParseState,
) -> tuple[str, str]:
    """Record the checks of a TD2, TD3, MRV-A or MRV-B (Parts 4, 6, 7)."""
    line2 = lines[1]
    width = layout.line_length

    if layout is TD2 and continues_number(line2[9], line2[28:35]):
        number, optional = read_document_number(
            line2[0:9],
            line2[9],
            line2[28:35],
            line_number=2,
            positions=(10, 29),
            state=state,
        )
    else:
        state.record("document_number", digits[0], line2[9], 2, 10)
        number, optional = _number_and_optional(lines, layout)
    state.record("birth_date", digits[1], line2[19], 2, 20)
    state.record("expiry_date", digits[2], line2[27], 2, 28)

    if layout is TD3:
        # ICAO 9303 Part 4: position 43 may be '<' when positions 29-42 are all '<'.
        state.record(
            "optional_data",
            digits[3],
            line2[42],
            2,
            43,
            filler_allowed=optional == EMPTY_PERSONAL_NUMBER,
        )
    if layout is TD2 or layout is TD3:
        state.record("composite", digits[-1], line2[width - 1], 2, width)
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
    _check_document_code(layout.name, document_type, warnings)
    birth_date = read_birth_date(birth_field, today, warnings, errors)
    expiry_date = read_expiry_date(expiry_field, today, warnings, errors)
    if expiry_date is not None and expiry_date < today:
        # Reported for the operator; the lane's document policy rejects it.
        warnings.append(f"expiry_date: the document expired on {expiry_date}")
    if birth_date is not None and expiry_date is not None and expiry_date < birth_date:
        errors.append("expiry_date: lies before birth_date")
    if not number:
        warnings.append("document_number: not given (fillers only)")
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


def _check_document_code(
    layout_name: str, document_type: str, warnings: list[str]
) -> None:
    """Warn about a document code that does not fit the layout."""
    expected = _EXPECTED_CODES[layout_name]
    if document_type[:1] not in expected:
        warnings.append(
            f"document_type: {document_type!r} does not start with "
            f"{' or '.join(expected)} as {FORMAT_NAMES[layout_name]} document "
            "codes do"
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
