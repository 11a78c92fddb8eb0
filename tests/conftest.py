"""Fixtures shared by every test directory come from the dev tools' pytest plugins; ``tests.log_privacy``
reads every app log line of the session for personal data and secrets."""

pytest_plugins = ["graph_simulator.pytest_plugin", "devhost.pytest_plugin", "tests.log_privacy"]
