"""Check-digit verification for one parse, and the tolerances that relax it.

:class:`ParseState` collects the messages and check results of one parse.
Every failed check digit is a structural error, so it makes the MRZ invalid.
A tolerance that turns a failed check into a pass adds a warning that
names it.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from ._checkdigit import DIGITS, compute_check_digit
from ._fields import strip_fillers

#: Some Belgian identity cards include the ``<`` at position 15 in the check
#: input of a document number longer than 9 characters; ICAO leaves it out.
LONG_NUMBER_INCLUDES_FILLER = "long_number_includes_filler"
#: Some issuers print ``<`` instead of ``0`` as a check digit (for example
#: over an empty date, or over a non-empty personal number). ICAO allows a
#: ``<`` only at TD3 position 43 when the personal number is empty.
FILLER_CHECK_DIGIT = "filler_check_digit"

TOLERANCES = frozenset({LONG_NUMBER_INCLUDES_FILLER, FILLER_CHECK_DIGIT})

#: TD3 positions 29-42 when the personal number is empty. ICAO 9303 Part 4
#: then allows ``<`` as its check digit at position 43.
EMPTY_PERSONAL_NUMBER = "<" * 14


class ParseState:
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
        line_number: int,
        position: int,
        *,
        filler_allowed: bool = False,
    ) -> None:
        """Verify one check digit and record the result under ``name``.

        Args:
            name: The check name (the field name, or ``composite``).
            covered: The characters the check digit covers.
            printed: The check digit as printed.
            line_number: The line of the check digit (1-based).
            position: The position of the check digit in its line (1-based).
            filler_allowed: Whether ICAO allows ``<`` here (TD3 position 43
                over an empty personal number).
        """
        self.record(
            name,
            compute_check_digit(covered),
            printed,
            line_number,
            position,
            filler_allowed=filler_allowed,
        )

    def record(
        self,
        name: str,
        computed: str | None,
        printed: str,
        line_number: int,
        position: int,
        *,
        filler_allowed: bool = False,
    ) -> None:
        """Record the check of a digit computed already, as :meth:`check` does.

        ``computed`` is None when the covered characters are not all in
        ``A-Z 0-9 <``; the other arguments are those of :meth:`check`.
        """
        # The common case, a correct digit, builds no message.
        if computed == printed:
            self.checks[name] = True
            return
        where = f"line {line_number} position {position}"
        self.checks[name] = self._accept_mismatch(
            name, computed, printed, where, filler_allowed=filler_allowed
        )

    def _accept_mismatch(
        self,
        name: str,
        computed: str | None,
        printed: str,
        where: str,
        *,
        filler_allowed: bool,
    ) -> bool:
        """Report a printed digit that differs from the computed one.

        Returns:
            Whether the check still passes: ICAO allows the ``<`` here, or a
            tolerance accepts it (with a warning).
        """
        if computed is None:
            self.structural(
                f"{name}: check digit at {where} cannot be computed, because the "
                "checked characters are not all A-Z, 0-9 or <"
            )
            return False
        if printed == "<" and computed == "0":
            if filler_allowed:
                return True
            if FILLER_CHECK_DIGIT in self.tolerances:
                self.warnings.append(
                    f"{name}: check digit at {where} is '<' where ICAO 9303 needs "
                    f"'0'; accepted by tolerance {FILLER_CHECK_DIGIT}"
                )
                return True
            self.structural(
                f"{name}: check digit at {where} is '<' where ICAO 9303 needs '0' "
                f"(tolerance {FILLER_CHECK_DIGIT} accepts it)"
            )
            return False
        self.structural(
            f"{name}: check digit at {where} is {printed!r}, computed {computed!r}"
        )
        return False


def continues_number(printed: str, optional: str) -> bool:
    """Return whether a TD1 or TD2 document number continues into the optional data.

    ICAO 9303 Parts 5 and 6 mark a number longer than 9 characters with
    ``<`` in its check-digit position, the optional data starting with the
    rest of the number.
    """
    return printed == "<" and optional[:1] not in ("", "<")


def read_document_number(
    field: str,
    printed: str,
    optional: str,
    *,
    line_number: int,
    positions: tuple[int, int],
    state: ParseState,
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
        state: The parse that records the check and its messages.

    Returns:
        ``(document number, optional data left after the continuation)``.
    """
    check_position, optional_position = positions
    if not continues_number(printed, optional):
        state.check("document_number", field, printed, line_number, check_position)
        return strip_fillers(field), optional

    continuation = optional.split("<", 1)[0]
    number = field + continuation[:-1]
    check_digit = continuation[-1]
    digit_position = optional_position + len(continuation) - 1
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
                f"document_number: check digit at line {line_number} position "
                f"{digit_position} covers the '<' at position {check_position}, "
                f"which ICAO 9303 leaves out (tolerance "
                f"{LONG_NUMBER_INCLUDES_FILLER} accepts it)"
            )
            state.checks["document_number"] = False
        return strip_fillers(number), rest
    state.check("document_number", number, check_digit, line_number, digit_position)
    return strip_fillers(number), rest


