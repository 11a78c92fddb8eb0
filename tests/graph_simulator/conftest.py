"""Fixtures for the simulator's own tests: Graph sessions authenticated through its MI endpoint."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from graph_simulator import GraphSimulator
from tests.graph_simulator.helpers import community_body, get_token

CreateFn = Callable[..., requests.Response]


@pytest.fixture
def graph(graph_sim: GraphSimulator) -> requests.Session:
    """A session carrying a bearer token issued by ``graph_sim``."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {get_token(graph_sim)}"
    return session


@pytest.fixture
def create(graph_sim: GraphSimulator, graph: requests.Session) -> CreateFn:
    """POST a valid create-community body (with overrides) to v1.0 (or ``version=``)."""

    def post(version: str = "v1.0", **overrides: Any) -> requests.Response:
        url = f"{graph_sim.url}/{version}/employeeExperience/communities"
        return graph.post(url, json=community_body(**overrides), timeout=5)

    return post
