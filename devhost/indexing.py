"""Load and index a v2-model function app the way the Python worker does at start-up.

The worker imports the script, finds the `FunctionApp`, calls `app.get_functions()` and hands every function
to its registry (`Registry.add_indexed_function`), which checks the parameters against the bindings and their
type annotations; one refused function fails the whole indexing ("Worker failed to index functions"). The
dev host runs that check with the worker library itself (PyPI `azure-functions-runtime`, `functions.py`), so
it refuses exactly the apps the worker refuses. Durable names follow the extension: orchestrator name = the
trigger's `orchestration` property or the function name, activity name = the trigger's `activity` property or
the function name.
"""

from __future__ import annotations

import importlib
import json
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import azure.functions as func
from azure.functions.decorators.function_app import FunctionRegister
from azure_functions_runtime.bindings import meta as worker_bindings
from azure_functions_runtime.functions import FunctionInfo as WorkerFunctionInfo
from azure_functions_runtime.functions import FunctionLoadError, Registry

from devhost import rpc

ORCHESTRATION_TRIGGER = "orchestrationTrigger"
ACTIVITY_TRIGGER = "activityTrigger"
ENTITY_TRIGGER = "entityTrigger"
# What the host logs when the worker's indexing fails (the worker reports the first FunctionLoadError).
WORKER_INDEXING_FAILED = "Worker failed to index functions"


class IndexingError(Exception):
    """The app cannot be loaded or indexed; the message says what to fix."""


@dataclass
class FunctionInfo:
    name: str
    trigger_type: str
    trigger: dict[str, Any]
    bindings: list[dict[str, Any]]
    worker: WorkerFunctionInfo  # the worker's view: parameter types, binding names, return binding

    @property
    def user_function(self) -> Callable[..., Any]:
        return self.worker.func

    @property
    def is_async(self) -> bool:
        return self.worker.is_async

    @property
    def trigger_parameter(self) -> str:
        """Name of the Python parameter that receives the trigger value."""
        return str(self.trigger["name"])

    def output_bindings(self) -> list[dict[str, Any]]:
        """Named output bindings (`func.Out` parameters); `$return` is the function's return value."""
        return [b for b in self.bindings if b.get("direction") == "OUT" and b.get("name") != "$return"]


@dataclass
class AppIndex:
    functions: list[FunctionInfo]
    orchestrators: dict[str, FunctionInfo] = field(default_factory=dict)
    activities: dict[str, FunctionInfo] = field(default_factory=dict)

    def of_type(self, trigger_type: str) -> list[FunctionInfo]:
        return [f for f in self.functions if f.trigger_type == trigger_type]


def load_app(spec: str = "function_app:app") -> FunctionRegister:
    """Import `module:attribute` and return the function app it names (a `func.FunctionApp` or a durable
    `df.DFApp`: both are the `FunctionRegister` the worker looks for)."""
    module_name, _, attribute = spec.partition(":")
    attribute = attribute or "app"
    if not module_name:
        raise IndexingError(
            f"invalid app spec {spec!r}: expected 'module:attribute', e.g. 'function_app:app'"
        )
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        detail = "".join(traceback.format_exception_only(exc)).strip()
        raise IndexingError(f"cannot import module {module_name!r} for app {spec!r}: {detail}") from exc
    app = getattr(module, attribute, None)
    if app is None:
        raise IndexingError(f"module {module_name!r} has no attribute {attribute!r} (app spec {spec!r})")
    if not isinstance(app, FunctionRegister):
        raise IndexingError(
            f"{spec!r} is a {type(app).__name__}, not an azure.functions.FunctionApp (or durable DFApp)"
        )
    return app


def index_app(app: FunctionRegister) -> AppIndex:
    """Index the app's functions as the worker does; IndexingError on anything the host would reject."""
    # get_functions() records names in functions_bindings and raises "does not have a unique function name"
    # on a second call for the same app object; reset it before and after so that indexing leaves the app
    # object as it found it and anyone (the dev host again, a test) can index it later.
    app.functions_bindings = None
    try:
        functions = app.get_functions()
    except Exception as exc:
        raise IndexingError(f"indexing the function app failed: {type(exc).__name__}: {exc}") from exc
    finally:
        app.functions_bindings = None

    worker_bindings.load_binding_registry()
    registry = Registry()
    index = AppIndex(functions=[])
    for function in functions:
        info = _function_info(function, registry)
        index.functions.append(info)
        if info.trigger_type == ORCHESTRATION_TRIGGER:
            _register_unique(
                index.orchestrators, info.trigger.get("orchestration") or info.name, info, "orchestrator"
            )
        elif info.trigger_type == ACTIVITY_TRIGGER:
            _register_unique(index.activities, info.trigger.get("activity") or info.name, info, "activity")
    return index


def _function_info(function: func.decorators.function_app.Function, registry: Registry) -> FunctionInfo:
    name = function.get_function_name()
    trigger = function.get_trigger()
    if not name or trigger is None:
        raise IndexingError(f"function {name or function.get_user_function()!r} has no trigger")
    try:
        worker = registry.add_indexed_function(function, protos=rpc)
    except FunctionLoadError as exc:
        raise IndexingError(f"{WORKER_INDEXING_FAILED}: {type(exc).__name__}: {exc}") from exc
    bindings = [json.loads(raw) for raw in function.get_raw_bindings()]
    trigger_json = next(
        (b for b in bindings if b["name"] == trigger.name and b["type"] == trigger.type), None
    )
    if trigger_json is None:
        raise IndexingError(f"function {name!r}: trigger binding {trigger.type!r} missing from its bindings")
    return FunctionInfo(
        name=name, trigger_type=str(trigger.type), trigger=trigger_json, bindings=bindings, worker=worker
    )


def _register_unique(registry: dict[str, FunctionInfo], key: str, info: FunctionInfo, kind: str) -> None:
    if key in registry:
        raise IndexingError(
            f"two {kind} functions are named {key!r}: {registry[key].name!r} and {info.name!r}"
        )
    registry[key] = info
