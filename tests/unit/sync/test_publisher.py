"""The reference publisher: versions, deltas, pruning and refresh."""

from __future__ import annotations

import dataclasses
import datetime
import json
import stat
from pathlib import Path
from typing import Any

import pytest
from tuf.api.metadata import Metadata

from edge_gate.cli import _templates as templates_cli
from edge_gate.errors import (
    EnrolmentRecordError,
    UpdateError,
    UpdateVerificationError,
)
from edge_gate.sync import Publisher, sync_once
from edge_gate.sync import _publisher as publisher_module


def served_targets(publisher: Publisher) -> set[str]:
    return {
        path.relative_to(publisher.targets_dir).as_posix()
        for path in publisher.targets_dir.rglob("*")
        if path.is_file()
    }


def test_init_writes_private_keys(publisher: Publisher) -> None:
    for role in ("root", "targets", "snapshot", "timestamp"):
        mode = (publisher.keys_dir / f"{role}.pem").stat().st_mode
        assert stat.S_IMODE(mode) == 0o600
    assert stat.S_IMODE(publisher.fleet_key_path.stat().st_mode) == 0o600
    assert publisher.trusted_root_path.exists()
    # Nothing secret is inside the served folder.
    served = [p.name for p in publisher.repository_dir.rglob("*") if p.is_file()]
    assert not any(name.endswith((".pem", ".key")) for name in served)


def test_unchanged_set_only_refreshes(publisher: Publisher, records: Any) -> None:
    first = publisher.publish([records(1), records(2)])
    timestamp = Metadata.from_file(str(publisher.metadata_dir / "timestamp.json"))

    again = publisher.publish([records(2), records(1)])

    refreshed = Metadata.from_file(str(publisher.metadata_dir / "timestamp.json"))
    assert first.version == 1
    assert again.version == 1
    assert again.changed == 0
    assert refreshed.signed.version == timestamp.signed.version + 1


def test_delta_counts_changes(publisher: Publisher, records: Any) -> None:
    publisher.publish([records(1), records(2), records(3)])

    result = publisher.publish(
        [records(1), records(2, watchlisted=True), records(4)], allow_delete=1
    )

    assert result.version == 2
    assert result.changed == 2
    assert result.deleted == 1
    assert set(result.bundles) == {
        "bundles/full-2.egtb",
        "bundles/delta-1-2.egtb",
        "index.json",
    }


def test_old_files_are_pruned(publisher: Publisher, records: Any) -> None:
    for version in range(1, 5):
        publisher.publish([records(n) for n in range(1, version + 1)])

    names = served_targets(publisher)

    fulls = sorted(name.split(".", 1)[1] for name in names if ".full-" in name)
    # The previous version's full snapshot stays for gates mid-download.
    assert fulls == ["full-3.egtb", "full-4.egtb"]
    deltas = sorted(name.split(".", 1)[1] for name in names if ".delta-" in name)
    assert deltas == ["delta-1-2.egtb", "delta-2-3.egtb", "delta-3-4.egtb"]
    targets_files = sorted(
        p.name for p in publisher.metadata_dir.glob("*.targets.json")
    )
    assert len(targets_files) == 2


