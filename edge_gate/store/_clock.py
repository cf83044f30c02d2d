"""The latest trusted time the gate has seen, kept across reboots.

Document expiry and update freshness depend on the wall clock, and a board
without a battery RTC boots with a wrong one. The sync job and the daemon
record the latest time they trust in a small file in the state directory
(``trusted-time``, written to a temporary file, fsynced and renamed). A clock
behind that time by more than a tolerance is not trustworthy, and the daemon
refuses service until it is.

The sync job records the server's publication time of the applied templates
as well as its own clock, so a gate that synced once has a lower bound on
the real time even if its own clock was wrong at that moment.
"""

from __future__ import annotations

import datetime
import logging
from pathlib import Path

from edge_gate.store._files import replace_file

logger = logging.getLogger(__name__)

TRUSTED_TIME_FILE = "trusted-time"

# NTP corrections of a running clock are a few seconds, so a backward step of
# up to five minutes counts as a correction and more as a wrong clock. This is
# an estimate: raise it if field logs show larger legitimate steps.
DEFAULT_MAX_BACKWARD_S = 300.0


class TrustedClock:
    """The persisted latest trusted time of one state directory.

    Args:
        state_dir: the gate's state directory.
        max_backward_s: how far the clock may lag the persisted time and
            still count as trustworthy, in seconds.
    """

    def __init__(
        self, state_dir: Path, max_backward_s: float = DEFAULT_MAX_BACKWARD_S
    ) -> None:
        self._path = Path(state_dir) / TRUSTED_TIME_FILE
        self._max_backward = datetime.timedelta(seconds=max_backward_s)

    @property
    def path(self) -> Path:
        """The file that contains the latest trusted time."""
        return self._path

    def latest(self) -> datetime.datetime | None:
        """Return the persisted time, or None when none was recorded.

        A file that cannot be parsed counts as no record, with a warning:
        the time only ever adds a check, so losing it weakens, never blocks.
        """
        try:
            text = self._path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as err:
            logger.warning("cannot read %s: %s", self._path, err)
            return None
        try:
            value = datetime.datetime.fromisoformat(text)
        except ValueError:
            logger.warning(
                "%s contains no valid ISO 8601 time; ignoring it", self._path
            )
            return None
        return value if value.tzinfo else value.replace(tzinfo=datetime.UTC)

    def record(self, when: datetime.datetime) -> None:
        """Persist ``when`` if it is later than the persisted time.

        Args:
            when: a timezone-aware time the caller trusts.

        Raises:
            ValueError: ``when`` has no timezone.
            OSError: the file could not be written.
        """
        if when.tzinfo is None:
            raise ValueError("the trusted time must be timezone-aware")
        latest = self.latest()
        if latest is not None and when <= latest:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        text = when.astimezone(datetime.UTC).isoformat() + "\n"
        replace_file(self._path, text.encode("ascii"), prefix=f".{TRUSTED_TIME_FILE}.")

    def clock_is_trustworthy(self, now: datetime.datetime) -> bool:
        """Tell whether ``now`` is not behind the persisted time.

        Args:
            now: the current wall-clock time, timezone-aware.

        Returns:
            True when no time was persisted yet or ``now`` is at most
            ``max_backward_s`` behind the persisted time.
        """
        latest = self.latest()
        return latest is None or now >= latest - self._max_backward


def clock_is_trustworthy(
    now: datetime.datetime,
    state_dir: Path,
    max_backward_s: float = DEFAULT_MAX_BACKWARD_S,
) -> bool:
    """Tell whether ``now`` is not behind the time persisted in ``state_dir``.

    See :meth:`TrustedClock.clock_is_trustworthy`.
    """
    return TrustedClock(state_dir, max_backward_s).clock_is_trustworthy(now)
