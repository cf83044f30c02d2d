"""One run of the template update client (``edge-gate sync``).

Steps of :func:`sync_once`:

1. Refuse to run when the wall clock is behind the latest trusted time: TUF
   checks expiry against the clock, so a clock set back would accept frozen
   metadata.
2. Refresh the TUF metadata (root, timestamp, snapshot, targets) with
   ngclient. The trusted metadata lives in ``<state_dir>/tuf``, so rollback
   protection survives restarts. ngclient rejects bad signatures, unknown
   keys, lower versions (rollback), expired metadata (freeze), metadata that
   does not match the snapshot (mix-and-match) and downloads longer than
   their signed length.
3. Download ``index.json`` (a signed target) and compare its version with
   the applied one: lower is a rollback, equal only refreshes the freshness
   times.
4. Choose a chain of deltas from the applied version, or the full snapshot
   when no chain exists or the chain is larger. Download each bundle, with
   length and hash checked by ngclient and size bounded by
   ``max_download_bytes``.
5. Decrypt the bundles with the fleet key and apply them in one SQLite
   transaction, then record the server's publication time as trusted time.

Before step 2, the store's writer checks that the configured template key
is the one that sealed ``templates.db`` (its key check value), and the run
stops with nothing fetched or written when it is not.

:func:`run_sync` repeats :func:`sync_once` after transport failures only,
with exponential backoff. A verification failure is not retried: the
server's answer will not change within seconds, and the gate keeps working
on its current templates until they pass their maximum offline age.
"""

from __future__ import annotations

import datetime
import fcntl
import logging
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import (  # type: ignore[attr-defined]
    Metadata,
    TargetFile,
)
from tuf.ngclient.config import UpdaterConfig
from tuf.ngclient.updater import Updater

from edge_gate.config import GateConfig
from edge_gate.errors import (
    ConfigError,
    UpdateError,
    UpdateTransportError,
    UpdateVerificationError,
)
from edge_gate.store import (
    TEMPLATES_DB,
    EnrolmentRecord,
    TemplateStoreWriter,
    TemplateUpdate,
    TrustedClock,
    load_key,
)

from ._bundle import read_bundle
from ._fetcher import HttpFetcher
from ._index import INDEX_PATH, BundleIndex, BundleRef, parse_index
from ._template_check import template_problems

logger = logging.getLogger(__name__)

TUF_DIR = "tuf"
MAX_INDEX_BYTES = 1024 * 1024


@dataclass(frozen=True)
class SyncResult:
    """Outcome of one successful sync."""

    outcome: Literal["updated", "current"]
    previous_version: int
    version: int
    bundles: tuple[str, ...]
    downloaded_bytes: int
    expires_at: datetime.datetime


def utc_now() -> datetime.datetime:
    """Return the current wall-clock time in UTC."""
    return datetime.datetime.now(datetime.UTC)


# ngclient functions that check a metadata file against the length and hash
# pinned by the metadata above it, and the file each one checks.
# NOTE: these are ngclient's internal names (python-tuf 7); after a rename
# the message falls back to "a metadata file", which the tests would catch.
_PINNED_METADATA = {
    "update_snapshot": "the snapshot metadata (metadata/N.snapshot.json)",
    "update_targets": "the targets metadata (metadata/N.targets.json)",
    "update_delegated_targets": "the targets metadata (metadata/N.targets.json)",
}


def _mismatch_error(
    file_label: str, err: tuf_errors.LengthOrHashMismatchError
) -> UpdateVerificationError:
    """Build the error for a file whose length or hash is not the signed one."""
    return UpdateVerificationError(
        f"{file_label} failed its length and hash check: the server's copy was altered "
        f"or truncated, so nothing was applied ({err})"
    )


def _pinned_file(err: BaseException) -> str:
    """Name the metadata file whose check raised ``err``, from its traceback."""
    name = "a metadata file"
    frame = err.__traceback__
    while frame is not None:
        name = _PINNED_METADATA.get(frame.tb_frame.f_code.co_name, name)
        frame = frame.tb_next
    return name


