"""The simulate report: one row per crossing, a summary, and the JSON form.

Error counts follow the scenario table. A *false accept* is a crossing that
ended ``accepted`` although its scenario expected anything else (an
impostor, a watchlisted person, a bad document). A *false reject* is a
crossing whose scenario expected ``accepted`` that ended ``rejected``. A
*false alert* is a crossing that ended ``alert`` (a watchlist hit) although
its scenario expected no alert. False rejects and false alerts are the
matchers' error rates at work, not faults of the lane, and are counted as
such. Crossings that did not run count in none and appear with their reason.

Two times are kept apart. ``latency_ms`` is the lane's own figure from the
audit record: the time from the last capture to the barrier command.
``simulated_s`` is the realistic time the traveller and the sensors took
(the rig slept only a scaled fraction of it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from edge_gate.rig.scenarios import SCENARIOS_BY_NAME, describe_result


@dataclass(frozen=True)
class CrossingResult:
    """Result of one crossing, compared with its scenario.

    Attributes:
        number: position in the run, from 1.
        scenario: the scenario's name.
        traveller: label of the traveller (index, or the data set pair).
        outcome: the audit record's outcome, or None when no record came.
        reason: the decision's reason, or why the crossing did not run.
        alarms: alarm names recorded with the transaction.
        latency_ms: last capture to barrier command, from the audit record.
        lane_ms: document read to the transaction's end, as the rig saw it
            on the wall clock at the run's time scale.
        simulated_s: realistic duration of the traveller's and sensors' part.
        machine_ms: the lane's processing from document read to decision as
            if traveller and sensors took no time, from its audit durations
            (see ``simulation.machine_ms_from_durations``).
        scores: 1:1 scores from the audit record, by modality.
        ran: False when the crossing could not be run at all.
    """

    number: int
    scenario: str
    traveller: str
    outcome: str | None
    reason: str
    alarms: tuple[str, ...] = ()
    latency_ms: float | None = None
    lane_ms: float | None = None
    simulated_s: float = 0.0
    machine_ms: float | None = None
    scores: dict[str, float] = field(default_factory=dict)
    ran: bool = True

    @property
    def expected(self) -> str:
        """The scenario's expected result."""
        return SCENARIOS_BY_NAME[self.scenario].expected

    @property
    def observed(self) -> str:
        """The observed result, written like :attr:`expected`."""
        if not self.ran:
            return "not run"
        if self.outcome is None:
            return "no record"
        return describe_result(self.outcome, self.alarms)

    @property
    def ok(self) -> bool:
        """Whether the crossing ran and ended exactly as expected."""
        return self.ran and self.observed == self.expected

    @property
    def is_false_accept(self) -> bool:
        """Accepted although the scenario expected something else."""
        expected = SCENARIOS_BY_NAME[self.scenario].expected_outcome
        return self.outcome == "accepted" and expected != "accepted"

    @property
    def is_false_alert(self) -> bool:
        """A watchlist alert although the scenario expected none."""
        expected = SCENARIOS_BY_NAME[self.scenario].expected_outcome
        return self.outcome == "alert" and expected != "alert"

    @property
    def is_matcher_error(self) -> bool:
        """Ended otherwise than expected only through a false reject or alert."""
        return self.is_false_reject or self.is_false_alert

    @property
    def is_false_reject(self) -> bool:
        """Rejected although the scenario expected an accept."""
        expected = SCENARIOS_BY_NAME[self.scenario].expected_outcome
        return self.outcome == "rejected" and expected == "accepted"


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Return the ``fraction`` quantile by the nearest-rank method, or None."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class SimulationReport:
    """All crossings of one run, with the source they came from.

    Attributes:
        source: one line naming the travellers' source.
        time_scale: factor applied to the simulated delays when sleeping.
        crossings: every crossing in run order.
        notes: run-level remarks (components missing, travellers capped).
    """

    source: str
    time_scale: float
    crossings: tuple[CrossingResult, ...]
    notes: tuple[str, ...] = ()

    @property
    def all_ok(self) -> bool:
        """Every crossing ran and ended as expected."""
        return bool(self.crossings) and all(c.ok for c in self.crossings)

    def latencies_ms(self) -> list[float]:
        """Return the latency of every crossing that has one."""
        return [c.latency_ms for c in self.crossings if c.latency_ms is not None]

    def machine_times_ms(self) -> list[float]:
        """Return the machine time of every crossing that has one."""
        return [c.machine_ms for c in self.crossings if c.machine_ms is not None]

    def scenario_summary(self) -> dict[str, dict[str, Any]]:
        """Return, per scenario, the expected result, what was observed, and ok.

        ``observed`` is the single observed result when all crossings of the
        scenario agree, else each distinct result with its count.
        """
        summary: dict[str, dict[str, Any]] = {}
        for name in dict.fromkeys(c.scenario for c in self.crossings):
            rows = [c for c in self.crossings if c.scenario == name]
            counts: dict[str, int] = {}
            for row in rows:
                label = row.observed if row.ran else f"not run ({row.reason})"
                counts[label] = counts.get(label, 0) + 1
            if len(counts) == 1:
                observed = next(iter(counts))
            else:
                observed = ", ".join(f"{label} x{n}" for label, n in counts.items())
            summary[name] = {
                "expected": SCENARIOS_BY_NAME[name].expected,
                "observed": observed,
                "ok": all(row.ok for row in rows),
            }
        return summary

    def to_json_dict(self) -> dict[str, Any]:
        """Return the report in the documented JSON shape."""
        ran = [c for c in self.crossings if c.ran]
        return {
            "crossings": len(ran),
            "accepted": sum(c.outcome == "accepted" for c in ran),
            "rejected": sum(c.outcome == "rejected" for c in ran),
            "alerts": sum(c.outcome == "alert" for c in ran),
            "false_accepts": sum(c.is_false_accept for c in ran),
            "false_rejects": sum(c.is_false_reject for c in ran),
            "false_alerts": sum(c.is_false_alert for c in ran),
            "scenarios": self.scenario_summary(),
            "latency_ms": _spread(self.latencies_ms()),
            "machine_ms": _spread(self.machine_times_ms()),
        }

    def format_table(self) -> str:
        """Return the human-readable report: one row per crossing, then a summary."""
        header = (
            f"{'#':>3}  {'scenario':<26} {'traveller':<12} {'expected':<24} "
            f"{'observed':<24} {'ok':<3} {'latency':>8} {'machine':>8} {'human':>7}"
        )
        lines = [f"edge-gate simulate: {self.source}", "", header, "-" * len(header)]
        for row in self.crossings:
            lines.append(
                f"{row.number:>3}  {row.scenario:<26} {row.traveller:<12} "
                f"{row.expected:<24} {row.observed:<24} {'yes' if row.ok else 'NO':<3} "
                f"{_ms(row.latency_ms):>8} {_ms(row.machine_ms):>8} "
                f"{row.simulated_s:>6.1f}s"
            )
            if not row.ran or (not row.ok and row.reason):
                lines.append(f"{'':5}{row.reason}")
        lines.extend(["", *self._summary_lines()])
        return "\n".join(lines)

    def _summary_lines(self) -> list[str]:
        data = self.to_json_dict()
        latency = data["latency_ms"]
        machine = data["machine_ms"]
        lines = [
            f"crossings {data['crossings']}: accepted {data['accepted']}, rejected "
            f"{data['rejected']}, alerts {data['alerts']}; false accepts "
            f"{data['false_accepts']}, false rejects {data['false_rejects']}, "
            f"false alerts {data['false_alerts']}",
            f"latency (last capture to barrier command): p50 {_ms(latency['p50'])}, "
            f"p95 {_ms(latency['p95'])}, max {_ms(latency['max'])}",
            f"machine time (document read to decision, without traveller and "
            f"sensor time): p50 {_ms(machine['p50'])}, p95 {_ms(machine['p95'])}, "
            f"max {_ms(machine['max'])}",
            "columns: latency = last capture to barrier command; machine = "
            "document read to decision less capture time (both from the audit "
            "log); human = "
            f"realistic traveller and sensor time (slept x{self.time_scale:g})",
        ]
        failed = [n for n, s in data["scenarios"].items() if not s["ok"]]
        # A genuine traveller may be falsely rejected, anyone may raise a false
        # watchlist alert; those are error rates (counted above), not faults.
        rejected_only = [
            name
            for name in failed
            if all(
                c.ok or c.is_false_reject for c in self.crossings if c.scenario == name
            )
        ]
        unexpected = [name for name in failed if name not in rejected_only]
        if unexpected:
            lines.append(f"scenarios not as expected: {', '.join(unexpected)}")
        if rejected_only:
            lines.append(
                "scenarios that differed only by a false reject or alert: "
                + ", ".join(rejected_only)
            )
        if not failed:
            lines.append("every scenario ended as expected")
        lines.extend(self.notes)
        return lines


def _spread(values: list[float]) -> dict[str, float | None]:
    return {
        "p50": _rounded(percentile(values, 0.5)),
        "p95": _rounded(percentile(values, 0.95)),
        "max": _rounded(max(values) if values else None),
    }


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}ms"


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