def test_delta_history_is_bounded(
    publisher: Publisher,
    http_server: Any,
    configure: Any,
    records: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(publisher_module, "MAX_DELTAS", 2)
    publisher.publish([records(n) for n in range(1, 30)])
    config = configure(http_server.url)
    sync_once(config)
    for version in range(2, 5):
        publisher.publish([records(n) for n in range(1, 30 + version)])

    # Older hash-prefixed indexes may still be on disk: take the newest.
    indexes = [
        json.loads(path.read_text())
        for path in publisher.targets_dir.glob("*.index.json")
    ]
    index = max(indexes, key=lambda candidate: candidate["version"])
    result = sync_once(config)

    assert [d["base_version"] for d in index["deltas"]] == [2, 3]
    assert result.bundles == ("bundles/full-4.egtb",)


def test_duplicate_enrolment_id_rejected(publisher: Publisher, records: Any) -> None:
    with pytest.raises(EnrolmentRecordError) as error:
        publisher.publish([records(2), records(1), records(1)])

    message = str(error.value)
    assert message.startswith("record 3: enrolment id E000001 is already used by ")
    assert "already used by record 2; give each enrolment its own id" in message
    assert message.endswith("Nothing was published")
    assert publisher.version == 0


def test_duplicate_document_names_both_records(
    publisher: Publisher, records: Any
) -> None:
    first = records(1)
    second = dataclasses.replace(
        records(2), documents=(records(3).documents[0], first.documents[0])
    )

    with pytest.raises(EnrolmentRecordError) as error:
        publisher.publish([first, records(4), second])

    message = str(error.value)
    assert "record 3: documents[1] (issuing state UTO) is also a document" in message
    assert "of enrolment E000001, record 1; list each document" in message
    # The document number is personal data and stays out of the message.
    assert first.documents[0].document_number not in message
    assert publisher.version == 0


def test_refresh_extends_expiry(publisher: Publisher, records: Any) -> None:
    publisher.publish([records(1)])
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=12)

    publisher.refresh(now=later)

    timestamp = Metadata.from_file(str(publisher.metadata_dir / "timestamp.json"))
    # TUF metadata stores whole seconds.
    expected = later.replace(microsecond=0) + publisher.expiries.timestamp
    assert timestamp.signed.expires == expected


def test_gate_of_other_repository_rejects(
    publisher: Publisher,
    http_server: Any,
    configure: Any,
    records: Any,
    tmp_path: Path,
) -> None:
    publisher.publish([records(1)])
    other = Publisher.init(tmp_path / "other")
    config = configure(http_server.url, trusted_root_file=str(other.trusted_root_path))

    with pytest.raises(UpdateVerificationError, match="UnsignedMetadataError"):
        sync_once(config)


def test_deleting_more_than_the_share_is_refused(
    publisher: Publisher, records: Any
) -> None:
    publisher.publish([records(n) for n in range(1, 21)])

    with pytest.raises(UpdateError, match="deletes 3 of 20 published records") as err:
        publisher.publish([records(n) for n in range(4, 21)])

    assert "at most 2 record(s) (10%)" in str(err.value)
    assert "--allow-delete 3" in str(err.value)
    assert Publisher(publisher.workdir).version == 1
    assert publisher.publish([records(n) for n in range(3, 21)]).deleted == 2
    assert publisher.publish([], allow_delete=18).record_count == 0


@pytest.mark.parametrize("how", ["deleted", "flag cleared"])
def test_removing_a_watchlist_entry_needs_allow_delete(
    publisher: Publisher, records: Any, how: str
) -> None:
    others = [records(n) for n in range(1, 20)]
    publisher.publish([*others, records(20, watchlisted=True)])
    after = others if how == "deleted" else [*others, records(20)]

    with pytest.raises(UpdateError, match="removes 1 watchlist entry"):
        publisher.publish(after)

    assert Publisher(publisher.workdir).version == 1
    assert publisher.publish(after, allow_delete=1).version == 2


def test_folder_without_watchlist_state_guards_every_deletion(
    publisher: Publisher, records: Any
) -> None:
    publisher.publish([records(n) for n in range(1, 21)])
    (publisher.workdir / "state" / "watchlist.json").unlink()

    with pytest.raises(UpdateError, match="removes 1 watchlist entry"):
        publisher.publish([records(n) for n in range(2, 21)])

    assert (
        publisher.publish([records(n) for n in range(2, 21)], allow_delete=1).deleted
        == 1
    )


def test_cli_help_states_the_delete_share() -> None:
    assert (
        round(publisher_module.MAX_DELETE_SHARE * 100)
        == templates_cli.MAX_DELETE_PERCENT
    )
