"""The reference publisher: a signed TUF repository of template bundles.

:class:`Publisher` works in one folder:

- ``keys/``: one ed25519 signing key per TUF role (``root.pem``,
  ``targets.pem``, ``snapshot.pem``, ``timestamp.pem``, PKCS#8 PEM, mode
  0600) and the fleet key ``fleet.key``. Never served.
- ``repository/``: what a static web server serves. ``metadata/`` contains
  ``N.root.json`` per root version, ``N.targets.json``, ``N.snapshot.json``
  and ``timestamp.json``. ``targets/`` contains ``index.json`` and
  ``bundles/*.egtb`` under hash-prefixed names (TUF consistent snapshots),
  so a gate that fetches while a new version is written still gets one
  consistent set.
- ``state/``: the published version, one hash per published record, from
  which the next delta is computed, and the enrolment ids on the watchlist.
  Never served, so its files are mode 0600 in a 0700 folder.

Files under ``repository/`` get the mode that ``open()`` gives, 0666 less
the process umask (0644 under the usual umask 022), because the web server
that serves them usually runs as another user.

A publish that removes more than :data:`MAX_DELETE_SHARE` of the published
records, or removes any watchlist entry, is rejected unless the caller allows
that many removals (``allow_delete``): an empty or truncated input file must
not wipe the fleet.

A publish writes the bundles and the index first, then targets, snapshot and
timestamp metadata, the timestamp last: until its atomic rename, gates see
the previous version. Files of older versions are pruned one version later.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from securesystemslib.signer import CryptoSigner  # type: ignore[attr-defined]
from tuf.api.metadata import (  # type: ignore[attr-defined]
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

from edge_gate.errors import EnrolmentRecordError, UpdateError
from edge_gate.store import EnrolmentRecord, generate_key_file, load_key, record_to_json

from ._bundle import BundleWriter
from ._index import INDEX_PATH, BundleIndex, BundleRef
from ._input import duplicate_problems

logger = logging.getLogger(__name__)

ROLES = ("root", "targets", "snapshot", "timestamp")
# Deltas kept in the index; a gate further behind applies the full snapshot.
MAX_DELTAS = 30
# Share of the published records that one publish may delete without an
# explicit allowance. Watchlist removals always need one.
MAX_DELETE_SHARE = 0.10
_STATE_FORMAT = 1
# File modes before the process umask is applied (see the module docstring).
_SERVED_MODE = 0o666
_PRIVATE_MODE = 0o600


@dataclass(frozen=True)
class Expiries:
    """How long each kind of metadata stays valid after it is signed.

    The timestamp expiry is the freeze window. A gate that gets no newer
    timestamp for this long rejects the repository's metadata as expired,
    so the server must run ``edge-gate publish refresh`` more often.
    """

    timestamp: datetime.timedelta = datetime.timedelta(days=1)
    snapshot: datetime.timedelta = datetime.timedelta(days=7)
    targets: datetime.timedelta = datetime.timedelta(days=7)
    root: datetime.timedelta = datetime.timedelta(days=365)


@dataclass(frozen=True)
class PublishResult:
    """Outcome of one publish."""

    version: int
    record_count: int
    changed: int
    deleted: int
    bundles: tuple[str, ...]


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def _create_temporary(folder: Path, prefix: str, mode: int) -> tuple[int, Path]:
    """Create a new, hidden file in ``folder`` and open it for writing.

    Unlike ``tempfile.mkstemp``, which always creates mode 0600, the file
    gets ``mode`` less the process umask, so the served files respect the
    umask as any file that ``open()`` creates does.

    Returns:
        The open file descriptor and the file's path.

    Raises:
        OSError: the file cannot be created.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    # O_EXCL fails on any existing name, symbolic links included, so a clash
    # of 64 random bits only costs another try. 100 clashes in a row point to
    # another fault.
    for _attempt in range(100):
        temporary = folder / f"{prefix}{secrets.token_hex(8)}"
        try:
            return os.open(temporary, flags, mode), temporary
        except FileExistsError:
            continue
    raise FileExistsError(
        f"failed to create a temporary file {prefix}* in {folder}: 100 random "
        "names already existed; check the folder"
    )


