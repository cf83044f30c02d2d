"""Whole crossings through the lane runner with synthetic biometrics.

Templates come from the real extractors on synthetic fingers and eyes from
the rig. The traveller's captures are other impressions of the same finger
and eye. Each crossing runs both ONNX models, so these tests are slow.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow

SEED = 11


@pytest.fixture
def wait_until(wait_until: Callable[..., None]) -> Callable[..., None]:
    """Return the conftest ``wait_until`` with a 60 s default timeout.

    Crossing steps run the ONNX models, so they get 60 s in place of 10 s.
    """
    return functools.partial(wait_until, timeout_s=60.0)


def templates_of(person: int, models: Path) -> tuple[bytes, bytes]:
    from edge_gate.fingerprint import FingerprintExtractor
    from edge_gate.iris import IrisEncoder
    from edge_gate.rig.synthetic import SyntheticFingerprints, SyntheticIrises

    finger = SyntheticFingerprints(SEED).impression(person, 2, 0)
    eye = SyntheticIrises(SEED).capture(person, 0, 0)
    return (
        FingerprintExtractor(models).extract(finger).to_bytes(),
        IrisEncoder(models).encode(eye).to_bytes(),
    )


def show_eye(camera: Path, image: np.ndarray) -> None:
    # Write under a name the camera ignores, then rename into place.
    partial = camera / "eye.part"
    Image.fromarray(image).save(partial, format="PNG")
    partial.rename(camera / "eye.png")


def present_finger(lane: Any, person: int, wait_until: Callable[..., None]) -> None:
    """Present the document once the lane is idle, then ``person``'s finger."""
    from edge_gate.rig.synthetic import SyntheticFingerprints

    wait_until(lane.idle_in_service)
    lane.setup.reader.present(lane.setup.mrz_lines())
    wait_until(lambda: lane.status()["state"] == "fingerprint")
    lane.setup.fingerprint_module.place_finger(
        SyntheticFingerprints(SEED).impression(person, 2, 1)
    )


def cross(lane: Any, person: int, wait_until: Callable[..., None]) -> Any:
    """Walk one traveller with ``person``'s finger and eye through the lane."""
    from edge_gate.rig.synthetic import SyntheticIrises

    setup = lane.setup
    present_finger(lane, person, wait_until)
    wait_until(lambda: lane.status()["state"] == "iris")
    setup.fingerprint_module.lift_finger()
    show_eye(setup.work / "camera", SyntheticIrises(SEED).capture(person, 0, 1))
    wait_until(lambda: lane.status()["state"] in ("passage", "referral", "idle"))
    if lane.status()["state"] == "passage":
        lane.walker.walk_through()
    wait_until(lambda: any(e.record.kind == "transaction" for e in lane.audit()))
    (entry,) = [e for e in lane.audit() if e.record.kind == "transaction"]
    return entry.record


def enrol(lane_setup: Any, *, watchlist_person: int | None = None) -> None:
    from edge_gate.store import DocumentRecord, EnrolmentRecord

    models = Path(lane_setup.sections["daemon"]["models_dir"])
    fingerprint, iris = templates_of(0, models)
    extra = []
    if watchlist_person is not None:
        listed_fingerprint, listed_iris = templates_of(watchlist_person, models)
        extra.append(
            EnrolmentRecord(
                enrolment_id="enr-listed",
                person_id="person-listed",
                documents=(DocumentRecord("UTO", "L898902C3", expiry=time_date(2031)),),
                enrolment_expiry=time_date(2031),
                watchlisted=True,
                fingerprints={"right_index": listed_fingerprint},
                irises={"right": listed_iris},
            )
        )
    lane_setup.write_templates(
        enrolled=True,
        fingerprints={"right_index": fingerprint},
        irises={"right": iris},
        extra_records=extra,
    )


def time_date(year: int) -> Any:
    import datetime

    return datetime.date(year, 1, 1)


