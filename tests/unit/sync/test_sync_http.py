"""Publish, serve over real HTTP(S) on 127.0.0.1, sync and read back."""

from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_gate.errors import UpdateTransportError, UpdateVerificationError
from edge_gate.store import TEMPLATES_DB, TemplateStore, TrustedClock, load_key
from edge_gate.sync import Publisher, run_sync, sync_once


def open_store(config: Any) -> TemplateStore:
    state_dir = Path(config.store.state_dir)
    return TemplateStore(state_dir / TEMPLATES_DB, load_key(config.store.key_file))


def test_first_sync_applies_full_snapshot(
    publisher: Publisher, http_server: Any, configure: Any, records: Any
) -> None:
    publisher.publish([records(1), records(2, watchlisted=True), records(3)])
    config = configure(http_server.url)

    result = sync_once(config)

    assert result.outcome == "updated"
    assert result.previous_version == 0
    assert result.version == 1
    assert result.bundles == ("bundles/full-1.egtb",)
    with open_store(config) as store:
        assert store.version() == 1
        enrolment = store.lookup("UTO", "D00000002")
        assert enrolment is not None
        assert enrolment.enrolment_id == "E000002"
        assert enrolment.watchlisted
        assert enrolment.fingerprints == dict(records(2).fingerprints)
        assert enrolment.irises == dict(records(2).irises)
        assert store.lookup("UTO", "D00000009") is None
        status = store.status()
        assert status.enrolments == 3
        assert status.watchlisted == 1
        assert status.iris_templates == 6


def test_second_sync_applies_delta(
    publisher: Publisher, http_server: Any, configure: Any, records: Any
) -> None:
    publisher.publish([records(n) for n in range(1, 6)])
    config = configure(http_server.url)
    sync_once(config)
    changed = records(3, revoked=True)
    publisher.publish(
        [records(1), records(2), changed, records(4), records(6)], allow_delete=1
    )

    result = sync_once(config)

    assert result.bundles == ("bundles/delta-1-2.egtb",)
    with open_store(config) as store:
        assert store.version() == 2
        revoked = store.lookup("UTO", "D00000003")
        assert revoked is not None
        assert revoked.revoked
        assert store.lookup("UTO", "D00000005") is None
        assert store.lookup("UTO", "D00000006") is not None
        assert store.status().enrolments == 5


def test_sync_without_change_is_current(
    publisher: Publisher, http_server: Any, configure: Any, records: Any
) -> None:
    publisher.publish([records(1)])
    config = configure(http_server.url)
    sync_once(config)
    publisher.refresh()
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=1)

    result = sync_once(config, now=later)

    assert result.outcome == "current"
    with open_store(config) as store:
        assert store.updated_at() == later


def test_gate_behind_applies_delta_chain(
    publisher: Publisher, http_server: Any, configure: Any, records: Any
) -> None:
    base = [records(n) for n in range(1, 41)]
    publisher.publish(base)
    config = configure(http_server.url)
    sync_once(config)
    for version in range(2, 5):
        publisher.publish([*base[1:], records(100 + version)])

    result = sync_once(config)

    assert result.bundles == (
        "bundles/delta-1-2.egtb",
        "bundles/delta-2-3.egtb",
        "bundles/delta-3-4.egtb",
    )
    with open_store(config) as store:
        assert store.version() == 4
        assert store.lookup("UTO", "D00000001") is None
        assert store.lookup("UTO", "D00000104") is not None
        assert store.lookup("UTO", "D00000102") is None


def test_chain_larger_than_full_takes_full(
    publisher: Publisher, http_server: Any, configure: Any, records: Any
) -> None:
    publisher.publish([records(n) for n in range(1, 21)])
    config = configure(http_server.url)
    sync_once(config)
    publisher.publish([records(n) for n in range(21, 41)], allow_delete=20)
    publisher.publish([records(n) for n in range(41, 44)], allow_delete=20)

    result = sync_once(config)

    assert result.bundles == ("bundles/full-3.egtb",)
    with open_store(config) as store:
        assert store.status().enrolments == 3
        assert store.lookup("UTO", "D00000041") is not None


def test_watchlist_without_document(
    publisher: Publisher, http_server: Any, configure: Any, records: Any
) -> None:
    listed = records(7, watchlisted=True, with_document=False)
    publisher.publish([records(1), listed])
    config = configure(http_server.url)

    sync_once(config)

    with open_store(config) as store:
        irises = store.watchlist_irises()
        fingerprints = store.watchlist_fingerprints()
    assert irises == [
        ("E000007", listed.irises["left"]),
        ("E000007", listed.irises["right"]),
    ]
    assert sorted(fingerprints) == sorted(
        ("E000007", template) for template in listed.fingerprints.values()
    )


def test_sync_records_trusted_time(
    publisher: Publisher, http_server: Any, configure: Any, records: Any
) -> None:
    publisher.publish([records(1)])
    config = configure(http_server.url)

    sync_once(config)

    clock = TrustedClock(Path(config.store.state_dir))
    latest = clock.latest()
    assert latest is not None
    assert clock.clock_is_trustworthy(latest)
    assert not clock.clock_is_trustworthy(latest - datetime.timedelta(hours=1))


