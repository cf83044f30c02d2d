"""Check that every template of an enrolment record can be read by a gate.

The record format carries templates as opaque bytes, so a base64 value that
decodes to anything passes the store's record checks. A fingerprint or iris
template that its matcher cannot parse would stop every gate that applies
it: a watchlisted one at the gallery build, an enrolled one at the traveller's
comparison. ``edge-gate publish`` rejects such a record before it is
published, and ``edge-gate sync`` rejects an update that contains one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from edge_gate.errors import TemplateError
from edge_gate.store import EnrolmentRecord


def template_problems(record: EnrolmentRecord) -> list[str]:
    """Return one message per template of ``record`` that cannot be parsed.

    Each message names the field and position, such as
    ``irises.left: iris template has 3 bytes ...``.
    """
    from edge_gate.fingerprint import FingerprintTemplate
    from edge_gate.iris import IrisTemplate

    return [
        *_parse_errors(
            "fingerprints", record.fingerprints, FingerprintTemplate.from_bytes
        ),
        *_parse_errors("irises", record.irises, IrisTemplate.from_bytes),
    ]


def _parse_errors(
    field_name: str,
    templates: Mapping[str, bytes],
    parse: Callable[[bytes], object],
) -> list[str]:
    problems: list[str] = []
    for position, data in sorted(templates.items()):
        try:
            parse(data)
        except TemplateError as err:
            problems.append(f"{field_name}.{position}: {err}")
    return problems
