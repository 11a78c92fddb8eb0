"""An engine factory for the conformance tests: a fresh SQLite file and a manual clock at
2024-01-01T00:00Z."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest

from devhost.clock import ManualClock
from devhost.durable import TERMINAL_STATES, DurableEngine
from devhost.indexing import index_app

START = datetime(2024, 1, 1, tzinfo=UTC)


class Harness:
    """A started engine plus the trigger JSON / OrchestratorState pairs it exchanged with the SDK."""

    def __init__(
        self,
        engine: DurableEngine,
        clock: ManualClock,
        exchanges: list[tuple[dict[str, Any], dict[str, Any]]],
    ):
        self.engine = engine
        self.clock = clock
        self.exchanges = exchanges

    def start(self, name: str, value: Any = None, instance_id: str | None = None) -> str:
        """Start like the Python client does: the body is the JSON string of df_dumps(value)."""
        input_json = None if value is None else json.dumps(json.dumps(value))
        return self.engine.start_new(name, instance_id, input_json)

    def run_to_end(self, instance_id: str, max_steps: int = 1000) -> dict[str, Any]:
        """Advance the manual clock to each next due message until the instance is terminal."""
        for _ in range(max_steps):
            self.engine.run_until_idle()
            status = self.engine.get_status(instance_id)
            assert status is not None
            if status["runtimeStatus"] in TERMINAL_STATES:
                return status
            due = self.engine.next_due_time()
            assert due is not None, f"instance is {status['runtimeStatus']} with nothing due"
            self.clock.set(max(due, self.clock.now()))
        raise AssertionError(f"instance {instance_id} did not finish in {max_steps} steps")

    def states(self) -> list[dict[str, Any]]:
        return [state for _, state in self.exchanges]


EngineFactory = Callable[..., Harness]


@pytest.fixture
def make_engine(tmp_path: Path) -> Iterator[EngineFactory]:
    engines: list[DurableEngine] = []

    def factory(
        app: func.FunctionApp, *, store_path: Path | None = None, start: bool = True, **options: Any
    ) -> Harness:
        """`start=False` leaves the dispatcher stopped: messages sent before `engine.start()` are
        delivered together, in the order they were sent."""
        clock = options.pop("clock", None) or ManualClock(START)
        exchanges: list[tuple[dict[str, Any], dict[str, Any]]] = []
        engine = DurableEngine(
            index_app(app),
            store_path=store_path or tmp_path / "state.db",
            clock=clock,
            episode_observer=lambda sent, received: exchanges.append(
                (json.loads(sent), json.loads(received))
            ),
            **options,
        )
        engines.append(engine)
        if start:
            engine.start()
        return Harness(engine, clock, exchanges)

    yield factory
    for engine in engines:
        engine.stop()
