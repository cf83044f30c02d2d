"""Check-digit verification for one parse, and the tolerances that relax it.

:class:`ParseState` collects the messages and check results of one parse.
Every failed check digit is a structural error, so it makes the MRZ invalid.
A tolerance that turns a failed check into a pass adds a warning that
names it.
"""

from __future__ import annotations

import datetime

from ._checkdigit import compute_check_digit
from ._fields import strip_fillers

#: Some Belgian identity cards include the ``<`` at position 15 in the check
#: input of a document number longer than 9 characters; ICAO leaves it out.
LONG_NUMBER_INCLUDES_FILLER = "long_number_includes_filler"
#: Some issuers print ``<`` instead of ``0`` as a check digit (for example
#: over an empty date, or over a non-empty personal number). ICAO allows a
#: ``<`` only at TD3 position 43 when the personal number is empty.
FILLER_CHECK_DIGIT = "filler_check_digit"

TOLERANCES = frozenset({LONG_NUMBER_INCLUDES_FILLER, FILLER_CHECK_DIGIT})


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
        computed = compute_check_digit(covered)
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
    if printed != "<" or optional[:1] in ("", "<"):
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
