"""The one module through which the app talks to Microsoft Graph.

One pooled ``requests.Session`` per process; tokens from ``azure-identity``'s ``DefaultAzureCredential`` (a
user-assigned managed identity when ``AZURE_CLIENT_ID`` is set), created lazily on first use. Every failure
surfaces as a classified ``GraphError``; see docs/graph-client.md for the rules and why.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

import requests
from azure.core.exceptions import ClientAuthenticationError
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError
from urllib3.util.retry import Retry

from provisioning.logs import get_logger
from provisioning.settings import get_settings

from .errors import ErrorKind, GraphError, classify_status, parse_error_body, parse_retry_after
from .models import MEMBERS_PER_REQUEST, Community, CreatedOperation, MemberAddResult
from .operation import OperationStatus
from .urls import GraphEndpoint, path_for_log
from .version import USER_AGENT

logger = get_logger(__name__)

# A server that keeps handing out next links must not keep us paging forever.
MAX_PAGES = 500
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


class TokenCredential(Protocol):
    """What the client needs from an azure-identity credential."""

    def get_token(self, *scopes: str) -> Any: ...


_session_lock = threading.Lock()
_process_session: requests.Session | None = None


def process_session() -> requests.Session:
    """The process-wide pooled session.

    urllib3 never retries on its own here: a silently repeated POST could create a second community, and
    every retry decision belongs to the caller, who knows whether a request is idempotent. Redirects are not
    followed either (``allow_redirects=False`` per request): Graph does not redirect these calls, and a
    redirect must not carry the bearer token anywhere.
    """
    global _process_session
    with _session_lock:
        if _process_session is None:
            session = requests.Session()
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=32, max_retries=Retry(total=0, read=False))
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            _process_session = session
        return _process_session


@dataclass(frozen=True)
class _Reply:
    response: requests.Response
    request_id: str | None
    client_request_id: str


class GraphClient:
    def __init__(
        self,
        base_url: str,
        *,
        credential: TokenCredential | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        session: requests.Session | None = None,
        client_id: str | None = None,
    ) -> None:
        self.endpoint = GraphEndpoint.parse(base_url)
        self._credential = credential
        self._client_id = client_id
        self._credential_lock = threading.Lock()
        self._session = session
        self._timeout = (connect_timeout, read_timeout)

    @property
    def base_url(self) -> str:
        return self.endpoint.base_url

    # ----------------------------------------------------------------------------------------------- calls

    def create_community(
        self, display_name: str, description: str | None, privacy: str, owner_ids: Sequence[str]
    ) -> CreatedOperation:
        """POST the community; return the operation URL to poll.

        Raises an AMBIGUOUS GraphError when the request went out but its answer was lost, or when Graph
        accepted it without saying where to poll: in both cases the community may be created, so look it up
        before retrying.
        """
        body: dict[str, Any] = {
            "displayName": display_name,
            "privacy": privacy,
            "owners@odata.bind": [self.endpoint.entity_url("users", owner_id) for owner_id in owner_ids],
        }
        if description is not None:
            body["description"] = description
        reply = self._send(
            "POST",
            self.endpoint.url("employeeExperience", "communities"),
            json_body=body,
            non_idempotent=True,
        )
        location = _polling_header(reply.response.headers)
        if not location:
            raise GraphError(
                ErrorKind.AMBIGUOUS,
                "Graph accepted the create but sent neither an Operation-Location nor a Location header, "
                "so it cannot be followed; the community may still be created",
                http_status=reply.response.status_code,
                code="MissingOperationLocation",
                request_id=reply.request_id,
                client_request_id=reply.client_request_id,
            )
        operation_url = self._resolve_from(
            reply,
            location,
            "operation URL",
            note="; Graph accepted the create, so the community may still be created",
        )
        return CreatedOperation(
            operation_url,
            reply.request_id,
            reply.client_request_id,
            retry_after_seconds=parse_retry_after(reply.response.headers.get("Retry-After")),
        )

    def get_operation(self, operation_url: str) -> OperationStatus:
        """Poll an operation at the URL Graph gave: absolute or relative, ``('id')`` or ``/id``.

        A ``Retry-After`` on the answer is kept: the caller waits at least that long before the next poll.
        """
        reply = self._send("GET", self.endpoint.resolve(operation_url, what="operation URL"))
        return OperationStatus.from_json(
            self._json_object(reply, "operation"),
            request_id=reply.request_id,
            retry_after_seconds=parse_retry_after(reply.response.headers.get("Retry-After")),
        )

    def get_community(self, community_id: str) -> Community:
        """The community; a missing one raises a PERMANENT GraphError with ``is_not_found``."""
        reply = self._send("GET", self.endpoint.url("employeeExperience", "communities", community_id))
        return self._community(reply, self._json_object(reply, "community"))

    def find_communities_by_name(self, display_name: str) -> list[Community]:
        """Every community whose display name equals ``display_name`` exactly, across all result pages."""
        odata_literal = "'" + display_name.replace("'", "''") + "'"
        url: str | None = (
            self.endpoint.url("employeeExperience", "communities")
            + "?$filter="
            + quote(f"displayName eq {odata_literal}", safe="")
        )
        matches: list[Community] = []
        visited: set[str] = set()
        while url is not None:
            if url in visited or len(visited) >= MAX_PAGES:
                raise GraphError(
                    ErrorKind.TRANSIENT,
                    "Graph's community list kept returning next links (a repeated link or over "
                    f"{MAX_PAGES} pages)",
                    code="PagingLoop",
                )
            visited.add(url)
            reply = self._send("GET", url)
            page = self._json_object(reply, "community list")
            items = page.get("value")
            next_link = page.get("@odata.nextLink")
            if not isinstance(items, list) or not isinstance(next_link, str | None):
                raise self._malformed(reply, "community list")
            # Graph's eq may ignore case; only exact matches are duplicates of this name.
            matches.extend(
                self._community(reply, item)
                for item in items
                if isinstance(item, Mapping) and item.get("displayName") == display_name
            )
            url = None if next_link is None else self._resolve_from(reply, next_link, "next page link")
        return matches

    def resolve_user(self, id_or_upn: str) -> str:
        """A user's object id; a GUID is returned as given without calling Graph."""
        value = id_or_upn.strip()
        if _GUID.fullmatch(value):
            return value
        if not value:
            raise GraphError(
                ErrorKind.PERMANENT, "An empty user id or UPN cannot be resolved", code="UserNotFound"
            )
        try:
            reply = self._send("GET", self.endpoint.url("users", value) + "?$select=id")
        except GraphError as error:
            if not error.is_not_found:
                raise
            raise GraphError(
                ErrorKind.PERMANENT,
                f"User {value!r} was not found in the directory "
                f"({error.code or 'HTTP 404'}: {error.message})",
                http_status=404,
                code="UserNotFound",
                request_id=error.request_id,
                client_request_id=error.client_request_id,
            ) from None
        user_id = self._json_object(reply, "user").get("id")
        if not isinstance(user_id, str) or not user_id:
            raise self._malformed(reply, "user")
        return user_id

    def add_group_members(self, group_id: str, user_ids: Sequence[str]) -> MemberAddResult:
        """Add users to the community's group, 20 per PATCH.

        A batch Graph rejects as a whole (400/404: typically because one user is already a member, or one id
        is unknown) is retried one user at a time, so "already a member" counts as success and only the users
        Graph really refuses end up in ``failed``. Throttled, transient or ambiguous errors propagate: the
        whole call can be retried safely, since users added by the first attempt then count as already
        members.
        """
        result = MemberAddResult()
        unique_ids = list(dict.fromkeys(user_ids))
        group_url = self.endpoint.url("groups", group_id)
        for batch in _chunks(unique_ids, MEMBERS_PER_REQUEST):
            bind = [self.endpoint.entity_url("directoryObjects", user_id) for user_id in batch]
            try:
                self._send("PATCH", group_url, json_body={"members@odata.bind": bind})
            except GraphError as error:
                if error.kind is not ErrorKind.PERMANENT:
                    raise
                if error.http_status in (400, 404):
                    self._add_members_one_by_one(group_id, batch, result)
                else:  # e.g. 403: the same answer would come for each user
                    result.failed.extend((user_id, error) for user_id in batch)
                continue
            result.added.extend(batch)
        return result

    def _add_members_one_by_one(
        self, group_id: str, user_ids: Sequence[str], result: MemberAddResult
    ) -> None:
        url = self.endpoint.url("groups", group_id, "members", "$ref")
        for user_id in user_ids:
            try:
                self._send(
                    "POST",
                    url,
                    json_body={"@odata.id": self.endpoint.entity_url("directoryObjects", user_id)},
                )
            except GraphError as error:
                if error.kind is not ErrorKind.PERMANENT:
                    raise
                if _is_already_member(error):
                    result.already_members.append(user_id)
                else:
                    result.failed.append((user_id, error))
                continue
            result.added.append(user_id)

    # ------------------------------------------------------------------------------------------- plumbing

    def _send(self, method: str, url: str, *, json_body: Any = None, non_idempotent: bool = False) -> _Reply:
        """One HTTP exchange with Graph; failures raise a classified GraphError."""
        self.endpoint.require_same_origin(url, what="request URL")
        client_request_id = str(uuid.uuid4())
        headers = {
            "Authorization": f"Bearer {self._access_token()}",
            "client-request-id": client_request_id,
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
        }
        session = self._session or process_session()
        started = time.monotonic()
        try:
            response = session.request(
                method, url, headers=headers, json=json_body, timeout=self._timeout, allow_redirects=False
            )
        except requests.RequestException as exc:
            _log_exchange(method, url, type(exc).__name__, started, None, client_request_id, logging.WARNING)
            # The requests exception is not chained: its text repeats the URL with its query string.
            raise _transport_error(
                exc, non_idempotent=non_idempotent, client_request_id=client_request_id
            ) from None
        request_id = response.headers.get("request-id")
        ok = 200 <= response.status_code < 300
        _log_exchange(
            method,
            url,
            str(response.status_code),
            started,
            request_id,
            client_request_id,
            logging.INFO if ok else logging.WARNING,
        )
        if not ok:
            raise _http_error(response, non_idempotent=non_idempotent, client_request_id=client_request_id)
        return _Reply(response, request_id, client_request_id)

    def _access_token(self) -> str:
        with self._credential_lock:
            if self._credential is None:
                # Imported here: azure.identity is heavy and only needed once a Graph call is really made.
                from azure.identity import DefaultAzureCredential

                self._credential = DefaultAzureCredential(managed_identity_client_id=self._client_id)
            credential = self._credential
        try:
            return str(credential.get_token(self.endpoint.token_scope).token)
        except ClientAuthenticationError as exc:
            # Nothing was sent to Graph; a managed identity endpoint that is briefly unavailable is the common
            # case, and a lasting misconfiguration still ends once the caller's retries are exhausted.
            raise GraphError(
                ErrorKind.TRANSIENT,
                f"Could not get a token for {self.endpoint.token_scope}: "
                f"{_first_line(str(exc.message or exc))}",
                code="TokenAcquisitionFailed",
            ) from None

    def _json_object(self, reply: _Reply, what: str) -> dict[str, Any]:
        try:
            document = reply.response.json()
        except ValueError:
            raise self._malformed(reply, what) from None
        if not isinstance(document, dict):
            raise self._malformed(reply, what)
        return document

    def _community(self, reply: _Reply, document: Mapping[str, Any]) -> Community:
        try:
            return Community.from_json(document)
        except (KeyError, TypeError):
            raise self._malformed(reply, "community") from None

    def _resolve_from(self, reply: _Reply, url: str, what: str, note: str = "") -> str:
        """``endpoint.resolve`` for a URL found in ``reply``; a refusal carries that answer's request ids."""
        try:
            return self.endpoint.resolve(url, what=what)
        except GraphError as refused:
            raise GraphError(
                refused.kind,
                refused.message + note,
                http_status=reply.response.status_code,
                code=refused.code,
                request_id=reply.request_id,
                client_request_id=reply.client_request_id,
            ) from None

    @staticmethod
    def _malformed(reply: _Reply, what: str) -> GraphError:
        # Usually a proxy or a truncated answer; the same request normally succeeds later.
        return GraphError(
            ErrorKind.TRANSIENT,
            f"Graph answered HTTP {reply.response.status_code} for the {what} with a body that is not the "
            "expected JSON",
            http_status=reply.response.status_code,
            code="MalformedResponse",
            request_id=reply.request_id,
            client_request_id=reply.client_request_id,
        )