# The functions below compute every check digit of a layout, in the order
# in which the parser records the checks. The quick ones read the character
# values of well-formed lines (see ``mrz_values``). For each field they add
# up every third value from the field's first position (``n0``, ``n1``,
# ``n2`` for the number), so its weighted sum is 7*n0 + 3*n1 + n2. A
# composite check covers several fields, and a field that starts at
# composite index i has its weights rotated by i % 3: (7, 3, 1) at 0, (3, 1,
# 7) at 1 and (1, 7, 3) at 2. The composite is then a sum of the same field
# sums plus the check digits it covers, with no second pass over the line.
# Single indexes cost less than slices here, because the fields are short.


def two_line_check_digits(values: bytes, layout_name: str) -> tuple[str, ...]:
    """Compute the check digits of line 2 of a TD2, TD3, MRV-A or MRV-B.

    ``values`` contains the character values of line 2 at its full length (36
    or 44).

    Returns:
        The digits of the document number, birth date, expiry date, then
        optional data (TD3) and composite (TD2, TD3).
    """
    v = values
    # Positions 1-9, 14-19 and 22-27.
    n0, n1, n2 = v[0] + v[3] + v[6], v[1] + v[4] + v[7], v[2] + v[5] + v[8]
    b0, b1, b2 = v[13] + v[16], v[14] + v[17], v[15] + v[18]
    e0, e1, e2 = v[21] + v[24], v[22] + v[25], v[23] + v[26]
    number = DIGITS[(7 * n0 + 3 * n1 + n2) % 10]
    birth = DIGITS[(7 * b0 + 3 * b1 + b2) % 10]
    expiry = DIGITS[(7 * e0 + 3 * e1 + e2) % 10]
    if layout_name in {"MRVA", "MRVB"}:
        return number, birth, expiry

    # Composite over positions 1-10, 14-20 and 22 to the one before the
    # composite check digit: the fields start at composite indexes 0 (number),
    # 10 (birth), 17 (expiry) and 24 (optional data at position 29).
    composite = (
        (7 * n0 + 3 * n1 + n2)
        + 7 * v[9]
        + (3 * b0 + b1 + 7 * b2)
        + 3 * v[19]
        + (e0 + 7 * e1 + 3 * e2)
        + v[27]
    )
    if layout_name == "TD2":
        # Optional data: positions 29-35.
        o0, o1, o2 = v[28] + v[31] + v[34], v[29] + v[32], v[30] + v[33]
        composite += 7 * o0 + 3 * o1 + o2
        return number, birth, expiry, DIGITS[composite % 10]

    # TD3 personal number: positions 29-42, its check digit at 43 (composite
    # index 38).
    o0 = v[28] + v[31] + v[34] + v[37] + v[40]
    o1 = v[29] + v[32] + v[35] + v[38] + v[41]
    o2 = v[30] + v[33] + v[36] + v[39]
    optional = DIGITS[(7 * o0 + 3 * o1 + o2) % 10]
    composite += 7 * o0 + 3 * o1 + o2 + v[42]
    return number, birth, expiry, optional, DIGITS[composite % 10]


