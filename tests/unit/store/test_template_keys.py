"""Template keys, the trusted clock and enrolment record validation."""

from __future__ import annotations

import base64
import datetime
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from edge_gate.errors import ConfigError, EnrolmentRecordError
from edge_gate.store import (
    TrustedClock,
    clock_is_trustworthy,
    generate_key_file,
    load_key,
    record_from_json,
    record_to_json,
    resolve_key_path,
)

# Keys


def test_generated_key_loads_and_is_private(tmp_path: Path) -> None:
    path = generate_key_file(tmp_path / "keys" / "template.key")

    key = load_key(path)

    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_generate_never_overwrites(tmp_path: Path) -> None:
    path = generate_key_file(tmp_path / "template.key")
    before = path.read_bytes()

    with pytest.raises(FileExistsError):
        generate_key_file(path)
    assert path.read_bytes() == before


def test_raw_key_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "raw.key"
    path.write_bytes(bytes(range(32)))

    assert load_key(path) == bytes(range(32))


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"ab" * 31, id="too-short-hex"),
        pytest.param(b"zz" * 32, id="not-hex"),
        pytest.param(bytes(33), id="33-raw-bytes"),
    ],
)
def test_invalid_key_file_rejected(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.key"
    path.write_bytes(content)

    with pytest.raises(ConfigError, match="32 raw bytes or 64 hexadecimal"):
        load_key(path)


def test_missing_key_file_names_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="gate-key"):
        load_key(tmp_path / "absent.key")


def test_systemd_credential_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    generate_key_file(tmp_path / "template.key")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))

    assert resolve_key_path("credential:template.key") == tmp_path / "template.key"
    assert len(load_key("credential:template.key")) == 32


def test_credential_without_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)

    with pytest.raises(ConfigError, match="CREDENTIALS_DIRECTORY"):
        resolve_key_path("credential:template.key")


def test_credential_name_with_slash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", "/run/credentials/x")

    with pytest.raises(ConfigError, match="no '/'"):
        resolve_key_path("credential:../etc/shadow")


def test_world_readable_key_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = generate_key_file(tmp_path / "template.key")
    os.chmod(path, 0o644)

    load_key(path)

    assert "chmod 600" in caplog.text


# Trusted clock

T0 = datetime.datetime(2026, 12, 4, 12, 0, tzinfo=datetime.UTC)


def test_clock_without_record_is_trusted(tmp_path: Path) -> None:
    assert clock_is_trustworthy(T0, tmp_path)


def test_clock_keeps_latest_time(tmp_path: Path) -> None:
    clock = TrustedClock(tmp_path)
    clock.record(T0)
    clock.record(T0 - datetime.timedelta(days=1))

    assert clock.latest() == T0


@pytest.mark.parametrize(
    ("offset_s", "trusted"),
    [
        pytest.param(3600, True, id="ahead"),
        pytest.param(-299, True, id="small-ntp-step-back"),
        pytest.param(-301, False, id="behind-tolerance"),
        pytest.param(-86400 * 365, False, id="reset-to-old-date"),
    ],
)
def test_clock_trust(tmp_path: Path, offset_s: float, trusted: bool) -> None:
    TrustedClock(tmp_path).record(T0)

    now = T0 + datetime.timedelta(seconds=offset_s)

    assert clock_is_trustworthy(now, tmp_path, max_backward_s=300) is trusted


