"""Hypothesis: check-digit properties and build-then-parse round trips."""

from __future__ import annotations

import datetime
import string

from hypothesis import given
from hypothesis import strategies as st

from edge_gate.document import TOLERANCES, build_mrz, mrz_is_valid, parse_mrz
from edge_gate.document._checkdigit import compute_check_digit, mrz_values
from edge_gate.document._checks import (
    check_digits_by_field,
    td1_check_digits,
    two_line_check_digits,
)

TODAY = datetime.date(2026, 12, 4)
MRZ_CHARS = string.ascii_uppercase + string.digits + "<"

mrz_text = st.text(alphabet=MRZ_CHARS, min_size=1, max_size=40)
name_part = st.text(alphabet=string.ascii_uppercase, min_size=1, max_size=8)
names = st.lists(name_part, min_size=1, max_size=3).map(" ".join)
alnum = string.ascii_uppercase + string.digits
dates = st.dates(min_value=datetime.date(1930, 1, 1), max_value=TODAY)
expiries = st.dates(
    min_value=datetime.date(1980, 1, 1), max_value=datetime.date(2070, 12, 31)
)
formats = st.sampled_from(["TD1", "TD2", "TD3", "MRVA", "MRVB"])


@given(mrz_text, st.data())
def test_single_digit_change_changes_check_digit(
    text: str, data: st.DataObject
) -> None:
    # Weights 7, 3 and 1 are coprime to 10, so one changed digit always shows.
    digit_positions = [i for i, char in enumerate(text) if char.isdigit()]
    if not digit_positions:
        return
    position = data.draw(st.sampled_from(digit_positions))
    replacement = data.draw(
        st.sampled_from([d for d in string.digits if d != text[position]])
    )
    changed = text[:position] + replacement + text[position + 1 :]

    assert compute_check_digit(changed) != compute_check_digit(text)


@given(mrz_text)
def test_trailing_fillers_do_not_change_check_digit(text: str) -> None:
    assert compute_check_digit(text + "<<<") == compute_check_digit(text)


@given(mrz_text)
def test_check_digit_is_one_digit(text: str) -> None:
    digit = compute_check_digit(text)

    assert digit is not None
    assert digit in string.digits


@given(
    format_name=formats,
    number=st.text(alphabet=alnum, min_size=1, max_size=9),
    surname=names,
    given_names=names,
    birth=dates,
    expiry=expiries,
    sex=st.sampled_from(["M", "F", "<"]),
    state=st.sampled_from(["UTO", "D", "NLD", "VNM", "XXA"]),
    optional=st.text(alphabet=alnum, max_size=6),
)
def test_build_then_parse_round_trip(
    format_name: str,
    number: str,
    surname: str,
    given_names: str,
    birth: datetime.date,
    expiry: datetime.date,
    sex: str,
    state: str,
    optional: str,
) -> None:
    lines = build_mrz(
        format_name,
        document_number=number,
        surname=surname,
        given_names=given_names,
        issuing_state=state,
        birth_date=birth,
        sex=sex,
        expiry_date=expiry,
        optional_data=optional,
    )

    result = parse_mrz(lines, today=TODAY)

    assert result.format == format_name
    assert result.valid, result.errors
    assert all(result.checks.values())
    fields = result.fields
    assert fields.document_number == number
    assert fields.issuing_state == state
    assert fields.birth_date == birth
    assert fields.expiry_date == expiry
    assert fields.sex == sex
    assert fields.optional_data == optional
    name_width = {"TD1": 30, "TD2": 31, "TD3": 39, "MRVA": 39, "MRVB": 31}
    if len(surname) + 2 + len(given_names) <= name_width[format_name]:
        assert fields.surname == surname
        assert fields.given_names == given_names


@given(
    format_name=st.sampled_from(["TD1", "TD2"]),
    number=st.text(alphabet=alnum, min_size=10, max_size=14),
    optional=st.text(alphabet=alnum, max_size=3),
)
def test_long_number_round_trip(format_name: str, number: str, optional: str) -> None:
    if format_name == "TD2":
        number = number[:13]
        optional = ""
    lines = build_mrz(
        format_name,
        document_number=number,
        surname="DOE",
        birth_date="800101",
        expiry_date="300101",
        optional_data=optional,
    )

    result = parse_mrz(lines, today=TODAY)

    assert result.valid, result.errors
    assert result.fields.document_number == number
    assert result.fields.optional_data == optional


@given(format_name=formats, data=st.data())
def test_changed_digit_makes_mrz_invalid(format_name: str, data: st.DataObject) -> None:
    lines = build_mrz(
        format_name,
        document_number="AB1234567",
        surname="DOE",
        birth_date="800101",
        expiry_date="300101",
    )
    # Birth date digits sit at line 2 positions 14-19 (TD1: positions 1-6).
    line_index = 1
    start = 0 if format_name == "TD1" else 13
    position = data.draw(st.integers(min_value=start, max_value=start + 5))
    line = lines[line_index]
    replacement = data.draw(
        st.sampled_from([d for d in string.digits if d != line[position]])
    )
    lines[line_index] = line[:position] + replacement + line[position + 1 :]

    result = parse_mrz(lines, today=TODAY)

    assert not result.valid
    assert not result.checks["birth_date"]


