"""HTTP plumbing: routing table, request pipeline (faults, auth, rate limit, handler) and GraphSimulator."""

from __future__ import annotations

import contextlib
import copy
import logging
import re
import secrets
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from graph_simulator.admin_api import AdminApi
from graph_simulator.graph_api import GraphApi, SimulatorConfig
from graph_simulator.identity import TokenService
from graph_simulator.scenarios import ActiveScenario, ScenarioEngine, format_retry_after
from graph_simulator.state import Store, error_date
from graph_simulator.wire import GraphApiError, Request, Response

logger = logging.getLogger(__name__)

# Headers that carry secrets never reach the request log.
SECRET_HEADERS = frozenset({"authorization", "x-identity-header", "cookie", "set-cookie"})
_DEFAULT_ERROR_CODES = {
    400: "BadRequest",
    401: "InvalidAuthenticationToken",
    403: "accessDenied",
    404: "itemNotFound",
    409: "nameAlreadyExists",
    429: "TooManyRequests",
    500: "generalException",
    502: "BadGateway",
    503: "serviceNotAvailable",
    504: "GatewayTimeout",
}


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    name: str  # the scenario route name ("create", "operation", ...) or "admin"
    handler: Callable[[Request], Response]


def _path(pattern: str) -> re.Pattern[str]:
    return re.compile(f"^{pattern}$", re.IGNORECASE)


_VER = r"/(?P<ver>v1\.0|beta)"
# Graph keys come as a path segment or in OData key syntax: /things/{id} and /things('{id}').
_KEY = r"(?:/(?P<id>[^/()']+)|\('(?P<kid>[^']+)'\))"
# A UPN may contain an apostrophe, which is fine in a path segment (and doubled inside the key syntax).
_USER_KEY = r"(?:/(?P<id>[^/]+)|\('(?P<kid>(?:[^']|'')+)'\))"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    simulator: GraphSimulator

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, _Handler)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """End kept-alive connections so a stopped simulator answers nothing more."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, each kept-alive request waits ~40 ms for an ACK.
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        self.server.simulator._serve(self)

    def do_POST(self) -> None:
        self.server.simulator._serve(self)

    def do_PATCH(self) -> None:
        self.server.simulator._serve(self)

    def do_DELETE(self) -> None:
        self.server.simulator._serve(self)

    def do_PUT(self) -> None:
        self.server.simulator._serve(self)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the request log is the record."""


