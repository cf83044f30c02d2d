"""Field readers shared by every layout: names, dates, sex and state codes.

Each reader returns the value and appends messages to the warnings and errors
lists it is given; none of them changes the structural verdict.
"""

from __future__ import annotations

import datetime
import functools
import re

from ._codes import known_state_codes

_DIGITS = "0123456789"
_LETTERS_AND_FILLER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ<"
_find_digit = re.compile("[0-9]").search


def strip_fillers(text: str) -> str:
    """Remove leading and trailing ``<`` and read inner runs of ``<`` as a space."""
    if "<" not in text:
        return text
    return " ".join(text.replace("<", " ").split())


def read_name(field: str, warnings: list[str]) -> tuple[str, str]:
    """Split a name field into primary and secondary identifiers.

    ICAO 9303 Part 3: the first ``<<`` separates the primary identifier
    (surname) from the secondary identifier (given names); a single ``<``
    separates name components. Either identifier may be empty. A name with
    no ``<<`` is all primary identifier.

    Returns:
        ``(surname, given_names)`` with components joined by one space.
    """
    body = field.rstrip("<")
    primary, separator, secondary = body.partition("<<")
    if not separator:
        warnings.append(
            "name: no '<<' separator, so the whole name is the primary identifier"
        )
    if "<<" in secondary:
        warnings.append("name: more than one '<<' separator; read as spaces")
    if field.startswith("<") and not field.startswith("<<"):
        warnings.append("name: the field starts with a single '<'")
    if field and field[-1] != "<":
        warnings.append("name: the field is full, so the name may be truncated")
    if _find_digit(field):
        warnings.append("name: contains digits (a likely OCR error)")
    return strip_fillers(primary), strip_fillers(secondary)


def read_state(name: str, field: str, warnings: list[str], errors: list[str]) -> str:
    """Read a three-character state code (issuing state or nationality)."""
    code = field.rstrip("<")
    if not code:
        errors.append(f"{name}: the state code is empty")
        return code
    if field.strip(_LETTERS_AND_FILLER):
        errors.append(f"{name}: {field!r} is not a state code (letters and '<' only)")
    elif code not in known_state_codes():
        if code == "UTO":
            warnings.append(f"{name}: 'UTO' is the fictional state of ICAO specimens")
        else:
            warnings.append(f"{name}: {code!r} is not a known state code")
    return code


def read_sex(field: str, warnings: list[str], errors: list[str]) -> str:
    """Read the sex field: ``M``, ``F`` or ``<`` (unspecified)."""
    if field == "X":
        warnings.append(
            "sex: 'X' is not an ICAO 9303 MRZ value (M, F or <); read as unspecified"
        )
    elif field not in ("M", "F", "<"):
        errors.append(f"sex: {field!r} is not M, F or <")
    return field


def read_date(
    name: str,
    field: str,
    today: datetime.date,
    warnings: list[str],
    errors: list[str],
) -> datetime.date | None:
    """Read a YYMMDD date and resolve its century against ``today``.

    Birth dates take the latest century that does not put them after
    ``today``. Expiry dates take 20YY unless that is more than 50 years after
    ``today``, then 19YY. A field of fillers is an absent date.

    Returns:
        The date, or None when absent or impossible (the reason is added to
        ``errors``).
    """
    if field == "<<<<<<":
        warnings.append(f"{name}: not given")
        return None
    if len(field) != 6 or field.strip(_DIGITS):
        errors.append(f"{name}: {field!r} is not a YYMMDD date (digits only)")
        return None

    number = int(field)
    year, month, day = number // 10000, number // 100 % 100, number % 100
    century, latest_expiry = _date_context(today)
    if name == "birth_date":
        candidates: tuple[int, ...] = (
            century + year,
            century - 100 + year,
            century - 200 + year,
        )
    else:
        candidates = (2000 + year, 1900 + year)
    for full_year in candidates:
        try:
            value = datetime.date(full_year, month, day)
        except ValueError:
            continue
        if name == "birth_date" and value > today:
            continue
        if name == "expiry_date" and value > latest_expiry:
            continue
        return value
    errors.append(f"{name}: {field!r} is not a calendar date")
    return None


@functools.lru_cache(maxsize=16)
def _date_context(today: datetime.date) -> tuple[int, datetime.date]:
    """Return the century of ``today`` and the latest expiry date it accepts."""
    return today.year // 100 * 100, _years_later(today, 50)


def _years_later(day: datetime.date, years: int) -> datetime.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        # 29 February in a year that is not a leap year.
        return day.replace(year=day.year + years, day=28)
