"""Build MRZ lines with correct check digits (tests and the rig's travellers)."""

from __future__ import annotations

import datetime

from ._checkdigit import MRZ_ALPHABET, compute_check_digit

_DEFAULT_CODES = {"TD1": "I", "TD2": "I", "TD3": "P", "MRVA": "V", "MRVB": "V"}
_LINE_LENGTHS = {"TD1": 30, "TD2": 36, "TD3": 44, "MRVA": 44, "MRVB": 36}


def _to_mrz(name: str, value: str, width: int) -> str:
    """Write ``value`` in MRZ characters (space becomes ``<``), padded to width."""
    text = value.upper().replace(" ", "<")
    bad = sorted({char for char in text if char not in MRZ_ALPHABET})
    if bad:
        raise ValueError(f"{name}: {value!r} has characters {bad}; use A-Z, 0-9, <")
    if len(text) > width:
        raise ValueError(f"{name}: {value!r} is longer than {width} characters")
    return text.ljust(width, "<")


def _date_field(name: str, value: datetime.date | str | None) -> str:
    if value is None:
        return "<<<<<<"
    if isinstance(value, datetime.date):
        return value.strftime("%y%m%d")
    return _to_mrz(name, value, 6)


def _digit(text: str) -> str:
    digit = compute_check_digit(text)
    if digit is None:  # pragma: no cover - _to_mrz rejected such text already
        raise ValueError(f"no check digit for {text!r}")
    return digit


def _name_field(surname: str, given_names: str, width: int) -> str:
    """Write the name as primary ``<<`` secondary, cut to ``width`` (truncation)."""
    primary = surname.strip().upper().replace(" ", "<")
    secondary = given_names.strip().upper().replace(" ", "<")
    text = primary + "<<" + secondary if secondary else primary
    # NOTE: a plain cut; when it ends on a '<' the MRZ no longer shows that
    # the name was truncated. Issuers shorten components to initials first.
    return _to_mrz("name", text[:width], width)


def _number_and_optional(
    format_name: str, number: str, optional: str, width: int
) -> tuple[str, str]:
    """Write the document number with its check digit, and the optional data.

    A TD1 or TD2 number longer than 9 characters continues in the optional
    data, ended by its check digit, with ``<`` at the check-digit position.
    """
    number = number.upper().replace(" ", "<")
    if len(number) <= 9:
        field = _to_mrz("document_number", number, 9)
        return field + _digit(field), _to_mrz("optional_data", optional, width)
    if format_name not in ("TD1", "TD2"):
        raise ValueError(
            f"document_number: {format_name} numbers have at most 9 characters"
        )
    _to_mrz("document_number", number, len(number))
    continuation = number[9:] + _digit(number)
    rest = "<" + optional if optional else ""
    return number[:9] + "<", _to_mrz("optional_data", continuation + rest, width)


def build_mrz(
    format: str,
    *,
    document_number: str,
    surname: str,
    given_names: str = "",
    issuing_state: str = "UTO",
    nationality: str | None = None,
    birth_date: datetime.date | str | None = None,
    sex: str = "<",
    expiry_date: datetime.date | str | None = None,
    optional_data: str = "",
    optional_data_2: str = "",
    document_type: str | None = None,
) -> list[str]:
    """Build the MRZ lines of a document, with every check digit computed.

    Args:
        format: ``TD1``, ``TD2``, ``TD3``, ``MRVA`` or ``MRVB``.
        document_number: Up to 9 characters, or more for TD1 and TD2 (the
            rest continues in the optional data).
        surname: Primary identifier; spaces separate components.
        given_names: Secondary identifier; spaces separate components.
        issuing_state: State code without fillers (``D`` for Germany).
        nationality: State code; the issuing state when None.
        birth_date: A date, a ``YYMMDD`` string, or None for fillers.
        sex: ``M``, ``F`` or ``<``.
        expiry_date: A date, a ``YYMMDD`` string, or None for fillers.
        optional_data: The optional data (TD3: the personal number).
        optional_data_2: TD1's second optional field (line 2).
        document_type: The document code; ``P``, ``I`` or ``V`` by format
            when None.

    Returns:
        The lines, top first, each of the format's length. A name too long
        for its field is cut, as issuers truncate it.

    Raises:
        ValueError: The format is unknown, or a field has characters outside
            A-Z, 0-9, space and ``<`` or does not fit its field.
    """
    if format not in _LINE_LENGTHS:
        raise ValueError(f"format: {format!r} is not one of {sorted(_LINE_LENGTHS)}")
    width = _LINE_LENGTHS[format]
    code = _to_mrz("document_type", document_type or _DEFAULT_CODES[format], 2)
    issuer = _to_mrz("issuing_state", issuing_state, 3)
    nation = _to_mrz("nationality", nationality or issuing_state, 3)
    birth = _date_field("birth_date", birth_date)
    expiry = _date_field("expiry_date", expiry_date)
    sex_field = _to_mrz("sex", sex, 1)
    dates = birth + _digit(birth) + sex_field + expiry + _digit(expiry)

    if format == "TD1":
        number, optional = _number_and_optional(
            format, document_number, optional_data, 15
        )
        line1 = code + issuer + number + optional
        optional2 = _to_mrz("optional_data_2", optional_data_2, 11)
        line2 = dates + nation + optional2
        composite = line1[5:30] + line2[0:7] + line2[8:15] + line2[18:29]
        line3 = _name_field(surname, given_names, 30)
        return [line1, line2 + _digit(composite), line3]

    line1 = code + issuer + _name_field(surname, given_names, width - 5)
    optional_width = {"TD2": 7, "TD3": 14, "MRVA": 16, "MRVB": 8}[format]
    number, optional = _number_and_optional(
        format, document_number, optional_data, optional_width
    )
    line2 = number + nation + dates + optional
    if format == "TD3":
        line2 += _digit(optional)
    if format in ("TD2", "TD3"):
        line2 += _digit(line2[0:10] + line2[13:20] + line2[21:])
    return [line1, line2]
