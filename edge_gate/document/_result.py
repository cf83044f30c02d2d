"""The parse result of one machine-readable zone, and the lane's document policy.

``MrzResult.valid`` means ICAO 9303 structure only: line count and lengths,
character set and every check digit. Date plausibility, expiry, country codes
and sex values are reported in ``warnings`` or ``errors`` (each message starts
with the field name) and leave ``valid`` unchanged. :func:`document_problems`
is the policy that turns a result into reasons to reject the document.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

MrzFormat = Literal["TD1", "TD2", "TD3", "MRVA", "MRVB", "unknown"]


@dataclass(frozen=True)
class MrzFields:
    """Fields read from an MRZ, with fillers removed.

    Text fields are empty when absent. Dates are None when the MRZ leaves them
    empty or they are not calendar dates (the reason is then in ``errors``).
    ``optional_data_2`` is TD1's second optional field (line 2) and stays
    empty for the other formats.
    """

    document_type: str = ""
    issuing_state: str = ""
    document_number: str = ""
    surname: str = ""
    given_names: str = ""
    nationality: str = ""
    birth_date: datetime.date | None = None
    sex: str = ""
    expiry_date: datetime.date | None = None
    optional_data: str = ""
    optional_data_2: str = ""


def _frozen_checks() -> Mapping[str, bool]:
    return MappingProxyType({})


@dataclass(frozen=True)
class MrzResult:
    """The parse of one MRZ.

    Attributes:
        format: ``TD1``, ``TD2``, ``TD3``, ``MRVA``, ``MRVB``, or ``unknown``
            for input in none of these layouts.
        valid: True when line count, line lengths, character set and every
            check digit conform to ICAO 9303 (with the tolerances the caller
            enabled, each of which adds a warning when it is used).
        fields: The fields read, also when ``valid`` is False.
        checks: Check-digit name (``document_number``, ``birth_date``,
            ``expiry_date``, ``optional_data``, ``composite``) to whether it
            verified.
        warnings: Deviations that do not make the MRZ wrong, each starting
            with the field name.
        errors: Everything wrong, structural or not, each starting with the
            field name or the line concerned.
    """

    format: MrzFormat
    valid: bool
    fields: MrzFields
    checks: Mapping[str, bool] = field(default_factory=_frozen_checks)
    warnings: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()

    def to_json_dict(self) -> dict[str, Any]:
        """Return the result as JSON-ready values, dates as YYYY-MM-DD."""
        fields = self.fields
        field_values: dict[str, Any] = {
            "document_type": fields.document_type,
            "issuing_state": fields.issuing_state,
            "document_number": fields.document_number,
            "surname": fields.surname,
            "given_names": fields.given_names,
            "nationality": fields.nationality,
            "birth_date": _iso(fields.birth_date),
            "sex": fields.sex,
            "expiry_date": _iso(fields.expiry_date),
            "optional_data": fields.optional_data,
        }
        if self.format == "TD1":
            field_values["optional_data_2"] = fields.optional_data_2
        return {
            "format": self.format,
            "valid": self.valid,
            "fields": field_values,
            "checks": dict(self.checks),
            "warnings": list(self.warnings),
            "errors": list(self.errors),
        }


def new_fields(
    *,
    document_type: str,
    issuing_state: str,
    document_number: str,
    surname: str,
    given_names: str,
    nationality: str,
    birth_date: datetime.date | None,
    sex: str,
    expiry_date: datetime.date | None,
    optional_data: str,
    optional_data_2: str,
) -> MrzFields:
    """Build :class:`MrzFields` from every field.

    The parser's hot path: it stores into the new instance's ``__dict__``
    and so skips the frozen dataclass's ``object.__setattr__`` call per
    field, which was a tenth of a parse. The result equals the one the
    constructor builds.
    """
    fields = _new_instance(MrzFields)
    values = fields.__dict__
    values["document_type"] = document_type
    values["issuing_state"] = issuing_state
    values["document_number"] = document_number
    values["surname"] = surname
    values["given_names"] = given_names
    values["nationality"] = nationality
    values["birth_date"] = birth_date
    values["sex"] = sex
    values["expiry_date"] = expiry_date
    values["optional_data"] = optional_data
    values["optional_data_2"] = optional_data_2
    return fields


def new_result(
    *,
    format: MrzFormat,
    valid: bool,
    fields: MrzFields,
    checks: Mapping[str, bool],
    warnings: tuple[str, ...],
    errors: tuple[str, ...],
) -> MrzResult:
    """Build :class:`MrzResult` as :func:`new_fields` builds fields (hot path)."""
    result = _new_instance(MrzResult)
    values = result.__dict__
    values["format"] = format
    values["valid"] = valid
    values["fields"] = fields
    values["checks"] = checks
    values["warnings"] = warnings
    values["errors"] = errors
    return result


_new_instance = object.__new__


def _iso(value: datetime.date | None) -> str | None:
    return None if value is None else value.isoformat()


def is_expired(result: MrzResult, today: datetime.date) -> bool:
    """Return whether the document's expiry date lies before ``today``.

    A document stays usable on its expiry date itself. A result without an
    expiry date is not expired by this test; :func:`document_problems`
    rejects it separately.
    """
    expiry = result.fields.expiry_date
    return expiry is not None and expiry < today


def document_problems(result: MrzResult, today: datetime.date) -> list[str]:
    """List the reasons for the lane to reject a document, empty to accept it.

    The lane rejects a document whose MRZ is not valid ICAO 9303, that
    carries an impossible date or an invalid value (anything in ``errors``),
    that has no expiry date, or that has expired.

    Args:
        result: The parse of the document's MRZ.
        today: The transaction's date (UTC), for the expiry test.

    Returns:
        One message per problem, without personal data other than dates.
    """
    problems: list[str] = []
    if not result.valid:
        problems.append(f"MRZ is not valid ICAO 9303 (format {result.format})")
    problems.extend(result.errors)
    expiry = result.fields.expiry_date
    expiry_reported = any(e.startswith("expiry_date:") for e in result.errors)
    if result.format != "unknown" and expiry is None and not expiry_reported:
        problems.append("expiry_date: the document states no expiry date")
    if expiry is not None and is_expired(result, today):
        problems.append(f"expiry_date: the document expired on {expiry.isoformat()}")
    return problems
