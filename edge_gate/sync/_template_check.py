"""Check that every template of an enrolment record can be used by a gate.

The record format carries templates as opaque bytes, so a base64 value that
decodes to anything passes the store's record checks. A fingerprint or iris
template that its matcher cannot parse would stop every gate that applies
it: a watchlisted one at the gallery build, an enrolled one at the traveller's
comparison. A template that parses but cannot be compared with a capture is
as bad. An iris code on another grid stops the watchlist gallery. An iris
with too few valid bits, or a fingerprint with too few minutiae, scores as
an unrelated eye or finger even against its owner, so a watchlisted person
would pass unflagged. ``edge-gate publish`` rejects such a record before it
is published, and ``edge-gate sync`` rejects an update that contains one.

The checks apply to every record, enrolled and watchlisted. Each limit is
one that the lane's own encoder and extractor always meet, so no template
they made is rejected, and an enrolled template that fails one could never
accept its traveller.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, TypeVar

from edge_gate.errors import TemplateError
from edge_gate.store import EnrolmentRecord

if TYPE_CHECKING:
    from edge_gate.fingerprint import FingerprintTemplate
    from edge_gate.iris import IrisTemplate

TemplateT = TypeVar("TemplateT")


def template_problems(record: EnrolmentRecord) -> list[str]:
    """Return one message per template of ``record`` that a gate cannot use.

    Each message names the field and position, such as
    ``irises.left: iris template has 3 bytes ...``.
    """
    from edge_gate.fingerprint import FingerprintTemplate
    from edge_gate.iris import IrisTemplate

    return [
        *_problems(
            "fingerprints",
            record.fingerprints,
            FingerprintTemplate.from_bytes,
            _fingerprint_problem,
        ),
        *_problems("irises", record.irises, IrisTemplate.from_bytes, _iris_problem),
    ]


def _problems(
    field_name: str,
    templates: Mapping[str, bytes],
    parse: Callable[[bytes], TemplateT],
    usable: Callable[[TemplateT], str | None],
) -> list[str]:
    problems: list[str] = []
    for position, data in sorted(templates.items()):
        try:
            problem = usable(parse(data))
        except TemplateError as err:
            problem = str(err)
        if problem is not None:
            problems.append(f"{field_name}.{position}: {problem}")
    return problems


def _iris_problem(template: IrisTemplate) -> str | None:
    """Return why the matcher cannot compare ``template``, or None."""
    from edge_gate.iris._encoder import CODE_SHAPE
    from edge_gate.iris._match import MIN_COMMON_BITS

    if template.shape != CODE_SHAPE:
        return (
            f"iris code grid {_grid(template.shape)} differs from the lane "
            f"encoder's {_grid(CODE_SHAPE)}, so no capture can be compared with "
            "it; encode the eye image with edge-gate's iris encoder"
        )
    valid_bits = int(template.mask.sum()) * template.shape[2]
    if valid_bits < MIN_COMMON_BITS:
        # A probe can share at most the template's own valid bits, and the
        # matcher scores a shift with fewer than MIN_COMMON_BITS in common as
        # unrelated eyes.
        return (
            f"iris template has {valid_bits} valid code bits, fewer than the "
            f"{MIN_COMMON_BITS} the matcher needs to compare it, so it would "
            "score as an unrelated eye even against its owner; capture the eye "
            "again with less of it covered"
        )
    return None


def _fingerprint_problem(template: FingerprintTemplate) -> str | None:
    """Return why the matcher cannot compare ``template``, or None."""
    from edge_gate.fingerprint._extract import MIN_MINUTIAE, MODEL_DPI
    from edge_gate.fingerprint._image import MAX_SIDE_PX, MIN_SIDE_PX

    # The extractor resamples every image to MODEL_DPI and checks the
    # result's sides, so its templates never fall outside these limits.
    if template.dpi != MODEL_DPI:
        return (
            f"fingerprint template is at {template.dpi} dpi, but the matcher "
            f"compares minutiae at {MODEL_DPI} dpi only; extract it again with "
            "edge-gate's fingerprint extractor"
        )
    sides = (template.width, template.height)
    if min(sides) < MIN_SIDE_PX or max(sides) > MAX_SIDE_PX:
        return (
            f"fingerprint image geometry {template.width}x{template.height} is "
            f"outside the {MIN_SIDE_PX}..{MAX_SIDE_PX} pixels per side that the "
            "extractor makes; extract it again with edge-gate's fingerprint "
            "extractor"
        )
    # The matcher forms no cylinder from fewer than 3 minutiae, so such a
    # template scores 0. The extractor never returns fewer than MIN_MINUTIAE.
    # TODO: minutiae too far apart to form any cylinder also score 0. Building
    # the cylinders took about 15 ms for 128 minutiae here, too slow per
    # record of a full update.
    count = len(template.minutiae)
    if count < MIN_MINUTIAE:
        return (
            f"fingerprint template has {count} minutiae, fewer than the "
            f"{MIN_MINUTIAE} that the extractor requires, so it cannot identify "
            "its owner; capture the finger again"
        )
    return None


def _grid(shape: tuple[int, int, int]) -> str:
    return " x ".join(str(size) for size in shape)