@contextmanager
def _target_checked(path: str) -> Iterator[None]:
    """Name the target in a length or hash mismatch found while downloading it."""
    try:
        yield
    except tuf_errors.LengthOrHashMismatchError as err:
        raise _mismatch_error(f"the target {path}", err) from err


@contextmanager
def _tuf_errors_mapped() -> Iterator[None]:
    """Turn python-tuf's errors into the project's update errors."""
    try:
        yield
    except tuf_errors.DownloadLengthMismatchError as err:
        raise UpdateVerificationError(
            f"the server sent more bytes than the signed length: {err}"
        ) from err
    except tuf_errors.DownloadError as err:
        cause = err.__cause__ or err.__context__
        detail = str(err)
        # The fetcher's messages often contain the cause's text already.
        if cause is not None and str(cause) not in detail:
            detail = f"{detail} ({cause})"
        raise UpdateTransportError(f"download failed: {detail}") from err
    except tuf_errors.LengthOrHashMismatchError as err:
        raise _mismatch_error(_pinned_file(err), err) from err
    except tuf_errors.RepositoryError as err:
        raise UpdateVerificationError(
            f"update metadata failed verification ({type(err).__name__}): {err}"
        ) from err


def sync_once(
    config: GateConfig,
    *,
    now: datetime.datetime | None = None,
    fetcher: HttpFetcher | None = None,
) -> SyncResult:
    """Fetch, verify and apply the latest templates once (no retries).

    Args:
        config: the gate's configuration (``store`` and ``sync`` sections).
        now: the wall-clock time to check the trusted time against and to
            record; the current time when None. ngclient checks metadata
            expiry against the real clock in any case.
        fetcher: the transport; built from ``config.sync`` when None.

    Returns:
        The outcome: updated or already current, with versions and bundles.

    Raises:
        ConfigError: a key or the trusted root cannot be loaded.
        UpdateTransportError: the server could not be reached or a transfer
            failed; worth retrying.
        UpdateVerificationError: the server sent metadata or bundles that
            failed verification (tampered, rolled back, frozen, oversized).
        UpdateError: the clock is behind the latest trusted time, or another
            sync run is in progress.
        StoreError: ``templates.db`` could not be written, or was sealed
            with another template key.
    """
    now = now or utc_now()
    state_dir = Path(config.store.state_dir)
    clock = TrustedClock(state_dir, config.store.clock_max_backward_s)
    if not clock.clock_is_trustworthy(now):
        raise UpdateError(
            f"the system clock ({now.isoformat()}) is behind the latest trusted "
            f"time {clock.latest()} recorded in {clock.path}; fix the time "
            "source (RTC or NTP) before syncing"
        )

    with _single_run(state_dir):
        return _sync_locked(config, now, fetcher, clock)


