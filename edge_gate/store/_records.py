"""Enrolment records as the publisher sends them and the gate reads them.

An :class:`EnrolmentRecord` is the plaintext form of one enrolment: the
person, the travel documents that find it, the expiry of the enrolment, the
watchlist and revoked flags, and the biometric templates. The publisher builds
records from its input file, the bundle format carries them as JSON objects,
and the store's writer seals their templates into ``templates.db``.

:func:`record_from_json` is the one validator for both directions, so that a
record the publisher accepts is exactly a record the gate accepts.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from edge_gate.errors import EnrolmentRecordError

# Finger positions in ISO/IEC 19794-2 order, written as hand_finger.
FINGERS: tuple[str, ...] = (
    "right_thumb",
    "right_index",
    "right_middle",
    "right_ring",
    "right_little",
    "left_thumb",
    "left_index",
    "left_middle",
    "left_ring",
    "left_little",
)
EYES: tuple[str, ...] = ("left", "right")

_T = TypeVar("_T")

TemplateKind = Literal["fingerprint", "iris"]

# Fingerprint and iris templates of this project are a few kilobytes, so a
# larger one is invalid. The bound stops one record from filling the store.
MAX_TEMPLATE_BYTES = 64 * 1024
MAX_ID_CHARS = 128
MAX_DOCUMENTS = 16

# ICAO Doc 9303: issuing state is three letters or fillers; document numbers
# use A-Z, 0-9 and the filler '<'. Longer numbers exist (TD1 continues the
# number in the optional data), so up to 30 characters are accepted. Both
# start with a letter or digit, and trailing fillers are dropped, as the
# store's document index does.
_STATE_PATTERN = re.compile(r"[A-Z][A-Z<]{0,2}")
_DOCUMENT_NUMBER_PATTERN = re.compile(r"[A-Z0-9][A-Z0-9<]{0,29}")
_ID_PATTERN = re.compile(r"[A-Za-z0-9._:@-]+")


@dataclass(frozen=True)
class DocumentRecord:
    """One travel document that leads to an enrolment."""

    issuing_state: str
    document_number: str
    expiry: datetime.date


@dataclass(frozen=True)
class EnrolmentRecord:
    """One enrolment in plaintext, as published and as applied."""

    enrolment_id: str
    person_id: str
    documents: tuple[DocumentRecord, ...]
    enrolment_expiry: datetime.date
    watchlisted: bool = False
    revoked: bool = False
    fingerprints: Mapping[str, bytes] = field(default_factory=dict)
    irises: Mapping[str, bytes] = field(default_factory=dict)

    def templates(self) -> list[tuple[TemplateKind, str, bytes]]:
        """List every template as (kind, finger or eye, template bytes)."""
        found: list[tuple[TemplateKind, str, bytes]] = []
        found.extend(
            ("fingerprint", k, v) for k, v in sorted(self.fingerprints.items())
        )
        found.extend(("iris", k, v) for k, v in sorted(self.irises.items()))
        return found


def record_to_json(record: EnrolmentRecord) -> dict[str, Any]:
    """Convert a record to the JSON object that bundles carry.

    Templates become base64 strings under ``template_b64``, the same shape
    the publisher's input file accepts.
    """
    return {
        "enrolment_id": record.enrolment_id,
        "person_id": record.person_id,
        "documents": [
            {
                "issuing_state": d.issuing_state,
                "document_number": d.document_number,
                "expiry": d.expiry.isoformat(),
            }
            for d in record.documents
        ],
        "enrolment_expiry": record.enrolment_expiry.isoformat(),
        "watchlisted": record.watchlisted,
        "revoked": record.revoked,
        "fingerprints": _encode_templates(record.fingerprints),
        "irises": _encode_templates(record.irises),
    }


def _encode_templates(templates: Mapping[str, bytes]) -> dict[str, Any]:
    return {
        name: {"template_b64": base64.b64encode(data).decode("ascii")}
        for name, data in sorted(templates.items())
    }


def record_from_json(
    value: Any,
    *,
    load_template: Any = None,
) -> EnrolmentRecord:
    """Validate one JSON object and build the record it describes.

    Args:
        value: the parsed JSON object.
        load_template: called as ``load_template(kind, position, value)`` for
            a template given as anything but ``{"template_b64": ...}`` (the
            publisher passes a function that turns an image path into template
            bytes); None rejects such values.

    Returns:
        The record. ``enrolment_id`` defaults to ``person_id``.

    Raises:
        EnrolmentRecordError: a field is missing, of the wrong type or out of
            range; the message lists every problem of the record, each naming
            the field and the value's problem.
    """
    record, problems = check_record(value, load_template=load_template)
    if record is None:
        raise EnrolmentRecordError("; ".join(problems))
    return record


def check_record(
    value: Any,
    *,
    load_template: Any = None,
) -> tuple[EnrolmentRecord | None, list[str]]:
    """Validate one JSON object and list every problem it has.

    Args:
        value: the parsed JSON object.
        load_template: as for :func:`record_from_json`; an
            :class:`EnrolmentRecordError` it raises becomes one problem.

    Returns:
        The record and an empty list when the object is valid, otherwise
        None and one message per problem (all fields are checked).
    """
    if not isinstance(value, dict):
        return None, [
            f"an enrolment record must be a JSON object, got {type(value).__name__}"
        ]
    problems: list[str] = []
    known = {
        "enrolment_id",
        "person_id",
        "documents",
        "enrolment_expiry",
        "watchlisted",
        "revoked",
        "fingerprints",
        "irises",
    }
    unknown = sorted(set(value) - known)
    if unknown:
        problems.append(
            f"unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )

    person_id = _checked(problems, _identifier, value.get("person_id"), "person_id")
    enrolment_id = (
        _checked(problems, _identifier, value["enrolment_id"], "enrolment_id")
        if "enrolment_id" in value
        else person_id
    )
    documents = _documents(value.get("documents", []), problems)
    enrolment_expiry = _checked(
        problems, _date, value.get("enrolment_expiry"), "enrolment_expiry"
    )
    watchlisted = _checked(
        problems, _flag, value.get("watchlisted", False), "watchlisted"
    )
    revoked = _checked(problems, _flag, value.get("revoked", False), "revoked")
    fingerprints = _templates(
        value.get("fingerprints", {}), "fingerprint", FINGERS, load_template, problems
    )
    irises = _templates(value.get("irises", {}), "iris", EYES, load_template, problems)

    # A record without a document can only be found by the watchlist search.
    if documents == () and watchlisted is False:
        problems.append(
            "documents is empty and watchlisted is false: such a record can never "
            "be found; add a document or set watchlisted"
        )
    if fingerprints == {} and irises == {}:
        problems.append(
            "the record has no fingerprint and no iris template; add at least one"
        )
    if (
        problems
        or enrolment_id is None
        or person_id is None
        or documents is None
        or enrolment_expiry is None
        or watchlisted is None
        or revoked is None
        or fingerprints is None
        or irises is None
    ):
        return None, problems
    record = EnrolmentRecord(
        enrolment_id=enrolment_id,
        person_id=person_id,
        documents=documents,
        enrolment_expiry=enrolment_expiry,
        watchlisted=watchlisted,
        revoked=revoked,
        fingerprints=fingerprints,
        irises=irises,
    )
    return record, []


def _checked(
    problems: list[str], check: Callable[[Any, str], _T], value: Any, name: str
) -> _T | None:
    """Run one field check; on failure note its message and return None."""
    try:
        return check(value, name)
    except EnrolmentRecordError as err:
        problems.append(str(err))
        return None


def _identifier(value: Any, name: str) -> str:
    if not isinstance(value, str) or not _ID_PATTERN.fullmatch(value):
        raise EnrolmentRecordError(
            f"{name} must be a non-empty string of letters, digits and . _ : @ -, "
            f"got {value!r}"
        )
    if len(value) > MAX_ID_CHARS:
        raise EnrolmentRecordError(
            f"{name} is {len(value)} characters long; the maximum is {MAX_ID_CHARS}"
        )
    return value


def _date(value: Any, name: str) -> datetime.date:
    if not isinstance(value, str):
        raise EnrolmentRecordError(f"{name} must be a date YYYY-MM-DD, got {value!r}")
    try:
        return datetime.date.fromisoformat(value)
    except ValueError as err:
        raise EnrolmentRecordError(
            f"{name} must be a date YYYY-MM-DD, got {value!r}"
        ) from err


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise EnrolmentRecordError(f"{name} must be true or false, got {value!r}")
    return value


def _documents(value: Any, problems: list[str]) -> tuple[DocumentRecord, ...] | None:
    """Check the documents list; note every problem, None when any."""
    if not isinstance(value, list):
        problems.append(f"documents must be a list, got {value!r}")
        return None
    if len(value) > MAX_DOCUMENTS:
        problems.append(
            f"documents has {len(value)} entries; the maximum is {MAX_DOCUMENTS}"
        )
        return None
    found = len(problems)
    documents: list[DocumentRecord] = []
    for index, item in enumerate(value):
        where = f"documents[{index}]"
        if not isinstance(item, dict):
            problems.append(f"{where} must be an object, got {item!r}")
            continue
        extra = sorted(set(item) - {"issuing_state", "document_number", "expiry"})
        if extra:
            problems.append(f"{where}: unknown field(s) {', '.join(extra)}")
        state = item.get("issuing_state")
        if not isinstance(state, str) or not _STATE_PATTERN.fullmatch(state):
            problems.append(
                f"{where}.issuing_state must be 1 to 3 characters A-Z or '<', "
                f"starting with a letter, got {state!r}"
            )
            state = None
        number = item.get("document_number")
        if not isinstance(number, str) or not _DOCUMENT_NUMBER_PATTERN.fullmatch(
            number
        ):
            problems.append(
                f"{where}.document_number must be 1 to 30 characters A-Z, 0-9 or '<'"
            )
            number = None
        expiry = _checked(problems, _date, item.get("expiry"), f"{where}.expiry")
        if state is not None and number is not None and expiry is not None:
            documents.append(
                DocumentRecord(state.rstrip("<"), number.rstrip("<"), expiry)
            )
    keys = [(d.issuing_state, d.document_number) for d in documents]
    if len(set(keys)) != len(keys):
        problems.append("documents lists the same document twice")
    if len(problems) > found:
        return None
    return tuple(documents)


def _templates(
    value: Any,
    kind: TemplateKind,
    positions: tuple[str, ...],
    load_template: Any,
    problems: list[str],
) -> dict[str, bytes] | None:
    """Check and load one kind's templates; note every problem, None when any."""
    name = "fingerprints" if kind == "fingerprint" else "irises"
    if not isinstance(value, dict):
        problems.append(f"{name} must be an object, got {value!r}")
        return None
    found = len(problems)
    templates: dict[str, bytes] = {}
    for position, item in value.items():
        if position not in positions:
            problems.append(
                f"{name}: unknown position {position!r}; known: {', '.join(positions)}"
            )
            continue
        where = f"{name}.{position}"
        try:
            if isinstance(item, dict) and set(item) == {"template_b64"}:
                data = _decode_base64(item["template_b64"], where)
            elif load_template is not None:
                data = load_template(kind, position, item)
            else:
                raise EnrolmentRecordError(
                    f'{where} must be {{"template_b64": "..."}}, got {item!r}'
                )
        except EnrolmentRecordError as err:
            problems.append(str(err))
            continue
        if not data or len(data) > MAX_TEMPLATE_BYTES:
            problems.append(
                f"{where}: a template must have 1 to {MAX_TEMPLATE_BYTES} bytes, "
                f"got {len(data)}"
            )
            continue
        templates[position] = data
    if len(problems) > found:
        return None
    return templates


def _decode_base64(value: Any, where: str) -> bytes:
    if not isinstance(value, str):
        raise EnrolmentRecordError(f"{where}.template_b64 must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as err:
        raise EnrolmentRecordError(
            f"{where}.template_b64 is not valid base64: {err}"
        ) from err
