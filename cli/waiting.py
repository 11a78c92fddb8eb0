"""``--wait``: follow a 202 answer's ``Location``, sleeping for its ``Retry-After``, until it settles.

The clock is a parameter: the CLI sleeps for real, tests move the dev host's virtual clock instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

from cli.api import Answer, ApiClient
from cli.output import Console

# When an answer has no usable Retry-After: the app's STATUS_POLL_INTERVAL_SECONDS default.
DEFAULT_POLL_SECONDS = 30.0
# Never poll in a tight loop, whatever Retry-After says (0, or a date already past).
MIN_POLL_SECONDS = 1.0


class Clock(Protocol):
    def now(self) -> float:
        """Seconds on a monotonic scale (only differences are used)."""
        ...

    def sleep(self, seconds: float) -> None: ...


class RealClock:
    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def retry_after_seconds(headers: Mapping[str, str], default: float = DEFAULT_POLL_SECONDS) -> float:
    """``Retry-After`` as seconds: delay-seconds or an HTTP-date (RFC 9110, section 10.2.3)."""
    value = (headers.get("Retry-After") or "").strip()
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError):
            return default
    return max(MIN_POLL_SECONDS, seconds)


def follow(
    client: ApiClient,
    answer: Answer,
    *,
    next_url: Callable[[Answer], str],
    describe: Callable[[Any], str],
    console: Console,
    clock: Clock,
    timeout: float | None,
) -> tuple[Answer, bool]:
    """Poll while the answer is 202; returns the last answer and whether ``timeout`` seconds ran out first."""
    deadline = None if timeout is None else clock.now() + timeout
    try:
        while answer.status == 202:
            console.progress(describe(answer.body))
            delay = retry_after_seconds(answer.headers)
            if deadline is not None:
                remaining = deadline - clock.now()
                if remaining <= 0:
                    return answer, True
                delay = min(delay, remaining)
            clock.sleep(delay)
            answer = client.request("GET", next_url(answer))
        if isinstance(answer.body, Mapping):
            console.progress(describe(answer.body))
        return answer, False
    finally:
        console.end_progress()
