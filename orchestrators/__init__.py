"""Orchestrator blueprint: the deterministic provisioning workflow."""
