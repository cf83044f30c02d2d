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
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from edge_gate.rig._lane_rig import WALK_STEP_S, LaneRig, SimulationError
from edge_gate.rig._plan import PlannedCrossing
from edge_gate.rig.scenarios import HumanDelays
from edge_gate.rig.synthetic import mrz_lines

logger = logging.getLogger(__name__)

# Wall-clock limit for one crossing, beyond the lane's own timeouts.
_CROSSING_LIMIT_S = 120.0
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
        stuck_reason: why the lane stayed out of service afterwards, or "".
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

    def _pause(self, trace: CrossingTrace, realistic_s: float) -> None:
        trace.simulated_s += realistic_s
        started = time.monotonic()
        self._rig.sleep(realistic_s)
        if trace.document_at is not None and trace.decided_at is None:
            trace.waited_s += time.monotonic() - started

    def run(self, planned: PlannedCrossing) -> CrossingTrace:
        """Play the crossing to its end and return what happened.

        When the lane does not come back into service afterwards, the trace's
        ``stuck_reason`` gives the reason, and the next crossing cannot run.
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
        deadline = time.monotonic() + _CROSSING_LIMIT_S
        while trace.transaction is None and time.monotonic() < deadline:
            event = rig.next_event(0.05)
            if event is None:
                continue
            self._react(planned, event, trace, state)

        self._leave(planned, trace, state)
        try:
            rig.wait_in_service(max(30.0, 60.0 * rig.time_scale))
        except SimulationError as err:
            trace.stuck_reason = str(err)
        return trace

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


__all__ = ["CrossingTrace", "SimulationError", "TravellerActor"]
