"""The admin API under ``/_simulator/``: scenarios, reset, directory, seeded communities, request log, clock.

No authentication (loopback dev tool) and not written to the request log, so tests count only Graph calls.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from graph_simulator.scenarios import CATALOG, ScenarioError
from graph_simulator.state import graph_timestamp
from graph_simulator.wire import Request, Response

if TYPE_CHECKING:
    from graph_simulator.server import GraphSimulator, Route


class AdminError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _json(status: int, payload: Any) -> Response:
    return Response.json(status, payload, content_type="application/json")


def _body(request: Request) -> dict[str, Any]:
    if not request.body:
        return {}
    try:
        payload = json.loads(request.body)
    except ValueError as exc:
        raise AdminError(400, f"invalid JSON body: {exc}") from None
    if not isinstance(payload, dict):
        raise AdminError(400, "the body must be a JSON object")
    return payload


def _required_str(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise AdminError(400, f"'{name}' is required (a non-empty string)")
    return value


class AdminApi:
    def __init__(self, simulator: GraphSimulator) -> None:
        self._sim = simulator

    def routes(self) -> list[Route]:
        from graph_simulator.server import Route

        def route(method: str, path: str, handler: Any) -> Route:
            return Route(method, re.compile(f"^/_simulator/{path}/?$"), "admin", handler)

        return [
            route("GET", "scenarios", self.list_scenarios),
            route("POST", "scenarios", self.add_scenario),
            route("DELETE", "scenarios", self.clear_scenarios),
            route("POST", "reset", self.reset),
            route("GET", "users", self.list_users),
            route("POST", "users", self.add_user),
            route("GET", "communities", self.list_communities),
            route("POST", "communities", self.add_community),
            route("GET", "groups/(?P<gid>[^/]+)/members", self.group_members),
            route("GET", "requests", self.list_requests),
            route("DELETE", "requests", self.clear_requests),
            route("GET", "clock", self.get_clock),
            route("POST", "clock", self.advance_clock),
            route("GET", "config", self.get_config),
            route("PATCH", "config", self.update_config),
            route("GET", "app-env", self.app_env),
        ]

    def handle(self, route: Route, request: Request) -> Response:
        try:
            return route.handler(request)
        except AdminError as error:
            return _json(error.status, {"error": str(error)})
        except ScenarioError as error:
            return _json(400, {"error": str(error)})

    def list_scenarios(self, request: Request) -> Response:
        available = [
            {
                "name": spec.name,
                "help": spec.help,
                "options": [{"name": o.name, "default": o.default, "help": o.help} for o in spec.options],
            }
            for spec in CATALOG.values()
        ]
        return _json(200, {"active": self._sim.scenarios.active(), "available": available})

    def add_scenario(self, request: Request) -> Response:
        body = _body(request)
        options = body.get("options") or {}
        if not isinstance(options, dict):
            raise AdminError(400, "'options' must be an object")
        return _json(201, self._sim.set_scenario(_required_str(body, "name"), **options))

    def clear_scenarios(self, request: Request) -> Response:
        self._sim.clear_scenarios()
        return Response.empty(204)

    def reset(self, request: Request) -> Response:
        self._sim.reset()
        return Response.empty(204)

    def list_users(self, request: Request) -> Response:
        return _json(200, {"value": self._sim.users()})

    def add_user(self, request: Request) -> Response:
        body = _body(request)
        user = self._sim.add_user(
            _required_str(body, "id"),
            _required_str(body, "userPrincipalName"),
            _required_str(body, "displayName"),
        )
        return _json(201, user)

    def list_communities(self, request: Request) -> Response:
        return _json(200, {"value": self._sim.communities()})

    def add_community(self, request: Request) -> Response:
        body = _body(request)
        owners = body.get("ownerIds") or []
        if not isinstance(owners, list) or not all(isinstance(o, str) for o in owners):
            raise AdminError(400, "'ownerIds' must be a list of user ids")
        community = self._sim.add_community(
            _required_str(body, "displayName"),
            str(body.get("description") or ""),
            str(body.get("privacy") or "private"),
            owners,
        )
        return _json(201, community)

    def group_members(self, request: Request) -> Response:
        return _json(200, {"value": self._sim.group_members(request.params["gid"])})

    def list_requests(self, request: Request) -> Response:
        return _json(200, {"value": self._sim.requests()})

    def clear_requests(self, request: Request) -> Response:
        self._sim.clear_requests()
        return Response.empty(204)

    def _clock(self) -> Response:
        now = self._sim.now()
        return _json(200, {"now": now, "iso": graph_timestamp(now)})

    def get_clock(self, request: Request) -> Response:
        return self._clock()

    def advance_clock(self, request: Request) -> Response:
        seconds = _body(request).get("advanceSeconds")
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
            raise AdminError(400, "'advanceSeconds' must be a number >= 0")
        self._sim.advance_clock(float(seconds))
        return self._clock()

    def _config(self) -> Response:
        config = self._sim.config
        return _json(
            200, {"operationHeader": config.operation_header, "pollsToComplete": config.polls_to_complete}
        )

    def get_config(self, request: Request) -> Response:
        return self._config()

    def update_config(self, request: Request) -> Response:
        body = _body(request)
        config = self._sim.config
        previous = (config.operation_header, config.polls_to_complete)
        config.operation_header = str(body.get("operationHeader", config.operation_header))
        polls = body.get("pollsToComplete", config.polls_to_complete)
        config.polls_to_complete = polls if isinstance(polls, int) else -1
        try:
            config.validate()
        except ValueError as exc:
            config.operation_header, config.polls_to_complete = previous
            raise AdminError(400, str(exc)) from None
        return self._config()

    def app_env(self, request: Request) -> Response:
        # For `make run`'s launcher: the env the app needs (the identity header is a local, per-run secret).
        return _json(200, self._sim.app_env())