def _http_error(response: requests.Response, *, non_idempotent: bool, client_request_id: str) -> GraphError:
    status = response.status_code
    body = parse_error_body(response.text)
    kind = classify_status(status, non_idempotent=non_idempotent)
    message = body.message or f"Graph answered HTTP {status} {response.reason or ''}".rstrip()
    if 300 <= status < 400:
        message = f"Graph answered with an unexpected redirect (HTTP {status}); redirects are not followed"
    elif kind is ErrorKind.AMBIGUOUS:
        message += " (a gateway lost the answer to the create; the community may exist)"
    return GraphError(
        kind,
        message,
        http_status=status,
        code=body.code,
        request_id=body.request_id or response.headers.get("request-id"),
        client_request_id=body.client_request_id
        or response.headers.get("client-request-id")
        or client_request_id,
        retry_after_seconds=parse_retry_after(response.headers.get("Retry-After")),
    )


def _transport_error(
    exc: requests.RequestException, *, non_idempotent: bool, client_request_id: str
) -> GraphError:
    if _never_sent(exc):
        return GraphError(
            ErrorKind.TRANSIENT,
            f"Could not connect to Graph ({type(exc).__name__}); the request was not sent",
            code="ConnectionFailed",
            client_request_id=client_request_id,
        )
    failure = "timed out waiting for" if isinstance(exc, requests.Timeout) else "lost the connection before"
    if non_idempotent:
        return GraphError(
            ErrorKind.AMBIGUOUS,
            f"The create request was sent but the client {failure} Graph's answer ({type(exc).__name__}); "
            "the community may exist",
            code="ResponseLost",
            client_request_id=client_request_id,
        )
    return GraphError(
        ErrorKind.TRANSIENT,
        f"The client {failure} Graph's answer ({type(exc).__name__})",
        code="ResponseLost",
        client_request_id=client_request_id,
    )


