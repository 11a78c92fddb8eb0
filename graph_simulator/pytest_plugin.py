"""Pytest fixtures for the Graph simulator (loaded by tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from graph_simulator.server import GraphSimulator


@pytest.fixture
def graph_sim() -> Iterator[GraphSimulator]:
    """A started simulator on a free loopback port with the real clock; tests that share a virtual clock build
    their own ``GraphSimulator(clock=...)``."""
    with GraphSimulator() as simulator:
        yield simulator
