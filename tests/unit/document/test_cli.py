"""``edge-gate mrz`` over stdin: single document, batch, exit statuses."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from edge_gate.cli import main

DEV_CASES = Path(__file__).resolve().parents[2] / "data" / "mrz" / "dev_cases.jsonl"
TD3 = (
    "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\n"
    "L898902C36UTO7408122F1204159ZE184226B<<<<<10\n"
)
FIELD_NAMES = {
    "document_type",
    "issuing_state",
    "document_number",
    "surname",
    "given_names",
    "nationality",
    "birth_date",
    "sex",
    "expiry_date",
    "optional_data",
}


def _run(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    stdin: str,
    *args: str,
) -> tuple[int, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    status = main(["mrz", *args])
    return status, capsys.readouterr().out


def test_single_document_valid(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out = _run(monkeypatch, capsys, TD3, "--today", "2026-12-04")

    output = json.loads(out)
    assert status == 0
    assert output["format"] == "TD3"
    assert output["valid"] is True
    assert output["fields"]["birth_date"] == "1974-08-12"


def test_single_document_invalid(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out = _run(monkeypatch, capsys, TD3.replace("10\n", "11\n"))

    assert status == 1
    assert json.loads(out)["checks"]["composite"] is False


def test_batch_dev_cases(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = [
        json.loads(line) for line in DEV_CASES.read_text(encoding="utf-8").splitlines()
    ]
    stdin = "".join(
        json.dumps({"id": c["id"], "lines": c["lines"]}) + "\n" for c in cases
    )

    status, out = _run(monkeypatch, capsys, stdin, "--batch", "--today", "2026-12-04")

    outputs = [json.loads(line) for line in out.splitlines()]
    assert status == 1
    assert [o["id"] for o in outputs] == [c["id"] for c in cases]
    for case, output in zip(cases, outputs, strict=True):
        assert set(output) == {
            "id",
            "format",
            "valid",
            "fields",
            "checks",
            "warnings",
            "errors",
        }
        assert set(output["fields"]) >= FIELD_NAMES
        expected_valid = case["valid"] and case["format"] != "other"
        assert output["valid"] is expected_valid, case["id"]


def test_batch_all_valid_exits_zero(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stdin = json.dumps({"id": 7, "lines": TD3.split()}) + "\n"

    status, out = _run(monkeypatch, capsys, stdin, "--batch")

    assert status == 0
    assert json.loads(out)["id"] == 7


def test_batch_bad_record_reported(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out = _run(
        monkeypatch, capsys, '{"id": "x", "lines": "oops"}\nnot json\n', "--batch"
    )

    outputs = [json.loads(line) for line in out.splitlines()]
    assert status == 1
    assert outputs[0]["id"] == "x"
    assert outputs[0]["errors"] == ["input line 1: 'lines' must be a list of strings"]
    assert outputs[1]["errors"][0].startswith("input line 2: not JSON")


def test_tolerance_flag(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    belgian = (
        "IDBEL000590240<6013<<<<<<<<<<<\n"
        "8512017F1311048BEL851201002007\n"
        "REINARTZ<<ULRIKE<KATIA<E<<<<<<\n"
    )

    strict, _ = _run(monkeypatch, capsys, belgian)
    tolerant, out = _run(
        monkeypatch, capsys, belgian, "--tolerance", "long_number_includes_filler"
    )

    assert strict == 1
    assert tolerant == 0
    assert json.loads(out)["warnings"]


@pytest.mark.parametrize(
    "args",
    [["--today", "2026-02-30"], ["--tolerance", "nope"]],
    ids=["bad-date", "bad-tolerance"],
)
def test_usage_error_exits_two(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        _run(monkeypatch, capsys, TD3, *args)

    assert exit_info.value.code == 2


_GOOD_RECORD = json.dumps({"id": "good", "lines": TD3.splitlines()})


@pytest.mark.parametrize(
    ("bad_line", "reason"),
    [
        pytest.param('{"id": ' + "9" * 4301 + ', "lines": []}', "4300", id="huge-int"),
        pytest.param("[" * 5000 + "]" * 5000, "recursion", id="deep-nesting"),
        pytest.param('{"id": NaN, "lines": []}', "NaN is not a JSON number", id="nan"),
        pytest.param('{"id": 1e999, "lines": []}', "1e999 is out of range", id="inf"),
    ],
)
def test_batch_continues_after_unusable_json(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    bad_line: str,
    reason: str,
) -> None:
    stdin = "\n".join([_GOOD_RECORD, bad_line, _GOOD_RECORD]) + "\n"
    status, out = _run(monkeypatch, capsys, stdin, "--batch", "--today", "2026-12-04")

    # Every output line must be strict JSON (no NaN or Infinity).
    outputs = [
        json.loads(line, parse_constant=pytest.fail) for line in out.splitlines()
    ]
    assert status == 1
    assert [o["valid"] for o in outputs] == [True, False, True]
    assert set(outputs[1]["fields"]) >= FIELD_NAMES
    (error,) = outputs[1]["errors"]
    assert error.startswith("input line 2: ")
    assert reason in error


def test_batch_byte_order_mark_is_ignored(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out = _run(monkeypatch, capsys, "\ufeff" + _GOOD_RECORD + "\n", "--batch")

    assert json.loads(out)["id"] == "good"
    assert status == 0


def test_single_document_splits_only_on_line_ends(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    joined = TD3.replace("\n", "\u2028", 1)
    status, out = _run(monkeypatch, capsys, joined, "--today", "2026-12-04")

    assert status == 1
    assert json.loads(out)["valid"] is False
    crlf = "\ufeff" + TD3.replace("\n", "\r\n")
    status, out = _run(monkeypatch, capsys, crlf, "--today", "2026-12-04")
    assert status == 0
    assert json.loads(out)["format"] == "TD3"


def test_batch_continues_after_invalid_utf8(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # sys.stdin decodes strictly in a UTF-8 locale such as en_GB.UTF-8.
    raw = (_GOOD_RECORD + "\n").encode() + b'{"id": "\xff"}\n'
    raw += (_GOOD_RECORD + "\n").encode()
    strict = io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8", errors="strict")
    monkeypatch.setattr("sys.stdin", strict)

    status = main(["mrz", "--batch", "--today", "2026-12-04"])

    outputs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert status == 1
    assert [o["valid"] for o in outputs] == [True, False, True]
    assert outputs[1]["errors"] == [
        "input line 2: not UTF-8 text; save the input as UTF-8"
    ]
