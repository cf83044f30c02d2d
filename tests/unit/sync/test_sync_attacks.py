"""Each attack on the update channel, and each transport fault, as its own
case against a real HTTP server on 127.0.0.1.

Every case first brings the gate to a known version, then checks that the
attack raises the right error and leaves that version and its templates in
place.
"""

from __future__ import annotations

import dataclasses
import datetime
import fcntl
import json
import os
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Metadata

from edge_gate.errors import (
    UpdateError,
    UpdateTransportError,
    UpdateVerificationError,
)
from edge_gate.store import TEMPLATES_DB, TemplateStore, TrustedClock, load_key
from edge_gate.sync import Expiries, Publisher, sync_once


def open_store(config: Any) -> TemplateStore:
    state_dir = Path(config.store.state_dir)
    return TemplateStore(state_dir / TEMPLATES_DB, load_key(config.store.key_file))


@pytest.fixture
def synced(publisher: Publisher, http_server: Any, configure: Any, records: Any) -> Any:
    """A gate synced to version 1 of three records; version 2 is published."""
    publisher.publish([records(1), records(2), records(3)])
    config = configure(http_server.url)
    sync_once(config)
    old_timestamp = (publisher.metadata_dir / "timestamp.json").read_bytes()
    publisher.publish([records(1), records(2), records(4)], allow_delete=1)
    return config, old_timestamp


def assert_unchanged(config: Any, records: Any) -> None:
    with open_store(config) as store:
        assert store.version() == 1
        assert store.status().enrolments == 3
        enrolment = store.lookup("UTO", "D00000003")
        assert enrolment is not None
        assert enrolment.irises == dict(records(3).irises)


def metadata_version(publisher: Publisher, role: str) -> int:
    state = json.loads((publisher.workdir / "state" / "publisher.json").read_text())
    return int(state["metadata"][role])


def test_tampered_timestamp_rejected(
    synced: Any, publisher: Publisher, http_server: Any, records: Any
) -> None:
    config, _old = synced
    text = (publisher.metadata_dir / "timestamp.json").read_text()
    # Change the signed payload without re-signing it.
    tampered = text.replace('"version": 3', '"version": 9', 1)
    assert tampered != text
    http_server.substitutions["timestamp.json"] = tampered.encode()

    with pytest.raises(UpdateVerificationError, match="UnsignedMetadataError"):
        sync_once(config)
    assert_unchanged(config, records)


def test_tampered_bundle_rejected(
    synced: Any, publisher: Publisher, records: Any
) -> None:
    config, _old = synced
    (delta,) = (publisher.targets_dir / "bundles").glob("*.delta-1-2.egtb")
    data = bytearray(delta.read_bytes())
    data[-20] ^= 0x01
    delta.write_bytes(bytes(data))

    with pytest.raises(UpdateVerificationError) as err:
        sync_once(config)

    message = str(err.value)
    assert message.startswith(
        "the target bundles/delta-1-2.egtb failed its length and hash check: the "
        "server's copy was altered or truncated, so nothing was applied"
    )
    assert "LengthOrHashMismatchError" not in message
    assert_unchanged(config, records)


@pytest.mark.parametrize("role", ["snapshot", "targets"])
def test_tampered_metadata_file_named(
    synced: Any, publisher: Publisher, http_server: Any, records: Any, role: str
) -> None:
    config, _old = synced
    name = f"{metadata_version(publisher, role)}.{role}.json"
    served = (publisher.metadata_dir / name).read_bytes()
    # Same length, other bytes: moves one space past a line break.
    http_server.substitutions[f"/{name}"] = served.replace(b"\n ", b" \n", 1)

    with pytest.raises(UpdateVerificationError) as err:
        sync_once(config)

    assert str(err.value).startswith(
        f"the {role} metadata (metadata/N.{role}.json) failed its length and hash "
        "check: the server's copy was altered or truncated"
    )
    assert_unchanged(config, records)


def test_rolled_back_metadata_rejected(
    publisher: Publisher, http_server: Any, configure: Any, records: Any
) -> None:
    publisher.publish([records(1)])
    old_timestamp = (publisher.metadata_dir / "timestamp.json").read_bytes()
    publisher.publish([records(1), records(2)])
    config = configure(http_server.url)
    sync_once(config)
    http_server.substitutions["timestamp.json"] = old_timestamp

    with pytest.raises(UpdateVerificationError, match="BadVersionNumberError"):
        sync_once(config)
    with open_store(config) as store:
        assert store.version() == 2


