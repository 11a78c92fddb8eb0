"""One function per workflow step: a Graph call through ``GraphClient``, answered as plain JSON.

Activities call these with ``get_graph_client()``. The answer is an envelope the orchestrator can replay:
``{"result": ...}`` on success, ``{"error": GraphError.to_dict()}`` for throttled, permanent and ambiguous
errors (the orchestrator decides: wait Retry-After, fail, or look up an ambiguous create). Transient errors
are raised as ``TransientGraphError`` so the Durable retry policy re-runs the activity; the error travels as
JSON in the exception text because the orchestrator only ever sees that text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from provisioning.graph import ErrorKind, GraphClient, GraphError
from provisioning.workflow import is_user_not_found, transient_failure_message

T = TypeVar("T")


class TransientGraphError(Exception):
    """A transient Graph failure; the message embeds the error for the orchestrator (see ``workflow``)."""

    def __init__(self, error: GraphError) -> None:
        super().__init__(transient_failure_message(error.to_dict()))


def _envelope(call: Callable[[], T], render: Callable[[T], Any]) -> dict[str, Any]:
    try:
        value = call()
    except GraphError as err:
        if err.kind is ErrorKind.TRANSIENT:
            raise TransientGraphError(err) from err
        return {"error": err.to_dict()}
    return {"result": render(value)}


def create_community(client: GraphClient, request: Mapping[str, Any]) -> dict[str, Any]:
    """``request``: displayName, description, privacy, ownerIds; result: operationUrl, retryAfterSeconds,
    requestId, clientRequestId (``CreatedOperation.to_dict``)."""
    return _envelope(
        lambda: client.create_community(
            request["displayName"], request.get("description"), request["privacy"], request["ownerIds"]
        ),
        lambda created: created.to_dict(),
    )


def get_operation(client: GraphClient, operation_url: str) -> dict[str, Any]:
    """Result: ``OperationStatus.to_dict`` (state, rawStatus, ..., retryAfterSeconds for the next wait)."""
    return _envelope(lambda: client.get_operation(operation_url), lambda status: status.to_dict())


def get_community(client: GraphClient, community_id: str) -> dict[str, Any]:
    return _envelope(lambda: client.get_community(community_id), lambda community: community.to_dict())


def find_communities(client: GraphClient, display_name: str) -> dict[str, Any]:
    return _envelope(
        lambda: client.find_communities_by_name(display_name),
        lambda communities: [community.to_dict() for community in communities],
    )


def add_members(client: GraphClient, group_id: str, user_ids: Sequence[str]) -> dict[str, Any]:
    return _envelope(lambda: client.add_group_members(group_id, user_ids), lambda result: result.to_dict())


def resolve_users(client: GraphClient, references: Sequence[str]) -> dict[str, Any]:
    """Object ids for ids/UPNs. Result: ``resolved`` {reference: id} and ``notFound`` {reference: error}.

    A user Graph does not know is a per-user answer; any other error is the step's error (a 429 midway means
    the whole list is resolved again after the wait, which only repeats reads).
    """

    def resolve_all() -> dict[str, Any]:
        resolved: dict[str, str] = {}
        not_found: dict[str, dict[str, Any]] = {}
        for reference in references:
            try:
                resolved[reference] = client.resolve_user(reference)
            except GraphError as err:
                if not is_user_not_found(err.to_dict()):
                    raise
                not_found[reference] = err.to_dict()
        return {"resolved": resolved, "notFound": not_found}

    return _envelope(resolve_all, lambda result: result)
