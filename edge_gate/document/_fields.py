"""Field readers shared by every layout: names, dates, sex and state codes.

Each reader returns the value and appends messages to the warnings and errors
lists it is given; none of them changes the structural verdict.
"""

from __future__ import annotations

import datetime
import functools
import re

from ._codes import known_state_codes, known_state_fields

_DIGITS = "0123456789"
_LETTERS_AND_FILLER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ<"
_find_digit = re.compile("[0-9]").search
_date = datetime.date
# Days per month in a leap year (index 0 unused), so a month and day outside
# it form no date in any year.
_MAX_DAYS = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
# Longer than any name field, so a run of fillers is a prefix of it.
_FILLERS = "<" * 44


def strip_fillers(text: str) -> str:
    """Remove leading and trailing ``<`` and read inner runs of ``<`` as a space.

    Whitespace in a field that contains ``<`` collapses to one space, as
    ``str.split`` reads it.
    """
    if "<" not in text:
        return text
    stripped = text.strip("<")
    # One padded word, the common case: no inner '<' and no whitespace. Or
    # fillers only, an empty field.
    if stripped.isalnum() or not stripped:
        return stripped
    # Words joined by single '<', with no whitespace: each '<' is one space.
    if "<<" not in stripped and stripped.replace("<", "").isalnum():
        return stripped.replace("<", " ")
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
    # The common shape returns here: PRIMARY<<SECONDARY, then fillers only,
    # each identifier letters with single '<' between components. Such a
    # field gets no warning. Anything else is read again in full below.
    primary, separator, rest = field.partition("<<")
    secondary, separator, tail = rest.partition("<<")
    if separator and _FILLERS.startswith(tail):
        surname = _plain_words(primary)
        given_names = _plain_words(secondary)
        if surname is not None and given_names is not None:
            return surname, given_names

    body = field.rstrip("<")
    if not body:
        warnings.append("name: not given (fillers only)")
        return "", ""
    primary, separator, secondary = body.partition("<<")
    if not separator and "<" in body:
        # A single name (ANNA<<<) is a primary identifier alone, as ICAO
        # writes it; several components with no '<<' may be a misread one.
        warnings.append(
            "name: no '<<' separator, so the whole name is the primary identifier"
        )
    if separator and not primary:
        warnings.append("name: the primary identifier is empty")
    if "<<" in secondary:
        warnings.append("name: more than one '<<' separator; read as spaces")
    if field.startswith("<") and not field.startswith("<<"):
        warnings.append("name: the field starts with a single '<'")
    if field and field[-1] != "<":
        warnings.append("name: the field is full, so the name may be truncated")
    if _find_digit(field):
        warnings.append("name: contains digits (a likely OCR error)")
    return strip_fillers(primary), strip_fillers(secondary)


def _plain_words(identifier: str) -> str | None:
    """Return the words of ``identifier`` joined by spaces, if it is plain.

    ``identifier`` is a part of a name field cut at ``<<``, so it contains no
    ``<<`` and does not end with ``<``. Plain means letters only, with
    single ``<`` between words and none at the start; for other text the
    result is None.
    """
    if identifier.isalpha():
        return identifier
    if identifier[:1] != "<" and identifier.replace("<", "").isalpha():
        return identifier.replace("<", " ")
    return None


def read_state(name: str, field: str, warnings: list[str], errors: list[str]) -> str:
    """Read a three-character state code (issuing state or nationality)."""
    code = field.rstrip("<")
    # A known code as printed is letters and fillers only, so it needs no
    # further test; this is the common case.
    if field in known_state_fields():
        return code
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


