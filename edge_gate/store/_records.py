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
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

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
            range; the message names the field and the value's problem.
    """
    if not isinstance(value, dict):
        raise EnrolmentRecordError(
            f"an enrolment record must be a JSON object, got {type(value).__name__}"
        )
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
        raise EnrolmentRecordError(
            f"unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )

    person_id = _identifier(value.get("person_id"), "person_id")
    enrolment_id = _identifier(value.get("enrolment_id", person_id), "enrolment_id")
    documents = _documents(value.get("documents", []))
    enrolment_expiry = _date(value.get("enrolment_expiry"), "enrolment_expiry")
    watchlisted = _flag(value.get("watchlisted", False), "watchlisted")
    revoked = _flag(value.get("revoked", False), "revoked")
    fingerprints = _templates(
        value.get("fingerprints", {}), "fingerprint", FINGERS, load_template
    )
    irises = _templates(value.get("irises", {}), "iris", EYES, load_template)

    # A record without a document can only be found by the watchlist search.
    if not documents and not watchlisted:
        raise EnrolmentRecordError(
            "documents is empty and watchlisted is false: such a record can never "
            "be found; add a document or set watchlisted"
        )
    if not fingerprints and not irises:
        raise EnrolmentRecordError(
            "the record has no fingerprint and no iris template; add at least one"
        )
    return EnrolmentRecord(
        enrolment_id=enrolment_id,
        person_id=person_id,
        documents=documents,
        enrolment_expiry=enrolment_expiry,
        watchlisted=watchlisted,
        revoked=revoked,
        fingerprints=fingerprints,
        irises=irises,
    )


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


def _documents(value: Any) -> tuple[DocumentRecord, ...]:
    if not isinstance(value, list):
        raise EnrolmentRecordError(f"documents must be a list, got {value!r}")
    if len(value) > MAX_DOCUMENTS:
        raise EnrolmentRecordError(
            f"documents has {len(value)} entries; the maximum is {MAX_DOCUMENTS}"
        )
    documents: list[DocumentRecord] = []
    for index, item in enumerate(value):
        where = f"documents[{index}]"
        if not isinstance(item, dict):
            raise EnrolmentRecordError(f"{where} must be an object, got {item!r}")
        extra = sorted(set(item) - {"issuing_state", "document_number", "expiry"})
        if extra:
            raise EnrolmentRecordError(f"{where}: unknown field(s) {', '.join(extra)}")
        state = item.get("issuing_state")
        if not isinstance(state, str) or not _STATE_PATTERN.fullmatch(state):
            raise EnrolmentRecordError(
                f"{where}.issuing_state must be 1 to 3 characters A-Z or '<', "
                f"starting with a letter, got {state!r}"
            )
        number = item.get("document_number")
        if not isinstance(number, str) or not _DOCUMENT_NUMBER_PATTERN.fullmatch(
            number
        ):
            raise EnrolmentRecordError(
                f"{where}.document_number must be 1 to 30 characters A-Z, 0-9 or '<'"
            )
        expiry = _date(item.get("expiry"), f"{where}.expiry")
        documents.append(DocumentRecord(state.rstrip("<"), number.rstrip("<"), expiry))
    keys = [(d.issuing_state, d.document_number) for d in documents]
    if len(set(keys)) != len(keys):
        raise EnrolmentRecordError("documents lists the same document twice")
    return tuple(documents)


def _templates(
    value: Any,
    kind: TemplateKind,
    positions: tuple[str, ...],
    load_template: Any,
) -> dict[str, bytes]:
    name = "fingerprints" if kind == "fingerprint" else "irises"
    if not isinstance(value, dict):
        raise EnrolmentRecordError(f"{name} must be an object, got {value!r}")
    templates: dict[str, bytes] = {}
    for position, item in value.items():
        if position not in positions:
            raise EnrolmentRecordError(
                f"{name}: unknown position {position!r}; known: {', '.join(positions)}"
            )
        where = f"{name}.{position}"
        if isinstance(item, dict) and set(item) == {"template_b64"}:
            data = _decode_base64(item["template_b64"], where)
        elif load_template is not None:
            data = load_template(kind, position, item)
        else:
            raise EnrolmentRecordError(
                f'{where} must be {{"template_b64": "..."}}, got {item!r}'
            )
        if not data or len(data) > MAX_TEMPLATE_BYTES:
            raise EnrolmentRecordError(
                f"{where}: a template must have 1 to {MAX_TEMPLATE_BYTES} bytes, "
                f"got {len(data)}"
            )
        templates[position] = data
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
