"""The workflow environment's fixtures for the end-to-end tests."""

from tests.e2e.workflow_env import env, queues, start_env  # noqa: F401 (fixtures, found by name)