def _never_sent(exc: requests.RequestException) -> bool:
    """True when the failure happened while connecting, so Graph cannot have seen the request."""
    if isinstance(
        exc, requests.ConnectTimeout | requests.exceptions.SSLError | requests.exceptions.InvalidURL
    ):
        return True
    if isinstance(exc, requests.exceptions.MissingSchema | requests.exceptions.InvalidSchema):
        return True
    if isinstance(exc, requests.ConnectionError) and exc.args and isinstance(exc.args[0], MaxRetryError):
        # With retries off, urllib3 wraps only connection-phase failures in MaxRetryError.
        return isinstance(exc.args[0].reason, NewConnectionError | ConnectTimeoutError)
    return False


def _polling_header(headers: Mapping[str, str]) -> str:
    """The operation URL header's value, or "" when there is none.

    The docs' prose names Operation-Location; their current example and every real client use Location.
    ``requests`` gives a case-insensitive mapping, so any spelling of either name is found.
    """
    return (headers.get("Operation-Location") or "").strip() or (headers.get("Location") or "").strip()


def _is_already_member(error: GraphError) -> bool:
    # "One or more added object references already exist for the following modified properties: 'members'."
    return error.http_status == 400 and "already exist" in error.message.lower()


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "unknown error"
    return line[:300]


