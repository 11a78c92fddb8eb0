"""The workflow environment's fixtures (the app in the dev host, the Graph simulator) for the CLI tests."""

from tests.e2e.workflow_env import env, queues, start_env  # noqa: F401 (fixtures, found by name)
