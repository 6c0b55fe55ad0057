"""The emulator's notion of "now": real time plus an offset that tests can move.

Everything in the emulator that depends on time (the 300 s service-protection window, `createdon` /
`modifiedon`, token expiry checks) reads this clock, so a test can jump five minutes ahead instead of
sleeping. Two modes:

- running (default): ``now()`` follows the wall clock, shifted by whatever ``advance``/``set`` added;
- frozen: ``now()`` stays put until ``advance``/``set`` move it (fully deterministic tests).
"""

from __future__ import annotations

import datetime as dt
import threading
import time


class Clock:
    """Thread-safe, advanceable clock. ``now()`` is epoch seconds (float)."""

    def __init__(self, start: float | None = None, *, frozen: bool = False) -> None:
        self._lock = threading.Lock()
        self._frozen = frozen
        real = time.time()
        base = real if start is None else float(start)
        # running: now = real + offset; frozen: now = offset
        self._offset = base if frozen else base - real

    @property
    def frozen(self) -> bool:
        return self._frozen

    def now(self) -> float:
        with self._lock:
            return self._offset if self._frozen else time.time() + self._offset

    def utcnow(self) -> dt.datetime:
        """``now()`` as an aware UTC datetime."""
        return dt.datetime.fromtimestamp(self.now(), tz=dt.UTC)

    def iso_now(self) -> str:
        """``now()`` the way Dataverse writes datetimes: ``2026-01-02T03:04:05Z`` (second precision)."""
        return self.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")

    def advance(self, seconds: float) -> float:
        """Move the clock forward (never backwards: a negative step is a bug in the caller)."""
        if seconds < 0:
            raise ValueError("a clock only advances; use set() to move it to an earlier time")
        with self._lock:
            self._offset += float(seconds)
        return self.now()

    def set(self, epoch: float) -> None:
        """Make ``now()`` return ``epoch`` at this instant (and keep running from there unless frozen)."""
        with self._lock:
            self._offset = float(epoch) if self._frozen else float(epoch) - time.time()

    def freeze(self) -> None:
        """Stop the clock at the current instant."""
        with self._lock:
            if not self._frozen:
                self._offset = time.time() + self._offset
                self._frozen = True

    def unfreeze(self) -> None:
        """Let the clock run again from the instant it was frozen at."""
        with self._lock:
            if self._frozen:
                self._offset = self._offset - time.time()
                self._frozen = False

    def state(self) -> dict[str, float | bool | str]:
        """What the control API reports about the clock."""
        now = self.now()
        return {
            "now": now,
            "utc": dt.datetime.fromtimestamp(now, tz=dt.UTC).isoformat().replace("+00:00", "Z"),
            "frozen": self.frozen,
            "offset_s": now - time.time(),
        }