def test_enrolled_traveller_accepted(
    lane_setup: Any, start_lane: Any, wait_until: Callable[..., None]
) -> None:
    enrol(lane_setup)
    lane = start_lane(lane_setup)
    record = cross(lane, person=0, wait_until=wait_until)
    assert record.outcome == "accepted", record.reason
    assert record.scores["fingerprint"] >= record.thresholds["fingerprint"]
    assert record.scores["iris"] >= record.thresholds["iris"]
    assert record.latency_ms is not None
    # An empty watchlist gallery is not searched, so it leaves no score.
    assert "watchlist_iris" not in record.scores
    assert record.durations_ms["fingerprint_match"] > 0
    assert lane.runner.audit.verify().is_intact


def test_listed_eye_on_own_document_alerts(
    lane_setup: Any, start_lane: Any, wait_until: Callable[..., None]
) -> None:
    # The watchlist contains person 0's own eye under another enrolment, so
    # the 1:N search must catch it although the 1:1 checks pass.
    enrol(lane_setup, watchlist_person=0)
    lane = start_lane(lane_setup)
    assert lane.status()["templates"]["watchlist_sizes"]["iris"] == 1
    lane.drain_events()
    record = cross(lane, person=0, wait_until=wait_until)
    assert record.outcome == "alert", record.reason
    assert record.scores["watchlist_iris"] >= record.thresholds["watchlist_iris"]
    # The silent alarm output may follow the audit row within the same lane
    # step, and it stays on for [turnstile] silent_alarm_s after the alert.
    silent_alarm = lane.pins.pin(lane.config.turnstile.silent_alarm_pin)
    wait_until(lambda: silent_alarm.state == 1, timeout_s=2)
    outputs = [e for e in lane.drain_events() if e["type"] == "output"]
    assert "Unlock" not in [e["command"] for e in outputs]
    assert lane.status()["state"] != "passage"


def test_stop_during_passage_recorded(
    lane_setup: Any, start_lane: Any, wait_until: Callable[..., None]
) -> None:
    from edge_gate.rig.synthetic import SyntheticIrises
    from edge_gate.store import AuditLog

    enrol(lane_setup)
    lane = start_lane(lane_setup)
    present_finger(lane, 0, wait_until)
    wait_until(lambda: lane.status()["state"] == "iris")
    show_eye(lane_setup.work / "camera", SyntheticIrises(SEED).capture(0, 0, 1))
    wait_until(lambda: lane.status()["state"] == "passage")

    # SIGTERM while the barrier is unlocked and no one has passed yet.
    lane.close()
    unlock_pin = lane.pins.pin(lane.config.turnstile.unlock_pin)
    with AuditLog(lane_setup.state_dir / "audit.db", read_only=True) as audit:
        rows = [e for e in audit.query() if e.record.kind == "transaction"]
    # No one passed, so the lane core records the accept as aborted with
    # the decision's scores kept.
    assert [e.record.outcome for e in rows] == ["aborted"]
    assert rows[0].record.reason.startswith("no_passage")
    assert rows[0].record.scores["iris"] >= rows[0].record.thresholds["iris"]
    assert unlock_pin.state == 0


def test_stop_right_after_crossing_records_it(
    lane_setup: Any, start_lane: Any, wait_until: Callable[..., None]
) -> None:
    from edge_gate.rig.synthetic import SyntheticIrises
    from edge_gate.store import AuditLog

    enrol(lane_setup)
    lane = start_lane(lane_setup)
    present_finger(lane, 0, wait_until)
    wait_until(lambda: lane.status()["state"] == "iris")
    show_eye(lane_setup.work / "camera", SyntheticIrises(SEED).capture(0, 0, 1))
    wait_until(lambda: lane.status()["state"] == "passage")

    # The traveller pushes the barrier and breaks the exit beam; the stop
    # comes before the lane thread has taken those input events.
    lane.walker.set_input("barrier_closed", False)
    lane.walker.set_input("exit_beam", True)
    lane.close()
    with AuditLog(lane_setup.state_dir / "audit.db", read_only=True) as audit:
        rows = [e for e in audit.query() if e.record.kind == "transaction"]
    assert [e.record.outcome for e in rows] == ["accepted"], rows[0].record.reason


