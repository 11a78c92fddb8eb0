"""The Functions host around the worker: HTTP routing and keys, the durable client binding, invocations.

One `FunctionHost` serves one indexed app. The HTTP server (`http_server.py`) and the queue listener
(`queues.py`) hand it trigger values; it builds the keyword arguments the Python worker would pass
(trigger, `durableClient` binding JSON, `func.Out` outputs, `context`), calls the function through
`devhost.worker`, writes the outputs, and logs one line per invocation like `func start`.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import secrets
import threading
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from azure.durable_functions.models.utils import http_utils
from azure.functions.decorators.function_app import FunctionRegister

from devhost import rpc
from devhost.clock import Clock
from devhost.durable import DurableEngine
from devhost.http_routes import RouteTemplate, RouteTemplateError
from devhost.http_server import DevHostHttpServer
from devhost.indexing import AppIndex, FunctionInfo, IndexingError, index_app, load_app
from devhost.local_settings import (
    SettingsError,
    get_setting_ci,
    host_extension_section,
    resolve_setting_expressions,
)
from devhost.management import ManagementApi
from devhost.queues import QueueOptions, QueueOutputSink, QueueTriggers
from devhost.worker import OutputSink, call_function, invocation_log, run_callable

log = logging.getLogger("devhost")

HOST_KEYS_SETTING = "DEVHOST_HOST_KEYS"
FUNCTION_KEYS_SETTING = "DEVHOST_FUNCTION_KEYS"
MASTER_KEY_SETTING = "DEVHOST_MASTER_KEY"
DEFAULT_TASK_HUB = "TestHubName"
_ALL_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE"})


@dataclass(frozen=True)
class AccessKeys:
    """The keys `--enforce-keys` accepts besides the master key, kept as the host keeps them: a host key opens
    every FUNCTION-level function of the app, a function key only the function it belongs to."""

    host: tuple[str, ...] = ()
    # Function name -> its keys; names match in any case (the host lower-cases them).
    functions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        functions: dict[str, tuple[str, ...]] = {}
        for name, keys in self.functions.items():
            functions[name.lower()] = functions.get(name.lower(), ()) + tuple(keys)
        object.__setattr__(self, "host", tuple(self.host))
        object.__setattr__(self, "functions", functions)

    @classmethod
    def from_settings(cls, environ: Mapping[str, str]) -> AccessKeys:
        """`DEVHOST_HOST_KEYS=k1,k2` and `DEVHOST_FUNCTION_KEYS=name=k3,k4;other=k5`."""
        functions: dict[str, tuple[str, ...]] = {}
        for position, entry in enumerate(environ.get(FUNCTION_KEYS_SETTING, "").split(";"), start=1):
            if not entry.strip():
                continue
            # Split at the first '=': function names have none, key values may (base64 padding).
            name, separator, values = entry.partition("=")
            keys = _key_list(values)
            if not separator or not name.strip() or not keys:
                # The entry itself is not shown: it may be a key.
                raise SettingsError(
                    f"{FUNCTION_KEYS_SETTING}: entry {position} is not function_name=key[,key...]; "
                    f"keys for every function go in {HOST_KEYS_SETTING}"
                )
            functions[name.strip()] = functions.get(name.strip(), ()) + keys
        return cls(_key_list(environ.get(HOST_KEYS_SETTING, "")), functions)

    def of_function(self, name: str) -> tuple[str, ...]:
        return self.functions.get(name.lower(), ())


def _key_list(text: str) -> tuple[str, ...]:
    return tuple(key.strip() for key in text.split(",") if key.strip())


def _key_in(presented: str, keys: Iterable[str]) -> bool:
    # Bytes: compare_digest refuses str with non-ASCII characters, which any client can send.
    given = presented.encode()
    return any(hmac.compare_digest(given, key.encode()) for key in keys)


@dataclass(frozen=True)
class HttpFunction:
    info: FunctionInfo
    route: RouteTemplate
    methods: frozenset[str]
    auth_level: str  # ANONYMOUS | FUNCTION | ADMIN


@dataclass(frozen=True)
class MethodNotAllowed:
    """Routes match the path, but none of them takes the request's method: `allowed` are theirs."""

    allowed: frozenset[str]


