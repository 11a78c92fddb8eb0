"""The orchestrator tests' environment: the real app in the dev host against the Graph simulator."""

from collections.abc import Callable

import pytest

from tests.e2e.workflow_env import WorkflowEnv, start_env  # noqa: F401 (start_env: a fixture, found by name)


@pytest.fixture
def env(start_env: Callable[..., WorkflowEnv]) -> WorkflowEnv:  # noqa: F811 (the imported fixture)
    """Graph operations take 60 status checks, so a request runs through continue-as-new."""
    return start_env(polls_to_complete=60)
