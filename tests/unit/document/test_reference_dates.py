"""Reference dates across ``datetime``'s whole range: no exception, true messages."""

from __future__ import annotations

import datetime
import io
import json

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from edge_gate.cli import main
from edge_gate.document import build_mrz, parse_mrz

TD3 = [
    "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
    "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
]
# Any six digits, so impossible months and days are drawn too.
yymmdd = st.integers(min_value=0, max_value=999999).map("{:06d}".format)
# Plain st.dates() rarely reaches the first and last centuries, where the
# century arithmetic leaves datetime's range, so those are drawn on purpose.
any_day = st.one_of(
    st.dates(),
    st.dates(max_value=datetime.date(200, 12, 31)),
    st.dates(min_value=datetime.date(9900, 1, 1)),
)


def _td3(birth_date: str, expiry_date: str) -> list[str]:
    return build_mrz(
        "TD3",
        document_number="L898902C3",
        surname="ERIKSSON",
        given_names="ANNA MARIA",
        birth_date=birth_date,
        sex="F",
        expiry_date=expiry_date,
    )


@given(today=any_day, birth=yymmdd, expiry=yymmdd)
@example(today=datetime.date.max, birth="740812", expiry="120415")
@example(today=datetime.date.min, birth="740812", expiry="120415")
def test_parse_any_reference_date(
    today: datetime.date, birth: str, expiry: str
) -> None:
    result = parse_mrz(_td3(birth, expiry), today=today)

    assert result.valid
    birth_date = result.fields.birth_date
    expiry_date = result.fields.expiry_date
    if birth_date is None:
        assert any(e.startswith(f"birth_date: {birth!r}") for e in result.errors)
    else:
        assert birth_date <= today
        assert birth_date.strftime("%y%m%d") == birth
    if expiry_date is None:
        assert any(e.startswith(f"expiry_date: {expiry!r}") for e in result.errors)
    else:
        assert expiry_date.year // 100 in (19, 20)
        assert expiry_date.strftime("%y%m%d") == expiry


@given(today=any_day)
@example(today=datetime.date.max)
def test_specimen_any_reference_date(today: datetime.date) -> None:
    result = parse_mrz(TD3, today=today)

    assert result.valid
    assert result.format == "TD3"


def test_last_day_expiry_limit_clamped() -> None:
    result = parse_mrz(TD3, today=datetime.date.max)

    assert result.fields.expiry_date == datetime.date(2012, 4, 15)
    assert result.fields.birth_date == datetime.date(9974, 8, 12)
    assert (
        "expiry_date: 50 years after the reference date 9999-12-31 is past "
        "9999-12-31, the last date this parser handles, so expiry dates are "
        "accepted up to 9999-12-31"
    ) in result.warnings


def test_expiry_limit_not_clamped_before_9950() -> None:
    result = parse_mrz(TD3, today=datetime.date(9949, 12, 31))

    assert not [w for w in result.warnings if "past" in w]


def test_first_day_birth_after_reference() -> None:
    result = parse_mrz(TD3, today=datetime.date.min)

    assert result.fields.birth_date is None
    assert (
        "birth_date: '740812' gives no valid date on or before the reference "
        "date 0001-01-01 in its century or the two before it, and a birth "
        "date cannot lie after the reference date"
    ) in result.errors
    assert not [e for e in result.errors if "not a calendar date" in e]


def test_first_day_expiry_too_far_ahead() -> None:
    result = parse_mrz(TD3, today=datetime.date.min)

    assert result.fields.expiry_date is None
    assert (
        "expiry_date: '120415' gives no valid date in 19YY or 20YY up to "
        "0051-01-01, 50 years after the reference date 0001-01-01"
    ) in result.errors


def test_leap_day_without_earlier_leap_year() -> None:
    # 2000-02-29 lies after the reference date, and 1900 and 1800 have no
    # 29 February.
    result = parse_mrz(
        _td3(birth_date="000229", expiry_date="340415"),
        today=datetime.date(2000, 1, 15),
    )

    assert result.fields.birth_date is None
    assert any(
        e.startswith("birth_date: '000229' gives no valid date on or before")
        for e in result.errors
    )


def test_impossible_month_still_not_calendar_date() -> None:
    result = parse_mrz(
        _td3(birth_date="741312", expiry_date="341315"),
        today=datetime.date.min,
    )

    assert "birth_date: '741312' is not a calendar date" in result.errors
    assert "expiry_date: '341315' is not a calendar date" in result.errors


@pytest.mark.parametrize(
    "today", ["9999-12-31", "0001-01-01"], ids=["last-day", "first-day"]
)
def test_cli_extreme_reference_date(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    today: str,
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(TD3) + "\n"))

    status = main(["mrz", "--today", today])

    output = json.loads(capsys.readouterr().out)
    assert status == 0
    assert output["valid"] is True