def test_rolled_back_template_version_rejected(
    publisher: Publisher, http_server: Any, configure: Any, records: Any
) -> None:
    # Validly signed metadata that offers an older template version, as a
    # server restored from an old backup would publish.
    publisher.publish([records(1)])
    publisher.publish([records(1), records(2)])
    config = configure(http_server.url)
    sync_once(config)
    (publisher.workdir / "state" / "records.json").unlink()
    restored = Publisher(publisher.workdir)
    restored._state["template_version"] = 0
    restored._state["index"] = None
    restored.publish([records(1)])

    with pytest.raises(UpdateVerificationError, match="rollback"):
        sync_once(config)
    with open_store(config) as store:
        assert store.version() == 2


def test_frozen_metadata_rejected(
    synced: Any, publisher: Publisher, records: Any
) -> None:
    # Metadata whose timestamp expired an hour ago, as served by a mirror that
    # keeps offering the last metadata it saw (freeze attack).
    config, _old = synced
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=2)
    short = Publisher(
        publisher.workdir, Expiries(timestamp=datetime.timedelta(hours=1))
    )
    short.publish([records(1), records(2), records(5)], now=past, allow_delete=1)

    with pytest.raises(UpdateVerificationError, match="ExpiredMetadataError"):
        sync_once(config)
    assert_unchanged(config, records)


def test_mix_and_match_rejected(
    synced: Any, publisher: Publisher, http_server: Any, records: Any
) -> None:
    config, _old = synced
    # Serve version 1's targets metadata under version 2's name.
    targets_version = metadata_version(publisher, "targets")
    old = publisher.metadata_dir / f"{targets_version - 1}.targets.json"
    http_server.substitutions[f"/{targets_version}.targets.json"] = old.read_bytes()

    with pytest.raises(UpdateVerificationError):
        sync_once(config)
    assert_unchanged(config, records)


def test_unknown_signing_key_rejected(
    synced: Any, tmp_path: Path, http_server: Any, records: Any
) -> None:
    config, _old = synced
    impostor = Publisher.init(tmp_path / "impostor")
    for _ in range(5):
        impostor.refresh()
    http_server.substitutions["timestamp.json"] = (
        impostor.metadata_dir / "timestamp.json"
    ).read_bytes()

    with pytest.raises(UpdateVerificationError, match="UnsignedMetadataError"):
        sync_once(config)
    assert_unchanged(config, records)


def test_oversized_download_rejected(
    synced: Any, http_server: Any, records: Any
) -> None:
    config, _old = synced
    http_server.fault = "oversize"
    http_server.fault_path = ".delta-1-2.egtb"

    with pytest.raises(UpdateVerificationError, match="more bytes than the signed"):
        sync_once(config)
    assert_unchanged(config, records)


def test_target_above_download_limit_rejected(
    synced: Any, publisher: Publisher, http_server: Any, records: Any
) -> None:
    config, _old = synced
    big = dataclasses.replace(records(6), irises={"left": os.urandom(4000)})
    publisher.publish([records(1), records(2), big], allow_delete=1)
    limited = config.__class__(
        store=config.store,
        sync=config.sync.__class__(
            **{**config.sync.__dict__, "max_download_bytes": 1024}
        ),
    )

    before = len(http_server.requests)

    with pytest.raises(UpdateVerificationError, match="max_download_bytes"):
        sync_once(limited)
    assert not any(".egtb" in path for path in http_server.requests[before:])
    assert_unchanged(config, records)


def test_wrong_fleet_key_rejected(synced: Any, tmp_path: Path, records: Any) -> None:
    config, _old = synced
    wrong_key = tmp_path / "wrong-fleet.key"
    wrong_key.write_text("11" * 32)
    wrong = config.__class__(
        store=config.store,
        sync=config.sync.__class__(
            **{**config.sync.__dict__, "fleet_key_file": str(wrong_key)}
        ),
    )

    with pytest.raises(UpdateVerificationError, match="failed authentication"):
        sync_once(wrong)
    assert_unchanged(config, records)


