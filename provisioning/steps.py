"""The activity boundary: one ``GraphStep`` per Graph call, and the wire format both of its sides use.

An activity runs ``step.run(client, payload)`` and answers plain JSON: ``{"result": ...}`` or ``{"error":
GraphError.to_dict()}``. Every Graph failure is data, transient ones included: nothing structured travels in
exception text, which the Functions host rewrites on its way to the orchestrator (its ``Sanitizer`` hides
anything after ``key=``, ``sig=``, ``token=``... up to the next quote). The orchestrator reads an answer back
with ``step.read(answer)`` as a typed ``StepOutcome`` and decides: wait and retry, look up, or fail. Only
unexpected failures (bugs, host faults) raise, and Durable's retry policy handles those.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from provisioning.graph import (
    Community,
    CreatedOperation,
    ErrorKind,
    GraphError,
    MemberAddResult,
    OperationStatus,
)
from provisioning.intake import DurableClient, read_status

if TYPE_CHECKING:
    from provisioning.graph import GraphClient

T = TypeVar("T")


@dataclass(frozen=True)
class StepOutcome(Generic[T]):
    """What a Graph step answered: its value, or the classified Graph error."""

    value: T | None = None
    error: GraphError | None = None

    def unwrap(self) -> T:
        """The value of a step known to have succeeded."""
        if self.error is not None or self.value is None:
            raise ValueError("the step failed; read .error")
        return self.value


@dataclass(frozen=True)
class ResolvedUsers:
    """Object ids for the ids/UPNs given, and the Graph error of each user Graph does not know."""

    resolved: dict[str, str] = field(default_factory=dict)
    not_found: dict[str, GraphError] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "resolved": dict(self.resolved),
            "notFound": {reference: error.to_dict() for reference, error in self.not_found.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ResolvedUsers:
        return cls(
            resolved=dict(data["resolved"]),
            not_found={
                reference: GraphError.from_dict(error) for reference, error in data["notFound"].items()
            },
        )


@dataclass(frozen=True)
class GraphStep(Generic[T]):
    """One activity's Graph call: what it runs (activity side) and how its value crosses the boundary."""

    name: str  # the activity's name, as the orchestrator schedules it
    call: Callable[[GraphClient, Any], T]
    to_wire: Callable[[T], Any]
    from_wire: Callable[[Any], T]
    # A call to /employeeExperience/...: it spends the app-wide Viva Engage budget (directory calls do not).
    viva_engage: bool = True

    def run(self, client: GraphClient, payload: Any) -> dict[str, Any]:
        try:
            value = self.call(client, payload)
        except GraphError as err:
            return {"error": err.to_dict()}
        return {"result": self.to_wire(value)}

    def read(self, answer: Mapping[str, Any]) -> StepOutcome[T]:
        error = answer.get("error")
        if error is not None:
            return StepOutcome(error=GraphError.from_dict(error))
        return StepOutcome(value=self.from_wire(answer["result"]))


def is_user_not_found(error: GraphError) -> bool:
    """Graph answers an unknown user id or UPN with 404 (and a malformed one with 400)."""
    return error.kind is ErrorKind.PERMANENT and error.http_status in (400, 404)


def _resolve_users(client: GraphClient, references: Sequence[str]) -> ResolvedUsers:
    """A user Graph does not know is a per-user answer; any other error is the step's error (a 429 midway
    means the whole list is resolved again after the wait, which only repeats reads)."""
    result = ResolvedUsers()
    for reference in references:
        try:
            result.resolved[reference] = client.resolve_user(reference)
        except GraphError as err:
            if not is_user_not_found(err):
                raise
            result.not_found[reference] = err
    return result


def _create(client: GraphClient, request: Mapping[str, Any]) -> CreatedOperation:
    return client.create_community(
        request["displayName"], request.get("description"), request["privacy"], request["ownerIds"]
    )


def _communities_to_wire(communities: Sequence[Community]) -> list[dict[str, Any]]:
    return [community.to_dict() for community in communities]


def _communities_from_wire(data: Sequence[Mapping[str, Any]]) -> list[Community]:
    return [Community.from_json(community) for community in data]


RESOLVE_USERS: GraphStep[ResolvedUsers] = GraphStep(
    "resolve_users", _resolve_users, ResolvedUsers.to_dict, ResolvedUsers.from_dict, viva_engage=False
)
FIND_COMMUNITIES: GraphStep[list[Community]] = GraphStep(
    "find_communities",
    lambda client, display_name: client.find_communities_by_name(display_name),
    _communities_to_wire,
    _communities_from_wire,
)
CREATE_COMMUNITY: GraphStep[CreatedOperation] = GraphStep(
    "create_community", _create, CreatedOperation.to_dict, CreatedOperation.from_dict
)
GET_OPERATION_STATUS: GraphStep[OperationStatus] = GraphStep(
    "get_operation_status",
    lambda client, operation_url: client.get_operation(operation_url),
    OperationStatus.to_dict,
    OperationStatus.from_dict,
)
GET_COMMUNITY: GraphStep[Community] = GraphStep(
    "get_community",
    lambda client, community_id: client.get_community(community_id),
    Community.to_dict,
    Community.from_json,
)
ADD_MEMBERS: GraphStep[MemberAddResult] = GraphStep(
    "add_members",
    lambda client, batch: client.add_group_members(batch["groupId"], batch["userIds"]),
    MemberAddResult.to_dict,
    MemberAddResult.from_dict,
    viva_engage=False,
)


# -- create at most once -------------------------------------------------------------------------------------
# Durable runs an activity at least once: a host that dies after the create's POST reached Graph and before
# the answer was recorded runs the activity again with the same input. So before it POSTs, the create step
# records its try (each scheduled try carries its own id) where a re-run can see it: a tiny orchestration
# instance per try, in the app's own task hub (no other store, no other permission). A run that finds its try
# recorded does not POST; it answers "ambiguous", and the orchestrator looks the community up before it
# creates again.
CREATE_ATTEMPT_MARKER = "create_attempt_marker"

REPEATED_CREATE_ATTEMPT = GraphError(
    ErrorKind.AMBIGUOUS,
    "the create step ran again after a host fault; its first run may have created the community",
    code="CreateAttemptRepeated",
)


def create_attempt_marker_id(request_id: str, try_id: str) -> str:
    return f"{request_id}:create-{try_id}"


async def claim_create_try(client: DurableClient, request_id: str, try_id: str) -> bool:
    """Record create try ``try_id`` of ``request_id`` before it is sent; False when already recorded."""
    marker = create_attempt_marker_id(request_id, try_id)
    if await read_status(client, marker) is not None:
        return False
    await client.start_new(CREATE_ATTEMPT_MARKER, marker, None)
    return True
