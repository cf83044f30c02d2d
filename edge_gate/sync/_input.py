"""The publisher's input: enrolment records as JSON lines.

One JSON object per line::

    {"person_id": "P-0001",
     "documents": [{"issuing_state": "UTO", "document_number": "L898902C3",
                    "expiry": "2031-07-01"}],
     "enrolment_expiry": "2031-07-01", "watchlisted": false, "revoked": false,
     "fingerprints": {"right_index": "images/p1_ri.png",
                      "left_index": {"template_b64": "..."}},
     "irises": {"left": "images/p1_l.png"}}

A template is either ready-made bytes (``{"template_b64": ...}``) or the path
of an image, relative to the input file's folder, that the gate's own
extractors (:class:`edge_gate.fingerprint.FingerprintExtractor`,
:class:`edge_gate.iris.IrisEncoder`) turn into a template. Blank lines and
lines starting with ``#`` are skipped.
"""

from __future__ import annotations

import importlib
import json
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from edge_gate.errors import BiometricError, EnrolmentRecordError
from edge_gate.store import EnrolmentRecord, check_record
from edge_gate.sync._template_check import template_problems

logger = logging.getLogger(__name__)

# Problems listed in one error before the rest are only counted.
MAX_REPORTED_PROBLEMS = 20

TemplateLoader = Callable[[str, str, Any], bytes]


class ImageTemplateLoader:
    """Turn image paths from the input file into templates.

    The extractors are imported and built on first use, so an input with
    ready-made templates only never loads a model.

    Args:
        base_dir: the folder relative image paths start from.
        models_dir: the models folder; None for the default lookup.
    """

    def __init__(self, base_dir: Path, models_dir: Path | None = None) -> None:
        self._base_dir = base_dir
        self._models_dir = models_dir
        self._fingerprint: Any = None
        self._iris: Any = None

    def __call__(self, kind: str, position: str, value: Any) -> bytes:
        """Extract the template of one image.

        Raises:
            EnrolmentRecordError: the value is not a path, the image cannot
                be read, or no usable template can be made from it (failure
                to enrol).
        """
        if not isinstance(value, str) or not value:
            raise EnrolmentRecordError(
                f"{kind} {position}: expected an image path or "
                f'{{"template_b64": ...}}, got {value!r}'
            )
        path = self._base_dir / value
        try:
            if kind == "fingerprint":
                return self._extract_fingerprint(path)
            return self._extract_iris(path)
        except BiometricError as err:
            raise EnrolmentRecordError(
                f"{kind} {position}: no template from {path}: {err}"
            ) from err

    def _extract_fingerprint(self, path: Path) -> bytes:
        # Imported on first use: ONNX Runtime and the models load only here.
        module: Any = importlib.import_module("edge_gate.fingerprint")
        if self._fingerprint is None:
            self._fingerprint = module.FingerprintExtractor(self._models_dir)
        template = self._fingerprint.extract(module.load_fingerprint_image(path))
        data: bytes = template.to_bytes()
        return data

    def _extract_iris(self, path: Path) -> bytes:
        module: Any = importlib.import_module("edge_gate.iris")
        if self._iris is None:
            self._iris = module.IrisEncoder(self._models_dir)
        template = self._iris.encode(module.load_iris_image(path))
        data: bytes = template.to_bytes()
        return data