@dataclass(frozen=True)
class InvocationContext:
    """What the worker passes as `context: func.Context` (the durable client middleware reads its id)."""

    invocation_id: str
    function_name: str
    function_directory: str
    trace_context: Any = None
    retry_context: Any = None
    thread_local_storage: Any = None


class FunctionHost:
    def __init__(
        self,
        index: AppIndex,
        *,
        host_json: Mapping[str, Any],
        enforce_keys: bool = False,
        keys: AccessKeys | None = None,
        sink: OutputSink | None = None,
        task_hub: str | None = None,
        retry_after_speed: float = 1.0,
    ) -> None:
        if retry_after_speed <= 0:
            raise ValueError(f"retry_after_speed must be > 0, got {retry_after_speed}")
        self.index = index
        self.host_json = host_json
        self.enforce_keys = enforce_keys
        self.keys = keys if keys is not None else AccessKeys.from_settings(os.environ)
        self.sink = sink
        self.task_hub = task_hub or configured_task_hub(host_json)
        # `devhost.offline --clock-speed N`: the `Retry-After` of HTTP answers counts orchestration seconds,
        # which pass N times faster than the caller's (http_server.scale_retry_after). 1 = as the app sent it.
        self.retry_after_speed = retry_after_speed
        http = host_extension_section(host_json, "http")
        self.route_prefix = str(http.get("routePrefix", "api")).strip("/")
        # The master key, here also the Durable extension's system key (the host keeps a separate
        # `durabletask_extension` key): in every URL the extension hands out, checked with --enforce-keys.
        self.system_key = os.environ.get(MASTER_KEY_SETTING) or secrets.token_urlsafe(24)
        self.base_url = "http://127.0.0.1:7071"
        self.http_functions = [_http_function(fn) for fn in index.of_type("httpTrigger")]
        # Most specific first, as ASP.NET routing orders templates.
        self.http_functions.sort(key=lambda f: -f.route.literal_count)
        if set(self.keys.functions) - {f.info.name.lower() for f in self.http_functions}:
            # A misspelt name would leave its keys refused everywhere; names are not echoed (may be keys).
            raise SettingsError(
                f"{FUNCTION_KEYS_SETTING} names a function that is not an HTTP function of the app; "
                f"its HTTP functions are: {', '.join(sorted(f.info.name for f in self.http_functions))}"
            )
        self._running = 0
        self._running_lock = threading.Lock()

    # ----------------------------------------------------------------------------------------------- HTTP
    def match_http(
        self, method: str, path: str
    ) -> tuple[HttpFunction, dict[str, str]] | MethodNotAllowed | None:
        """The function and route parameters for `path` (below the route prefix); `MethodNotAllowed` with the
        methods of every route that matches `path` when none takes `method`; None when no route matched."""
        allowed: set[str] = set()
        for fn in self.http_functions:
            params = fn.route.match(path)
            if params is None:
                continue
            if method.upper() not in fn.methods:
                allowed |= fn.methods
                continue
            return fn, params
        return MethodNotAllowed(frozenset(allowed)) if allowed else None

    def key_accepted(self, auth_level: str, presented: str | None, function_name: str | None = None) -> bool:
        """--enforce-keys, decided as the host decides (SecretManager.GetAuthorizationLevelAsync, then
        AuthUtility.PrincipalHasAuthLevelClaim): the master key passes every level; FUNCTION also takes a host
        key or a key of `function_name` itself, never another function's; ADMIN nothing else. The durable
        webhook asks for ADMIN: its system key is the master key here."""
        if not self.enforce_keys or auth_level == "ANONYMOUS":
            return True
        if not presented:
            return False
        if _key_in(presented, [self.system_key]):
            return True
        if auth_level != "FUNCTION":
            return False
        own = self.keys.of_function(function_name) if function_name else ()
        return _key_in(presented, self.keys.host + own)

    def describe_keys(self) -> str:
        """One start-up line on key enforcement: where keys come from, never their values."""
        if not self.enforce_keys:
            return "Keys: not checked (start with --enforce-keys to check them)"
        master = "set" if os.environ.get(MASTER_KEY_SETTING) else "random for this run"
        functions = ", ".join(sorted(self.keys.functions)) or "none"
        return (
            f"Keys: enforced; master key ({MASTER_KEY_SETTING}) {master}; {len(self.keys.host)} host key(s) "
            f"({HOST_KEYS_SETTING}); function keys ({FUNCTION_KEYS_SETTING}) for: {functions}"
        )

    # ------------------------------------------------------------------------------------ durable client
    @property
    def webhook_base_url(self) -> str:
        return f"{self.base_url}/runtime/webhooks/durabletask"

    @property
    def rpc_base_url(self) -> str:
        # The extension's RPC listener (LocalHttpListener) has its own loopback port; here it shares ours.
        return f"{self.base_url}/durabletask/"

    def management_payload(self, instance_id: str, task_hub: str | None = None) -> dict[str, str]:
        """The extension's HttpManagementPayload for an instance (what create_check_status_response gives)."""
        hub = quote(task_hub or self.task_hub, safe="")
        suffix = f"taskHub={hub}&connection=Storage&code={self.system_key}"
        instance = f"{self.webhook_base_url}/instances/{quote(instance_id, safe='')}"
        return {
            "id": instance_id,
            "statusQueryGetUri": f"{instance}?{suffix}",
            "sendEventPostUri": f"{instance}/raiseEvent/{{eventName}}?{suffix}",
            "terminatePostUri": f"{instance}/terminate?reason={{text}}&{suffix}",
            "rewindPostUri": f"{instance}/rewind?reason={{text}}&{suffix}",
            "purgeHistoryDeleteUri": f"{instance}?{suffix}",
            "restartPostUri": f"{instance}/restart?{suffix}",
            "suspendPostUri": f"{instance}/suspend?reason={{text}}&{suffix}",
            "resumePostUri": f"{instance}/resume?reason={{text}}&{suffix}",
        }

    def durable_client_json(self, binding: Mapping[str, Any]) -> str:
        """The `durableClient` binding value (BindingHelper.DurableOrchestrationClientToString, JSON mode)."""
        task_hub = str(binding.get("taskHub") or self.task_hub)
        code = f"code={self.system_key}"
        orchestrators = f"{self.webhook_base_url}/orchestrators/{{functionName}}[/{{instanceId}}]"
        management = self.management_payload("INSTANCEID", task_hub)
        return json.dumps(
            {
                "taskHubName": task_hub,
                "connectionName": binding.get("connectionName"),
                "creationUrls": {
                    "createNewInstancePostUri": f"{orchestrators}?{code}",
                    "createAndWaitOnNewInstancePostUri": (
                        f"{orchestrators}?timeout={{timeoutInSeconds}}&pollingInterval={{intervalInSeconds}}&{code}"
                    ),
                },
                "managementUrls": management,
                "baseUrl": self.webhook_base_url,
                "requiredQueryStringParameters": code,
                "rpcBaseUrl": self.rpc_base_url,
                "httpBaseUrl": None,
                "maxGrpcMessageSizeInBytes": 4194304,
                "grpcHttpClientTimeout": "00:01:40",
            }
        )

    # --------------------------------------------------------------------------------------- invocations
    @property
    def running_invocations(self) -> int:
        with self._running_lock:
            return self._running

    def binding_inputs(self, fn: FunctionInfo) -> dict[str, rpc.TypedData]:
        """The values of `fn`'s input bindings other than its trigger: the durable client binding's JSON."""
        return {
            binding["name"]: rpc.TypedData(string=self.durable_client_json(binding))
            for binding in fn.bindings
            if binding.get("type") == "durableClient"
        }

    def invoke(
        self,
        fn: FunctionInfo,
        trigger: rpc.TypedData,
        *,
        reason: str,
        detail: str = "",
        trigger_metadata: Mapping[str, rpc.TypedData] | None = None,
    ) -> rpc.TypedData | None:
        """Call `fn` like the worker: trigger + durable client + outputs (+ context); returns what the worker
        sends back for the return binding.

        Outputs (`func.Out` parameters) are written to the sink only after a successful call. Exceptions
        propagate to the caller (HTTP → 500, queue → retry), after the failure has been logged.
        """
        inputs = {**self.binding_inputs(fn), fn.trigger_parameter: trigger}
        with self._running_lock:
            self._running += 1
        try:
            with invocation_log(fn.name, reason, detail) as invocation_id:
                context = InvocationContext(invocation_id, fn.name, os.getcwd())
                try:
                    return call_function(
                        fn, inputs, trigger_metadata=trigger_metadata, context=context, sink=self.sink
                    )
                except Exception:
                    log.exception("Executed 'Functions.%s' failed (Id=%s)", fn.name, invocation_id)
                    raise
        finally:
            with self._running_lock:
                self._running -= 1

    def startup_table(self) -> str:
        """`func start`-style listing of the functions and their triggers."""
        lines = ["", "Functions:", ""]
        prefix = f"/{self.route_prefix}" if self.route_prefix else ""
        for fn in sorted(self.index.functions, key=lambda f: f.name):
            trigger = fn.trigger_type
            http = next((h for h in self.http_functions if h.info is fn), None)
            if http is not None:
                methods = ",".join(sorted(http.methods)) if http.methods != _ALL_METHODS else "*"
                lines.append(f"        {fn.name}: [{methods}] {self.base_url}{prefix}/{http.route.template}")
            elif trigger == "queueTrigger":
                lines.append(
                    f"        {fn.name}: queueTrigger ({_resolved_or_raw(str(fn.trigger['queueName']))})"
                )
            else:
                lines.append(f"        {fn.name}: {trigger}")
        return "\n".join(lines) + "\n"