@given(st.lists(st.text(max_size=50), max_size=5))
def test_parse_never_raises(lines: list[str]) -> None:
    result = parse_mrz(lines, today=TODAY)

    if result.format == "unknown":
        assert not result.valid
    if not result.valid:
        assert result.errors


@given(
    st.lists(
        st.text(alphabet=MRZ_CHARS + " _?é", min_size=28, max_size=46),
        min_size=2,
        max_size=3,
    )
)
def test_parse_near_shapes_never_raises(lines: list[str]) -> None:
    result = parse_mrz(lines, today=TODAY)

    assert isinstance(result.to_json_dict(), dict)
    if not result.valid:
        assert result.errors


def _reference_check_digits(
    format_name: str, lines: list[str]
) -> tuple[str | None, ...]:
    # Every check digit from its ICAO 9303 definition, one field at a time.
    if format_name == "TD1":
        line1, line2 = lines[0], lines[1]
        composite = line1[5:30] + line2[0:7] + line2[8:15] + line2[18:29]
        covered = [line1[5:14], line2[0:6], line2[8:14], composite]
    else:
        line = lines[1]
        width = len(line)
        covered = [line[0:9], line[13:19], line[21:27]]
        if format_name == "TD3":
            covered.append(line[28:42])
        if format_name in {"TD2", "TD3"}:
            covered.append(line[0:10] + line[13:20] + line[21 : width - 1])
    return tuple(compute_check_digit(text) for text in covered)


def _quick_check_digits(format_name: str, lines: list[str]) -> tuple[str, ...]:
    values = [mrz_values(line) or b"" for line in lines]
    assert all(values)
    if format_name == "TD1":
        return td1_check_digits(values[0], values[1])
    return two_line_check_digits(values[1], format_name)


_OPTIONAL_WIDTHS = {"TD1": 15, "TD2": 7, "TD3": 14, "MRVA": 16, "MRVB": 8}


@given(format_name=formats, data=st.data())
def test_check_digits_match_definition(format_name: str, data: st.DataObject) -> None:
    # Empty, or (nearly) full so that every position of the field counts.
    width = _OPTIONAL_WIDTHS[format_name]
    optional = data.draw(
        st.just("") | st.text(alphabet=alnum + "<", min_size=width - 1, max_size=width)
    )
    lines = build_mrz(
        format_name,
        document_number=data.draw(st.text(alphabet=alnum, min_size=1, max_size=9)),
        surname="ERIKSSON",
        birth_date=data.draw(dates),
        expiry_date=data.draw(expiries),
        optional_data=optional,
        optional_data_2=data.draw(
            st.just("") | st.text(alphabet=alnum + "<", min_size=10, max_size=11)
        )
        if format_name == "TD1"
        else "",
    )
    # Overwrite up to two characters of the lines that hold check digits.
    width = len(lines[0])
    for _ in range(data.draw(st.integers(min_value=0, max_value=2))):
        line_index = data.draw(st.integers(min_value=0, max_value=1))
        position = data.draw(st.integers(min_value=0, max_value=width - 1))
        char = data.draw(st.sampled_from(MRZ_CHARS))
        line = lines[line_index]
        lines[line_index] = line[:position] + char + line[position + 1 :]

    reference = _reference_check_digits(format_name, lines)

    assert _quick_check_digits(format_name, lines) == reference
    assert check_digits_by_field(lines, format_name) == reference


@given(
    format_name=formats,
    data=st.data(),
    tolerances=st.sets(st.sampled_from(sorted(TOLERANCES))).map(frozenset),
)
def test_verdict_alone_equals_parse_verdict(
    format_name: str, data: st.DataObject, tolerances: frozenset[str]
) -> None:
    longest = {"TD1": 14, "TD2": 13}.get(format_name, 9)
    lines = build_mrz(
        format_name,
        document_number=data.draw(st.text(alphabet=alnum, max_size=longest)),
        surname="DOE",
        birth_date="800101",
        expiry_date="300101",
    )
    # Most draws change one character, so failed check digits are common.
    for _ in range(data.draw(st.integers(min_value=0, max_value=2))):
        row = data.draw(st.integers(min_value=0, max_value=len(lines) - 1))
        line = lines[row]
        position = data.draw(st.integers(min_value=0, max_value=len(line) - 1))
        char = data.draw(st.sampled_from(MRZ_CHARS + "a "))
        lines[row] = line[:position] + char + line[position + 1 :]

    expected = parse_mrz(lines, today=TODAY, tolerances=tolerances).valid
    assert mrz_is_valid(lines, tolerances=tolerances) is expected
