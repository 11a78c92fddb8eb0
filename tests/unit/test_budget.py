"""The app-wide Graph budget: slots that keep every window under Graph's limit, fairly, past any 429."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provisioning.budget import SAFETY_MARGIN_SECONDS, Budget, CallKind

START, FOLLOW_UP = CallKind.START, CallKind.FOLLOW_UP
SPAN = 30.0 + SAFETY_MARGIN_SECONDS


def assert_within_limits(budget: Budget, taken: list[tuple[float, CallKind]]) -> None:
    starts_limit = budget.limit - budget.reserved_for_follow_ups
    for end, _ in taken:
        window = [slot for slot in taken if end - budget.span < slot[0] <= end]
        assert len(window) <= budget.limit, (end, window)
        assert sum(1 for slot in window if slot[1] is START) <= starts_limit, (end, window)


def test_ten_calls_go_at_once_and_the_eleventh_waits_for_the_window() -> None:
    budget = Budget()
    slots = [budget.reserve(0.0, FOLLOW_UP) for _ in range(11)]
    assert slots[:10] == [0.0] * 10
    assert slots[10] == pytest.approx(SPAN)


def test_new_work_leaves_room_for_follow_ups() -> None:
    budget = Budget()
    starts = [budget.reserve(0.0, START) for _ in range(8)]
    assert starts[:7] == [0.0] * 7
    assert starts[7] == pytest.approx(SPAN)  # only 7 of 10 slots per window for new work
    # A status check of an accepted create still goes at once.
    assert budget.reserve(0.0, FOLLOW_UP) == 0.0


def test_a_follow_up_is_never_queued_behind_a_long_line_of_new_work() -> None:
    budget = Budget()
    for _ in range(200):  # reservations are just in time, but even a line this long is passed
        budget.reserve(0.0, START)
    assert budget.reserve(0.0, FOLLOW_UP) == 0.0


def test_a_429_moves_the_budget_for_everyone() -> None:
    budget = Budget()
    budget.block_until(40.0)
    assert budget.reserve(10.0, FOLLOW_UP) == 40.0
    assert budget.reserve(50.0, START) == 50.0
    budget.block_until(20.0)  # an earlier Retry-After never pulls it back
    assert budget.blocked_until == 40.0


def test_state_round_trips_and_takes_the_limits_given_now() -> None:
    budget = Budget()
    budget.reserve(5.0, START)
    budget.block_until(9.0)
    restored = Budget.from_state(budget.to_state())
    assert restored == budget
    tighter = Budget.from_state(budget.to_state(), limit=4, window_seconds=60.0)
    assert Budget.from_state(None) == Budget()
    assert (tighter.limit, tighter.window_seconds, tighter.slots) == (4, 60.0, budget.slots)


def test_old_slots_are_forgotten_so_the_state_stays_small() -> None:
    budget = Budget()
    for second in range(0, 3600, 4):  # under the rate: nothing piles up in the future
        budget.reserve(float(second), FOLLOW_UP)
    assert len(budget.slots) <= budget.limit + 1


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=1, max_value=12),
    st.lists(
        st.tuples(st.floats(min_value=0, max_value=20), st.sampled_from([START, FOLLOW_UP])),
        min_size=1,
        max_size=60,
    ),
)
def test_every_schedule_keeps_every_window_within_the_limits(
    limit: int, calls: list[tuple[float, CallKind]]
) -> None:
    budget = Budget(limit=limit)
    now = 0.0
    taken: list[tuple[float, CallKind]] = []
    for step, kind in calls:
        now += step
        slot = budget.reserve(now, kind)
        assert slot >= now
        taken.append((slot, kind))
    assert_within_limits(budget, taken)