def _resolved_or_raw(value: str) -> str:
    try:
        return resolve_setting_expressions(value)
    except SettingsError:
        return value


def configured_task_hub(host_json: Mapping[str, Any]) -> str:
    """`extensions.durableTask.hubName`, `%SETTING%` resolved; TestHubName (the local default) if unset."""
    configured = host_extension_section(host_json, "durableTask").get("hubName")
    if not configured:
        return DEFAULT_TASK_HUB
    try:
        return resolve_setting_expressions(str(configured))
    except SettingsError as exc:
        log.warning("host.json durableTask.hubName: %s; using the local default '%s'", exc, DEFAULT_TASK_HUB)
        return DEFAULT_TASK_HUB


def entity_batch_size(durable: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> int:
    """`maxEntityOperationBatchSize`: 50 on a Consumption plan (`WEBSITE_SKU=Dynamic`), else 5000
    (AzureStorageDurabilityProviderFactory); the extension refuses a value below 1."""
    environ = os.environ if environ is None else environ
    consumption = environ.get("WEBSITE_SKU", "").lower() == "dynamic"
    size = int(get_setting_ci(durable, "maxEntityOperationBatchSize", 50 if consumption else 5000))
    if size < 1:
        raise SettingsError(
            f"host.json extensions.durableTask.maxEntityOperationBatchSize: {size} must be a positive integer"
        )
    return size


def _http_function(fn: FunctionInfo) -> HttpFunction:
    trigger = fn.trigger
    template = trigger.get("route") or fn.name
    try:
        route = RouteTemplate(str(template))
    except RouteTemplateError as exc:
        raise IndexingError(f"function '{fn.name}': {exc}") from exc
    methods = trigger.get("methods")
    method_set = frozenset(str(m).upper() for m in methods) if methods else _ALL_METHODS
    auth_level = str(trigger.get("authLevel") or "FUNCTION").upper()
    return HttpFunction(fn, route, method_set, auth_level)


class DevHostRuntime:
    """The whole dev host for one app: index, durable engine, HTTP server, queue triggers.

    Used by `python -m devhost` and by `devhost.testing.DevHost`. App settings must already be in os.environ
    when `start()` runs (the app may read them at import time).
    """

    def __init__(
        self,
        app: str | FunctionRegister,
        *,
        clock: Clock,
        state_path: str | Path,
        host_json: Mapping[str, Any],
        port: int = 7071,
        enforce_keys: bool = False,
        keys: AccessKeys | None = None,
        bind: str = "127.0.0.1",
        atomic_starts: bool = False,
        rerun_activities: Collection[str] = (),
        retry_after_speed: float = 1.0,
    ) -> None:
        self._app = app
        self.clock = clock
        self.state_path = Path(state_path)
        self.host_json = host_json
        self._port = port
        self._enforce_keys = enforce_keys
        self._keys = keys
        self._bind = bind
        self._atomic_starts = atomic_starts
        self._rerun_activities = rerun_activities
        self._retry_after_speed = retry_after_speed
        self._server: DevHostHttpServer | None = None
        self._engine: DurableEngine | None = None
        self._function_host: FunctionHost | None = None
        self.queue_triggers: QueueTriggers | None = None

    @property
    def engine(self) -> DurableEngine:
        if self._engine is None:
            raise RuntimeError("the dev host is not started")
        return self._engine

    @property
    def function_host(self) -> FunctionHost:
        if self._function_host is None:
            raise RuntimeError("the dev host is not started")
        return self._function_host

    @property
    def base_url(self) -> str:
        return self.function_host.base_url

    def start(self) -> None:
        """Index the app (IndexingError on a bad app), then start engine, HTTP server and queue listeners."""
        app = load_app(self._app) if isinstance(self._app, str) else self._app
        index = index_app(app)
        options = QueueOptions.from_host_json(self.host_json)
        sink = QueueOutputSink(options)
        host = FunctionHost(
            index,
            host_json=self.host_json,
            enforce_keys=self._enforce_keys,
            keys=self._keys,
            sink=sink,
            retry_after_speed=self._retry_after_speed,
        )
        durable = host_extension_section(self.host_json, "durableTask")
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        engine = DurableEngine(
            index,
            store_path=self.state_path,
            clock=self.clock,
            sink=sink,
            max_concurrent_activities=int(durable.get("maxConcurrentActivityFunctions") or 10),
            task_hub=host.task_hub,
            atomic_starts=self._atomic_starts,
            binding_inputs=host.binding_inputs,
            rerun_activities=self._rerun_activities,
            max_entity_operation_batch_size=entity_batch_size(durable),
        )
        management = ManagementApi(engine, now=self.clock.now, management_payload=host.management_payload)
        server = DevHostHttpServer(host, management, (self._bind, self._port))
        host.base_url = f"http://127.0.0.1:{server.port}"
        queue_triggers = QueueTriggers(host, options)
        self._function_host, self._engine, self._server = host, engine, server
        self.queue_triggers = queue_triggers
        try:
            engine.start()
            server.start_background()
            queue_triggers.start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop accepting work, then stop the engine (its state stays in SQLite)."""
        if self.queue_triggers is not None:
            self.queue_triggers.stop()
        if self._server is not None:
            self._server.stop()
        if self._engine is not None:
            self._engine.stop()
        _close_durable_client_session()


def _close_durable_client_session() -> None:
    """The SDK keeps one aiohttp session on the worker's event loop and has no shutdown hook (the real worker
    just exits); close it so a stopped host does not leave an "Unclosed client session" warning behind."""
    if http_utils._client_session is None:
        return
    run_callable(http_utils._close_session, {})
