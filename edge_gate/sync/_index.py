"""The bundle index: which template bundles the repository offers.

``index.json`` is a TUF target like the bundles, so its hash and length are
signed in the targets metadata. It names the latest template version, the
full snapshot of that version and the deltas kept for gates that are behind:

    {"format": 1, "version": 7, "published_at": "2026-12-04T16:00:00+00:00",
     "record_count": 1000,
     "full": {"path": "bundles/full-7.egtb", "version": 7, "base_version": 0},
     "deltas": [{"path": "bundles/delta-6-7.egtb", "version": 7,
                 "base_version": 6}, ...]}
"""

from __future__ import annotations

import datetime
import json
import re
from dataclasses import dataclass
from typing import Any

from edge_gate.errors import UpdateVerificationError

from ._bundle import BundleHeader, BundleKind

INDEX_PATH = "index.json"
INDEX_FORMAT = 1
_PATH_PATTERN = re.compile(r"bundles/[A-Za-z0-9._-]+")


@dataclass(frozen=True)
class BundleRef:
    """One bundle offered by the index."""

    path: str
    kind: BundleKind
    version: int
    base_version: int

    def header(self) -> BundleHeader:
        """Return the header the bundle file must carry."""
        return BundleHeader(self.kind, self.version, self.base_version, self.path)


@dataclass(frozen=True)
class BundleIndex:
    """The parsed ``index.json``."""

    version: int
    published_at: datetime.datetime
    record_count: int
    full: BundleRef
    deltas: tuple[BundleRef, ...]

    def to_json(self) -> bytes:
        """Serialise the index as published."""
        return json.dumps(
            {
                "format": INDEX_FORMAT,
                "version": self.version,
                "published_at": self.published_at.isoformat(),
                "record_count": self.record_count,
                "full": _ref_to_json(self.full),
                "deltas": [_ref_to_json(d) for d in self.deltas],
            },
            indent=1,
        ).encode()

    def delta_chain(self, current_version: int) -> list[BundleRef] | None:
        """Find deltas leading from ``current_version`` to the latest version.

        Returns:
            The deltas in the order to apply them, or None when no complete
            chain exists (the gate then applies the full snapshot).
        """
        by_base = {d.base_version: d for d in self.deltas}
        chain: list[BundleRef] = []
        version = current_version
        while version < self.version:
            step = by_base.get(version)
            if step is None:
                return None
            chain.append(step)
            version = step.version
        return chain if version == self.version else None


def _ref_to_json(ref: BundleRef) -> dict[str, Any]:
    return {"path": ref.path, "version": ref.version, "base_version": ref.base_version}


def parse_index(data: bytes) -> BundleIndex:
    """Parse and check ``index.json``.

    Raises:
        UpdateVerificationError: the index is not JSON, has another format,
            or its entries are inconsistent (a delta that does not go
            forward, a full snapshot of another version, a path outside
            ``bundles/``).
    """
    try:
        raw = json.loads(data)
        if raw["format"] != INDEX_FORMAT:
            raise UpdateVerificationError(
                f"index.json has format {raw['format']!r}, expected {INDEX_FORMAT}"
            )
        index = BundleIndex(
            version=_count(raw["version"], "version"),
            published_at=_time(raw["published_at"]),
            record_count=_count(raw["record_count"], "record_count"),
            full=_ref(raw["full"], "full"),
            deltas=tuple(_ref(d, "delta") for d in raw["deltas"]),
        )
    except (ValueError, KeyError, TypeError) as err:
        raise UpdateVerificationError(f"index.json is invalid: {err!r}") from err

    if index.full.version != index.version or index.full.base_version != 0:
        raise UpdateVerificationError(
            f"index.json: the full snapshot is version {index.full.version}, "
            f"the index version {index.version}"
        )
    for delta in index.deltas:
        if not delta.base_version < delta.version <= index.version:
            raise UpdateVerificationError(
                f"index.json: delta {delta.path} goes from {delta.base_version} "
                f"to {delta.version}, beyond the index version {index.version}"
            )
    return index


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
    return int(value)


def _time(value: Any) -> datetime.datetime:
    if not isinstance(value, str):
        raise ValueError(f"published_at must be an ISO 8601 string, got {value!r}")
    parsed = datetime.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"published_at must carry a timezone, got {value!r}")
    return parsed


def _ref(value: Any, kind: BundleKind) -> BundleRef:
    path = value["path"]
    if not isinstance(path, str) or not _PATH_PATTERN.fullmatch(path):
        raise ValueError(f"bundle path must be bundles/NAME, got {path!r}")
    return BundleRef(
        path=path,
        kind=kind,
        version=_count(value["version"], "version"),
        base_version=_count(value["base_version"], "base_version"),
    )