def td1_check_digits(values1: bytes, values2: bytes) -> tuple[str, str, str, str]:
    """Compute the check digits of a TD1.

    ``values1`` and ``values2`` are the character values of the first two
    30-character lines.

    Returns:
        The digits of the document number, birth date, expiry date and
        composite.
    """
    u, v = values1, values2
    # Line 1 positions 6-14 and 16-30, line 2 positions 1-6, 9-14 and 19-29.
    n0, n1, n2 = u[5] + u[8] + u[11], u[6] + u[9] + u[12], u[7] + u[10] + u[13]
    p0 = u[15] + u[18] + u[21] + u[24] + u[27]
    p1 = u[16] + u[19] + u[22] + u[25] + u[28]
    p2 = u[17] + u[20] + u[23] + u[26] + u[29]
    b0, b1, b2 = v[0] + v[3], v[1] + v[4], v[2] + v[5]
    e0, e1, e2 = v[8] + v[11], v[9] + v[12], v[10] + v[13]
    q0 = v[18] + v[21] + v[24] + v[27]
    q1 = v[19] + v[22] + v[25] + v[28]
    q2 = v[20] + v[23] + v[26]
    number = 7 * n0 + 3 * n1 + n2
    # Composite over line 1 positions 6-30 and line 2 positions 1-7, 9-15 and
    # 19-29: the fields start at composite indexes 0 (number), 10 (optional
    # data), 25 (birth), 32 (expiry) and 39 (optional data 2).
    composite = (
        number
        + 7 * u[14]
        + (3 * p0 + p1 + 7 * p2)
        + (3 * b0 + b1 + 7 * b2)
        + 3 * v[6]
        + (e0 + 7 * e1 + 3 * e2)
        + v[14]
        + (7 * q0 + 3 * q1 + q2)
    )
    return (
        DIGITS[number % 10],
        DIGITS[(7 * b0 + 3 * b1 + b2) % 10],
        DIGITS[(7 * e0 + 3 * e1 + e2) % 10],
        DIGITS[composite % 10],
    )


def check_digits_by_field(
    lines: Sequence[str], layout_name: str
) -> tuple[str | None, ...]:
    """Compute every check digit of a layout field by field, in check order.

    ``lines`` have the layout's line count and line length, in any
    characters. A digit is None when its covered characters are not all in
    ``A-Z 0-9 <``. The order is that of :func:`td1_check_digits` and
    :func:`two_line_check_digits`.
    """
    line2 = lines[1]
    if layout_name == "TD1":
        line1 = lines[0]
        # Composite: line 1 positions 6-30, line 2 positions 1-7, 9-15, 19-29.
        composite = line1[5:30] + line2[0:7] + line2[8:15] + line2[18:29]
        return (
            compute_check_digit(line1[5:14]),
            compute_check_digit(line2[0:6]),
            compute_check_digit(line2[8:14]),
            compute_check_digit(composite),
        )

    digits: tuple[str | None, ...] = (
        compute_check_digit(line2[0:9]),
        compute_check_digit(line2[13:19]),
        compute_check_digit(line2[21:27]),
    )
    if layout_name == "TD3":
        digits += (compute_check_digit(line2[28:42]),)
    if layout_name in {"TD2", "TD3"}:
        # Composite: positions 1-10, 14-20 and 22 to the one before it.
        width = len(line2)
        composite = line2[0:10] + line2[13:20] + line2[21 : width - 1]
        digits += (compute_check_digit(composite),)
    return digits
