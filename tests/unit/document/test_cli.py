"""``edge-gate mrz`` over stdin: single document, batch, exit statuses."""

from __future__ import annotations

import datetime
import io
import json
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from edge_gate.cli import _mrz, main

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
        pytest.param(
            '{"id": ' + "9" * 5000 + ', "lines": []}',
            "a number of 5000 digits is too long; the maximum is 4300 digits, "
            "so write the value as a JSON string",
            id="5000-digit-id",
        ),
        pytest.param(
            '{"id": "x", "lines": [], "n": -' + "1" * 4301 + "}",
            "a number of 4301 digits is too long",
            id="negative-huge-int",
        ),
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
    assert "set_int_max_str_digits" not in error


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


class ShortReads(io.StringIO):
    """A text stream whose reads return at most ``size`` characters.

    Like ``sys.stdin``, it ends lines at LF only when iterated.
    """

    def __init__(self, text: str, size: int) -> None:
        super().__init__(text, newline="\n")
        self._size = size

    def read(self, size: int | None = -1, /) -> str:
        count = self._size if size is None or size < 0 else min(size, self._size)
        return super().read(count)


# Each record: its kind, the line end after it, and blank lines before it.
# A blank line is never empty, because an empty line ended by LF right after
# a CR would make a CR LF.
_BATCH_RECORD = st.tuples(
    st.sampled_from(["good", "bad-lines", "not-json"]),
    st.sampled_from(["\n", "\r", "\r\n"]),
    st.lists(st.sampled_from([" ", "\t "]), max_size=2),
)


@given(
    records=st.lists(_BATCH_RECORD, min_size=1, max_size=8),
    final_line_end=st.booleans(),
    read_size=st.integers(min_value=1, max_value=80),
)
@example(
    records=[("good", "\r\n", []), ("bad-lines", "\r", [])],
    final_line_end=True,
    read_size=len(_GOOD_RECORD) + 1,
)
def test_batch_one_output_per_record(
    records: list[tuple[str, str, list[str]]],
    final_line_end: bool,
    read_size: int,
) -> None:
    texts = {
        "good": _GOOD_RECORD,
        "bad-lines": '{"id": "bad", "lines": "oops"}',
        "not-json": "{not json",
    }
    expected = {
        "good": ("good", True),
        "bad-lines": ("bad", False),
        "not-json": (None, False),
    }
    stdin = ""
    line_numbers = []
    line_number = 0
    for kind, line_end, blanks in records:
        for blank in blanks:
            stdin += blank + line_end
        line_number += len(blanks) + 1
        line_numbers.append(line_number)
        stdin += texts[kind] + line_end
    if not final_line_end:
        stdin = stdin.removesuffix(records[-1][1])
    sink = io.StringIO()

    status = _mrz._run_batch(
        ShortReads(stdin, read_size),
        sink,
        datetime.date(2026, 12, 4),
        frozenset(),
    )

    outputs = [json.loads(line) for line in sink.getvalue().splitlines()]
    assert [(o["id"], o["valid"]) for o in outputs] == [
        expected[kind] for kind, _line_end, _blanks in records
    ]
    assert status == (0 if all(kind == "good" for kind, *_rest in records) else 1)
    for output, number in zip(outputs, line_numbers, strict=True):
        if not output["valid"]:
            assert output["errors"][0].startswith(f"input line {number}: ")


def test_batch_bare_cr_ends_a_record(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stdin = '{"id": 3, "lines": ["a"]}\r' + _GOOD_RECORD + "\r\n" + _GOOD_RECORD

    status, out = _run(monkeypatch, capsys, stdin, "--batch", "--today", "2026-12-04")

    outputs = [json.loads(line) for line in out.splitlines()]
    assert status == 1
    assert [o["id"] for o in outputs] == [3, "good", "good"]
    assert [o["valid"] for o in outputs] == [False, True, True]


@pytest.mark.parametrize("read_size", [7_000, 64 * 1024])
def test_batch_overlong_line_counted_not_kept(read_size: int) -> None:
    long_line = "x" * 200_000
    at_limit = "y" * _mrz.MAX_LINE_CHARS
    stdin = "\n".join([_GOOD_RECORD, long_line, at_limit, _GOOD_RECORD]) + "\n"
    sink = io.StringIO()

    status = _mrz._run_batch(
        ShortReads(stdin, read_size), sink, datetime.date(2026, 12, 4), frozenset()
    )

    outputs = [json.loads(line) for line in sink.getvalue().splitlines()]
    assert [(o["id"], o["valid"]) for o in outputs] == [
        ("good", True),
        (None, False),
        (None, False),
        ("good", True),
    ]
    assert status == 1
    long_error = json.dumps(outputs[1])
    assert "input line 2: 200,000 characters, more than the 65,536" in long_error
    assert "input line 3: not JSON" in json.dumps(outputs[2])
