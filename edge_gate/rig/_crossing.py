"""Play one traveller through the lane, following the display's prompts.

The traveller follows the lane's display messages as a person would:

- ``place_document`` after walking in: put the document on the reader;
- ``present_finger`` / ``retry_finger``: put the finger on the sensor and
  keep it there;
- ``look_at_camera`` / ``retry_iris``: lift the finger, look into the
  camera (the rig writes the eye image into the camera folder);
- ``proceed``: walk through the barrier (or with a tailgater);
- the transaction's record ends the crossing; a traveller still in the
  lane then leaves through the entrance.

Faults are injected at the first finger prompt: the fingerprint module is
unplugged (and plugged back once the lane has gone out of service), or the
fire release becomes active. Every human and sensor delay is slept at the
rig's time scale and added to the crossing's realistic duration.

A crossing ends early, with ``stuck_reason`` set, when a lane worker stops
on an error or when no transaction record comes within
:func:`crossing_limit_s`. The lane cannot serve the next traveller then.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from edge_gate.config import GateConfig
from edge_gate.gate import LaneSettings
from edge_gate.rig._lane_rig import WALK_STEP_S, LaneRig, SimulationError
from edge_gate.rig._plan import PlannedCrossing
from edge_gate.rig.scenarios import HumanDelays
from edge_gate.rig.synthetic import mrz_lines

logger = logging.getLogger(__name__)

# Seconds added to a crossing's limit for the rig's own work (walking
# steps, writing eye images) on a slow machine. An estimate.
_CROSSING_MARGIN_S = 30.0
# Walking steps of one crossing at most: walking in (3), then tailgating
# (10) or walking away (3).
_MAX_WALK_STEPS = 13
_FINGER_PROMPTS = frozenset({"present_finger", "retry_finger"})
_IRIS_PROMPTS = frozenset({"look_at_camera", "retry_iris"})
# Messages shown with the decision: accept, reject or alert, fire release.
_DECISION_MESSAGES = frozenset({"proceed", "see_officer", "emergency_exit"})


@dataclass
class CrossingTrace:
    """Observations of the rig during one crossing.

    Attributes:
        transaction: the lane's ``transaction`` event, or None if none came.
        simulated_s: realistic duration of the traveller's and sensors' part.
        document_at: monotonic time the document was presented.
        ended_at: monotonic time the transaction event arrived.
        decided_at: monotonic time the lane showed its decision (the barrier
            command goes out with it), or the transaction ended without one.
        waited_s: wall time the rig slept between the document and the
            decision, standing for the traveller's and sensors' part.
        messages: display messages in order.
        alarms: alarm names the lane published during the crossing.
        stuck_reason: why the crossing ended without a record (a lane
            worker stopped, or the crossing's limit passed) or why the lane
            stayed out of service afterwards; "" when neither happened.
    """

    transaction: dict[str, Any] | None = None
    simulated_s: float = 0.0
    document_at: float | None = None
    ended_at: float | None = None
    decided_at: float | None = None
    waited_s: float = 0.0
    messages: list[str] = field(default_factory=list)
    alarms: list[str] = field(default_factory=list)
    stuck_reason: str = ""


def crossing_limit_s(
    config: GateConfig, delays: HumanDelays, time_scale: float
) -> float:
    """Return the wall-clock limit for one crossing, in seconds.

    Steps:

    1. Add up the lane's worst case from its configured timeouts: the
       document read, the enrolment lookup, every capture attempt of each
       modality with its grace, scoring, the watchlist search, then the
       passage or the referral display, whichever is longer.
    2. Add the traveller's worst case: every human and sensor delay for each
       attempt, and the walking steps, slept at ``time_scale``.
    3. Double the sum and add a margin. A crossing still without a record
       then means that the lane stopped working, not that it was slow.
    """
    settings = LaneSettings.from_config(config)
    attempts = max(settings.max_attempts.values())
    captures_s = sum(
        settings.max_attempts[modality] * (timeout_s + settings.capture_grace_s)
        for modality, timeout_s in settings.capture_s.items()
    )
    lane_s = (
        settings.document_s
        + settings.lookup_s
        + captures_s
        + settings.scoring_s
        + settings.watchlist_s
        + max(settings.passage_s, settings.referral_s)
    )
    traveller_s = time_scale * (
        attempts * sum(float(delay_s) for delay_s in dataclasses.astuple(delays))
        + _MAX_WALK_STEPS * WALK_STEP_S
    )
    return 2.0 * (lane_s + traveller_s) + _CROSSING_MARGIN_S


def machine_ms(trace: CrossingTrace) -> float | None:
    """Estimate the lane's own time from document to decision, in milliseconds.

    The estimate is the wall time from presenting the document to the
    decision minus the time the rig slept for the traveller and the sensors.
    It still includes the drivers' polling intervals (finger and camera), so
    the report uses it only when the audit record is missing.
    """
    if trace.document_at is None or trace.decided_at is None:
        return None
    return (trace.decided_at - trace.document_at - trace.waited_s) * 1000.0


class TravellerActor:
    """Carries out one planned crossing on a running :class:`LaneRig`.

    Args:
        rig: the running lane.
        delays: realistic human and sensor durations.
        finger_image: returns the finger image for (identity, capture).
        eye_image: returns the eye image for (identity, capture).
    """

    def __init__(
        self,
        rig: LaneRig,
        delays: HumanDelays,
        finger_image: Any,
        eye_image: Any,
    ) -> None:
        self._rig = rig
        self._delays = delays
        self._finger_image = finger_image
        self._eye_image = eye_image
        self._eye_count = 0
        assert rig.config is not None  # the rig enrolled before the lane ran
        self.limit_s = crossing_limit_s(rig.config, delays, rig.time_scale)

    def _pause(self, trace: CrossingTrace, realistic_s: float) -> None:
        trace.simulated_s += realistic_s
        started = time.monotonic()
        self._rig.sleep(realistic_s)
        if trace.document_at is not None and trace.decided_at is None:
            trace.waited_s += time.monotonic() - started

    def run(self, planned: PlannedCrossing) -> CrossingTrace:
        """Play the crossing to its end and return what happened.

        When a lane worker stops on an error, when no transaction record
        comes within :attr:`limit_s` seconds, or when the lane does not come
        back into service afterwards, the trace's ``stuck_reason`` gives the
        reason, and the next crossing cannot run.
        """
        rig = self._rig
        trace = CrossingTrace()
        rig.drain_events()
        self._clear_camera()

        # Walk in (the walker pauses its own steps), then place the document.
        walker_before = len(rig.walker.events)
        rig.walker.enter()
        trace.simulated_s += WALK_STEP_S * (len(rig.walker.events) - walker_before - 1)
        self._pause(trace, self._delays.document_s)
        person = planned.document_holder.with_document(planned.document)
        rig.document_reader.present(mrz_lines(person))
        trace.document_at = time.monotonic()

        state = _ActorState()
        trace.stuck_reason = self._follow_lane(planned, trace, state)
        self._leave(planned, trace, state)
        if trace.stuck_reason:
            return trace
        try:
            rig.wait_in_service(max(30.0, 60.0 * rig.time_scale))
        except SimulationError as err:
            trace.stuck_reason = str(err)
        return trace

    def _follow_lane(
        self, planned: PlannedCrossing, trace: CrossingTrace, state: _ActorState
    ) -> str:
        """React to the lane's events until its transaction record arrives.

        Returns:
            "" once the record arrived, or why the crossing ended without
            one: a lane worker stopped on an error, or the limit passed.
        """
        rig = self._rig
        deadline = time.monotonic() + self.limit_s
        while trace.transaction is None:
            stopped = rig.stopped_workers()
            if stopped:
                return f"the lane stopped working ({stopped})"
            if time.monotonic() >= deadline:
                problems = rig.worker_problems() or "no lane worker reported a problem"
                return (
                    f"the lane recorded no transaction within {self.limit_s:.3g} s "
                    f"({problems})"
                )
            event = rig.next_event(0.05)
            if event is not None:
                self._react(planned, event, trace, state)
        return ""

    def _react(
        self,
        planned: PlannedCrossing,
        event: dict[str, Any],
        trace: CrossingTrace,
        state: _ActorState,
    ) -> None:
        kind = event.get("type")
        if kind == "transaction":
            trace.transaction = event
            trace.ended_at = time.monotonic()
            if trace.decided_at is None:
                trace.decided_at = trace.ended_at
            return
        if kind == "alarm":
            trace.alarms.append(str(event.get("alarm")))
            return
        if kind != "display":
            return
        message = str(event.get("message"))
        trace.messages.append(message)
        if message in _DECISION_MESSAGES and trace.decided_at is None:
            trace.decided_at = time.monotonic()
        fault = planned.scenario.fault
        walk = planned.scenario.walk

        if message in _FINGER_PROMPTS and not state.fault_done:
            if walk == "walk_away":
                state.fault_done = True
                self._pause(trace, self._delays.finger_s)
                self._rig.walker.walk_away()
                state.left = True
                return
            if fault == "fire_release":
                state.fault_done = True
                self._pause(trace, self._delays.finger_s)
                self._rig.walker.set_input("fire_release", True)
                state.fire_active = True
                return
            if fault == "fingerprint_unplug":
                state.fault_done = True
                self._pause(trace, self._delays.finger_s / 2)
                self._rig.fingerprint_module.unplug()
                state.unplugged = True
                return
        if message in _FINGER_PROMPTS:
            self._pause(trace, self._delays.finger_s)
            self._rig.fingerprint_module.place_finger(
                self._finger_image(planned.presenter, planned.capture)
            )
        elif message in _IRIS_PROMPTS:
            self._pause(trace, self._delays.finger_hold_s)
            self._rig.fingerprint_module.lift_finger()
            self._pause(trace, self._delays.look_s)
            self._write_eye(self._eye_image(planned.presenter, planned.capture))
        elif message == "proceed" and not state.left:
            self._rig.fingerprint_module.lift_finger()
            self._pause(trace, self._delays.walk_s)
            steps_before = len(self._rig.walker.events)
            if walk == "tailgate":
                self._rig.walker.tailgate()
            else:
                self._rig.walker.walk_through()
            steps = len(self._rig.walker.events) - steps_before
            trace.simulated_s += WALK_STEP_S * (steps - 1)
            state.left = True

    def _leave(
        self, planned: PlannedCrossing, trace: CrossingTrace, state: _ActorState
    ) -> None:
        """Restore the lane for the next traveller."""
        rig = self._rig
        rig.fingerprint_module.lift_finger()
        if state.unplugged:
            self._pause(trace, self._delays.unplug_s)
            rig.fingerprint_module.replug()
        if state.fire_active:
            rig.walker.set_input("fire_release", False)
        if not state.left:
            rig.walker.walk_away()
        del planned

    def _write_eye(self, image: npt.NDArray[np.uint8]) -> None:
        # Write under a name the camera ignores, then rename, so that the
        # camera never reads a half-written file.
        self._eye_count += 1
        final = self._rig.camera_dir / f"eye-{self._eye_count:06d}.png"
        partial = final.with_suffix(".part")
        Image.fromarray(image).save(partial, format="PNG")
        os.replace(partial, final)

    def _clear_camera(self) -> None:
        for leftover in self._rig.camera_dir.iterdir():
            leftover.unlink(missing_ok=True)


@dataclass
class _ActorState:
    fault_done: bool = False
    unplugged: bool = False
    fire_active: bool = False
    left: bool = False


__all__ = ["CrossingTrace", "SimulationError", "TravellerActor", "crossing_limit_s"]
