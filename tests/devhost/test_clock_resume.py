"""The engine records its clock in the state file; `make_clock` resumes from it when ahead of real time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from devhost.__main__ import make_clock
from devhost.clock import ManualClock, RealClock, ScaledClock
from devhost.durable import DurableEngine
from devhost.durable.store import latest_recorded_time
from devhost.indexing import index_app, load_app


def _run_engine_until(state: Path, start: datetime, seconds: float) -> None:
    clock = ManualClock(start)
    engine = DurableEngine(index_app(load_app("tests.devhost.apps.slow:app")), store_path=state, clock=clock)
    engine.start()
    clock.advance(seconds)  # no work at all: only the recorded clock knows this time was reached
    engine.stop()


def test_a_clock_ahead_of_real_time_resumes_where_it_stopped(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    ahead = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    _run_engine_until(state, ahead, 3600)
    assert latest_recorded_time(state) == ahead + timedelta(hours=1)

    scaled = make_clock(60, state)
    assert isinstance(scaled, ScaledClock)
    assert ahead + timedelta(hours=1) <= scaled.now() < ahead + timedelta(hours=1, minutes=5)
    # Real time too continues from there (at real speed) rather than going back two days.
    real_rate = make_clock(None, state)
    assert ahead + timedelta(hours=1) <= real_rate.now() < ahead + timedelta(hours=1, minutes=1)


def test_a_clock_behind_real_time_or_no_state_starts_at_real_time(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    assert isinstance(make_clock(None, state), RealClock)
    _run_engine_until(state, datetime.now(UTC) - timedelta(days=1), 60)
    assert isinstance(make_clock(None, state), RealClock)
    scaled = make_clock(60, state)
    assert abs((scaled.now() - datetime.now(UTC)).total_seconds()) < 60
