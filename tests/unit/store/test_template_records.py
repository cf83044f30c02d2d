"""Validation of enrolment records: every problem of a record at once."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from edge_gate.errors import EnrolmentRecordError
from edge_gate.store import check_record, record_from_json

TEMPLATE = {"template_b64": base64.b64encode(b"T" * 32).decode()}


def valid() -> dict[str, Any]:
    return {
        "person_id": "P1",
        "documents": [
            {
                "issuing_state": "UTO",
                "document_number": "L898902C3",
                "expiry": "2031-07-01",
            }
        ],
        "enrolment_expiry": "2031-07-01",
        "fingerprints": {"right_index": TEMPLATE},
    }


def test_valid_record_has_no_problem() -> None:
    record, problems = check_record(valid())

    assert problems == []
    assert record is not None
    assert record.enrolment_id == "P1"


def test_every_problem_of_a_record_is_listed() -> None:
    value = valid()
    value["person_id"] = ""
    value["enrolment_expiry"] = "2033-02-30"
    value["documents"][0]["issuing_state"] = "1X"
    value["documents"][0]["expiry"] = "never"
    value["irises"] = {"middle": TEMPLATE}
    value["revoked"] = "yes"

    record, problems = check_record(value)

    assert record is None
    assert [problem.split(" ", 1)[0] for problem in problems] == [
        "person_id",
        "documents[0].issuing_state",
        "documents[0].expiry",
        "enrolment_expiry",
        "revoked",
        "irises:",
    ]


def test_record_from_json_names_every_problem() -> None:
    value = valid()
    value["person_id"] = ""
    value["enrolment_expiry"] = "2033-02-30"

    with pytest.raises(EnrolmentRecordError) as err:
        record_from_json(value)

    assert "person_id must be a non-empty string" in str(err.value)
    assert "enrolment_expiry must be a date YYYY-MM-DD, got '2033-02-30'" in str(
        err.value
    )


def test_loader_failures_are_problems_too() -> None:
    def refuse(kind: str, position: str, item: Any) -> bytes:
        raise EnrolmentRecordError(f"{kind} {position}: no template from {item}")

    value = valid()
    value["fingerprints"] = {"right_index": "a.png", "left_index": "b.png"}
    value["enrolment_expiry"] = 5

    record, problems = check_record(value, load_template=refuse)

    assert record is None
    assert problems == [
        "enrolment_expiry must be a date YYYY-MM-DD, got 5",
        "fingerprint right_index: no template from a.png",
        "fingerprint left_index: no template from b.png",
    ]