@contextmanager
def _single_run(state_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock so that two sync runs never overlap."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with (state_dir / "sync.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            raise UpdateError(
                "another edge-gate sync is running "
                f"(lock {state_dir / 'sync.lock'} is taken); "
                "wait for it to finish"
            ) from err
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _sync_locked(
    config: GateConfig,
    now: datetime.datetime,
    fetcher: HttpFetcher | None,
    clock: TrustedClock,
) -> SyncResult:
    state_dir = Path(config.store.state_dir)
    template_key = load_key(config.store.key_file)
    fleet_key = load_key(config.sync.fleet_key_file)
    root = _read_trusted_root(Path(config.sync.trusted_root_file))
    own_fetcher = fetcher is None
    if fetcher is None:
        fetcher = HttpFetcher(
            config.sync.timeout_s, config.sync.download_timeout_s, config.sync.ca_file
        )
    try:
        # The writer stops here when another key sealed templates.db, before
        # any metadata is fetched or anything is written.
        with TemplateStoreWriter(
            state_dir / TEMPLATES_DB, template_key, config.store.key_file
        ) as writer:
            return _sync_with(
                config=config,
                now=now,
                fetcher=fetcher,
                root=root,
                fleet_key=fleet_key,
                writer=writer,
                clock=clock,
            )
    finally:
        if own_fetcher:
            fetcher.close()


def _sync_with(
    *,
    config: GateConfig,
    now: datetime.datetime,
    fetcher: HttpFetcher,
    root: bytes,
    fleet_key: bytes,
    writer: TemplateStoreWriter,
    clock: TrustedClock,
) -> SyncResult:
    tuf_dir = Path(config.store.state_dir) / TUF_DIR
    download_dir = tuf_dir / "download"
    shutil.rmtree(download_dir, ignore_errors=True)
    download_dir.mkdir(parents=True)
    base_url = config.sync.repository_url.rstrip("/")
    try:
        with _tuf_errors_mapped():
            # Step 2: refresh and verify the top-level metadata.
            updater = Updater(
                metadata_dir=str(tuf_dir),
                metadata_base_url=f"{base_url}/metadata/",
                target_dir=str(download_dir),
                target_base_url=f"{base_url}/targets/",
                fetcher=fetcher,
                config=UpdaterConfig(app_user_agent="edge-gate-sync"),
                bootstrap=root,
            )
            updater.refresh()
            expires_at = _metadata_expiry(tuf_dir)

            # Step 3: the index, a signed target like the bundles.
            index_info = _target_info(updater, INDEX_PATH, MAX_INDEX_BYTES)
            with _target_checked(INDEX_PATH):
                index_path = updater.download_target(
                    index_info, str(download_dir / "index.json")
                )
            index = parse_index(Path(index_path).read_bytes())
            downloaded = index_info.length

            current = writer.version()
            if index.version < current:
                raise UpdateVerificationError(
                    f"the server offers template version {index.version}, older "
                    f"than the applied version {current} (rollback)"
                )
            _check_clock_against(index, now, clock)
            if index.version == current:
                writer.mark_verified(updated_at=now, expires_at=expires_at)
                logger.info("templates are current at version %d", current)
                return SyncResult(
                    "current", current, current, (), downloaded, expires_at
                )

            # Step 4: choose and download the bundles.
            plan = _plan(updater, index, current, config.sync.max_download_bytes)
            files: list[tuple[BundleRef, Path]] = []
            for ref, info in plan:
                target = download_dir / f"bundle-{len(files)}"
                with _target_checked(ref.path):
                    downloaded_path = updater.download_target(info, str(target))
                files.append((ref, Path(downloaded_path)))
                downloaded += info.length

        # Step 5: decrypt and apply everything in one transaction.
        with writer.update(
            base_version=current,
            new_version=index.version,
            published_at=index.published_at,
            updated_at=now,
            expires_at=expires_at,
        ) as changes:
            for ref, path in files:
                _apply_bundle(changes, ref, path, fleet_key)
        clock.record(max(now, index.published_at))
        return SyncResult(
            "updated",
            current,
            index.version,
            tuple(ref.path for ref, _path in files),
            downloaded,
            expires_at,
        )
    finally:
        shutil.rmtree(download_dir, ignore_errors=True)


def _apply_bundle(
    changes: TemplateUpdate, ref: BundleRef, path: Path, fleet_key: bytes
) -> None:
    if ref.kind == "full":
        changes.clear()
    with path.open("rb") as stream:
        for chunk in read_bundle(stream, fleet_key, ref.header()):
            for record in chunk.puts:
                _check_templates(record, ref)
            changes.delete(chunk.deletes)
            changes.put(chunk.puts)


def _check_templates(record: EnrolmentRecord, ref: BundleRef) -> None:
    """Reject the update when a record has a template that no gate can use.

    Raises:
        UpdateVerificationError: naming the bundle, enrolment and template.
    """
    problems = template_problems(record)
    if problems:
        raise UpdateVerificationError(
            f"bundle {ref.path}: enrolment {record.enrolment_id!r} has a template "
            f"that no gate can use ({'; '.join(problems)}). The update was not "
            "applied. Publish the enrolment again with the current edge-gate "
            "publish"
        )


def _read_trusted_root(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise ConfigError(
            f"cannot read the trusted TUF root {path}: {err}; provision the "
            "repository's 1.root.json there"
        ) from err


def _metadata_expiry(tuf_dir: Path) -> datetime.datetime:
    """Return the earliest expiry of the trusted top-level metadata."""
    expiries = []
    for role in ("timestamp", "snapshot", "targets"):
        metadata = Metadata.from_file(str(tuf_dir / f"{role}.json"))
        expiries.append(metadata.signed.expires)
    return min(expiries)


def _target_info(updater: Updater, path: str, max_bytes: int) -> TargetFile:
    info = updater.get_targetinfo(path)
    if info is None:
        raise UpdateVerificationError(
            f"the repository's signed targets list no {path}: nothing published yet"
        )
    if info.length > max_bytes:
        raise UpdateVerificationError(
            f"target {path} is {info.length} bytes, above the limit of "
            f"{max_bytes} (sync.max_download_bytes)"
        )
    return info


def _plan(
    updater: Updater, index: BundleIndex, current: int, max_bytes: int
) -> list[tuple[BundleRef, TargetFile]]:
    """Choose the delta chain or the full snapshot, whichever is smaller."""
    full = [(index.full, _target_info(updater, index.full.path, max_bytes))]
    chain = index.delta_chain(current) if current > 0 else None
    if not chain:
        return full
    deltas = [(ref, _target_info(updater, ref.path, max_bytes)) for ref in chain]
    delta_bytes = sum(info.length for _ref, info in deltas)
    return deltas if delta_bytes <= full[0][1].length else full


def _check_clock_against(
    index: BundleIndex, now: datetime.datetime, clock: TrustedClock
) -> None:
    """Stop when the server published in what our clock calls the future."""
    slack = datetime.timedelta(seconds=300)
    if index.published_at > now + slack:
        clock.record(index.published_at)
        raise UpdateError(
            f"the server published at {index.published_at.isoformat()}, later than "
            f"the system clock ({now.isoformat()}): the clock is behind; fix the "
            "time source before syncing"
        )


def run_sync(
    config: GateConfig,
    *,
    now_fn: Callable[[], datetime.datetime] = utc_now,
    sleep: Callable[[float], None] = time.sleep,
    fetcher: HttpFetcher | None = None,
) -> SyncResult:
    """Run :func:`sync_once`, retrying transport failures with backoff.

    Args:
        config: the gate's configuration.
        now_fn: the wall clock, read once per attempt.
        sleep: waits between attempts (tests pass a recorder).
        fetcher: the transport; built per attempt when None.

    Returns:
        The result of the successful attempt.

    Raises:
        UpdateTransportError: every attempt failed to reach the server.
        UpdateVerificationError, UpdateError, StoreError, ConfigError: as
            :func:`sync_once`, on the first attempt that raises them.
    """
    attempts = config.sync.retries + 1
    delay_s = config.sync.backoff_s
    for attempt in range(1, attempts + 1):
        try:
            return sync_once(config, now=now_fn(), fetcher=fetcher)
        except UpdateTransportError as err:
            if attempt == attempts:
                raise UpdateTransportError(
                    f"{err} (gave up after {attempts} attempts)"
                ) from err
            logger.warning(
                "sync attempt %d of %d failed: %s; retrying in %.1f s",
                attempt,
                attempts,
                err,
                delay_s,
            )
            sleep(delay_s)
            delay_s = min(delay_s * 2, config.sync.backoff_max_s)
    raise AssertionError("unreachable")  # pragma: no cover


__all__ = ["SyncResult", "run_sync", "sync_once", "utc_now"]