class GraphSimulator:
    """Microsoft Graph (Viva Engage communities, users, group members) and an App Service managed identity
    endpoint on loopback. See docs/graph-simulator.md."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
        *,
        operation_header: str = "location",
        polls_to_complete: int = 3,
        identity_header: str | None = None,
        token_lifetime_seconds: int = 24 * 3600,
        rate_limit: bool = False,
    ) -> None:
        """``rate_limit``: enforce Viva Engage's limit (10 requests per 30 s per app: the ``rate-limit``
        scenario with its defaults) from the start, as Graph does. ``python -m graph_simulator`` and the
        offline stack turn it on; tests of other behaviour leave it off and switch the scenario on where
        the limit is the point."""
        self._host = host
        self._port = port
        self._clock = clock
        self._clock_offset = 0.0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.config = SimulatorConfig(operation_header, polls_to_complete)
        self.config.validate()
        self.store = Store()
        self.scenarios = ScenarioEngine()
        if rate_limit:
            self.scenarios.activate("rate-limit", {})
        self.tokens = TokenService(
            self.store, identity_header or secrets.token_urlsafe(24), lambda: self.url, token_lifetime_seconds
        )
        self._graph = GraphApi(self.store, self.scenarios, self.config, self.now, lambda: self.url)
        self._admin = AdminApi(self)
        self._routes = self._build_routes()

    def _build_routes(self) -> list[Route]:
        graph, admin = self._graph, self._admin
        communities = f"{_VER}/employeeExperience/communities"
        operations = f"{_VER}/employeeExperience/engagementAsyncOperations"
        groups = f"{_VER}/groups/(?P<gid>[^/]+)"
        return [
            Route("GET", _path("/msi/token"), "token", self.tokens.token_endpoint),
            Route("POST", _path(f"{communities}/?"), "create", graph.create_community),
            Route("GET", _path(f"{communities}/?"), "list", graph.list_communities),
            Route("GET", _path(communities + _KEY), "community", graph.get_community),
            Route("PATCH", _path(communities + _KEY), "community", graph.update_community),
            Route("DELETE", _path(communities + _KEY), "community", graph.delete_community),
            Route("GET", _path(operations + _KEY), "operation", graph.get_operation),
            Route("GET", _path(f"{_VER}/users" + _USER_KEY), "users", graph.get_user),
            Route("POST", _path(f"{groups}/members/\\$ref"), "members", graph.add_member_ref),
            Route("GET", _path(f"{groups}/members"), "members", graph.list_members),
            Route("PATCH", _path(groups), "members", graph.patch_group),
            *admin.routes(),
        ]

    # --- lifecycle

    def start(self) -> GraphSimulator:
        if self._server is not None:
            return self
        server = _Server((self._host, self._port))
        server.simulator = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="graph-simulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        server = self._server
        stopper = threading.Thread(target=server.shutdown, name="graph-simulator-stop")
        stopper.start()
        while stopper.is_alive():
            # serve_forever only sees the stop request when its selector wakes up: a connection wakes it now
            # instead of after the poll interval (which would add ~0.1 s to every test).
            with contextlib.suppress(OSError):
                socket.create_connection((self._host, server.server_address[1]), timeout=1).close()
            stopper.join(0.01)
        server.server_close()
        server.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> GraphSimulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- public API (used by tests and the dev host; listed in docs/graph-simulator.md, "In process")

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the Graph simulator is not started")
        return f"http://{self._host}:{self._server.server_address[1]}"

    @property
    def graph_base_url(self) -> str:
        return self.url + "/v1.0"

    @property
    def identity_endpoint(self) -> str:
        return self.url + "/msi/token"

    @property
    def identity_header(self) -> str:
        return self.tokens.identity_header

    def app_env(self, client_id: str | None = None) -> dict[str, str]:
        env = {
            "GRAPH_BASE_URL": self.graph_base_url,
            "IDENTITY_ENDPOINT": self.identity_endpoint,
            "IDENTITY_HEADER": self.identity_header,
        }
        if client_id:
            env["AZURE_CLIENT_ID"] = client_id
        return env

    def now(self) -> float:
        """The simulator clock: the injected clock plus what ``advance_clock`` added."""
        return self._clock() + self._clock_offset

    def advance_clock(self, seconds: float) -> float:
        self._clock_offset += seconds
        return self.now()

    def set_scenario(self, name: str, **options: Any) -> dict[str, Any]:
        return self.scenarios.activate(name, options).to_dict()

    def clear_scenarios(self) -> None:
        self.scenarios.clear()

    def reset(self) -> None:
        self.store.reset()
        self.scenarios.clear()

    def requests(self) -> list[dict[str, Any]]:
        with self.store.lock:
            return copy.deepcopy(self.store.request_log)

    def clear_requests(self) -> None:
        with self.store.lock:
            self.store.request_log.clear()

    def add_user(self, id: str, upn: str, display_name: str) -> dict[str, Any]:
        return self.store.add_user(id, upn, display_name).to_graph()

    def users(self) -> list[dict[str, Any]]:
        with self.store.lock:
            return [user.to_graph() for user in self.store.users.values()]

    def add_community(
        self,
        display_name: str,
        description: str = "",
        privacy: str = "private",
        owner_ids: list[str] | None = None,
    ) -> dict[str, Any]:
        """Seed a community directly (duplicate display names allowed, as on Graph)."""
        return self.store.new_community(display_name, description, privacy, list(owner_ids or [])).to_graph()

    def communities(self) -> list[dict[str, Any]]:
        with self.store.lock:
            return [c.to_graph() for c in self.store.communities.values()]

    def group_members(self, group_id: str) -> list[str]:
        with self.store.lock:
            return list(self.store.group_members.get(group_id, []))

    # --- request pipeline

    def _match(self, request: Request) -> Route:
        allowed = False
        for route in self._routes:
            match = route.pattern.match(request.path)
            if match is None:
                continue
            if route.method != request.method:
                allowed = True
                continue
            request.params = {k: v for k, v in match.groupdict().items() if v is not None}
            if "kid" in request.params:
                request.params["id"] = request.params.pop("kid").replace("''", "'")
            return route
        if allowed:
            raise GraphApiError(
                405, "Request_BadRequest", "Specified HTTP method is not allowed for the request target."
            )
        segment = request.path.rstrip("/").rsplit("/", 1)[-1]
        raise GraphApiError(400, "BadRequest", f"Resource not found for the segment '{segment}'.")

    def _serve(self, handler: _Handler) -> None:
        split = urlsplit(handler.path)
        length = handler.headers.get("Content-Length") or "0"
        body = handler.rfile.read(int(length)) if length.isdigit() and int(length) > 0 else b""
        request = Request(
            handler.command,
            unquote(split.path),
            dict(parse_qsl(split.query, keep_blank_values=True)),
            handler.headers,
            body,
        )
        request_id = str(uuid.uuid4())
        client_request_id = request.header("client-request-id") or str(uuid.uuid4())
        try:
            route = self._match(request)
        except GraphApiError as error:
            response = self._error_response(error, request_id, client_request_id)
            self._log(request, None, request_id)["status"] = response.status
            self._write(handler, response)
            return
        if route.name == "admin":
            self._write(handler, self._admin.handle(route, request))
            return
        entry = self._log(request, route.name, request_id)
        fault = self.scenarios.draw(
            route.name, request.method, lambda: self._graph.fault_subject(route.name, request)
        )
        with self.store.lock:
            entry["fault"] = fault
        reset = self.scenarios.take_first("fault-after", route.name, _reset_without_commit)
        if reset is not None:
            self._drop(handler, reset)
            return
        response = self._run(route, request, request_id, client_request_id)
        if 200 <= response.status < 300:
            self._add_success_retry_after(route.name, response)
        response.headers.setdefault("request-id", request_id)
        response.headers.setdefault("client-request-id", client_request_id)
        after = self.scenarios.take_all("fault-after", route.name, lambda s: not _reset_without_commit(s))
        for scenario in after:
            if scenario.name == "slow":
                time.sleep(float(scenario.options["seconds"]))
            elif scenario.name == "malformed-json":
                response.body = b'{"id": "eyJfdHlwZSI6IkxvbmdSdW5uaW5nT3BlcmF0aW9uIiwiaWQi", "status": "runn'
                response.headers["Content-Type"] = "application/json"
        reset = next((s for s in after if s.name == "connection-reset"), None)
        if reset is not None:
            self._drop(handler, reset)
            return
        with self.store.lock:
            entry["status"] = response.status
        self._write(handler, response)

    def _log(self, request: Request, route_name: str | None, request_id: str) -> dict[str, Any]:
        """Append a request-log entry (status filled in once answered; None if the connection is reset)."""
        entry = {
            "method": request.method,
            "path": request.path,
            "query": request.query,
            "time": self.now(),
            "status": None,
            "headers": {k: v for k, v in request.headers.items() if k.lower() not in SECRET_HEADERS},
            "route": route_name,
            "requestId": request_id,
            "fault": None,  # the fault-mix fault this request got
        }
        with self.store.lock:
            self.store.request_log.append(entry)
        return entry

    def _run(self, route: Route, request: Request, request_id: str, client_request_id: str) -> Response:
        try:
            fault = self.scenarios.take_first("fault-before", route.name)
            if fault is not None:
                raise self._fault_error(fault)
            if route.name != "token":
                token = self.tokens.authenticate(request)
                wait = self.scenarios.rate_limit_wait(
                    token.client_id or "system-assigned", route.name, self.now()
                )
                if wait is not None:
                    raise _throttled(*wait, now=self.now())
            return route.handler(request)
        except GraphApiError as error:
            return self._error_response(error, request_id, client_request_id)
        except Exception:
            # A simulator bug must still look like an HTTP answer, and be visible in the test output.
            logger.exception("Graph simulator failed on %s %s", request.method, request.path)
            crash = GraphApiError(500, "generalException", "Unexpected error in the Graph simulator.")
            return self._error_response(crash, request_id, client_request_id)

    def _add_success_retry_after(self, route_name: str, response: Response) -> None:
        """``operation-retry-after``: a successful create or poll asks for a wait before the next poll."""
        if route_name not in ("create", "operation"):
            return
        scenario = self.scenarios.take_first(
            "success-header", route_name, lambda s: s.options["on"] in (route_name, "both")
        )
        if scenario is None:
            return
        options = scenario.options
        value = format_retry_after(float(options["retry_after"]), str(options["form"]), self.now())
        if value is not None:
            response.headers["Retry-After"] = value

    def _fault_error(self, fault: ActiveScenario) -> GraphApiError:
        options = fault.options
        if fault.name == "throttle":
            return _throttled(float(options["retry_after"]), str(options["form"]), now=self.now())
        status = int(options["status"])
        headers: dict[str, str] = {}
        if options.get("retry_after") is not None:
            value = format_retry_after(float(options["retry_after"]), str(options["form"]), self.now())
            if value is not None:
                headers["Retry-After"] = value
        code = options.get("code") or _DEFAULT_ERROR_CODES.get(status, "UnknownError")
        message = options.get("message") or f"Simulated {status} from the Graph simulator."
        return GraphApiError(status, str(code), str(message), headers=headers)

    def _error_response(self, error: GraphApiError, request_id: str, client_request_id: str) -> Response:
        inner = {
            "date": error_date(self.now()),
            "request-id": request_id,
            "client-request-id": client_request_id,
            **error.inner,
        }
        payload = {"error": {"code": error.code, "message": error.message, "innerError": inner}}
        headers = {**error.headers, "request-id": request_id, "client-request-id": client_request_id}
        return Response.json(error.status, payload, headers, content_type="application/json")

    @staticmethod
    def _drop(handler: _Handler, scenario: ActiveScenario) -> None:
        """End the connection without a response: with RST (``how=reset``, a dropped connection), or closed
        in order (``how=close``, the client sees the connection end before an answer)."""
        handler.close_connection = True
        if scenario.options["how"] == "close":
            return  # the server closes the connection after this request
        try:
            handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            handler.connection.close()
        except OSError:
            pass

    @staticmethod
    def _write(handler: _Handler, response: Response) -> None:
        try:
            handler.send_response(response.status)
            for name, value in response.headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(response.body)))
            handler.end_headers()
            if response.body:
                handler.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True  # the client gave up (e.g. its read timeout during "slow")


def _reset_without_commit(scenario: ActiveScenario) -> bool:
    return scenario.name == "connection-reset" and not scenario.options["commit"]


def _throttled(seconds: float, form: str, *, now: float) -> GraphApiError:
    """Graph's documented 429 (throttling.md sample)."""
    value = format_retry_after(seconds, form, now)
    return GraphApiError(
        429,
        "TooManyRequests",
        "Please retry again later.",
        headers={"Retry-After": value} if value is not None else {},
        inner={"code": "429", "message": "Please retry after", "status": "429"},
    )
