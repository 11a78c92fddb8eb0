"""Fixtures shared by every test directory come from the dev tools' pytest plugins."""

pytest_plugins = ["graph_simulator.pytest_plugin", "devhost.pytest_plugin"]
