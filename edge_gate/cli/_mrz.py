"""``edge-gate mrz``: parse MRZ lines from stdin and print the result as JSON.

Without ``--batch`` stdin contains the lines of one document (blank lines are
ignored). With ``--batch`` each stdin line is a JSON object
``{"id": ..., "lines": [...]}`` and each produces one JSON line on stdout,
with ``id`` echoed; line ends left at the end of an MRZ line are dropped, and
blank input lines are skipped. In both modes LF, CR and CR LF end a line.
Exit status: 0 when every document is valid ICAO 9303, 1 otherwise (an input
line that is not such an object counts as an invalid document), 2 for a usage
error.
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import math
import re
import sys
from collections.abc import Iterator
from typing import Any, TextIO

from edge_gate.document import TOLERANCES, MrzFields, MrzResult, parse_mrz

EXIT_OK = 0
EXIT_FAILED = 1

# Only these end a line of a single document; str.splitlines() would also
# split on form feeds, separators and U+2028, which no reader sends.
_LINE_END = re.compile(r"\r\n|\r|\n")
_BYTE_ORDER_MARK = "\ufeff"
# Characters read from stdin at a time in batch mode.
_READ_CHARS = 64 * 1024
# Maximum length of a batch input line that is kept. A record of three
# 30-character TD1 lines with an id takes about 150 characters, so a longer
# line is not a record. Its characters are counted and dropped, so memory
# stays bounded.
MAX_LINE_CHARS = 64 * 1024


def register(subparsers: Any) -> None:
    """Add the ``mrz`` command."""
    parser = subparsers.add_parser(
        "mrz",
        help="parse MRZ lines from stdin and print the result as JSON",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    parser.add_argument(
        "--batch",
        action="store_true",
        help='read JSON lines {"id": ..., "lines": [...]} and write one JSON '
        "line per document",
    )
    parser.add_argument(
        "--today",
        type=_parse_today,
        default=None,
        metavar="YYYY-MM-DD",
        help="reference date for the centuries of dates (default: today, UTC)",
    )
    parser.add_argument(
        "--tolerance",
        action="append",
        choices=sorted(TOLERANCES),
        default=[],
        help="accept one known national deviation from ICAO 9303, with a "
        "warning (repeatable)",
    )
    parser.set_defaults(handler=run_mrz)


def _parse_today(text: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid date {text!r}; use YYYY-MM-DD, for example 2026-01-31"
        ) from None


def run_mrz(args: argparse.Namespace) -> int:
    """Parse stdin as one document or as JSON lines, print JSON, return status."""
    today: datetime.date = args.today or datetime.datetime.now(datetime.UTC).date()
    tolerances = frozenset(args.tolerance)
    if isinstance(sys.stdin, io.TextIOWrapper):
        # Stdin decodes strictly in UTF-8 locales. With this, bytes that are
        # not UTF-8 give an invalid document instead of ending the batch.
        sys.stdin.reconfigure(errors="surrogateescape")
    if args.batch:
        return _run_batch(sys.stdin, sys.stdout, today, tolerances)

    text = sys.stdin.read().removeprefix(_BYTE_ORDER_MARK)
    lines = [line for line in _LINE_END.split(text) if line.strip(" \t")]
    result = parse_mrz(lines, today=today, tolerances=tolerances)
    json.dump(result.to_json_dict(), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return EXIT_OK if result.valid else EXIT_FAILED


def _run_batch(
    source: TextIO,
    sink: TextIO,
    today: datetime.date,
    tolerances: frozenset[str],
) -> int:
    """Parse each JSON line of ``source`` and write one JSON line per document."""
    all_valid = True
    for number, raw in enumerate(_read_lines(source), start=1):
        record_id: Any = None
        lines: list[str] = []
        problem: str | None
        if isinstance(raw, int):
            problem = (
                f"input line {number}: {raw:,} characters, more than the "
                f"{MAX_LINE_CHARS:,} of any record; check that the input is "
                "one JSON object per line"
            )
        else:
            text = raw.removeprefix(_BYTE_ORDER_MARK) if number == 1 else raw
            if not text.strip():
                continue
            record_id, lines, problem = _read_record(text, number)
        if problem is not None:
            output = _input_error(record_id, problem)
        else:
            result: MrzResult = parse_mrz(lines, today=today, tolerances=tolerances)
            output = {"id": record_id, **result.to_json_dict()}
        try:
            encoded = json.dumps(output, allow_nan=False)
        except (ValueError, RecursionError) as err:
            output = _input_error(None, f"input line {number}: id not usable ({err})")
            encoded = json.dumps(output)
        all_valid = all_valid and bool(output["valid"])
        sink.write(encoded + "\n")
    sink.flush()
    return EXIT_OK if all_valid else EXIT_FAILED


def _read_record(text: str, number: int) -> tuple[Any, list[str], str | None]:
    """Return ``(id, lines, None)``, or ``(id, [], reason)`` for a bad record."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # Undecodable input bytes, kept as lone surrogates by stdin.
        return None, [], f"input line {number}: not UTF-8 text; save the input as UTF-8"
    try:
        record = json.loads(
            text,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
            parse_int=_bounded_int,
        )
    except json.JSONDecodeError as err:
        return None, [], f"input line {number}: not JSON ({err.msg})"
    except (ValueError, RecursionError) as err:
        # Over-long integers, non-finite numbers and very deep nesting: the
        # line is refused, the batch goes on.
        return None, [], f"input line {number}: not usable JSON ({err})"
    if not isinstance(record, dict):
        return None, [], f"input line {number}: expected a JSON object"
    record_id = record.get("id")
    lines = record.get("lines")
    if not isinstance(lines, list) or not all(isinstance(x, str) for x in lines):
        return record_id, [], f"input line {number}: 'lines' must be a list of strings"
    return record_id, [line.rstrip("\r\n") for line in lines], None