@pytest.mark.parametrize(
    ("fault", "fault_path", "message"),
    [
        pytest.param("500", "timestamp.json", "HTTP status 500", id="metadata-500"),
        pytest.param("500", ".delta-1-2.egtb", "HTTP status 500", id="bundle-500"),
        pytest.param("hang", "timestamp.json", "timed out", id="server-hangs"),
        pytest.param(
            "close", ".delta-1-2.egtb", "transfer failed", id="closes-mid-body"
        ),
        pytest.param(
            "close", "targets.json", "transfer failed", id="metadata-cut-short"
        ),
    ],
)
def test_transport_fault_keeps_old_set(
    synced: Any,
    http_server: Any,
    records: Any,
    fault: str,
    fault_path: str,
    message: str,
) -> None:
    config, _old = synced
    http_server.fault = fault
    http_server.fault_path = fault_path

    with pytest.raises(UpdateTransportError, match=message):
        sync_once(config)
    assert_unchanged(config, records)

    # Once the server works again, the same gate catches up.
    http_server.fault = None
    http_server.release.set()
    assert sync_once(config).version == 2


def test_server_down_is_transport_error(
    synced: Any, configure: Any, records: Any
) -> None:
    config, _old = synced
    down = configure("http://127.0.0.1:9/")

    with pytest.raises(UpdateTransportError, match="cannot connect") as err:
        sync_once(down)

    assert str(err.value).count("Connection refused") == 1
    assert_unchanged(config, records)


def test_clock_behind_trusted_time_blocks_sync(
    synced: Any, http_server: Any, records: Any
) -> None:
    config, _old = synced
    clock = TrustedClock(Path(config.store.state_dir))
    clock.record(datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=2))
    before = len(http_server.requests)

    with pytest.raises(UpdateError, match="behind the latest trusted time"):
        sync_once(config)
    assert len(http_server.requests) == before
    assert_unchanged(config, records)


@pytest.mark.parametrize("role", ["root", "targets", "snapshot", "timestamp"])
def test_key_rotation_keeps_gates_in_sync(
    synced: Any, publisher: Publisher, records: Any, role: str
) -> None:
    config, _old = synced
    publisher.rotate(role)
    publisher.publish([records(1), records(5)], allow_delete=2)

    result = sync_once(config)

    assert result.version == 3
    tuf_dir = Path(config.store.state_dir) / "tuf" / "root_history"
    assert (tuf_dir / "2.root.json").exists()


def test_retired_key_signature_rejected(
    synced: Any, publisher: Publisher, http_server: Any, records: Any
) -> None:
    config, _old = synced
    sync_once(config)
    publisher.rotate("timestamp")
    (retired_file,) = publisher.keys_dir.glob("timestamp.pem.retired-*")
    retired = CryptoSigner(load_pem_private_key(retired_file.read_bytes(), None))
    # A well-formed timestamp with a higher version, validly signed by the
    # key that the rotation removed from root.
    forged = Metadata.from_bytes(
        (publisher.metadata_dir / "timestamp.json").read_bytes()
    )
    forged.signed.version += 10
    forged.sign(retired)
    http_server.substitutions["timestamp.json"] = forged.to_bytes()

    with pytest.raises(UpdateVerificationError, match="UnsignedMetadataError"):
        sync_once(config)
    with open_store(config) as store:
        assert store.version() == 2


def test_concurrent_sync_rejected(synced: Any) -> None:
    config, _old = synced
    lock_path = Path(config.store.state_dir) / "sync.lock"

    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with pytest.raises(UpdateError, match="another edge-gate sync"):
            sync_once(config)

    assert sync_once(config).version == 2


def test_slow_drip_download_times_out(
    synced: Any, http_server: Any, configure: Any, records: Any
) -> None:
    config, _old = synced
    # Each byte arrives well within timeout_s, but the file never finishes
    # within download_timeout_s.
    slow = configure(http_server.url, timeout_s=2.0, download_timeout_s=1.0)
    http_server.fault = "drip"
    http_server.fault_path = "timestamp.json"

    with pytest.raises(UpdateTransportError, match="download took longer"):
        sync_once(slow)
    assert_unchanged(config, records)


def test_clock_behind_server_blocks_sync(
    publisher: Publisher, http_server: Any, configure: Any, records: Any
) -> None:
    publisher.publish([records(1)])
    config = configure(http_server.url)
    behind = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=3)

    with pytest.raises(UpdateError, match="the clock is behind"):
        sync_once(config, now=behind)
    with open_store(config) as store:
        assert store.version() == 0
    # The server's publication time is now the trusted lower bound.
    clock = TrustedClock(Path(config.store.state_dir))
    assert not clock.clock_is_trustworthy(behind)
