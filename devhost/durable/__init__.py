"""Durable engine of the dev host: plays the Durable extension + DTFx around the real Python SDK."""

from devhost.durable.engine import (
    COMPLETED,
    CONTINUED_AS_NEW,
    FAILED,
    PENDING,
    RUNNING,
    RUNNING_STATES,
    TERMINAL_STATES,
    TERMINATED,
    DurableEngine,
    DurableEngineError,
    InstanceExistsError,
    InstanceNotFoundError,
    InstanceNotRunningError,
    InvalidInstanceIdError,
    UnknownFunctionError,
)

__all__ = [
    "COMPLETED",
    "CONTINUED_AS_NEW",
    "FAILED",
    "PENDING",
    "RUNNING",
    "RUNNING_STATES",
    "TERMINAL_STATES",
    "TERMINATED",
    "DurableEngine",
    "DurableEngineError",
    "InstanceExistsError",
    "InstanceNotFoundError",
    "InstanceNotRunningError",
    "InvalidInstanceIdError",
    "UnknownFunctionError",
]