def _read_lines(source: TextIO) -> Iterator[str | int]:
    """Yield the lines of ``source`` without their line ends.

    LF, CR and CR LF each end one line whatever newline mode ``source`` has,
    as in single-document mode. ``source`` is read in chunks, and each
    character is scanned once, however long its line. A line longer than
    ``MAX_LINE_CHARS`` is yielded as its length in characters instead.
    """
    parts: list[str] = []
    line_chars = 0
    after_cr = False

    def finish(piece: str) -> str | int:
        nonlocal parts, line_chars
        length = line_chars + len(piece)
        line: str | int = (
            length if length > MAX_LINE_CHARS else "".join([*parts, piece])
        )
        parts, line_chars = [], 0
        return line

    while chunk := source.read(_READ_CHARS):
        # A CR at the end of the previous chunk already ended a line, so an
        # LF right after it completes that CR LF and starts no new line.
        if after_cr and chunk.startswith("\n"):
            chunk = chunk[1:]
        after_cr = chunk.endswith("\r")
        *complete, rest = _LINE_END.split(chunk)
        for piece in complete:
            yield finish(piece)
        # Past the limit only the count grows.
        if line_chars + len(rest) <= MAX_LINE_CHARS:
            parts.append(rest)
        else:
            parts = []
        line_chars += len(rest)
    if line_chars:
        yield finish("")


def _bounded_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    limit = sys.get_int_max_str_digits()
    if limit and digits > limit:
        # int() would fail too, with advice for Python programmers.
        raise ValueError(
            f"a number of {digits} digits is too long; the maximum is {limit} "
            "digits, so write the value as a JSON string"
        )
    return int(text)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number; give a finite number or a string")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range; give a smaller number or a string")
    return value


def _input_error(record_id: Any, problem: str) -> dict[str, Any]:
    """Return the output of a record that could not be read as a document."""
    result = MrzResult(
        format="unknown",
        valid=False,
        fields=MrzFields(),
        checks={},
        warnings=(),
        errors=(problem,),
    )
    return {"id": record_id, **result.to_json_dict()}
