"""Every MRZ dev case gets its ICAO 9303 verdict, format and stated fields."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pytest

from edge_gate.document import TOLERANCES, mrz_is_valid, parse_mrz

# Fixed reference date, so that century resolution does not drift with time.
TODAY = datetime.date(2026, 12, 4)
DEV_CASES = Path(__file__).resolve().parents[2] / "data" / "mrz" / "dev_cases.jsonl"
CASES = [
    json.loads(line)
    for line in DEV_CASES.read_text(encoding="utf-8").splitlines()
    if line.strip()
]

# Cases whose source states the value a human reads (OCR errors corrected),
# not the printed characters. The parser reports the printed characters and
# never repairs them, so only the verdict is compared for these.
SOURCE_CORRECTED_OCR = {
    "chem-td1-che-ocr-noisy": "letters for digits in dates, digits in names",
    "chem-td3-ocr-noisy": "letters for digits in dates, 0 for O in a state code",
    "chem7-td3-can-ocr-space-anon": "'<<' read as '<C' in the name",
    "foxanna3-td3-bwa-o-for-zero-anon": "letter O for zero in the number",
}


def _as_yymmdd(value: str | None) -> str | None:
    if value is None:
        return None
    return datetime.date.fromisoformat(value).strftime("%y%m%d")


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_dev_case_verdict(case: dict[str, Any]) -> None:
    result = parse_mrz(case["lines"], today=TODAY)

    if case["format"] == "other":
        assert result.format == "unknown"
        assert not result.valid
        assert result.errors, "an unknown layout must say why"
        return
    assert result.format == case["format"]
    assert result.valid is case["valid"], result.errors
    assert mrz_is_valid(case["lines"]) is case["valid"]
    if not case["valid"]:
        assert result.errors


@pytest.mark.parametrize(
    "case",
    [case for case in CASES if "valid_lenient" in case],
    ids=[case["id"] for case in CASES if "valid_lenient" in case],
)
def test_dev_case_lenient_verdict(case: dict[str, Any]) -> None:
    result = parse_mrz(case["lines"], today=TODAY, tolerances=TOLERANCES)

    assert result.valid is case["valid_lenient"], result.errors
    assert mrz_is_valid(case["lines"], tolerances=TOLERANCES) is result.valid
    if result.valid and not case["valid"]:
        assert any("tolerance" in warning for warning in result.warnings)


FIELD_CASES = [
    case
    for case in CASES
    if case["format"] != "other"
    and case.get("expected")
    and case["id"] not in SOURCE_CORRECTED_OCR
]


@pytest.mark.parametrize("case", FIELD_CASES, ids=[case["id"] for case in FIELD_CASES])
def test_dev_case_stated_fields(case: dict[str, Any]) -> None:
    fields = parse_mrz(case["lines"], today=TODAY).to_json_dict()["fields"]

    for name, expected in case["expected"].items():
        got = fields[name]
        if name in ("birth_date", "expiry_date"):
            got = _as_yymmdd(got)
            if got is None and expected is not None:
                # An impossible date is kept out of the fields and reported.
                continue
        assert got == expected, name


def test_impossible_date_is_reported() -> None:
    case = next(case for case in CASES if case["id"] == "zs-td3-gbr-day41")

    result = parse_mrz(case["lines"], today=TODAY)

    assert result.fields.birth_date is None
    assert "birth_date: '880941' is not a calendar date" in result.errors
