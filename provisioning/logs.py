"""The request's ids on every app log line: ``requestId``, ``batchId`` and Graph's ``graphRequestId``.

Each id is set on the log record as an attribute (what OpenTelemetry log handlers export as attributes, i.e.
custom dimensions in Application Insights) and appended to the message as ``[requestId=… batchId=…]``. Both,
because the Python worker forwards only the formatted message to the Functions host (``on_logging`` in
azure-functions-python-worker's ``dispatcher.py`` builds ``RpcLog`` from level, message and category), so
with the default logging path the message is what reaches Application Insights; the queries of
``docs/operations.md`` extract the ids from it.

Ids come from the call (``extra={"requestId": ...}``) or from the context of the invocation
(``with log_fields(requestId=...)``: a context variable, so concurrent invocations on the worker's event loop
and thread pool do not see each other's ids). Only ids are fields: never user names, URLs or keys.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar

FIELD_NAMES = ("requestId", "batchId", "graphRequestId")
_MARK = "_requestFieldsShown"
_fields: ContextVar[Mapping[str, str] | None] = ContextVar("request_log_fields", default=None)


@contextmanager
def log_fields(**fields: str | None) -> Iterator[None]:
    """Put ``fields`` (those not None) on every app log line written inside the block."""
    token = _fields.set({**(_fields.get() or {}), **{name: value for name, value in fields.items() if value}})
    try:
        yield
    finally:
        _fields.reset(token)


class RequestFields(logging.Filter):
    """Adds the fields to a record of the app's loggers (as attributes and at the end of its message)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, _MARK, False):
            return True
        context = _fields.get() or {}
        shown = []
        for name in FIELD_NAMES:
            value = getattr(record, name, None) or context.get(name)
            if value:
                setattr(record, name, value)
                shown.append(f"{name}={value}")
        if shown:
            suffix = " [" + " ".join(shown) + "]"
            # With arguments the message is %-formatted: the suffix must not take part in that.
            record.msg = f"{record.msg}{suffix.replace('%', '%%') if record.args else suffix}"
        setattr(record, _MARK, True)
        return True


_FILTER = RequestFields()


def ids_of(instance_id: str) -> dict[str, str]:
    """The log field of a durable instance id: ``requestId`` for a request, ``batchId`` for a batch."""
    # batch_workflow.BATCH_ID_PREFIX, not imported: this module is imported everywhere and stays this small.
    return {"batchId" if instance_id.startswith("batch-") else "requestId": instance_id}


def get_logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)`` with the request fields on its records."""
    logger = logging.getLogger(name)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return logger