def test_unreadable_enrolled_template_rejects(
    lane_setup: Any,
    start_lane: Any,
    wait_until: Callable[..., None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A store written before sync checked templates: 3 bytes for the finger.
    _fingerprint, iris = templates_of(
        0, Path(lane_setup.sections["daemon"]["models_dir"])
    )
    lane_setup.write_templates(
        enrolled=True,
        fingerprints={"right_index": b"\x00\x01\x02"},
        irises={"right": iris},
    )
    lane = start_lane(lane_setup)
    present_finger(lane, 0, wait_until)

    # Every attempt scores 0, the traveller is rejected, and the lane goes on.
    wait_until(lambda: any(e.record.kind == "transaction" for e in lane.audit()))
    (entry,) = [e for e in lane.audit() if e.record.kind == "transaction"]
    assert entry.record.outcome == "rejected"
    assert entry.record.scores["fingerprint"] == 0.0
    lane_setup.fingerprint_module.lift_finger()
    wait_until(lane.idle_in_service)
    assert not [w for w in lane.status()["workers"] if w["error"]]
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert any(
        "enrolled template right_index cannot be read, scored 0" in message
        for message in errors
    )


def test_unreadable_watchlist_template_names_enrolment(
    lane_setup: Any, start_lane: Any
) -> None:
    from edge_gate.errors import TemplateError
    from edge_gate.store import DocumentRecord, EnrolmentRecord

    listed = EnrolmentRecord(
        enrolment_id="enr-listed",
        person_id="person-listed",
        documents=(DocumentRecord("UTO", "L898902C3", expiry=time_date(2031)),),
        enrolment_expiry=time_date(2031),
        watchlisted=True,
        fingerprints={},
        irises={"left": b"\x00\x01\x02"},
    )
    lane_setup.write_templates(extra_records=[listed])

    with pytest.raises(TemplateError) as caught:
        start_lane(lane_setup)

    message = str(caught.value)
    assert "watchlist iris template of enrolment 'enr-listed' cannot be read" in message
    assert "iris template has 3 bytes" in message
    assert "then run edge-gate sync" in message


def listed_iris_record(number: int, grid: tuple[int, int, int]) -> Any:
    """Return a watchlisted record with one random iris code on ``grid``."""
    from edge_gate.iris import IrisTemplate
    from edge_gate.store import DocumentRecord, EnrolmentRecord

    rng = np.random.default_rng(number)
    iris = IrisTemplate(
        code=rng.random(grid) < 0.5, mask=np.ones(grid[:2], dtype=bool), quality=0.9
    )
    return EnrolmentRecord(
        enrolment_id=f"enr-listed-{number}",
        person_id=f"person-listed-{number}",
        documents=(DocumentRecord("UTO", f"L{number:08d}", expiry=time_date(2031)),),
        enrolment_expiry=time_date(2031),
        watchlisted=True,
        fingerprints={},
        irises={"left": iris.to_bytes()},
    )


@pytest.mark.parametrize("with_lane_grid", [False, True], ids=["only-odd", "mixed"])
def test_odd_grid_watchlist_iris_names_enrolment(
    lane_setup: Any, start_lane: Any, with_lane_grid: bool
) -> None:
    from edge_gate.errors import TemplateError

    records = [listed_iris_record(2, (16, 64, 2))]
    if with_lane_grid:
        records.insert(0, listed_iris_record(1, (16, 128, 2)))
    lane_setup.write_templates(extra_records=records)

    with pytest.raises(TemplateError) as caught:
        start_lane(lane_setup)

    message = str(caught.value)
    assert "watchlist iris template of enrolment 'enr-listed-2'" in message
    assert "has code grid (16, 64, 2)" in message
    assert "iris encoder makes (16, 128, 2)" in message
    assert "enr-listed-1" not in message
