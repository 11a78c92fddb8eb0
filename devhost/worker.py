"""What the Python worker does around a user function: argument conversion, sync/async calls, output bindings.

Arguments and results go through the worker library's own binding conversions (`azure_functions_runtime`
`bindings/meta.py`: `from_incoming_proto`, `to_outgoing_proto`, `to_outgoing_param_binding`), fed with the
`TypedData` the host would send (`devhost.rpc`), so the dev host converts exactly as the worker does: which
converter a parameter gets (its binding type, or `generic` for `str`/`bytes` annotations), how return values
and `func.Out` values are encoded, and the worker's refusal of a value returned without a `$return` binding.

Async functions run on one long-lived event loop thread, as in the worker: the Durable client's shared aiohttp
session is bound to the loop it was created on, so a loop per call would break it. Sync functions run on the
calling thread (the worker uses a thread pool for them).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Coroutine, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Protocol

from azure_functions_runtime.bindings.meta import (
    from_incoming_proto,
    is_trigger_binding,
    to_outgoing_param_binding,
    to_outgoing_proto,
)
from azure_functions_runtime.bindings.out import Out

from devhost import rpc
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


def run_callable(function: Callable[..., Any], kwargs: Mapping[str, Any]) -> Any:
    """Call a function with keyword arguments (as the worker does); await it if it is async."""
    result = function(**kwargs)
    if asyncio.iscoroutine(result):
        return _event_loop.run(result)
    return result


def typed_value(data: rpc.TypedData | None) -> Any:
    """The host's reading of a TypedData the worker sent: JSON parsed, strings and bytes as they are."""
    if data is None:
        return None
    kind = data.WhichOneof("data")
    if kind is None:
        return None
    value = getattr(data, kind)
    return json.loads(value) if kind == "json" else value


def call_function(
    fn: FunctionInfo,
    inputs: Mapping[str, rpc.TypedData],
    *,
    trigger_metadata: Mapping[str, rpc.TypedData] | None = None,
    context: Any = None,
    sink: OutputSink | None = None,
) -> rpc.TypedData | None:
    """One invocation as the worker runs it (`handle_event.invocation_request`): decode every input with the
    library, add `Out` objects and `context`, call, encode the outputs and the return value. Outputs reach
    `sink` only after the whole invocation succeeded (the host writes them once the worker answered)."""
    worker = fn.worker
    args: dict[str, Any] = {}
    for name, data in inputs.items():
        type_info = worker.input_types[name]
        args[name] = from_incoming_proto(
            type_info.binding_name,
            rpc.ParameterBinding(name, data),
            trigger_metadata=trigger_metadata if is_trigger_binding(type_info.binding_name) else None,
            pytype=type_info.pytype,
            function_name=worker.name,
            is_deferred_binding=type_info.deferred_bindings_enabled,
        )
    if worker.requires_context:
        args["context"] = context
    outputs = {name: Out() for name in worker.output_types}
    result = run_callable(worker.func, {**args, **outputs})
    if result is not None and not worker.has_return:
        raise RuntimeError(f"function {worker.name!r} without a $return binding returned a non-None value")
    written = []
    for name, type_info in worker.output_types.items():
        value = outputs[name].get()
        if value is not None:
            encoded = to_outgoing_param_binding(
                type_info.binding_name, value, pytype=type_info.pytype, out_name=name, protos=rpc
            )
            written.append((name, encoded.data))
    returned = None
    if worker.return_type is not None:
        returned = to_outgoing_proto(
            worker.return_type.binding_name, result, pytype=worker.return_type.pytype, protos=rpc
        )
    for name, data in written:
        binding = next(b for b in fn.bindings if b["name"] == name)
        if sink is None:
            raise RuntimeError(
                f"function {fn.name!r} set output binding {name!r} ({binding['type']}) "
                "but the dev host has no output sink configured"
            )
        sink.write(binding, typed_value(data))
    return returned


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
        result = call_function(fn, {fn.trigger_parameter: rpc.TypedData(string=context_json)})
    return _json_text(fn, result)


def invoke_activity(
    fn: FunctionInfo,
    input_json: str,
    sink: OutputSink | None,
    inputs: Mapping[str, rpc.TypedData] | None = None,
) -> str:
    """Run an activity: the extension hands the input as JSON text; the result goes back as JSON text
    (`ActivityTriggerConverter`: df_loads with a raw-string fallback in, df_dumps out). `inputs` are its other
    input bindings (a durable client). Raises ActivityFailed on any error."""
    try:
        with invocation_log(fn.name, DURABLE_REASON):
            trigger = {fn.trigger_parameter: rpc.TypedData(string=input_json)}
            result = call_function(fn, {**(inputs or {}), **trigger}, sink=sink)
        return _json_text(fn, result)
    except Exception as exc:
        raise ActivityFailed(type(exc).__name__, str(exc), "".join(traceback.format_exception(exc))) from exc


def _json_text(fn: FunctionInfo, result: rpc.TypedData | None) -> str:
    """Durable triggers answer with JSON text (their converters encode as `json`)."""
    if result is None or result.WhichOneof("data") != "json":
        raise TypeError(f"function {fn.name!r} answered {result!r}, not JSON text")
    return str(result.json)
