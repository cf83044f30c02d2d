"""Hypothesis: the field readers' fast paths give the general rule's result."""

from __future__ import annotations

import datetime
import string

from hypothesis import example, given
from hypothesis import strategies as st

from edge_gate.document._codes import known_state_codes
from edge_gate.document._fields import (
    read_birth_date,
    read_expiry_date,
    read_name,
    read_state,
    strip_fillers,
)

TODAY = datetime.date(2026, 12, 4)
LATEST_EXPIRY = datetime.date(2076, 12, 4)


def _reference_strip(text: str) -> str:
    # The rule as first written: fillers become spaces, runs collapse.
    if "<" not in text:
        return text
    return " ".join(text.replace("<", " ").split())


@given(st.text(alphabet=string.ascii_uppercase + string.digits + "< \t_é", max_size=20))
def test_strip_fillers_matches_rule(text: str) -> None:
    assert strip_fillers(text) == _reference_strip(text)


def _reference_read_name(field: str) -> tuple[str, str, list[str]]:
    # The rule as first written, without the fast path for the common shape.
    warnings = []
    body = field.rstrip("<")
    if not body:
        return "", "", ["name: not given (fillers only)"]
    primary, separator, secondary = body.partition("<<")
    if not separator and "<" in body:
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
    if any(char in string.digits for char in field):
        warnings.append("name: contains digits (a likely OCR error)")
    surname, given_names = _reference_strip(primary), _reference_strip(secondary)
    return surname, given_names, warnings


name_fields = st.lists(
    st.sampled_from(["ANNA", "B", "<", "<<", "<<<", "1", "É", " ", "\t"]),
    max_size=12,
).map("".join)


@given(name_fields)
@example("ERIKSSON<<ANNA<MARIA<<<<<<<<")
@example("ANNA<<<B<<<<")
@example("ANNA<<B<<ANNA<<")
@example("<ANNA<<B<<<<")
@example("ANNA<<B<<<1<<")
@example("ANNA<<B< <<<<")
@example("SMITH<<<<<<<<")
@example("ANNA<<B")
@example("ANNA<<B1<<<<")
def test_read_name_matches_rule(field: str) -> None:
    warnings: list[str] = []

    surname, given_names = read_name(field, warnings)

    assert (surname, given_names, warnings) == _reference_read_name(field)


@given(st.text(alphabet=string.ascii_uppercase + "<0", min_size=3, max_size=3))
def test_read_state_known_code_silent(field: str) -> None:
    warnings: list[str] = []
    errors: list[str] = []

    code = read_state("nationality", field, warnings, errors)

    assert code == field.rstrip("<")
    is_known = code in known_state_codes() and not field.strip(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ<"
    )
    assert (not warnings and not errors) is is_known


@given(
    st.dates(
        min_value=datetime.date(1926, 12, 5),
        max_value=TODAY,
    )
)
def test_birth_date_last_hundred_years_exact(birth: datetime.date) -> None:
    warnings: list[str] = []
    errors: list[str] = []

    read = read_birth_date(birth.strftime("%y%m%d"), TODAY, warnings, errors)

    assert read == birth
    assert not warnings
    assert not errors


@given(
    st.dates(
        min_value=datetime.date(1976, 12, 5),
        max_value=LATEST_EXPIRY,
    )
)
def test_expiry_date_window_exact(expiry: datetime.date) -> None:
    warnings: list[str] = []
    errors: list[str] = []

    read = read_expiry_date(expiry.strftime("%y%m%d"), TODAY, warnings, errors)

    assert read == expiry
    assert not warnings
    assert not errors


@given(st.text(alphabet=string.digits + "<A ", min_size=0, max_size=7))
def test_date_readers_never_raise(field: str) -> None:
    for reader in (read_birth_date, read_expiry_date):
        warnings: list[str] = []
        errors: list[str] = []

        value = reader(field, TODAY, warnings, errors)

        assert (value is None) is bool(warnings or errors)
