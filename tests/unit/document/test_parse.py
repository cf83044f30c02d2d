"""Parser rules one by one: layouts, check digits, names, dates, tolerances."""

from __future__ import annotations

import datetime

import pytest

from edge_gate.document import (
    FILLER_CHECK_DIGIT,
    LONG_NUMBER_INCLUDES_FILLER,
    build_mrz,
    document_problems,
    is_expired,
    parse_mrz,
)
from edge_gate.document._checkdigit import compute_check_digit

TODAY = datetime.date(2026, 12, 4)

TD3 = [
    "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
    "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
]
TD1_LONG = [
    "I<UTOD23145890<7349<<<<<<<<<<<",
    "3407127M9507122UTO<<<<<<<<<<<2",
    "STEVENSON<<PETER<JOHN<<<<<<<<<",
]
BELGIAN = [
    "IDBEL000590240<6013<<<<<<<<<<<",
    "8512017F1311048BEL851201002007",
    "REINARTZ<<ULRIKE<KATIA<E<<<<<<",
]


def _td3(**fields: object) -> list[str]:
    values: dict[str, object] = {
        "document_number": "L898902C3",
        "surname": "ERIKSSON",
        "given_names": "ANNA MARIA",
        "birth_date": "740812",
        "sex": "F",
        "expiry_date": "340415",
    }
    values.update(fields)
    return build_mrz("TD3", **values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "digit"),
    [
        ("D23145890", "7"),
        ("740812", "2"),
        ("120415", "9"),
        ("<<<<<<", "0"),
        ("L898902C3", "6"),
    ],
    ids=["letters-and-digits", "birth-date", "expiry-date", "fillers", "td3-number"],
)
def test_check_digit_icao_examples(text: str, digit: str) -> None:
    assert compute_check_digit(text) == digit


def test_check_digit_rejects_foreign_character() -> None:
    assert compute_check_digit("AB?1") is None


def test_td3_specimen_fields() -> None:
    result = parse_mrz(TD3, today=TODAY)

    assert result.valid
    assert result.format == "TD3"
    assert result.fields.surname == "ERIKSSON"
    assert result.fields.given_names == "ANNA MARIA"
    assert result.fields.document_number == "L898902C3"
    assert result.fields.birth_date == datetime.date(1974, 8, 12)
    assert result.fields.expiry_date == datetime.date(2012, 4, 15)
    assert result.fields.optional_data == "ZE184226B"
    assert set(result.checks) == {
        "document_number",
        "birth_date",
        "expiry_date",
        "optional_data",
        "composite",
    }


def test_td1_long_number_continues_in_optional_data() -> None:
    result = parse_mrz(TD1_LONG, today=TODAY)

    assert result.valid
    assert result.fields.document_number == "D23145890734"
    assert result.fields.optional_data == ""
    assert result.checks["document_number"]


def test_belgian_long_number_strict_names_tolerance() -> None:
    result = parse_mrz(BELGIAN, today=TODAY)

    assert not result.valid
    assert not result.checks["document_number"]
    assert any(LONG_NUMBER_INCLUDES_FILLER in error for error in result.errors)


def test_belgian_long_number_tolerated_with_warning() -> None:
    result = parse_mrz(
        BELGIAN, today=TODAY, tolerances=frozenset({LONG_NUMBER_INCLUDES_FILLER})
    )

    assert result.valid
    assert result.fields.document_number == "000590240601"
    assert any(LONG_NUMBER_INCLUDES_FILLER in w for w in result.warnings)


def test_empty_personal_number_takes_filler_or_zero() -> None:
    with_zero = _td3()
    with_filler = [with_zero[0], with_zero[1][:42] + "<" + with_zero[1][43]]

    assert with_zero[1][42] == "0"
    assert parse_mrz(with_zero, today=TODAY).valid
    assert parse_mrz(with_filler, today=TODAY).valid


def test_filler_check_digit_over_data_is_invalid() -> None:
    lines = _td3(optional_data="123456782")
    line2 = lines[1]
    digit = line2[42]
    assert digit == "0"
    # Composite is unchanged because '<' and '0' both count as 0.
    lines[1] = line2[:42] + "<" + line2[43]

    strict = parse_mrz(lines, today=TODAY)
    lenient = parse_mrz(lines, today=TODAY, tolerances=frozenset({FILLER_CHECK_DIGIT}))

    assert not strict.valid
    assert not strict.checks["optional_data"]
    assert lenient.valid
    assert any(FILLER_CHECK_DIGIT in w for w in lenient.warnings)


