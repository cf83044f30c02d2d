"""The simulate report: error counts, scenario summary, JSON shape, table."""

from __future__ import annotations

from edge_gate.rig.report import CrossingResult, SimulationReport, percentile


def _row(
    number: int, scenario: str, outcome: str | None, **kw: object
) -> CrossingResult:
    return CrossingResult(
        number=number,
        scenario=scenario,
        traveller=str(number),
        outcome=outcome,
        reason=str(kw.pop("reason", "")),
        **kw,  # type: ignore[arg-type]
    )


def test_counts_false_accepts_and_rejects() -> None:
    report = SimulationReport(
        source="test",
        time_scale=0.1,
        crossings=(
            _row(1, "genuine", "accepted", latency_ms=100.0),
            _row(2, "genuine", "rejected", latency_ms=200.0),
            _row(3, "impostor", "accepted", latency_ms=300.0),
            _row(4, "watchlisted", "alert"),
        ),
    )
    data = report.to_json_dict()
    assert data["crossings"] == 4
    assert data["accepted"] == 2
    assert data["rejected"] == 1
    assert data["alerts"] == 1
    assert data["false_accepts"] == 1
    assert data["false_rejects"] == 1
    assert data["latency_ms"] == {"p50": 200.0, "p95": 300.0, "max": 300.0}
    assert data["scenarios"]["genuine"] == {
        "expected": "accepted",
        "observed": "accepted x1, rejected x1",
        "ok": False,
    }
    assert data["scenarios"]["watchlisted"]["ok"] is True
    assert not report.all_ok


def test_alarms_are_part_of_result() -> None:
    with_alarm = _row(1, "tailgating", "accepted", alarms=("tailgating",))
    without = _row(2, "tailgating", "accepted")
    assert with_alarm.ok
    assert with_alarm.observed == "accepted + tailgating"
    assert not without.ok


def test_not_run_counts_nowhere() -> None:
    row = _row(1, "fire_release", None, ran=False, reason="walker missing")
    report = SimulationReport(source="t", time_scale=1.0, crossings=(row,))
    data = report.to_json_dict()
    assert data["crossings"] == 0
    assert data["scenarios"]["fire_release"]["observed"] == "not run (walker missing)"
    assert data["scenarios"]["fire_release"]["ok"] is False
    assert data["latency_ms"] == {"p50": None, "p95": None, "max": None}
    assert data["machine_ms"] == {"p50": None, "p95": None, "max": None}
    assert "walker missing" in report.format_table()


def test_table_has_row_per_crossing() -> None:
    report = SimulationReport(
        source="synthetic",
        time_scale=0.1,
        crossings=(_row(1, "genuine", "accepted", simulated_s=9.5),),
    )
    table = report.format_table()
    assert "genuine" in table
    assert "9.5s" in table
    assert "every scenario ended as expected" in table


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.95) == 95.0
    assert percentile(values, 0.5) == 50.0
    assert percentile([], 0.5) is None


def test_machine_time_leaves_out_captures() -> None:
    from edge_gate.rig.simulation import machine_ms_from_durations

    durations = {
        "to_decision": 5000.0,
        "fingerprint_capture": 2500.0,
        "fingerprint_match": 400.0,
        "iris_capture": 2300.0,
        "iris_match": 30.0,
        "transaction": 9000.0,
    }
    # 5000 - 2500 - 2300 + 400 (extraction hidden behind the iris capture).
    assert machine_ms_from_durations(durations) == 600.0
    assert machine_ms_from_durations({"to_decision": 3.0}) == 3.0


def test_summary_separates_false_rejects_from_faults() -> None:
    report = SimulationReport(
        source="real images",
        time_scale=0.1,
        crossings=(
            _row(1, "tailgating", "rejected", reason="iris_no_match"),
            _row(2, "walk_away", "accepted"),
            _row(3, "genuine", "accepted"),
        ),
    )
    table = report.format_table()

    assert "scenarios that differed only by a false reject or alert: tailgating" in (
        table
    )
    assert "scenarios not as expected: walk_away" in table
    assert "every scenario ended as expected" not in table


def test_false_alert_is_counted_apart() -> None:
    report = SimulationReport(
        source="synthetic",
        time_scale=0.1,
        crossings=(
            _row(1, "genuine", "alert"),
            _row(2, "impostor", "alert"),
            _row(3, "watchlisted", "alert"),
        ),
    )
    data = report.to_json_dict()

    assert data["false_alerts"] == 2
    assert data["false_rejects"] == 0
    assert [c.is_matcher_error for c in report.crossings] == [True, True, False]
    assert "false alerts 2" in report.format_table()
