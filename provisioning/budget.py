"""The app-wide Graph budget: when each Viva Engage request may be sent so that the app stays under the limit.

"Viva Engage API calls are subject to rate limiting, allowing 10 requests per user, per app, within a
30-second time period" (Microsoft Graph docs, `includes/throttling-viva-engage.md` in
microsoftgraph/microsoft-graph-docs-contrib); every further request answers 429. The app calls as itself,
so all its orchestrations share one limit: one Durable entity holds one ``Budget`` for the whole app and
hands out slots. Just before each Viva Engage call an orchestration reserves a slot, waits on a durable
timer until it, then calls. Reservations are made one call at a time, so the queue is never longer than the
number of requests in flight; a batch bounds how many of its items are in flight, so a request sent alone
during a big batch waits behind at most those.

Fairness: follow-ups of creates Graph already accepted (status checks, the confirming read, look-ups after a
lost answer) may use every slot; the first calls of a request (name check, create) at most ``limit -
reserved_for_follow_ups`` of any window, so work already accepted is never starved by new work.

A 429 moves the whole budget past its Retry-After, for everyone (``block_until``). Graph counts a request
when it arrives; slots are spaced by the window plus ``SAFETY_MARGIN_SECONDS`` so that a request sent a little
late after its slot still falls outside the window of one sent on time.

Plain Python and deterministic: the entity passes the orchestration's time in; nothing here reads a clock.
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

DEFAULT_LIMIT = 10
DEFAULT_WINDOW_SECONDS = 30.0
# Of every window, this many slots stay free for follow-ups when new work is waiting.
DEFAULT_RESERVED_FOR_FOLLOW_UPS = 3
SAFETY_MARGIN_SECONDS = 1.0


class CallKind(StrEnum):
    START = "start"  # name check, create: new work
    FOLLOW_UP = "follow-up"  # status check, confirming read, look-up: work Graph already accepted


@dataclass
class Budget:
    limit: int = DEFAULT_LIMIT
    window_seconds: float = DEFAULT_WINDOW_SECONDS
    reserved_for_follow_ups: int = DEFAULT_RESERVED_FOR_FOLLOW_UPS
    slots: list[tuple[float, CallKind]] = field(default_factory=list)  # sorted by time
    blocked_until: float = 0.0

    def __post_init__(self) -> None:
        if self.limit < 1 or self.window_seconds <= 0:
            raise ValueError("a budget needs a limit of at least 1 and a positive window")
        # A limit too small to reserve anything leaves starts one slot per window.
        self.reserved_for_follow_ups = max(0, min(self.reserved_for_follow_ups, self.limit - 1))

    @property
    def span(self) -> float:
        """How far apart the first and the (limit+1)-th request of the schedule must be."""
        return self.window_seconds + SAFETY_MARGIN_SECONDS

    def reserve(self, now: float, kind: CallKind) -> float:
        """The earliest time at or after ``now`` when a ``kind`` call keeps every window within the limits;
        recorded as taken."""
        self._forget_before(now)
        candidate = max(now, self.blocked_until)
        while True:
            later = self._blocked_at(candidate, kind)
            if later is None:
                insort(self.slots, (candidate, kind))
                return candidate
            candidate = later

    def block_until(self, until: float) -> None:
        """Graph answered 429: nobody sends before ``until``."""
        self.blocked_until = max(self.blocked_until, until)

    def _forget_before(self, now: float) -> None:
        # A slot older than one span no longer counts in any window that a new slot can fall into.
        self.slots = [slot for slot in self.slots if slot[0] > now - self.span]

    def _blocked_at(self, at: float, kind: CallKind) -> float | None:
        """None when a ``kind`` slot at ``at`` fits; else a later time worth trying."""
        schedule = sorted([*self.slots, (at, kind)])
        starts_limit = self.limit - self.reserved_for_follow_ups
        # Only windows that contain ``at`` change: those ending at ``at`` or at a later slot within one span.
        for end, end_kind in schedule:
            if end < at or end >= at + self.span:
                continue
            in_window = [slot for slot in schedule if end - self.span < slot[0] <= end]
            if len(in_window) > self.limit:
                return self._next_try(at, end, in_window, len(in_window) - self.limit)
            starts = [slot for slot in in_window if slot[1] is CallKind.START]
            if kind is CallKind.START and end_kind is CallKind.START and len(starts) > starts_limit:
                return self._next_try(at, end, starts, len(starts) - starts_limit)
        return None

    def _next_try(self, at: float, end: float, in_window: list[tuple[float, CallKind]], excess: int) -> float:
        if end > at:
            # A later slot's window is full: ``at`` must move past that slot.
            return _after(end)
        # The window ending at ``at`` is full: wait until enough of its oldest slots have left it.
        return max(in_window[excess - 1][0] + self.span, _after(at))

    # -- entity state ----------------------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        return {
            "limit": self.limit,
            "windowSeconds": self.window_seconds,
            "reservedForFollowUps": self.reserved_for_follow_ups,
            "slots": [[at, kind.value] for at, kind in self.slots],
            "blockedUntil": self.blocked_until,
        }

    @classmethod
    def from_state(
        cls,
        state: Mapping[str, Any] | None,
        *,
        limit: int | None = None,
        window_seconds: float | None = None,
    ) -> Budget:
        """The saved budget, with the limits the caller runs with now (settings may have changed)."""
        saved = dict(state or {})
        return cls(
            limit=limit if limit is not None else int(saved.get("limit", DEFAULT_LIMIT)),
            window_seconds=(
                window_seconds
                if window_seconds is not None
                else float(saved.get("windowSeconds", DEFAULT_WINDOW_SECONDS))
            ),
            reserved_for_follow_ups=int(saved.get("reservedForFollowUps", DEFAULT_RESERVED_FOR_FOLLOW_UPS)),
            slots=[(float(at), CallKind(kind)) for at, kind in saved.get("slots", [])],
            blocked_until=float(saved.get("blockedUntil", 0.0)),
        )


def _after(at: float) -> float:
    """The next representable time after ``at`` (ties are allowed only where the counts allow them)."""
    return at + 1e-6