def test_clock_file_garbage_counts_as_none(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = TrustedClock(tmp_path)
    clock.path.write_text("yesterday")

    assert clock.latest() is None
    assert "no valid ISO 8601 time" in caplog.text


def test_clock_rejects_naive_time(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="timezone"):
        TrustedClock(tmp_path).record(datetime.datetime(2026, 1, 1))


# Records


def valid_record() -> dict[str, Any]:
    return {
        "person_id": "P-1",
        "documents": [
            {
                "issuing_state": "UTO",
                "document_number": "L898902C3",
                "expiry": "2031-01-01",
            }
        ],
        "enrolment_expiry": "2030-01-01",
        "watchlisted": False,
        "revoked": False,
        "fingerprints": {
            "right_index": {"template_b64": base64.b64encode(b"fp").decode()}
        },
        "irises": {"left": {"template_b64": base64.b64encode(b"iris").decode()}},
    }


def test_record_round_trip() -> None:
    record = record_from_json(valid_record())

    again = record_from_json(record_to_json(record))

    assert again == record
    assert record.enrolment_id == "P-1"
    assert record.fingerprints == {"right_index": b"fp"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param({"person_id": ""}, "person_id", id="empty-person-id"),
        pytest.param({"person_id": "a b"}, "person_id", id="space-in-id"),
        pytest.param(
            {"enrolment_expiry": "2030-13-01"}, "enrolment_expiry", id="bad-date"
        ),
        pytest.param({"watchlisted": "yes"}, "watchlisted", id="flag-not-bool"),
        pytest.param({"colour": "red"}, "unknown field", id="unknown-field"),
        pytest.param(
            {"fingerprints": {"thumb": {"template_b64": "AA=="}}},
            "unknown position",
            id="bad-finger",
        ),
        pytest.param(
            {"irises": {"left": {"template_b64": "***"}}},
            "not valid base64",
            id="bad-base64",
        ),
        pytest.param(
            {"irises": {"left": "eye.png"}}, "template_b64", id="image-without-loader"
        ),
        pytest.param(
            {"irises": {"left": {"template_b64": ""}}},
            "1 to 65536 bytes",
            id="empty-template",
        ),
        pytest.param(
            {"fingerprints": {}, "irises": {}},
            "no fingerprint and no iris",
            id="no-templates",
        ),
        pytest.param(
            {"documents": []}, "can never be found", id="no-document-not-listed"
        ),
        pytest.param(
            {
                "documents": [
                    {
                        "issuing_state": "utopia",
                        "document_number": "1",
                        "expiry": "2030-01-01",
                    }
                ]
            },
            "issuing_state",
            id="bad-state",
        ),
        pytest.param(
            {
                "documents": [
                    {
                        "issuing_state": "UTO",
                        "document_number": "ab-1",
                        "expiry": "2030-01-01",
                    }
                ]
            },
            "document_number",
            id="bad-number",
        ),
    ],
)
def test_invalid_record_rejected(change: dict[str, Any], message: str) -> None:
    value = {**valid_record(), **change}

    with pytest.raises(EnrolmentRecordError, match=message):
        record_from_json(value)


def test_document_fillers_are_dropped() -> None:
    document = {
        "issuing_state": "D<<",
        "document_number": "C01X00T47<<",
        "expiry": "2031-01-01",
    }

    record = record_from_json({**valid_record(), "documents": [document]})

    assert record.documents[0].issuing_state == "D"
    assert record.documents[0].document_number == "C01X00T47"


def test_same_document_with_fillers_rejected() -> None:
    first = {"issuing_state": "D", "document_number": "C01", "expiry": "2031-01-01"}
    second = {**first, "issuing_state": "D<<", "document_number": "C01<"}

    with pytest.raises(EnrolmentRecordError, match="same document twice"):
        record_from_json({**valid_record(), "documents": [first, second]})


def test_watchlist_record_without_document() -> None:
    record = record_from_json({**valid_record(), "documents": [], "watchlisted": True})

    assert record.documents == ()
    assert record.watchlisted


def test_image_values_go_to_loader() -> None:
    calls: list[tuple[str, str, Any]] = []

    def loader(kind: str, position: str, value: Any) -> bytes:
        calls.append((kind, position, value))
        return b"from-image"

    record = record_from_json(
        {**valid_record(), "irises": {"right": "eyes/p1.png"}}, load_template=loader
    )

    assert calls == [("iris", "right", "eyes/p1.png")]
    assert record.irises == {"right": b"from-image"}
