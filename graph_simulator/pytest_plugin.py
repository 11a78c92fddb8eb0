"""Pytest fixtures for the Graph simulator (filled in by the simulator work)."""
