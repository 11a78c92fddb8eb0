"""Plain results of Graph calls (JSON-friendly; activities return their ``to_dict()``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import GraphError

# Graph accepts at most 20 directory objects per members@odata.bind request.
MEMBERS_PER_REQUEST = 20


@dataclass(frozen=True)
class CreatedOperation:
    """A create Graph accepted: where to poll it, when to poll first (``Retry-After`` of the 202, if any),
    and the ids to quote to Microsoft support."""

    operation_url: str
    request_id: str | None
    client_request_id: str
    retry_after_seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "operationUrl": self.operation_url,
            "requestId": self.request_id,
            "clientRequestId": self.client_request_id,
            "retryAfterSeconds": self.retry_after_seconds,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CreatedOperation:
        return cls(
            operation_url=data["operationUrl"],
            request_id=data.get("requestId"),
            client_request_id=data["clientRequestId"],
            retry_after_seconds=data.get("retryAfterSeconds"),
        )


@dataclass(frozen=True)
class Community:
    id: str
    display_name: str
    description: str | None
    privacy: str | None
    group_id: str | None

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Community:
        """Raises KeyError/TypeError when the body lacks a string ``id`` (the client calls that malformed)."""
        community_id = document["id"]
        if not isinstance(community_id, str) or not community_id:
            raise TypeError("community id is not a non-empty string")
        return cls(
            id=community_id,
            display_name=str(document.get("displayName") or ""),
            description=document.get("description"),
            privacy=document.get("privacy"),
            group_id=document.get("groupId"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "displayName": self.display_name,
            "description": self.description,
            "privacy": self.privacy,
            "groupId": self.group_id,
        }


@dataclass
class MemberAddResult:
    added: list[str] = field(default_factory=list)
    already_members: list[str] = field(default_factory=list)
    failed: list[tuple[str, GraphError]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": list(self.added),
            "alreadyMembers": list(self.already_members),
            "failed": [{"id": user_id, "error": error.to_dict()} for user_id, error in self.failed],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MemberAddResult:
        return cls(
            added=list(data["added"]),
            already_members=list(data["alreadyMembers"]),
            failed=[(item["id"], GraphError.from_dict(item["error"])) for item in data["failed"]],
        )
