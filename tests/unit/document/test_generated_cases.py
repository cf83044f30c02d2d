"""MRZ cases generated from a separate reading of ICAO 9303, of the dev cases' kinds.

A checker written apart from edge_gate's parser made the file. It has its
own check digits, layouts, long numbers and century rules. The file has 302
documents of every layout, most of them valid by construction, and
mutations of them: one changed check digit, a character outside the set,
wrong lengths, extra or missing lines, lowercase, spaces, look-alike
letters, and CR LF left on a line. Each case states its strict and
lenient verdicts, and documents also state their fields and checks. Cases
marked ``expect_unknown`` have no ICAO layout.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pytest

from edge_gate.document import TOLERANCES, mrz_is_valid, parse_mrz

CASES_PATH = (
    Path(__file__).resolve().parents[2] / "data" / "mrz" / "generated_cases.jsonl"
)
CASES = [json.loads(line) for line in CASES_PATH.read_text("utf-8").splitlines()]
TODAY = datetime.date(2026, 12, 4)


def _today(case: dict[str, Any]) -> datetime.date:
    return datetime.date.fromisoformat(
        case.get("expected_iso", {}).get("today", "2026-12-04")
    )


def test_generated_cases_cover_every_layout() -> None:
    formats = {case["format"] for case in CASES}
    assert {"TD1", "TD2", "TD3", "MRVA", "MRVB"} <= formats
    assert sum(case["valid"] for case in CASES) >= 250
    assert sum(not case["valid"] for case in CASES) >= 500


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_verdicts(case: dict[str, Any]) -> None:
    today = _today(case)

    strict = parse_mrz(case["lines"], today=today)
    lenient = parse_mrz(case["lines"], today=today, tolerances=TOLERANCES)

    assert strict.valid is case["valid"], strict.errors
    assert lenient.valid is case["valid_lenient"], lenient.errors
    assert mrz_is_valid(case["lines"]) is case["valid"]
    if case.get("expect_unknown"):
        assert strict.format == "unknown"
    if not strict.valid:
        assert strict.errors


DOCUMENTS = [
    case
    for case in CASES
    if "expected_iso" in case
    and case.get("compare") != "verdict"
    and not case.get("expect_unknown")
]


@pytest.mark.parametrize("case", DOCUMENTS, ids=[case["id"] for case in DOCUMENTS])
def test_fields_and_checks(case: dict[str, Any]) -> None:
    result = parse_mrz(case["lines"], today=_today(case)).to_json_dict()

    expected = dict(case["expected"])
    expected["birth_date"] = case["expected_iso"]["birth_date"]
    expected["expiry_date"] = case["expected_iso"]["expiry_date"]
    skipped = set(case.get("debatable_fields", []))
    got = {name: result["fields"][name] for name in expected if name not in skipped}
    assert got == {n: v for n, v in expected.items() if n not in skipped}
    if not case.get("debatable_format"):
        assert result["format"] == case["format"]
    assert result["checks"] == case["expected_checks"]
    expired = case["expected_iso"]["expired"]
    assert any("expired on" in w for w in result["warnings"]) is expired
