"""Graph resources the simulator serves: Viva Engage communities and operations, users, group members.

Behaviour follows the Graph docs and what real clients observe, with sources in docs/graph-simulator.md
("Graph quirks reproduced"); where Graph's answer is undocumented the choice is listed there too ("Choices
where sources are silent or disagree").
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from graph_simulator.scenarios import ActiveScenario, ScenarioEngine
from graph_simulator.state import (
    OPERATION_TYPE,
    Community,
    Operation,
    OperationScript,
    Store,
    graph_timestamp,
)
from graph_simulator.wire import GraphApiError, Request, Response

GRAPH_HOST = "graph.microsoft.com"
OPERATION_HEADERS = ("location", "operation-location", "both")
PAGE_SIZE = 20
MAX_OWNERS = 100
MAX_BIND_PER_PATCH = 20
MAX_DISPLAY_NAME = 255
MAX_DESCRIPTION = 1024
PRIVACY_VALUES = ("public", "private")
COMMUNITY_PROPERTIES = ("id", "displayName", "description", "privacy", "groupId")
OPERATION_PROPERTIES = (
    "id",
    "createdDateTime",
    "lastActionDateTime",
    "status",
    "statusDetail",
    "resourceLocation",
    "operationType",
    "resourceId",
)
USER_PROPERTIES = ("id", "displayName", "userPrincipalName", "mail")
ALREADY_MEMBER = (
    "One or more added object references already exist for the following modified properties: 'members'."
)
_OPERATIONS = "employeeExperience/engagementAsyncOperations"
_FILTER_DISPLAY_NAME = re.compile(r"^\s*displayName\s+eq\s+'((?:[^']|'')*)'\s*$", re.IGNORECASE)
_ORDER_BY = re.compile(r"^\s*displayName(?:\s+(asc|desc))?\s*$", re.IGNORECASE)
_BIND_PATH = re.compile(r"^/(?:v1\.0|beta)/(?:users|directoryObjects)/([^/]+)$", re.IGNORECASE)


@dataclass
class SimulatorConfig:
    operation_header: str = "location"  # location | operation-location | both
    polls_to_complete: int = 3  # poll on which a scripted operation turns terminal (1 = first poll)

    def validate(self) -> None:
        if self.operation_header not in OPERATION_HEADERS:
            raise ValueError(f"operation_header must be one of {', '.join(OPERATION_HEADERS)}")
        if not 1 <= self.polls_to_complete <= 1000:
            raise ValueError("polls_to_complete must be between 1 and 1000")


def _not_found(what: str) -> GraphApiError:
    return GraphApiError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{what}' does not exist or one of its queried reference-property objects are not present.",
    )


def _metadata(payload: dict[str, Any], request: Request) -> dict[str, Any]:
    """``Accept: ...;odata.metadata=none`` drops ``@odata.context`` (as in the CLI's capture)."""
    if "odata.metadata=none" in (request.header("Accept") or "").lower():
        return {key: value for key, value in payload.items() if key != "@odata.context"}
    return payload


def _select(
    payload: dict[str, Any], request: Request, allowed: tuple[str, ...], type_name: str
) -> dict[str, Any]:
    """Apply ``$select``: unknown properties are a 400 like Graph; annotations always stay."""
    payload = _metadata(payload, request)
    raw = request.query.get("$select")
    if raw is None:
        return payload
    wanted = [name.strip() for name in raw.split(",") if name.strip()]
    for name in wanted:
        if name not in allowed:
            raise GraphApiError(
                400,
                "BadRequest",
                f"Could not find a property named '{name}' on type 'microsoft.graph.{type_name}'.",
            )
    return {key: value for key, value in payload.items() if key.startswith("@") or key in wanted}


def _decoded_id(value: str) -> dict[str, Any] | None:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except (binascii.Error, ValueError):
        return None
    return decoded if isinstance(decoded, dict) else None


class GraphApi:
    """Route handlers for the Graph surface. Each takes a parsed request and returns a response or raises."""

    def __init__(
        self,
        store: Store,
        scenarios: ScenarioEngine,
        config: SimulatorConfig,
        now: Callable[[], float],
        origin: Callable[[], str],
    ) -> None:
        self._store = store
        self._scenarios = scenarios
        self._config = config
        self._now = now
        self._origin = origin

    def fault_subject(self, route: str, request: Request) -> str:
        """What a request is about, for ``fault-mix``: the community's display name where there is one."""
        with self._store.lock:
            if route == "create":
                try:
                    return str(request.json_object().get("displayName"))
                except GraphApiError:
                    return request.body.decode("utf-8", "replace")
            if route == "list":
                return f"{request.query.get('$filter')}/{request.query.get('$skiptoken')}"
            key = request.params.get("gid") or request.params.get("id", "")
            if route == "operation":
                operation = self._store.operations.get(key)
                return operation.display_name if operation else key
            if route == "community":
                community = self._store.communities.get(key)
                return community.display_name if community else key
            if route == "members":
                community = self._store.community_by_group(key)
                return community.display_name if community else key
            return key.lower()  # users

    # --- communities

    def create_community(self, request: Request) -> Response:
        body = request.json_object()
        display_name, description, privacy = self._community_fields(body, creating=True)
        owner_ids = self._owner_ids(body)
        if self._scenarios.has("create-check", "create") and self._name_exists(display_name):
            self._scenarios.take_first("create-check", "create")
            raise GraphApiError(
                409, "nameAlreadyExists", f"A community named '{display_name}' already exists."
            )
        outcome = self._scenarios.take_first("operation", "create")
        shape = self._scenarios.take_first("create-shape", "create")
        script = self._script(outcome)
        if script.community_exists:
            # A community readable only some time after "succeeded" stays hidden until that first answer.
            hidden_until = math.inf if script.readable_after is not None else None
            community_id: str | None = self._store.new_community(
                display_name, description, privacy, owner_ids, hidden_until
            ).id
        elif script.terminal_status == "succeeded":
            community_id = self._store.new_community_id()  # an id nothing answers to
        else:
            community_id = None
        operation = self._store.new_operation(self._now(), script, community_id, display_name)
        headers = {
            "Content-Type": "application/json",
            **self._polling_headers(request.version, operation, shape),
        }
        return Response.empty(202, headers)

    def _name_exists(self, display_name: str) -> bool:
        with self._store.lock:
            return any(c.display_name == display_name for c in self._store.communities.values())

    def _community_fields(self, body: dict[str, Any], *, creating: bool) -> tuple[str, str | None, str]:
        allowed = {"displayName", "description", "privacy"} | ({"owners@odata.bind"} if creating else set())
        for key in body:
            # Annotations such as "@odata.type" (early beta example) are accepted and ignored.
            if key not in allowed and not key.startswith("@"):
                raise GraphApiError(
                    400,
                    "BadRequest",
                    f"The property '{key}' does not exist on type 'microsoft.graph.community'. "
                    "Make sure to only use property names that are defined by the type.",
                )
        display_name = body.get("displayName")
        valid_name = isinstance(display_name, str) and 1 <= len(display_name) <= MAX_DISPLAY_NAME
        if (creating or "displayName" in body) and not valid_name:
            raise GraphApiError(
                400,
                "BadRequest",
                f"Invalid value for 'displayName': 1 to {MAX_DISPLAY_NAME} characters are required.",
            )
        description = body.get("description")
        if description is not None and (
            not isinstance(description, str) or len(description) > MAX_DESCRIPTION
        ):
            raise GraphApiError(
                400,
                "BadRequest",
                f"Invalid value for 'description': at most {MAX_DESCRIPTION} characters are allowed.",
            )
        privacy = body.get("privacy")
        if (creating or "privacy" in body) and privacy not in PRIVACY_VALUES:
            raise GraphApiError(
                400,
                "BadRequest",
                f"Invalid value for 'privacy': {privacy!r}; expected one of {', '.join(PRIVACY_VALUES)}.",
            )
        return str(display_name or ""), description, str(privacy or "")

    def _bound_user_id(self, value: object, prop: str) -> str:
        """The user id of an ``@odata.bind`` URL (Graph's host or the simulator's own origin)."""
        parts = urlsplit(value) if isinstance(value, str) else None
        origin = urlsplit(self._origin())
        match = _BIND_PATH.match(parts.path) if parts else None
        if parts is None or match is None or parts.netloc.lower() not in (GRAPH_HOST, origin.netloc):
            raise GraphApiError(
                400,
                "BadRequest",
                f"Invalid URL {value!r} in '{prop}': expected https://graph.microsoft.com/{{version}}/users/{{id}}.",
            )
        user = self._store.find_user(match.group(1))
        if user is None or user.id.lower() != match.group(1).lower():
            raise _not_found(match.group(1))
        return user.id

    def _owner_ids(self, body: dict[str, Any]) -> list[str]:
        owners = body.get("owners@odata.bind")
        if owners is None or owners == []:
            # App-only tokens must name owners (docs, Example 2); the observed failure is a plain 400.
            raise GraphApiError(
                400,
                "BadRequest",
                "Bad request. 'owners@odata.bind' is required when using application permissions.",
            )
        if not isinstance(owners, list):
            raise GraphApiError(400, "BadRequest", "'owners@odata.bind' must be an array of user URLs.")
        if len(owners) > MAX_OWNERS:
            raise GraphApiError(
                400,
                "BadRequest",
                f"A community can have at most {MAX_OWNERS} owners; {len(owners)} were given.",
            )
        ids: list[str] = []
        for value in owners:
            user_id = self._bound_user_id(value, "owners@odata.bind")
            if user_id not in ids:
                ids.append(user_id)
        return ids

    def _script(self, outcome: ActiveScenario | None) -> OperationScript:
        polls = self._config.polls_to_complete
        if outcome is None:
            return OperationScript(polls, "succeeded", "running", None, True)
        options = outcome.options
        polls = options.get("polls") or polls
        name = outcome.name
        if name == "operation-failed":
            return OperationScript(polls, options["status"], "running", options["status_detail"], False)
        if name == "operation-skipped":
            return OperationScript(polls, "skipped", "running", options["status_detail"], False)
        if name == "operation-unknown-status":
            final = None if options["final"] == "none" else options["final"]
            return OperationScript(polls, final, options["status"], None, final == "succeeded")
        if name == "operation-in-progress-spelling":
            return OperationScript(polls, "succeeded", options["status"], None, True)
        if name == "operation-succeeded-without-community":
            readable_after = options["readable_after"]
            return OperationScript(
                polls, "succeeded", "running", None, readable_after is not None, readable_after
            )
        # operation-never-ends
        return OperationScript(polls, None, options["status"], None, False)

    def _polling_headers(
        self, version: str, operation: Operation, shape: ActiveScenario | None
    ) -> dict[str, str]:
        shape_name = shape.name if shape else None
        if shape_name == "no-polling-header":
            return {}
        path = f"/{version}/{_OPERATIONS}"
        path += f"/{operation.id}" if shape_name == "segment-id-location" else f"('{operation.id}')"
        if shape_name == "relative-location":
            url = path
        elif shape is not None and shape_name == "foreign-location":
            url = str(shape.options["origin"]) + path
        else:
            url = self._origin() + path
        which = {"operation-location-only": "operation-location", "both-polling-headers": "both"}.get(
            shape_name or "", self._config.operation_header
        )
        headers = {}
        if which in ("location", "both"):
            headers["Location"] = url
        if which in ("operation-location", "both"):
            headers["Operation-Location"] = url
        return headers

    def get_operation(self, request: Request) -> Response:
        op_id = request.params["id"]
        with self._store.lock:
            operation = self._store.operations.get(op_id)
            if operation is None:
                raise _not_found(op_id)
            operation.advance(self._now())
            community = self._store.communities.get(operation.community_id or "")
            if operation.succeeded and community is not None and community.hidden_until == math.inf:
                community.hidden_until = self._now() + float(operation.script.readable_after or 0)
            payload = self._operation_json(request.version, operation)
        return Response.json(200, _select(payload, request, OPERATION_PROPERTIES, "engagementAsyncOperation"))

    def _operation_json(self, version: str, operation: Operation) -> dict[str, Any]:
        terminal = operation.polls >= operation.script.polls_to_complete and operation.script.terminal_status
        community_id = operation.community_id if operation.succeeded else None
        return {
            # Graph's own example lacks "$metadata#" here (unlike the community entity): copied as is.
            "@odata.context": f"{self._origin()}/{version}/{_OPERATIONS}/$entity",
            "id": operation.id,
            "createdDateTime": graph_timestamp(operation.created),
            "lastActionDateTime": graph_timestamp(operation.last_action),
            "status": operation.status,
            "statusDetail": operation.script.status_detail if terminal else None,
            "resourceLocation": (
                f"{self._origin()}/{version}/employeeExperience/communities('{community_id}')"
                if community_id
                else None
            ),
            "operationType": OPERATION_TYPE,
            "resourceId": community_id,
        }

    def _community(self, community_id: str) -> Community:
        decoded = _decoded_id(community_id)
        if decoded is None or decoded.get("_type") != "Group":
            raise GraphApiError(400, "BadRequest", f"Invalid community id '{community_id}'.")
        community = self._store.communities.get(community_id)
        if community is None or not community.readable(self._now()):
            raise GraphApiError(404, "itemNotFound", f"The community '{community_id}' was not found.")
        return community

    def get_community(self, request: Request) -> Response:
        prefix = f"{self._origin()}/{request.version}"
        with self._store.lock:
            community = self._community(request.params["id"])
            payload = {
                "@odata.context": f"{prefix}/$metadata#employeeExperience/communities/$entity",
                **community.to_graph(),
            }
        return Response.json(200, _select(payload, request, COMMUNITY_PROPERTIES, "community"))

    def update_community(self, request: Request) -> Response:
        body = request.json_object()
        display_name, description, privacy = self._community_fields(body, creating=False)
        with self._store.lock:
            community = self._community(request.params["id"])
            if "displayName" in body:
                community.display_name = display_name
            if "description" in body:
                community.description = description
            if "privacy" in body:
                community.privacy = privacy
        return Response.empty(204)

    def delete_community(self, request: Request) -> Response:
        with self._store.lock:
            community = self._community(request.params["id"])
            del self._store.communities[community.id]
            self._store.group_members.pop(community.group_id, None)
            self._store.group_owners.pop(community.group_id, None)
        return Response.empty(204)

    def list_communities(self, request: Request) -> Response:
        query = request.query
        for key in query:
            if key.startswith("$") and key not in ("$filter", "$top", "$select", "$orderby", "$skiptoken"):
                raise GraphApiError(400, "BadRequest", f"Query option '{key}' is not supported.")
        now = self._now()
        with self._store.lock:
            items = [c.to_graph() for c in self._store.communities.values() if c.readable(now)]
        if "$filter" in query:
            match = _FILTER_DISPLAY_NAME.match(query["$filter"])
            if match is None:
                raise GraphApiError(400, "BadRequest", f"Invalid filter clause: {query['$filter']}")
            wanted = match.group(1).replace("''", "'")
            items = [item for item in items if item["displayName"] == wanted]
        if "$orderby" in query:
            order = _ORDER_BY.match(query["$orderby"])
            if order is None:
                raise GraphApiError(400, "BadRequest", "Only displayName can be used in $orderby.")
            items.sort(
                key=lambda item: str(item["displayName"]).lower(),
                reverse=(order.group(1) or "").lower() == "desc",
            )
        page_size = self._page_size(query.get("$top"))
        offset = self._offset(query.get("$skiptoken"))
        page = items[offset : offset + page_size]
        prefix = f"{self._origin()}/{request.version}"
        payload: dict[str, Any] = {"@odata.context": f"{prefix}/$metadata#employeeExperience/communities"}
        if offset + page_size < len(items):
            params = {k: v for k, v in query.items() if k in ("$filter", "$top", "$select", "$orderby")}
            params["$skiptoken"] = base64.urlsafe_b64encode(f"offset:{offset + page_size}".encode()).decode()
            encoded = urlencode(params, quote_via=quote, safe="$,'")
            foreign = self._scenarios.take_first("list-shape", "list")
            link_prefix = f"{foreign.options['origin']}/{request.version}" if foreign else prefix
            payload["@odata.nextLink"] = f"{link_prefix}/employeeExperience/communities?{encoded}"
        payload["value"] = [_select(item, request, COMMUNITY_PROPERTIES, "community") for item in page]
        return Response.json(200, _metadata(payload, request))

    @staticmethod
    def _page_size(top: str | None) -> int:
        if top is None:
            return PAGE_SIZE
        if not top.isdigit() or not 1 <= int(top) <= 999:
            raise GraphApiError(400, "BadRequest", f"Invalid value '{top}' for $top: expected 1 to 999.")
        return int(top)

    @staticmethod
    def _offset(token: str | None) -> int:
        if token is None:
            return 0
        try:
            text = base64.urlsafe_b64decode(token.encode()).decode()
        except (binascii.Error, UnicodeDecodeError):
            text = ""
        if not text.startswith("offset:") or not text[7:].isdigit():
            raise GraphApiError(400, "BadRequest", "The $skiptoken is not valid.")
        return int(text[7:])

    # --- directory

    def get_user(self, request: Request) -> Response:
        key = request.params["id"]
        user = self._store.find_user(key)
        if user is None:
            raise _not_found(key)
        payload = {
            "@odata.context": f"{self._origin()}/{request.version}/$metadata#users/$entity",
            **user.to_graph(),
        }
        return Response.json(200, _select(payload, request, USER_PROPERTIES, "user"))

    def _group_members(self, group_id: str) -> list[str]:
        members = self._store.group_members.get(group_id)
        if members is None:
            raise _not_found(group_id)
        return members

    def add_member_ref(self, request: Request) -> Response:
        body = request.json_object()
        with self._store.lock:
            members = self._group_members(request.params["gid"])
            user_id = self._bound_user_id(body.get("@odata.id"), "@odata.id")
            if user_id in members:
                raise GraphApiError(400, "Request_BadRequest", ALREADY_MEMBER)
            members.append(user_id)
        return Response.empty(204)

    def patch_group(self, request: Request) -> Response:
        body = request.json_object()
        unsupported = [
            key for key in body if key != "members@odata.bind" and not key.startswith("@odata.type")
        ]
        if unsupported:
            raise GraphApiError(
                400,
                "Request_BadRequest",
                f"The simulator only supports 'members@odata.bind', not {unsupported}.",
            )
        binds = body.get("members@odata.bind", [])
        if not isinstance(binds, list):
            raise GraphApiError(400, "Request_BadRequest", "'members@odata.bind' must be an array of URLs.")
        if len(binds) > MAX_BIND_PER_PATCH:
            raise GraphApiError(
                400,
                "Request_BadRequest",
                f"The maximum number of objects that can be added in one request is {MAX_BIND_PER_PATCH}.",
            )
        with self._store.lock:
            members = self._group_members(request.params["gid"])
            user_ids = [self._bound_user_id(value, "members@odata.bind") for value in binds]
            # Like Graph, one existing member fails the whole request and nothing is added.
            if any(user_id in members for user_id in user_ids):
                raise GraphApiError(400, "Request_BadRequest", ALREADY_MEMBER)
            members.extend(dict.fromkeys(user_ids))
        return Response.empty(204)

    def list_members(self, request: Request) -> Response:
        with self._store.lock:
            members = list(self._group_members(request.params["gid"]))
            users = [self._store.users[m.lower()] for m in members]
        value = [{"@odata.type": "#microsoft.graph.user", **user.to_graph()} for user in users]
        context = f"{self._origin()}/{request.version}/$metadata#directoryObjects"
        return Response.json(200, _metadata({"@odata.context": context, "value": value}, request))
