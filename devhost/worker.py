"""What the Python worker does around a user function: argument conversion, sync/async calls, output bindings.

Async functions run on one long-lived event loop thread, as in the worker: the Durable client's shared aiohttp
session is bound to the loop it was created on, so a loop per call would break it. Sync functions run on the
calling thread (the worker uses a thread pool for them).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import traceback
import uuid
from collections.abc import Coroutine, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Protocol

import azure.functions as func
from azure.functions import meta
from azure.functions.durable_functions import ActivityTriggerConverter

from devhost.indexing import FunctionInfo

log = logging.getLogger("devhost")

# The trigger reasons `func start` prints in its "Executing" lines (durable triggers give none: "(null)").
HTTP_REASON = "This function was programmatically called via the host APIs."
QUEUE_REASON = "New queue message detected on '{queue}'."
DURABLE_REASON = "(null)"


class OutputSink(Protocol):
    def write(self, binding: dict[str, Any], value: Any) -> None:
        """Deliver the value a function set on an output binding (e.g. a queue message)."""
        ...


class ActivityFailed(Exception):  # noqa: N818 - name fixed by the helpers' interface contract
    """An activity raised (or returned something the worker cannot encode)."""

    def __init__(self, type_name: str, message: str, stack: str = "") -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.message = message
        self.stack = stack

    @property
    def worker_message(self) -> str:
        """The message the Python worker reports to the host (`dispatcher._serialize_exception`)."""
        return f"{self.type_name}: {self.message}"


class OutputValue(func.Out[Any]):
    """The object the worker passes for a `func.Out[...]` parameter."""

    def __init__(self) -> None:
        self._value: Any = None

    def set(self, val: Any) -> None:
        self._value = val

    def get(self) -> Any:
        return self._value


class _EventLoopThread:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._get_loop()).result()

    def _get_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="devhost-worker-loop", daemon=True).start()
                self._loop = loop
            return self._loop


_event_loop = _EventLoopThread()


def call_user_function(fn: FunctionInfo, kwargs: Mapping[str, Any]) -> Any:
    """Call the user function with keyword arguments (as the worker does); await it if it is async."""
    result = fn.user_function(**kwargs)
    if fn.is_async or asyncio.iscoroutine(result):
        return _event_loop.run(result)
    return result


def call_with_output_bindings(fn: FunctionInfo, kwargs: Mapping[str, Any], sink: OutputSink | None) -> Any:
    """Call the function with a `func.Out` object per named output binding; write the set values to `sink`
    after a successful call (nothing is written when the function raises, as with the host)."""
    outputs = {binding["name"]: OutputValue() for binding in fn.output_bindings()}
    result = call_user_function(fn, {**kwargs, **outputs})
    for binding in fn.output_bindings():
        value = outputs[binding["name"]].get()
        if value is None:
            continue
        if sink is None:
            raise RuntimeError(
                f"function {fn.name!r} set output binding {binding['name']!r} ({binding['type']}) "
                "but the dev host has no output sink configured"
            )
        sink.write(binding, value)
    return result


@contextmanager
def invocation_log(name: str, reason: str, detail: str = "") -> Iterator[str]:
    """The host's `Executing '...'` / `Executed '...' (Succeeded|Failed, ...)` lines around one invocation;
    yields the invocation id. Inputs and outputs are never logged (they may hold callback URLs)."""
    invocation_id = str(uuid.uuid4())
    log.info("Executing 'Functions.%s' (Reason='%s', Id=%s)", name, reason, invocation_id)
    started = time.monotonic()
    outcome = "Failed"
    try:
        yield invocation_id
        outcome = "Succeeded"
    finally:
        log.info(
            "Executed 'Functions.%s' (%s, Id=%s, Duration=%dms)%s",
            name,
            outcome,
            invocation_id,
            int((time.monotonic() - started) * 1000),
            f" {detail}" if detail else "",
        )


def invoke_orchestrator(fn: FunctionInfo, context_json: str) -> str:
    """Run one orchestrator episode: returns the OrchestratorState JSON text, or raises like the SDK does
    (uncaught errors carry the state after `$OutOfProcData$:`)."""
    with invocation_log(fn.name, DURABLE_REASON):
        result = call_user_function(fn, {fn.trigger_parameter: func.OrchestrationContext(context_json)})
    return str(result)


def invoke_activity(fn: FunctionInfo, input_json: str, sink: OutputSink | None) -> str:
    """Run an activity with the worker's conversions: input decoded by `ActivityTriggerConverter` (df_loads
    with raw-string fallback), output encoded with df_dumps. Raises ActivityFailed on any error."""
    try:
        with invocation_log(fn.name, DURABLE_REASON):
            datum = meta.Datum(input_json, "string")
            argument = ActivityTriggerConverter.decode(datum, trigger_metadata=None)
            result = call_with_output_bindings(fn, {fn.trigger_parameter: argument}, sink)
            encoded = ActivityTriggerConverter.encode(result, expected_type=None)
    except Exception as exc:
        raise ActivityFailed(type(exc).__name__, str(exc), "".join(traceback.format_exception(exc))) from exc
    return str(encoded.value)