def read_records(
    path: Path, *, load_template: TemplateLoader | None = None
) -> list[EnrolmentRecord]:
    """Read and validate every record of an input file.

    Args:
        path: the JSON lines file.
        load_template: turns a non-base64 template value into bytes; by
            default an :class:`ImageTemplateLoader` for the file's folder.

    Returns:
        The records in file order.

    Raises:
        EnrolmentRecordError: one or more lines are invalid (every problem
            of every line is listed with its line number), or the file contains
            no record at all.
        OSError: the file cannot be read.
    """
    loader = load_template or ImageTemplateLoader(path.parent)
    records: list[EnrolmentRecord] = []
    # The line number of each record in ``records``.
    record_lines: list[int] = []
    # (line number, message).
    found: list[tuple[int, str]] = []
    for line_number, value in _json_lines(path, found):
        record, problems = check_record(value, load_template=loader)
        if record is not None:
            problems = template_problems(record)
        found.extend((line_number, problem) for problem in problems)
        if record is not None and not problems:
            records.append(record)
            record_lines.append(line_number)
    found.extend(
        (record_lines[index], problem)
        for index, problem in duplicate_problems(
            records, lambda index: f"the record on line {record_lines[index]}"
        )
    )
    # A stable sort keeps the problems of one line in the order found.
    found.sort(key=lambda item: item[0])
    problems = [f"{path}:{line}: {problem}" for line, problem in found]
    bad_lines = len({line for line, _problem in found})
    if not records and not problems:
        raise EnrolmentRecordError(
            f"{path} contains no enrolment record; nothing was published. A publish "
            "lists every enrolment that gates should hold, so an empty file "
            "would delete them all: check the export that wrote it"
        )
    if problems:
        shown = "\n  ".join(problems[:MAX_REPORTED_PROBLEMS])
        more = len(problems) - MAX_REPORTED_PROBLEMS
        tail = f"\n  ... and {more} more" if more > 0 else ""
        raise EnrolmentRecordError(
            f"{bad_lines} invalid enrolment record(s); nothing was published; "
            f"{len(problems)} problem(s):"
            f"\n  {shown}{tail}"
        )
    return records


def _json_lines(
    path: Path, problems: list[tuple[int, str]]
) -> Iterator[tuple[int, Any]]:
    with path.open("rb") as handle:
        for line_number, raw in enumerate(_lines(handle), start=1):
            try:
                text = raw.decode("utf-8").strip()
            except UnicodeDecodeError as err:
                problems.append(
                    (
                        line_number,
                        f"not UTF-8 text (byte 0x{raw[err.start]:02x} at column "
                        f"{err.start + 1}); save the file as UTF-8",
                    )
                )
                continue
            if not text or text.startswith("#"):
                continue
            try:
                yield line_number, json.loads(text, parse_int=_bounded_int)
            except ValueError as err:
                problems.append((line_number, f"not valid JSON: {err}"))
            except RecursionError:
                # The parser recurses once per nested array or object.
                problems.append(
                    (
                        line_number,
                        "not valid JSON: arrays or objects nest too deeply for "
                        f"the parser (the limit is about {sys.getrecursionlimit()} "
                        "levels, and an enrolment record needs 3); check the "
                        "export that wrote the file",
                    )
                )


def _lines(handle: BinaryIO) -> Iterator[bytes]:
    """Yield the lines of ``handle``; LF, CR and CR LF each end one line."""
    for chunk in handle:
        line = chunk.removesuffix(b"\n").removesuffix(b"\r")
        yield from line.split(b"\r")


def _bounded_int(text: str) -> int:
    """Parse a JSON integer, refusing one too long for Python's int()."""
    digits = len(text.lstrip("-"))
    limit = sys.get_int_max_str_digits()
    if limit and digits > limit:
        raise ValueError(
            f"a number of {digits} digits is too long (the maximum is {limit}); "
            "check the export that wrote the file"
        )
    return int(text)


def duplicate_problems(
    records: Sequence[EnrolmentRecord], place: Callable[[int], str]
) -> list[tuple[int, str]]:
    """Find records that repeat an earlier record's enrolment id or document.

    A gate finds an enrolment by its id and by each of its documents, so
    each must belong to one record only.

    Args:
        records: the records in input order.
        place: names the record at an index for a message, for example
            ``"the record on line 3"``.

    Returns:
        One (index of the repeating record, message) per repeat, in input
        order. The message names the earlier record's place.
    """
    problems: list[tuple[int, str]] = []
    id_index: dict[str, int] = {}
    document_index: dict[tuple[str, str], int] = {}
    for index, record in enumerate(records):
        first = id_index.setdefault(record.enrolment_id, index)
        if first != index:
            problems.append(
                (
                    index,
                    f"enrolment id {record.enrolment_id} is already used by "
                    f"{place(first)}; give each enrolment its own id",
                )
            )
            continue
        for position, document in enumerate(record.documents):
            key = (document.issuing_state, document.document_number)
            first = document_index.setdefault(key, index)
            if first != index:
                # The document number is personal data, so the message
                # names the document by its position in the record.
                problems.append(
                    (
                        index,
                        f"documents[{position}] (issuing state "
                        f"{document.issuing_state}) is also a document of "
                        f"enrolment {records[first].enrolment_id}, "
                        f"{place(first)}; list each document in one "
                        "enrolment only",
                    )
                )
    return problems
