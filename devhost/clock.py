"""Clocks for the dev host: real time, scaled time (timers fire sooner) and a manual virtual clock for tests.

`now()` is what orchestrations see as `current_utc_datetime`; `sleep_until()` is how the durable dispatcher
waits for the next due timer. Every clock wakes its sleepers on `interrupt()` (new work arrived), the manual
clock also on every `advance()`/`set()`.
"""

from __future__ import annotations

import threading
import time as _time
from datetime import UTC, datetime, timedelta
from typing import Protocol

# Longest wait slice: a sleeper whose `stop` is set without `interrupt()` notices it within this time.
_STOP_POLL_SECONDS = 0.25


class Clock(Protocol):
    def now(self) -> datetime:
        """Current time, timezone-aware UTC."""
        ...

    def time(self) -> float:
        """Epoch seconds of `now()`."""
        ...

    def sleep_until(self, when: datetime, stop: threading.Event) -> None:
        """Return at `when`, when `stop` is set, on `interrupt()` or on any change of the clock."""
        ...

    def interrupt(self) -> None:
        """Wake every current sleeper (they return early and re-check their work)."""
        ...


class _SleepingClock:
    """Shared sleeping logic: waits on a condition that clock changes and `interrupt()` notify."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._generation = 0

    def now(self) -> datetime:
        raise NotImplementedError

    def time(self) -> float:
        return self.now().timestamp()

    def _real_seconds_until(self, when: datetime) -> float | None:
        """Real seconds to wait until `when`; None means 'only a clock change can bring it closer'."""
        raise NotImplementedError

    def interrupt(self) -> None:
        with self._condition:
            self._generation += 1
            self._condition.notify_all()

    def sleep_until(self, when: datetime, stop: threading.Event) -> None:
        with self._condition:
            generation = self._generation
            while not stop.is_set() and self._generation == generation and self.now() < when:
                remaining = self._real_seconds_until(when)
                slice_seconds = (
                    _STOP_POLL_SECONDS if remaining is None else min(remaining, _STOP_POLL_SECONDS)
                )
                self._condition.wait(timeout=max(slice_seconds, 0.001))


class RealClock(_SleepingClock):
    def now(self) -> datetime:
        return datetime.now(UTC)

    def _real_seconds_until(self, when: datetime) -> float | None:
        return (when - self.now()).total_seconds()


class ScaledClock(_SleepingClock):
    """Virtual time that runs `speed` times faster than real time, from `start` (default: the real time of
    creation; a restarted dev host passes the latest time its store recorded, so time never goes back)."""

    def __init__(self, speed: float, start: datetime | None = None) -> None:
        if speed <= 0:
            raise ValueError(f"clock speed must be > 0, got {speed}")
        super().__init__()
        self.speed = speed
        self._anchor_virtual = datetime.now(UTC) if start is None else _require_aware(start)
        self._anchor_monotonic = _time.monotonic()

    def now(self) -> datetime:
        elapsed = (_time.monotonic() - self._anchor_monotonic) * self.speed
        return self._anchor_virtual + timedelta(seconds=elapsed)

    def _real_seconds_until(self, when: datetime) -> float | None:
        return (when - self.now()).total_seconds() / self.speed


class ManualClock(_SleepingClock):
    """Virtual time that only moves when told to (tests): `advance(seconds)` or `set(when)`."""

    def __init__(self, start: datetime | None = None) -> None:
        super().__init__()
        if start is None:
            start = datetime.now(UTC).replace(microsecond=0)
        self._now = _require_aware(start)

    def now(self) -> datetime:
        return self._now

    def _real_seconds_until(self, when: datetime) -> float | None:
        return None

    def advance(self, seconds: float) -> datetime:
        if seconds < 0:
            raise ValueError("the manual clock cannot go backwards")
        return self.set(self._now + timedelta(seconds=seconds))

    def set(self, when: datetime) -> datetime:
        when = _require_aware(when)
        if when < self._now:
            raise ValueError(
                f"the manual clock cannot go backwards ({when.isoformat()} < {self._now.isoformat()})"
            )
        with self._condition:
            self._now = when
            self._generation += 1
            self._condition.notify_all()
        return when


def _require_aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("clock times must be timezone-aware (UTC)")
    return value.astimezone(UTC)