def test_unknown_tolerance_raises() -> None:
    with pytest.raises(ValueError, match="unknown MRZ tolerance"):
        parse_mrz(TD3, today=TODAY, tolerances=frozenset({"anything_goes"}))


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([], "lines: no MRZ lines given"),
        ([TD3[0]], "lines: 1 line of 44 characters"),
        ([TD3[0], TD3[1], TD3[1], TD3[1]], "lines: 4 lines"),
        ([TD3[0][:34], TD3[1][:34]], "match no ICAO 9303 layout"),
    ],
    ids=["no-lines", "one-line", "four-lines", "slovak-2x34"],
)
def test_unknown_layout_reason(lines: list[str], message: str) -> None:
    result = parse_mrz(lines, today=TODAY)

    assert result.format == "unknown"
    assert not result.valid
    assert any(message in error for error in result.errors)


def test_line_length_reported() -> None:
    result = parse_mrz([TD3[0][:43], TD3[1]], today=TODAY)

    assert result.format == "TD3"
    assert not result.valid
    assert "line 1: 43 characters, TD3 needs 44" in result.errors


def test_offending_character_and_position_reported() -> None:
    line1 = TD3[0][:10] + "a" + TD3[0][11:]

    result = parse_mrz([line1, TD3[1]], today=TODAY)

    assert not result.valid
    assert "line 1 position 11: character 'a' is not A-Z, 0-9 or <" in result.errors


def test_failed_check_digit_named() -> None:
    line2 = TD3[1][:19] + "9" + TD3[1][20:]

    result = parse_mrz([TD3[0], line2], today=TODAY)

    assert not result.valid
    assert not result.checks["birth_date"]
    assert any(
        e.startswith("birth_date: check digit at line 2 position 20")
        for e in result.errors
    )


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("SMITH<<JOHN<PAUL", ("SMITH", "JOHN PAUL")),
        ("<<RAMESH", ("", "RAMESH")),
        ("ARKFREITH", ("ARKFREITH", "")),
        ("VAN<DER<BERG<<ANNA", ("VAN DER BERG", "ANNA")),
    ],
    ids=["two-given", "no-primary", "no-separator", "multi-part-primary"],
)
def test_name_split(field: str, expected: tuple[str, str]) -> None:
    lines = _td3()
    lines[0] = ("P<UTO" + field).ljust(44, "<")

    result = parse_mrz(lines, today=TODAY)

    assert (result.fields.surname, result.fields.given_names) == expected


def test_components_without_separator_warn() -> None:
    lines = _td3()
    lines[0] = "P<UTOERIKSSON<ANNA<MARIA".ljust(44, "<")

    result = parse_mrz(lines, today=TODAY)

    assert result.fields.surname == "ERIKSSON ANNA MARIA"
    assert any(w.startswith("name: no '<<'") for w in result.warnings)


def test_single_name_gets_no_warning() -> None:
    lines = _td3(surname="ARKFREITH", given_names="")

    result = parse_mrz(lines, today=TODAY)

    assert result.fields.surname == "ARKFREITH"
    assert not [w for w in result.warnings if w.startswith("name:")]


def test_empty_primary_identifier_warns() -> None:
    lines = _td3()
    lines[0] = "P<UTO<<ANNA".ljust(44, "<")

    result = parse_mrz(lines, today=TODAY)

    assert result.fields.given_names == "ANNA"
    assert "name: the primary identifier is empty" in result.warnings


def test_full_name_field_warns_truncation() -> None:
    lines = _td3(surname="A" * 20, given_names="B" * 30)

    result = parse_mrz(lines, today=TODAY)

    assert result.valid
    assert any("truncated" in w for w in result.warnings)


@pytest.mark.parametrize(
    ("birth", "expected"),
    [
        ("261204", datetime.date(2026, 12, 4)),
        ("261205", datetime.date(1926, 12, 5)),
        ("000229", datetime.date(2000, 2, 29)),
    ],
    ids=["birth-today", "birth-tomorrow-is-past-century", "leap-day-2000"],
)
def test_birth_century_against_today(birth: str, expected: datetime.date) -> None:
    result = parse_mrz(_td3(birth_date=birth), today=TODAY)

    assert result.fields.birth_date == expected


@pytest.mark.parametrize(
    ("expiry", "expected"),
    [
        ("761204", datetime.date(2076, 12, 4)),
        ("761205", datetime.date(1976, 12, 5)),
        ("120415", datetime.date(2012, 4, 15)),
    ],
    ids=["fifty-years-ahead", "past-window", "expired-2012"],
)
def test_expiry_century_window(expiry: str, expected: datetime.date) -> None:
    result = parse_mrz(_td3(expiry_date=expiry), today=TODAY)

    assert result.fields.expiry_date == expected


