"""Pytest fixtures for the dev host and Azurite (filled in by the dev host work)."""
