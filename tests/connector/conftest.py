"""The workflow environment's fixtures for the connector tests."""

from tests.e2e.workflow_env import env, start_env  # noqa: F401 (fixtures, found by name)