def test_impossible_date_keeps_valid_structure() -> None:
    # Month 74 with a correct check digit: structure is valid, the date is not.
    result = parse_mrz(_td3(birth_date="747412"), today=TODAY)

    assert result.valid
    assert result.fields.birth_date is None
    assert "birth_date: '747412' is not a calendar date" in result.errors
    assert result.fields.surname == "ERIKSSON"


def test_sex_x_accepted_with_warning() -> None:
    result = parse_mrz(_td3(sex="X"), today=TODAY)

    assert result.valid
    assert result.fields.sex == "X"
    assert any(w.startswith("sex: 'X'") for w in result.warnings)
    assert not result.errors


def test_sex_other_letter_is_error() -> None:
    result = parse_mrz(_td3(sex="R"), today=TODAY)

    assert result.valid
    assert "sex: 'R' is not M, F or <" in result.errors


def test_germany_code_d_with_fillers() -> None:
    result = parse_mrz(_td3(issuing_state="D", nationality="D"), today=TODAY)

    assert result.fields.issuing_state == "D"
    assert result.fields.nationality == "D"
    assert not [w for w in result.warnings if "state" in w or "nationality" in w]


def test_unknown_state_code_warns() -> None:
    result = parse_mrz(_td3(issuing_state="XAA"), today=TODAY)

    assert result.valid
    assert "issuing_state: 'XAA' is not a known state code" in result.warnings


def test_french_identity_card_is_unknown() -> None:
    lines = [
        "IDFRATEST<NAME<<<<<<<<<<<<<<<<0CHE02",
        "1710GVA123451ROBERTA<<<<<<<9112311F2",
    ]

    result = parse_mrz(lines, today=TODAY)

    assert result.format == "unknown"
    assert any("French national identity card" in e for e in result.errors)


def test_document_policy_rejects_expired() -> None:
    result = parse_mrz(TD3, today=TODAY)

    assert is_expired(result, TODAY)
    assert document_problems(result, TODAY) == [
        "expiry_date: the document expired on 2012-04-15"
    ]


def test_document_policy_accepts_current() -> None:
    result = parse_mrz(_td3(expiry_date="340415"), today=TODAY)

    assert not is_expired(result, TODAY)
    assert document_problems(result, TODAY) == []


def test_document_policy_rejects_invalid_and_impossible() -> None:
    invalid = parse_mrz([TD3[0], TD3[1][:43] + "9"], today=TODAY)
    impossible = parse_mrz(_td3(birth_date="747412"), today=TODAY)

    assert document_problems(invalid, TODAY)[0].startswith("MRZ is not valid")
    assert "birth_date: '747412' is not a calendar date" in document_problems(
        impossible, TODAY
    )


def test_json_dict_dates_iso() -> None:
    output = parse_mrz(TD1_LONG, today=TODAY).to_json_dict()

    assert output["fields"]["birth_date"] == "1934-07-12"
    assert output["fields"]["expiry_date"] == "1995-07-12"
    assert output["fields"]["optional_data_2"] == ""
    assert output["checks"]["composite"] is True


def test_expired_document_is_reported_and_stays_valid() -> None:
    result = parse_mrz(_td3(expiry_date="120415"), today=TODAY)

    assert result.valid
    assert "expiry_date: the document expired on 2012-04-15" in result.warnings
    assert not result.errors


def test_expiry_day_gets_no_message() -> None:
    result = parse_mrz(_td3(expiry_date="261204"), today=TODAY)

    assert not [w for w in result.warnings if w.startswith("expiry_date:")]


@pytest.mark.parametrize("birth", ["74<<<<", "7408<<", "<<0812", "74<<12"])
def test_partly_unknown_birth_date_is_a_warning(birth: str) -> None:
    result = parse_mrz(_td3(birth_date=birth), today=TODAY)

    assert result.valid
    assert result.fields.birth_date is None
    assert f"birth_date: {birth!r} is partly unknown" in " ".join(result.warnings)
    assert not result.errors


@pytest.mark.parametrize("expiry", ["34<<<<", "3404<<"])
def test_partly_unknown_expiry_date_is_an_error(expiry: str) -> None:
    result = parse_mrz(_td3(expiry_date=expiry), today=TODAY)

    assert result.fields.expiry_date is None
    assert f"expiry_date: {expiry!r} is not a YYMMDD date (digits only)" in (
        result.errors
    )


def test_empty_number_and_name_are_reported() -> None:
    lines = _td3(document_number="", surname="", given_names="")

    result = parse_mrz(lines, today=TODAY)

    assert result.valid
    assert "document_number: not given (fillers only)" in result.warnings
    assert "name: not given (fillers only)" in result.warnings
    assert not [w for w in result.warnings if "primary identifier" in w]
