"""Pytest fixtures for the Graph simulator (loaded by tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from graph_simulator.server import GraphSimulator


@pytest.fixture
def graph_sim() -> Iterator[GraphSimulator]:
    """A started simulator on a free loopback port with the real clock."""
    with GraphSimulator() as simulator:
        yield simulator


@pytest.fixture
def graph_sim_factory() -> Iterator[Callable[..., GraphSimulator]]:
    """``graph_sim_factory(clock=..., polls_to_complete=1, ...)`` → a started simulator, stopped at teardown.

    For tests that share a virtual clock (e.g. the dev host's) or need other constructor options."""
    started: list[GraphSimulator] = []

    def factory(**kwargs: Any) -> GraphSimulator:
        simulator = GraphSimulator(**kwargs).start()
        started.append(simulator)
        return simulator

    yield factory
    for simulator in started:
        simulator.stop()
