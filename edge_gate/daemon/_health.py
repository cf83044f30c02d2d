"""Worker threads that report progress, and the check behind the watchdog.

Every worker loops with bounded waits and calls :meth:`ProgressMonitor.beat`
on each pass. The supervisor sends ``WATCHDOG=1`` only while every worker
has beaten within its deadline, so a worker stuck in a call (a hung driver,
a deadlock) stops the pings and systemd restarts the service. A timer thread
that pinged on its own would keep pinging through such a hang.

A worker whose step raises is stopped and its error is kept for the
supervisor, which shuts the daemon down with a failure status. A worker
thread that ends without a stop request, on any exception, counts as
failed, so a dead thread never looks like a quiet one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)

Clock = Callable[[], float]


@dataclass(frozen=True)
class WorkerHealth:
    """One worker's progress as seen at one moment."""

    name: str
    seconds_since_beat: float
    deadline_s: float
    is_stalled: bool
    error: str

    @property
    def problem(self) -> str:
        """Why this worker keeps the lane out of service, or "" when healthy."""
        if self.error:
            return f"worker {self.name} stopped on an error: {self.error:.200}"
        if self.is_stalled:
            return (
                f"worker {self.name} made no progress for "
                f"{self.seconds_since_beat:.0f} s (limit {self.deadline_s:g} s)"
            )
        return ""


class ProgressMonitor:
    """Progress records of named workers, shared between threads."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._last_beat: dict[str, float] = {}
        self._deadline_s: dict[str, float] = {}
        self._errors: dict[str, BaseException] = {}

    def register(self, name: str, deadline_s: float) -> None:
        """Track a worker that must beat at least every ``deadline_s`` seconds."""
        if deadline_s <= 0:
            raise ValueError(
                f"deadline_s for {name} must be positive, got {deadline_s}"
            )
        with self._lock:
            self._deadline_s[name] = deadline_s
            self._last_beat[name] = self._clock()

    def unregister(self, name: str) -> None:
        """Stop tracking a worker (after it stopped on request)."""
        with self._lock:
            self._deadline_s.pop(name, None)
            self._last_beat.pop(name, None)

    def beat(self, name: str) -> None:
        """Record that ``name`` made progress now."""
        with self._lock:
            if name in self._deadline_s:
                self._last_beat[name] = self._clock()

    def fail(self, name: str, error: BaseException) -> None:
        """Record that ``name`` stopped on an unexpected error."""
        with self._lock:
            self._errors.setdefault(name, error)

    def failures(self) -> dict[str, BaseException]:
        """Return the workers that stopped on an error, with the error."""
        with self._lock:
            return dict(self._errors)

    def snapshot(self) -> list[WorkerHealth]:
        """Return every tracked worker's health, sorted by name."""
        now = self._clock()
        with self._lock:
            result = []
            for name in sorted(self._deadline_s):
                age = now - self._last_beat[name]
                error = self._errors.get(name)
                result.append(
                    WorkerHealth(
                        name=name,
                        seconds_since_beat=age,
                        deadline_s=self._deadline_s[name],
                        is_stalled=age > self._deadline_s[name] or error is not None,
                        error="" if error is None else repr(error),
                    )
                )
            return result

    def stalled(self) -> list[str]:
        """Return the names of workers past their deadline or failed."""
        return [health.name for health in self.snapshot() if health.is_stalled]

    def is_healthy(self) -> bool:
        """True when every worker beat within its deadline and none failed."""
        return not self.stalled()


class Worker(threading.Thread):
    """A named thread that runs ``step()`` until stopped, beating each pass.

    Subclasses implement :meth:`step`, which must return within the worker's
    deadline (blocking calls take a timeout below it). :meth:`close` runs
    once after the loop ends, also after an error.
    """

    def __init__(self, name: str, monitor: ProgressMonitor, deadline_s: float) -> None:
        super().__init__(name=name, daemon=True)
        self.monitor = monitor
        self.deadline_s = deadline_s
        self.stop_event = threading.Event()
        monitor.register(name, deadline_s)

    def step(self) -> None:
        """Do one bounded unit of work."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what the worker holds; called once when the loop ends."""

    def run(self) -> None:
        """Loop over :meth:`step` until stopped; report any error."""
        try:
            while not self.stop_event.is_set():
                self.step()
                self.monitor.beat(self.name)
        except BaseException as err:  # supervision point: the supervisor decides
            # BaseException too: a SystemExit raised in a thread would end it
            # without a trace, and the lane would look in service.
            logger.exception("worker %s stopped on an error", self.name)
            self.monitor.fail(self.name, err)
        finally:
            try:
                self.close()
            except Exception:  # supervision point: closing must not hide the stop
                logger.exception("worker %s failed to close", self.name)

    def stop(self, timeout_s: float = 5.0) -> bool:
        """Ask the worker to stop and wait up to ``timeout_s`` seconds.

        Returns:
            True when the thread ended; False (logged as an error) when it
            is still running after the timeout.
        """
        self.stop_event.set()
        if self.is_alive():
            self.join(timeout_s)
        if self.is_alive():
            logger.error("worker %s did not stop within %.1f s", self.name, timeout_s)
            return False
        self.monitor.unregister(self.name)
        return True