def _log_exchange(
    method: str,
    url: str,
    outcome: str,
    started: float,
    request_id: str | None,
    client_request_id: str,
    level: int,
) -> None:
    duration_ms = round((time.monotonic() - started) * 1000)
    logger.log(
        level,
        "Graph %s %s -> %s in %d ms (request-id %s, client-request-id %s)",
        method,
        path_for_log(url),
        outcome,
        duration_ms,
        request_id or "-",
        client_request_id,
        extra={
            "graph_method": method,
            "graph_path": path_for_log(url),
            "graph_outcome": outcome,
            "duration_ms": duration_ms,
            "graphRequestId": request_id,
            "client_request_id": client_request_id,
        },
    )


_client_lock = threading.Lock()
_process_client: tuple[tuple[Any, ...], GraphClient] | None = None


def get_graph_client() -> GraphClient:
    """The process-wide client, built on first use from the app settings.

    It is rebuilt only when the Graph settings change (tests and the dev host clear ``get_settings``' cache
    between runs against different simulators); in a deployed app that never happens.
    """
    global _process_client
    settings = get_settings()
    key = (
        settings.graph_base_url,
        settings.azure_client_id,
        settings.graph_connect_timeout_seconds,
        settings.graph_read_timeout_seconds,
    )
    with _client_lock:
        if _process_client is None or _process_client[0] != key:
            client = GraphClient(
                settings.graph_base_url,
                client_id=settings.azure_client_id,
                connect_timeout=settings.graph_connect_timeout_seconds,
                read_timeout=settings.graph_read_timeout_seconds,
            )
            _process_client = (key, client)
        return _process_client[1]