def test_sync_over_https_with_test_ca(
    publisher: Publisher,
    https_server: Any,
    configure: Any,
    records: Any,
    certificate: Any,
) -> None:
    publisher.publish([records(1)])
    config = configure(https_server.url, ca_file=str(certificate.cert_file))

    result = sync_once(config)

    assert result.version == 1


def test_https_rejects_unknown_certificate(
    publisher: Publisher,
    https_server: Any,
    configure: Any,
    records: Any,
    certificate_factory: Any,
    tmp_path: Path,
) -> None:
    publisher.publish([records(1)])
    other = tmp_path / "other"
    other.mkdir()
    config = configure(
        https_server.url, ca_file=str(certificate_factory(other).cert_file)
    )

    with pytest.raises(UpdateTransportError, match="CERTIFICATE_VERIFY_FAILED"):
        sync_once(config)
    with open_store(config) as store:
        assert store.version() == 0


def test_run_sync_retries_with_backoff(
    publisher: Publisher, http_server: Any, configure: Any, records: Any
) -> None:
    publisher.publish([records(1)])
    http_server.fault = "500"
    http_server.fault_path = "timestamp.json"
    config = configure(http_server.url, retries=3, backoff_s=1.0, backoff_max_s=3.0)
    pauses: list[float] = []

    with pytest.raises(UpdateTransportError, match="gave up after 4 attempts"):
        run_sync(config, sleep=pauses.append)

    assert pauses == [1.0, 2.0, 3.0]
    assert sum("timestamp.json" in r for r in http_server.requests) == 4


def test_run_sync_succeeds_after_transient_failure(
    publisher: Publisher, http_server: Any, configure: Any, records: Any
) -> None:
    publisher.publish([records(1)])
    http_server.fault = "500"
    http_server.fault_path = "timestamp.json"
    config = configure(http_server.url, retries=2, backoff_s=0.5)

    def heal(seconds: float) -> None:
        del seconds
        http_server.fault = None

    result = run_sync(config, sleep=heal)

    assert result.version == 1


def odd_grid_iris() -> bytes:
    from edge_gate.iris import IrisTemplate

    return IrisTemplate(
        code=np.zeros((16, 64, 2), dtype=bool),
        mask=np.ones((16, 64), dtype=bool),
        quality=0.9,
    ).to_bytes()


def unmasked_iris() -> bytes:
    from edge_gate.iris import IrisTemplate

    return IrisTemplate(
        code=np.zeros((16, 128, 2), dtype=bool),
        mask=np.zeros((16, 128), dtype=bool),
        quality=0.9,
    ).to_bytes()


def empty_fingerprint() -> bytes:
    from edge_gate.fingerprint import FingerprintTemplate

    return FingerprintTemplate(
        np.zeros((0, 5), dtype=np.float32), width=256, height=288
    ).to_bytes()


@pytest.mark.parametrize(
    ("kind", "position", "template", "message"),
    [
        pytest.param(
            "irises",
            "left",
            lambda: b"\x00\x01\x02",
            "irises.left: iris template has 3 bytes",
            id="iris-unreadable",
        ),
        pytest.param(
            "fingerprints",
            "right_index",
            lambda: b"\x00\x01\x02",
            "fingerprints.right_index: fingerprint template is 3 bytes",
            id="fingerprint-unreadable",
        ),
        pytest.param(
            "irises",
            "left",
            odd_grid_iris,
            "irises.left: iris code grid 16 x 64 x 2 differs from the lane "
            "encoder's 16 x 128 x 2",
            id="iris-grid",
        ),
        pytest.param(
            "irises",
            "right",
            unmasked_iris,
            "irises.right: iris template has 0 valid code bits",
            id="iris-no-mask",
        ),
        pytest.param(
            "fingerprints",
            "left_index",
            empty_fingerprint,
            "fingerprints.left_index: fingerprint template has 0 minutiae",
            id="no-minutiae",
        ),
    ],
)
def test_unusable_template_rejects_update(
    publisher: Publisher,
    http_server: Any,
    configure: Any,
    records: Any,
    kind: str,
    position: str,
    template: Any,
    message: str,
) -> None:
    publisher.publish([records(1)])
    config = configure(http_server.url)
    sync_once(config)
    # A publisher that does not check templates (an older edge-gate, or
    # another tool) signs a watchlisted record whose template cannot be
    # parsed, or parses but cannot be compared with any capture.
    listed = records(2, watchlisted=True)
    templates = {**getattr(listed, kind), position: template()}
    publisher.publish([records(1), dataclasses.replace(listed, **{kind: templates})])

    with pytest.raises(UpdateVerificationError) as caught:
        sync_once(config)

    assert "bundle bundles/delta-1-2.egtb" in str(caught.value)
    assert "enrolment 'E000002'" in str(caught.value)
    assert message in str(caught.value)
    with open_store(config) as store:
        assert store.version() == 1
        assert store.status().enrolments == 1