def _write_atomic(path: Path, data: bytes, *, mode: int) -> None:
    """Replace a file atomically: write a temporary file, fsync it and rename it.

    Args:
        path: the file to replace.
        data: its new content.
        mode: the file's mode before the process umask is applied:
            :data:`_SERVED_MODE` for served files, :data:`_PRIVATE_MODE`
            for state files.

    Raises:
        OSError: the file cannot be written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = _create_temporary(path.parent, f".{path.name}.", mode)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def record_hash(record: EnrolmentRecord) -> str:
    """Hash a record's canonical JSON (what decides whether it changed)."""
    canonical = json.dumps(
        record_to_json(record), sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class Publisher:
    """Build, sign and rotate the keys of a template repository.

    Args:
        workdir: the publisher's folder (``keys/``, ``repository/``,
            ``state/``), made by :meth:`init`.
        expiries: metadata lifetimes.

    Raises:
        UpdateError: the folder was not initialised.
    """

    def __init__(self, workdir: Path, expiries: Expiries | None = None) -> None:
        self.workdir = Path(workdir)
        self.expiries = expiries or Expiries()
        self.keys_dir = self.workdir / "keys"
        self.repository_dir = self.workdir / "repository"
        self.metadata_dir = self.repository_dir / "metadata"
        self.targets_dir = self.repository_dir / "targets"
        self._state_path = self.workdir / "state" / "publisher.json"
        self._hashes_path = self.workdir / "state" / "records.json"
        self._watchlist_path = self.workdir / "state" / "watchlist.json"
        if not self._state_path.exists():
            raise UpdateError(
                f"{self.workdir} is not a publisher folder: run edge-gate publish "
                "init first"
            )
        self._state: dict[str, Any] = json.loads(self._state_path.read_text())

    # Set-up and keys

    @classmethod
    def init(
        cls,
        workdir: Path,
        *,
        expiries: Expiries | None = None,
        now: datetime.datetime | None = None,
    ) -> Publisher:
        """Create keys, the fleet key and an empty signed repository.

        Raises:
            UpdateError: the folder already contains a publisher.
        """
        workdir = Path(workdir)
        if (workdir / "state" / "publisher.json").exists():
            raise UpdateError(
                f"{workdir} already contains a publisher; its keys are kept. "
                "Use another folder, or publish into this one"
            )
        keys_dir = workdir / "keys"
        keys_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(keys_dir, 0o700)
        # state/ names the watchlisted enrolments, and any user who can write
        # to the folder can replace the publisher's state. So it is 0700,
        # whatever the umask.
        state_dir = workdir / "state"
        state_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(state_dir, 0o700)
        signers = {role: _new_key(keys_dir / f"{role}.pem") for role in ROLES}
        generate_key_file(keys_dir / "fleet.key")

        root = Root(expires=(now or _utc_now()) + (expiries or Expiries()).root)
        for role, signer in signers.items():
            root.add_key(signer.public_key, role)
        state = {
            "format": _STATE_FORMAT,
            "template_version": 0,
            "metadata": {"root": 1, "targets": 0, "snapshot": 0, "timestamp": 0},
            "index": None,
        }
        _write_atomic(
            workdir / "state" / "publisher.json",
            json.dumps(state).encode(),
            mode=_PRIVATE_MODE,
        )
        publisher = cls(workdir, expiries)
        publisher._write_root(Metadata(root), [signers["root"]])
        publisher._sign_top_level({}, now or _utc_now())
        logger.info("initialised a template repository in %s", workdir)
        return publisher

    @property
    def fleet_key_path(self) -> Path:
        """The fleet key file, to provision on every gate."""
        return self.keys_dir / "fleet.key"

    @property
    def trusted_root_path(self) -> Path:
        """The first root metadata, to provision on every gate."""
        return self.metadata_dir / "1.root.json"

    @property
    def version(self) -> int:
        """The latest published template version (0 before the first)."""
        return int(self._state["template_version"])

    def _signer(self, role: str) -> CryptoSigner:
        data = (self.keys_dir / f"{role}.pem").read_bytes()
        private_key = load_pem_private_key(data, password=None)
        if not isinstance(private_key, Ed25519PrivateKey):
            raise UpdateError(f"{self.keys_dir / role}.pem is not an ed25519 key")
        return CryptoSigner(private_key)

    def rotate(self, role: str, *, now: datetime.datetime | None = None) -> str:
        """Replace a role's signing key and re-sign what it signs.

        The new root version is signed by the old and the new root key when
        the root key rotates, so that gates can verify the chain. The old
        key file is kept as ``ROLE.pem.retired-KEYID``.

        Returns:
            The new key id.

        Raises:
            ValueError: ``role`` is not a top-level TUF role.
        """
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; known: {', '.join(ROLES)}")
        now = now or _utc_now()
        root_md = self._load_root()
        old_signer = self._signer(role)
        old_root_signer = self._signer("root")
        old_keyid = old_signer.public_key.keyid

        key_path = self.keys_dir / f"{role}.pem"
        key_path.rename(self.keys_dir / f"{role}.pem.retired-{old_keyid[:16]}")
        new_signer = _new_key(key_path)
        root_md.signed.revoke_key(old_keyid, role)
        root_md.signed.add_key(new_signer.public_key, role)
        root_md.signed.version += 1
        root_md.signed.expires = now + self.expiries.root
        signers = [self._signer("root")]
        if role == "root":
            signers.append(old_root_signer)
        self._write_root(root_md, signers)
        self._sign_top_level(self._current_targets(), now)
        logger.info(
            "rotated the %s key; root is now version %d", role, root_md.signed.version
        )
        return str(new_signer.public_key.keyid)

    # Publishing

    def publish(
        self,
        records: Iterable[EnrolmentRecord],
        *,
        now: datetime.datetime | None = None,
        allow_delete: int = 0,
    ) -> PublishResult:
        """Publish the complete current set of enrolments as a new version.

        Writes a full snapshot and, from the second version on, a delta from
        the previous version. Publishing an unchanged set only refreshes the
        metadata.

        Args:
            records: every enrolment that gates should hold.
            now: the publication time.
            allow_delete: how many removals the caller allows on purpose: a
                removal is a published record missing from ``records`` or a
                watchlist entry no longer watchlisted. Without it, up to
                :data:`MAX_DELETE_SHARE` of the published records may go and
                no watchlist entry.

        Raises:
            EnrolmentRecordError: two records share an enrolment id or a
                document.
            UpdateError: the set removes more records or watchlist entries
                than allowed; nothing was published.
        """
        now = now or _utc_now()
        current = list(records)
        _check_unique(current)
        hashes = {r.enrolment_id: record_hash(r) for r in current}
        previous: dict[str, str] = (
            json.loads(self._hashes_path.read_text())
            if self._hashes_path.exists()
            else {}
        )
        changed = [
            r for r in current if previous.get(r.enrolment_id) != hashes[r.enrolment_id]
        ]
        deleted = sorted(set(previous) - set(hashes))
        watchlist = sorted(r.enrolment_id for r in current if r.watchlisted)
        self._check_removals(previous, deleted, set(watchlist), allow_delete)
        base = self.version
        if base > 0 and not changed and not deleted:
            _write_atomic(
                self._watchlist_path,
                json.dumps(watchlist).encode(),
                mode=_PRIVATE_MODE,
            )
            self.refresh(now=now)
            return PublishResult(base, len(current), 0, 0, ())

        version = base + 1
        targets = {}
        full = BundleRef(f"bundles/full-{version}.egtb", "full", version, 0)
        targets[full.path] = self._write_bundle(full, current, [])
        deltas = [
            BundleRef(**d) for d in (self._state["index"] or {}).get("deltas", [])
        ]
        if base > 0:
            delta = BundleRef(
                f"bundles/delta-{base}-{version}.egtb", "delta", version, base
            )
            targets[delta.path] = self._write_bundle(delta, changed, deleted)
            deltas.append(delta)
        deltas = deltas[-MAX_DELTAS:]
        for ref in deltas:
            if ref.path not in targets:
                targets[ref.path] = self._current_targets()[ref.path]

        index = BundleIndex(version, now, len(current), full, tuple(deltas))
        targets[INDEX_PATH] = self._write_target(INDEX_PATH, index.to_json())
        self._sign_top_level(targets, now)

        _write_atomic(
            self._hashes_path, json.dumps(hashes).encode(), mode=_PRIVATE_MODE
        )
        _write_atomic(
            self._watchlist_path, json.dumps(watchlist).encode(), mode=_PRIVATE_MODE
        )
        self._state["template_version"] = version
        self._state["index"] = {
            "deltas": [
                {
                    "path": d.path,
                    "kind": d.kind,
                    "version": d.version,
                    "base_version": d.base_version,
                }
                for d in deltas
            ]
        }
        self._save_state()
        self._prune()
        logger.info(
            "published template version %d: %d records, %d changed, %d deleted",
            version,
            len(current),
            len(changed),
            len(deleted),
        )
        return PublishResult(
            version, len(current), len(changed), len(deleted), tuple(targets)
        )

    def _check_removals(
        self,
        previous: dict[str, str],
        deleted: list[str],
        watchlist: set[str],
        allow_delete: int,
    ) -> None:
        """Reject a publish that removes more than allowed.

        Raises:
            UpdateError: too many records deleted, or a watchlist entry
                removed, beyond ``allow_delete``.
        """
        if self._watchlist_path.exists():
            watched: set[str] | None = set(json.loads(self._watchlist_path.read_text()))
        else:
            # A folder from before the watchlist was recorded: any deleted
            # record may have been on it.
            watched = None if previous else set()
        unwatched = len(deleted) if watched is None else len(watched - watchlist)
        removals = len(deleted) + len((watched or set()) - watchlist - set(deleted))
        bound = int(len(previous) * MAX_DELETE_SHARE)
        if removals <= allow_delete:
            return
        if unwatched == 0 and len(deleted) <= bound:
            return
        raise UpdateError(
            f"rejected: this publish deletes {len(deleted)} of {len(previous)} "
            f"published records and removes {unwatched} watchlist entr"
            f"{'y' if unwatched == 1 else 'ies'} ({removals} removal(s) in all); "
            f"without --allow-delete at most {bound} record(s) "
            f"({MAX_DELETE_SHARE:.0%}) may be deleted and no watchlist entry "
            f"removed. Check that the input contains every enrolment. If the "
            f"removals are intended, pass --allow-delete {removals}. Nothing "
            "was published"
        )

    def refresh(self, *, now: datetime.datetime | None = None) -> None:
        """Re-sign targets, snapshot and timestamp with fresh expiries.

        The server runs this more often than the timestamp expiry so that
        gates do not treat the repository as frozen.
        """
        self._sign_top_level(self._current_targets(), now or _utc_now())

    def _write_bundle(
        self, ref: BundleRef, puts: list[EnrolmentRecord], deletes: list[str]
    ) -> TargetFile:
        fleet_key = load_key(self.fleet_key_path)
        bundle_dir = self.targets_dir / "bundles"
        bundle_dir.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = _create_temporary(bundle_dir, ".bundle.", _SERVED_MODE)
        os.close(descriptor)
        try:
            with BundleWriter(temporary, fleet_key, ref.header()) as writer:
                for enrolment_id in deletes:
                    writer.delete(enrolment_id)
                for record in puts:
                    writer.put(record)
            with open(temporary, "rb") as stream:
                info = TargetFile.from_data(ref.path, stream, ["sha256"])
            os.replace(temporary, self._hashed_target_path(info))
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        return info

    def _write_target(self, path: str, data: bytes) -> TargetFile:
        info = TargetFile.from_data(path, data, ["sha256"])
        _write_atomic(self._hashed_target_path(info), data, mode=_SERVED_MODE)
        return info

    def _hashed_target_path(self, info: TargetFile) -> Path:
        folder, _slash, name = info.path.rpartition("/")
        return self.targets_dir / folder / f"{info.hashes['sha256']}.{name}"

    # Metadata

    def _load_root(self) -> Metadata[Root]:
        version = self._state["metadata"]["root"]
        return Metadata[Root].from_file(str(self.metadata_dir / f"{version}.root.json"))

    def _current_targets(self) -> dict[str, TargetFile]:
        version = self._state["metadata"]["targets"]
        if version == 0:
            return {}
        path = self.metadata_dir / f"{version}.targets.json"
        return dict(Metadata[Targets].from_file(str(path)).signed.targets)

    def _write_root(self, root_md: Metadata[Root], signers: list[CryptoSigner]) -> None:
        root_md.signatures.clear()
        for signer in signers:
            root_md.sign(signer, append=True)
        data = root_md.to_bytes(JSONSerializer(compact=False))
        version = root_md.signed.version
        _write_atomic(
            self.metadata_dir / f"{version}.root.json", data, mode=_SERVED_MODE
        )
        _write_atomic(self.metadata_dir / "root.json", data, mode=_SERVED_MODE)
        self._state["metadata"]["root"] = version
        self._save_state()

    def _sign_top_level(
        self, targets: dict[str, TargetFile], now: datetime.datetime
    ) -> None:
        """Sign new targets, snapshot and timestamp versions, timestamp last."""
        versions = self._state["metadata"]
        versions["targets"] += 1
        versions["snapshot"] += 1
        versions["timestamp"] += 1

        targets_md = Metadata(
            Targets(
                version=versions["targets"],
                expires=now + self.expiries.targets,
                targets=targets,
            )
        )
        targets_bytes = self._sign_bytes(targets_md, "targets")
        _write_atomic(
            self.metadata_dir / f"{versions['targets']}.targets.json",
            targets_bytes,
            mode=_SERVED_MODE,
        )

        snapshot_md = Metadata(
            Snapshot(
                version=versions["snapshot"],
                expires=now + self.expiries.snapshot,
                meta={"targets.json": _meta_file(versions["targets"], targets_bytes)},
            )
        )
        snapshot_bytes = self._sign_bytes(snapshot_md, "snapshot")
        _write_atomic(
            self.metadata_dir / f"{versions['snapshot']}.snapshot.json",
            snapshot_bytes,
            mode=_SERVED_MODE,
        )

        timestamp_md = Metadata(
            Timestamp(
                version=versions["timestamp"],
                expires=now + self.expiries.timestamp,
                snapshot_meta=_meta_file(versions["snapshot"], snapshot_bytes),
            )
        )
        _write_atomic(
            self.metadata_dir / "timestamp.json",
            self._sign_bytes(timestamp_md, "timestamp"),
            mode=_SERVED_MODE,
        )
        self._save_state()

    def _sign_bytes(self, metadata: Metadata[Any], role: str) -> bytes:
        metadata.sign(self._signer(role))
        data: bytes = metadata.to_bytes(JSONSerializer(compact=False))
        return data

    def _save_state(self) -> None:
        _write_atomic(
            self._state_path,
            json.dumps(self._state, indent=1).encode(),
            mode=_PRIVATE_MODE,
        )

    def _prune(self) -> None:
        """Delete metadata and targets of versions older than the previous one.

        The previous version's files stay, so a gate that read the previous
        timestamp a moment ago can still finish its download.
        """
        versions = self._state["metadata"]
        for role in ("targets", "snapshot"):
            for path in self.metadata_dir.glob(f"*.{role}.json"):
                number = path.name.split(".", 1)[0]
                if number.isdigit() and int(number) < versions[role] - 1:
                    path.unlink()
        keep: set[Path] = set()
        for version in (versions["targets"], versions["targets"] - 1):
            path = self.metadata_dir / f"{version}.targets.json"
            if path.exists():
                listed = Metadata[Targets].from_file(str(path)).signed.targets
                keep.update(self._hashed_target_path(info) for info in listed.values())
        for path in self.targets_dir.rglob("*"):
            if path.is_file() and not path.name.startswith(".") and path not in keep:
                path.unlink()


def _new_key(path: Path) -> CryptoSigner:
    """Generate an ed25519 signer and store its private key (mode 0600)."""
    signer = CryptoSigner.generate_ed25519()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(signer.private_bytes)
        handle.flush()
        os.fsync(handle.fileno())
    return signer


def _meta_file(version: int, data: bytes) -> MetaFile:
    return MetaFile(
        version=version,
        length=len(data),
        hashes={"sha256": hashlib.sha256(data).hexdigest()},
    )


def _check_unique(records: list[EnrolmentRecord]) -> None:
    """Reject two records with one enrolment id or one document.

    Raises:
        EnrolmentRecordError: a record repeats an earlier record's enrolment
            id or document; the message lists every repeat, with records
            counted from 1 in input order.
    """
    repeats = duplicate_problems(records, lambda index: f"record {index + 1}")
    if repeats:
        listed = "; ".join(
            f"record {index + 1}: {problem}" for index, problem in repeats
        )
        raise EnrolmentRecordError(f"{listed}. Nothing was published")