def read_birth_date(
    field: str, today: datetime.date, warnings: list[str], errors: list[str]
) -> datetime.date | None:
    """Read a YYMMDD birth date, in the latest century not after ``today``.

    Three centuries are tried: the one of ``today`` and the two before it.
    A century before year 1 is outside ``datetime``'s range and gives no
    date.

    Returns:
        The date, or None when absent or impossible (the reason is added to
        ``errors``, and an absent date adds a warning).
    """
    # The common case returns here: six digits that give a date in the
    # latest century whose year is not after today's. Anything else, a date
    # later in today's year included, is read again in full below.
    this_year = today.year
    century = this_year // 100 * 100
    if len(field) == 6 and field.isascii() and field.isdigit():
        number = int(field)
        year = century + number // 10000
        if year > this_year:
            year -= 100
        candidate = _calendar_date(year, number // 100 % 100, number % 100)
        if candidate is not None and candidate <= today:
            return candidate

    parts = _date_parts("birth_date", field, warnings, errors)
    if parts is None:
        return None
    year, month, day = parts
    for full_year in (century + year, century - 100 + year, century - 200 + year):
        value = _calendar_date(full_year, month, day)
        if value is not None and value <= today:
            return value
    if not _is_month_day(month, day):
        errors.append(f"birth_date: {field!r} is not a calendar date")
    else:
        errors.append(
            f"birth_date: {field!r} gives no valid date on or before the "
            f"reference date {today.isoformat()} in its century or the two "
            "before it, and a birth date cannot lie after the reference date"
        )
    return None


def read_expiry_date(
    field: str, today: datetime.date, warnings: list[str], errors: list[str]
) -> datetime.date | None:
    """Read a YYMMDD expiry date: 20YY, or 19YY when 20YY is too far ahead.

    20YY is too far ahead when it lies more than 50 years after ``today``.
    After 9949-12-31 that limit passes ``datetime.date.max``, so the limit
    becomes 9999-12-31 and a warning is added. 19YY and 20YY themselves
    always lie within ``datetime``'s range.

    Returns:
        The date, or None when absent or impossible (the reason is added to
        ``errors``, and an absent date adds a warning).
    """
    # The common case returns here: six digits that give a date in 20YY
    # before the year 50 years after today, which is never later than the
    # limit. Anything else is read again in full below.
    if len(field) == 6 and field.isascii() and field.isdigit():
        number = int(field)
        year = 2000 + number // 10000
        if year < today.year + 50 <= datetime.MAXYEAR:
            candidate = _calendar_date(year, number // 100 % 100, number % 100)
            if candidate is not None:
                return candidate

    latest_expiry, is_clamped = _latest_expiry(today)
    parts = _date_parts("expiry_date", field, warnings, errors)
    if parts is None:
        return None
    year, month, day = parts
    if is_clamped:
        warnings.append(
            f"expiry_date: 50 years after the reference date {today.isoformat()} "
            f"is past {latest_expiry.isoformat()}, the last date this parser "
            f"handles, so expiry dates are accepted up to "
            f"{latest_expiry.isoformat()}"
        )
    for full_year in (2000 + year, 1900 + year):
        value = _calendar_date(full_year, month, day)
        if value is not None and value <= latest_expiry:
            return value
    if not _is_month_day(month, day):
        errors.append(f"expiry_date: {field!r} is not a calendar date")
    else:
        errors.append(
            f"expiry_date: {field!r} gives no valid date in 19YY or 20YY up to "
            f"{latest_expiry.isoformat()}, 50 years after the reference date "
            f"{today.isoformat()}"
        )
    return None


def _calendar_date(year: int, month: int, day: int) -> datetime.date | None:
    """Return the date, or None where it does not exist or is out of range."""
    # The table rules out most impossible dates without raising, which costs
    # more than the rest of a date read.
    if not (1 <= month <= 12 and 1 <= day <= _MAX_DAYS[month]):
        return None
    try:
        return _date(year, month, day)
    except ValueError:
        # 29 February outside a leap year, or a year outside 1..9999.
        return None


def _is_month_day(month: int, day: int) -> bool:
    """Return whether ``month`` and ``day`` form a date in some year."""
    return 1 <= month <= 12 and 1 <= day <= _MAX_DAYS[month]


def _date_parts(
    name: str, field: str, warnings: list[str], errors: list[str]
) -> tuple[int, int, int] | None:
    """Split a YYMMDD field into numbers; None for fillers or non-digits.

    A field of fillers is an absent date (a warning); any other character
    outside 0-9 is an error.
    """
    if len(field) == 6 and not field.strip(_DIGITS):
        number = int(field)
        return number // 10000, number // 100 % 100, number % 100
    if field == "<<<<<<":
        warnings.append(f"{name}: not given")
    elif name == "birth_date" and _is_partly_unknown(field):
        warnings.append(
            f"{name}: {field!r} is partly unknown (fillers for unknown parts), "
            "so no date is given"
        )
    else:
        errors.append(f"{name}: {field!r} is not a YYMMDD date (digits only)")
    return None


def _is_partly_unknown(field: str) -> bool:
    """Return whether a YYMMDD field has ``<<`` for some parts, digits for the rest.

    ICAO 9303 Part 3 lets an issuer fill the unknown parts of a birth date
    with fillers, for example ``74<<<<`` for a known year only.
    """
    if len(field) != 6:
        return False
    parts = (field[0:2], field[2:4], field[4:6])
    return all(part == "<<" or part.isdigit() for part in parts) and "<<" in parts


@functools.lru_cache(maxsize=16)
def _latest_expiry(today: datetime.date) -> tuple[datetime.date, bool]:
    """Return the latest expiry date accepted on ``today``: 50 years later.

    Cached because ``today`` is the same for every document of a day.

    Returns:
        ``(latest date, is_clamped)``: ``is_clamped`` is True when 50 years
        later lies past ``datetime.date.max``, which is then the date.
    """
    year = today.year + 50
    if year > datetime.MAXYEAR:
        return datetime.date.max, True
    try:
        return today.replace(year=year), False
    except ValueError:
        # 29 February in a year that is not a leap year.
        return today.replace(year=year, day=28), False
