"""The Durable extension's instance-management HTTP API (`HttpApiHandler.cs`) over the dev host's engine.

Served twice, like the extension: under `/runtime/webhooks/durabletask/` (the public webhook URLs that
`create_check_status_response` hands out) and under `/durabletask/` (the `rpcBaseUrl` the Python client
calls).
Status codes and bodies follow the extension's source; deviations are listed in docs/devhost.md.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from devhost.durable import (
    RUNNING_STATES,
    TERMINAL_STATES,
    DurableEngine,
    InstanceExistsError,
    InstanceNotFoundError,
    InstanceNotRunningError,
    UnknownFunctionError,
)
from devhost.durable.entities import InvalidEntityIdError

_ALL_STATES = sorted(RUNNING_STATES | TERMINAL_STATES)


@dataclass
class ApiResponse:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, value: Any, headers: Mapping[str, str] | None = None) -> ApiResponse:
        return cls(
            status,
            json.dumps(value).encode("utf-8"),
            {"Content-Type": "application/json; charset=utf-8", **(headers or {})},
        )


def _error(status: int, message: str, exception_message: str | None = None) -> ApiResponse:
    # ASP.NET's CreateErrorResponse shape; the Python client reads "ExceptionMessage" on a 400 start.
    body: dict[str, str] = {"Message": message}
    if exception_message is not None:
        body["ExceptionMessage"] = exception_message
    return ApiResponse.json(status, body)


class ManagementApi:
    """Routes a management request (path below the `durabletask/` prefix) to the engine."""

    def __init__(
        self,
        engine: DurableEngine,
        *,
        now: Callable[[], datetime],
        management_payload: Callable[[str], dict[str, str]],
    ) -> None:
        self._engine = engine
        self._now = now
        self._management_payload = management_payload

    def handle(
        self,
        method: str,
        path: str,
        query: Mapping[str, list[str]],
        headers: Mapping[str, str],
        body: bytes,
        request_url: str,
    ) -> ApiResponse:
        segments = [unquote(s) for s in path.strip("/").split("/")]
        try:
            return self._route(method.upper(), segments, query, headers, body, request_url)
        except ValueError as exc:
            return _error(400, "One or more of the arguments submitted is incorrect", str(exc))

    def _route(
        self,
        method: str,
        segments: list[str],
        query: Mapping[str, list[str]],
        headers: Mapping[str, str],
        body: bytes,
        request_url: str,
    ) -> ApiResponse:
        head, rest = segments[0].lower(), segments[1:]
        if head == "orchestrators" and method == "POST" and 1 <= len(rest) <= 2:
            return self._start(rest[0], rest[1] if len(rest) == 2 else None, body)
        if head == "entities" and len(rest) <= 2:
            return self._entity(method, rest, query, headers, body)
        if head != "instances":
            return ApiResponse(404)
        if not rest or rest == [""]:
            if method == "GET":
                return self._list(query, headers)
            if method == "DELETE":
                return self._purge_where(query)
            return ApiResponse(404)
        instance_id = rest[0]
        if len(rest) == 1:
            if method == "GET":
                return self._status(instance_id, query, request_url)
            if method == "DELETE":
                return self._purge(instance_id)
            return ApiResponse(404)
        operation = rest[1].lower()
        if method != "POST":
            return ApiResponse(404)
        if operation == "terminate" and len(rest) == 2:
            return self._terminate(instance_id, _first(query, "reason") or "")
        if operation == "raiseevent" and len(rest) == 3:
            return self._raise_event(instance_id, rest[2], headers, body)
        if operation in ("suspend", "resume", "rewind", "restart") and len(rest) == 2:
            return _error(501, f"The dev host does not implement '{operation}'.")
        return ApiResponse(404)

    def _start(self, name: str, instance_id: str | None, body: bytes) -> ApiResponse:
        try:
            new_id = self._engine.start_new(name, instance_id, body.decode("utf-8") if body else None)
        except json.JSONDecodeError as exc:
            return _error(400, "Invalid JSON content", str(exc))
        except UnknownFunctionError:
            return _error(
                400,
                "One or more of the arguments submitted is incorrect",
                f"The function '{name}' doesn't exist, is disabled, or is not an orchestrator function.",
            )
        except InstanceExistsError as exc:
            # OrchestrationAlreadyExistsException → 409 in HandleStartOrchestratorRequestAsync.
            return _error(
                409, str(exc) or "An Orchestration instance with the status Running already exists."
            )
        # The extension answers a start with CreateCheckStatusResponse: 202, Location, Retry-After 10.
        payload = self._management_payload(new_id)
        return ApiResponse.json(202, payload, {"Location": payload["statusQueryGetUri"], "Retry-After": "10"})

    def _entity(
        self,
        method: str,
        rest: list[str],
        query: Mapping[str, list[str]],
        headers: Mapping[str, str],
        body: bytes,
    ) -> ApiResponse:
        """`entities/{entityName?}/{entityKey?}`: GET reads the state (key `$` = empty key), POST signals the
        operation `op`, DELETE signals "delete" (HandleGetEntityRequestAsync,
        HandlePostEntityOperationRequestAsync)."""
        name, key = [*rest, "", ""][:2]
        if method == "GET" and not key:
            return _error(501, "The dev host does not implement entity queries.")
        try:
            if method == "GET":
                state = self._engine.read_entity_state(name, "" if key == "$" else key)
                return ApiResponse(404) if state is None else ApiResponse.json(200, json.loads(state))
            if method not in ("POST", "DELETE"):
                return ApiResponse(404)
            operation = "delete" if method == "DELETE" else _first(query, "op") or ""
            self._engine.signal_entity(name, key, operation, _operation_input(headers, body))
        except (InvalidEntityIdError, UnknownFunctionError) as exc:
            return _error(400, str(exc))
        except json.JSONDecodeError as exc:
            return _error(400, f"Could not parse JSON content: {exc}")
        return ApiResponse(202)

    def _status(self, instance_id: str, query: Mapping[str, list[str]], request_url: str) -> ApiResponse:
        status = self._engine.get_status(
            instance_id,
            show_history=_bool(query, "showHistory", False),
            show_history_output=_bool(query, "showHistoryOutput", False),
            show_input=_bool(query, "showInput", True),
        )
        if status is None:
            return ApiResponse(404)
        runtime_status = status.get("runtimeStatus")
        if runtime_status in RUNNING_STATES:
            return ApiResponse.json(202, status, {"Location": request_url, "Retry-After": "5"})
        if runtime_status == "Failed" and _bool(query, "returnInternalServerErrorOnFailure", False):
            return ApiResponse.json(500, status)
        return ApiResponse.json(200, status)

    def _list(self, query: Mapping[str, list[str]], headers: Mapping[str, str]) -> ApiResponse:
        # One page per call, filtered and ordered in the store, as the extension's Azure Storage query reads
        # one Table page (AzureStorageOrchestrationService.GetOrchestrationStateAsync).
        page, next_id = self._engine.query_page(
            id_prefix=_first(query, "instanceIdPrefix"),
            after_id=_decode_token(_header(headers, "x-ms-continuation-token")),
            top=_int(query, "top"),
            runtime_status=_statuses(query),
            created_from=_date(query, "createdTimeFrom"),
            created_to=_date(query, "createdTimeTo"),
            show_input=_bool(query, "showInput", True),
        )
        response = ApiResponse.json(200, page)
        if next_id is not None:
            response.headers["x-ms-continuation-token"] = _encode_token(next_id)
        return response

    def _terminate(self, instance_id: str, reason: str) -> ApiResponse:
        status = self._engine.get_status(instance_id, show_input=False)
        if status is None:
            return ApiResponse(404)
        if status.get("runtimeStatus") in TERMINAL_STATES:
            return ApiResponse(410)
        try:
            self._engine.terminate(instance_id, reason)
        except InstanceNotFoundError:
            return ApiResponse(404)
        except InstanceNotRunningError:
            return ApiResponse(410)
        return ApiResponse(202)

    def _raise_event(
        self, instance_id: str, event_name: str, headers: Mapping[str, str], body: bytes
    ) -> ApiResponse:
        status = self._engine.get_status(instance_id, show_input=False)
        if status is None:
            return ApiResponse(404)
        if status.get("runtimeStatus") in TERMINAL_STATES:
            return ApiResponse(410)
        media_type = (_header(headers, "content-type") or "").split(";")[0].strip()
        if media_type.lower() != "application/json":
            return _error(400, "Only application/json request content is supported")
        data_json = body.decode("utf-8") if body else None
        if data_json is not None:
            try:
                json.loads(data_json)
            except json.JSONDecodeError as exc:
                return _error(400, "Invalid JSON content", str(exc))
        try:
            self._engine.raise_event(instance_id, event_name, data_json)
        except InstanceNotFoundError:
            return ApiResponse(404)
        except InstanceNotRunningError:
            return ApiResponse(410)
        return ApiResponse(202)

    def _purge(self, instance_id: str) -> ApiResponse:
        status = self._engine.get_status(instance_id, show_input=False)
        if status is None:
            return ApiResponse(404)
        if status.get("runtimeStatus") not in TERMINAL_STATES:
            return ApiResponse.json(
                412,
                "Only orchestrations in a terminal state can be purged, but the orchestration with "
                "instance ID "
                f"{instance_id} has status {status.get('runtimeStatus')}",
            )
        deleted = 1 if self._engine.purge(instance_id) else 0
        return ApiResponse.json(200, {"instancesDeleted": deleted})

    def _purge_where(self, query: Mapping[str, list[str]]) -> ApiResponse:
        created_from = _date(query, "createdTimeFrom")
        if created_from is None:
            return ApiResponse.json(400, "Please provide value for 'createdTimeFrom' parameter.")
        deleted = self._engine.purge_where(
            runtime_status=_statuses(query),
            created_from=created_from,
            created_to=_date(query, "createdTimeTo") or self._now(),
        )
        if deleted == 0:
            return ApiResponse(404)
        return ApiResponse.json(200, {"instancesDeleted": deleted})


def _operation_input(headers: Mapping[str, str], body: bytes) -> str | None:
    """`RequestMessage.Input` of a signal: JSON content re-serialized compactly (a JToken), any other
    content as a JSON string, no input without content."""
    if not body:
        return None
    text = body.decode("utf-8")
    media_type = (_header(headers, "content-type") or "").split(";")[0].strip()
    value = json.loads(text) if media_type.lower() == "application/json" else text
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _first(query: Mapping[str, list[str]], name: str) -> str | None:
    for key, values in query.items():
        if key.lower() == name.lower() and values:
            return values[0]
    return None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return None


def _bool(query: Mapping[str, list[str]], name: str, default: bool) -> bool:
    value = (_first(query, name) or "").strip().lower()
    return {"true": True, "false": False}.get(value, default)


def _int(query: Mapping[str, list[str]], name: str) -> int | None:
    value = _first(query, name)
    return int(value) if value and value.strip().lstrip("-").isdigit() and int(value) > 0 else None


def _statuses(query: Mapping[str, list[str]]) -> list[str] | None:
    # Enum.TryParse semantics: unknown names are ignored; none left = no filter.
    wanted = [
        state
        for key, values in query.items()
        if key.lower() == "runtimestatus"
        for value in values
        for name in value.split(",")
        for state in _ALL_STATES
        if state.lower() == name.strip().lower()
    ]
    return wanted or None


def _date(query: Mapping[str, list[str]], name: str) -> datetime | None:
    value = _first(query, name)
    if not value:
        return None
    text = value.strip().replace(" ", "+")  # an unencoded '+' of an offset arrives as a space
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"'{name}' is not a valid date and time: {value}") from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _encode_token(after_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": after_id}).encode()).decode()


def _decode_token(token: str | None) -> str | None:
    if not token:
        return None
    try:
        after_id = json.loads(base64.urlsafe_b64decode(token.encode()))["after"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError("x-ms-continuation-token is not a token this API returned") from exc
    return str(after_id)
