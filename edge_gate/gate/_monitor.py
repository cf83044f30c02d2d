"""The lane's physical picture: beams, barrier switch, and the alarms they show.

:class:`PassageMonitor` turns input levels into facts the lane acts on and
into alarms. It is pure: time comes in as ``now_s``. Levels are idempotent,
so a repeated level changes nothing.

Alarm rules:

- Forced passage: the barrier opens while no opening is authorised (no
  accept in progress, no fire release, key switch off).
- Barrier held open: the barrier stays open for ``barrier_held_open_s``
  (not during a fire release or with the key switch on).
- Wrong way: the exit beam breaks while the inside beam is clear, and then
  the inside beam breaks, so someone came in from the exit side.
- Stuck sensor: a beam stays broken for ``stuck_beam_s``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edge_gate.gate._commands import Alarm
from edge_gate.gate._events import Beam

BEAMS: tuple[Beam, ...] = ("entrance", "inside", "exit")


@dataclass(frozen=True)
class Observation:
    """Meaning of one input event, for the lane to act on."""

    alarms: tuple[tuple[Alarm, str], ...] = ()
    barrier_opened: bool = False
    barrier_closed: bool = False
    exit_broken: bool = False
    exit_cleared: bool = False
    left_by_entrance: bool = False


@dataclass
class PassageMonitor:
    """Input levels and their history.

    Attributes:
        barrier_held_open_s: barrier-open time that raises an alarm.
        stuck_beam_s: beam-broken time that raises a stuck-sensor alarm.
    """

    barrier_held_open_s: float
    stuck_beam_s: float
    broken: dict[Beam, bool] = field(
        default_factory=lambda: dict.fromkeys(BEAMS, False)
    )
    broken_since_s: dict[Beam, float] = field(default_factory=dict)
    stuck_reported: set[Beam] = field(default_factory=set)
    barrier_is_closed: bool = True
    barrier_open_since_s: float | None = None
    held_open_reported: bool = False
    exit_broken_from_outside: bool = False

    def beam(
        self, beam: Beam, broken: bool, now_s: float, *, free: bool
    ) -> Observation:
        """Take a beam level.

        Args:
            beam: which beam.
            broken: the new level.
            now_s: lane clock, seconds.
            free: passage is free (fire release or key switch), so direction
                is not checked.

        Returns:
            What the change means.
        """
        if self.broken[beam] == broken:
            return Observation()
        self.broken[beam] = broken
        if not broken:
            self.broken_since_s.pop(beam, None)
            self.stuck_reported.discard(beam)
            return Observation(
                exit_cleared=beam == "exit",
                left_by_entrance=beam == "entrance" and not self.broken["inside"],
            )

        self.broken_since_s[beam] = now_s
        if beam == "exit":
            self.exit_broken_from_outside = not self.broken["inside"]
            return Observation(exit_broken=True)
        if beam == "inside" and self.broken["exit"] and self.exit_broken_from_outside:
            self.exit_broken_from_outside = False
            if not free:
                return Observation(alarms=((Alarm.WRONG_WAY, "exit to inside"),))
        return Observation()

    def barrier(
        self, closed: bool, now_s: float, *, authorised: bool, free: bool
    ) -> Observation:
        """Take a barrier-switch level.

        Args:
            closed: the new level.
            now_s: lane clock, seconds.
            authorised: an accepted traveller may open the barrier now.
            free: passage is free (fire release or key switch).

        Returns:
            What the change means.
        """
        if self.barrier_is_closed == closed:
            return Observation()
        self.barrier_is_closed = closed
        if closed:
            self.barrier_open_since_s = None
            self.held_open_reported = False
            return Observation(barrier_closed=True)

        self.barrier_open_since_s = now_s
        if authorised or free:
            return Observation(barrier_opened=True)
        return Observation(
            alarms=((Alarm.FORCED_PASSAGE, "barrier opened while locked"),),
            barrier_opened=True,
        )

    def overdue(self, now_s: float, *, free: bool) -> list[tuple[Alarm, str]]:
        """Return alarms for a barrier held open or a beam stuck, once each."""
        alarms: list[tuple[Alarm, str]] = []
        open_since = self.barrier_open_since_s
        if (
            open_since is not None
            and not free
            and not self.held_open_reported
            and now_s - open_since >= self.barrier_held_open_s
        ):
            self.held_open_reported = True
            alarms.append((Alarm.BARRIER_HELD_OPEN, "barrier open too long"))
        for beam, since_s in self.broken_since_s.items():
            if beam not in self.stuck_reported and now_s - since_s >= self.stuck_beam_s:
                self.stuck_reported.add(beam)
                alarms.append((Alarm.STUCK_SENSOR, f"{beam} beam broken too long"))
        return alarms
