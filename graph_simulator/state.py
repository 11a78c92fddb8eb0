"""The simulator's directory and Viva Engage data, guarded by one lock.

Ids and timestamps copy what Graph really returns (the real response in pnp/cli-microsoft365
docs/docs/cmd/viva/engage/engage-community-add.mdx, not the docs' placeholder GUIDs): ids are unpadded
base64url JSON blobs and timestamps are UTC with seven fractional digits and a ``Z``.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

SEED_USERS: list[dict[str, str]] = [
    {
        "id": "26be1845-4119-4801-a799-aea79d09f1a2",
        "userPrincipalName": "adele.vance@contoso.onmicrosoft.com",
        "displayName": "Adele Vance",
    },
    {
        "id": "5f0e1c3a-8d2b-4a7e-9c61-0b7d3e2f4a10",
        "userPrincipalName": "alex.wilber@contoso.onmicrosoft.com",
        "displayName": "Alex Wilber",
    },
    {
        "id": "8a7b6c5d-4e3f-4a1b-9c2d-3e4f5a6b7c8d",
        "userPrincipalName": "megan.bowen@contoso.onmicrosoft.com",
        "displayName": "Megan Bowen",
    },
    {
        "id": "b1c2d3e4-f5a6-4b7c-8d9e-0f1a2b3c4d5e",
        "userPrincipalName": "lee.gu@contoso.onmicrosoft.com",
        "displayName": "Lee Gu",
    },
    {
        "id": "c0ffee00-1234-4abc-8def-0123456789ab",
        "userPrincipalName": "patti.o'brien@contoso.onmicrosoft.com",
        "displayName": "Patti O'Brien",
    },
]

OPERATION_TYPE = "createCommunity"


def b64url_json_id(payload: dict[str, str]) -> str:
    """Encode a Graph-style id: compact JSON, base64url, no ``=`` padding."""
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def graph_timestamp(epoch_seconds: float) -> str:
    """``2024-04-10T12:16:18.0240578Z``: UTC with 7 fractional digits, as real operations carry."""
    ticks = round(epoch_seconds * 10_000_000)
    seconds, fraction = divmod(ticks, 10_000_000)
    base = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{fraction:07d}Z"


def error_date(epoch_seconds: float) -> str:
    """``innerError.date`` in Graph's error bodies carries no fraction and no offset."""
    return datetime.fromtimestamp(int(epoch_seconds), UTC).strftime("%Y-%m-%dT%H:%M:%S")


@dataclass
class User:
    id: str
    user_principal_name: str
    display_name: str

    def to_graph(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "displayName": self.display_name,
            "userPrincipalName": self.user_principal_name,
            "mail": self.user_principal_name,
        }


@dataclass
class Community:
    id: str
    display_name: str
    description: str | None
    privacy: str
    group_id: str
    hidden_until: float | None = None  # simulator clock; Graph reads do not show it before (inf: not yet set)

    def readable(self, now: float) -> bool:
        return self.hidden_until is None or now >= self.hidden_until

    def to_graph(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "displayName": self.display_name,
            "description": self.description,
            "privacy": self.privacy,
            "groupId": self.group_id,
        }


@dataclass
class OperationScript:
    """How one operation evolves, fixed when it is created (so scenarios switched later do not change it)."""

    polls_to_complete: (
        int  # the operation is terminal from this poll on (1 = already terminal at the first poll)
    )
    terminal_status: str | None  # None: never ends
    in_progress_status: str  # what polls 2..n-1 show ("running", "inProgress", or an unknown string)
    status_detail: str | None
    community_exists: bool  # False for "succeeded" with nothing behind it
    readable_after: float | None = None  # the community is readable this long after the first "succeeded"


@dataclass
class Operation:
    id: str
    created: float
    script: OperationScript
    community_id: str | None
    display_name: str
    polls: int = 0
    status: str = "notStarted"
    last_action: float = 0.0

    def advance(self, now: float) -> None:
        """Count one poll and move to the status the script gives for it."""
        self.polls += 1
        if self.script.terminal_status is not None and self.polls >= self.script.polls_to_complete:
            status = self.script.terminal_status
        elif self.polls == 1:
            status = "notStarted"
        else:
            status = self.script.in_progress_status
        if status != self.status:
            self.status = status
            self.last_action = now

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"


@dataclass
class IssuedToken:
    token: str
    resource: str
    client_id: str | None
    expires_on: int


@dataclass
class Store:
    """Everything the simulator remembers. Callers hold ``lock`` while they read or change it."""

    lock: threading.RLock = field(default_factory=threading.RLock)
    users: dict[str, User] = field(default_factory=dict)
    communities: dict[str, Community] = field(default_factory=dict)
    operations: dict[str, Operation] = field(default_factory=dict)
    group_members: dict[str, list[str]] = field(default_factory=dict)
    group_owners: dict[str, list[str]] = field(default_factory=dict)
    tokens: dict[str, IssuedToken] = field(default_factory=dict)
    request_log: list[dict[str, Any]] = field(default_factory=list)
    _numeric_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(184813150208))

    def __post_init__(self) -> None:
        for user in SEED_USERS:
            self.add_user(user["id"], user["userPrincipalName"], user["displayName"])

    def add_user(self, user_id: str, upn: str, display_name: str) -> User:
        with self.lock:
            user = User(user_id, upn, display_name)
            self.users[user_id.lower()] = user
            return user

    def find_user(self, id_or_upn: str) -> User | None:
        key = id_or_upn.lower()
        with self.lock:
            if key in self.users:
                return self.users[key]
            return next((u for u in self.users.values() if u.user_principal_name.lower() == key), None)

    def new_community(
        self,
        display_name: str,
        description: str | None,
        privacy: str,
        owner_ids: list[str],
        hidden_until: float | None = None,
    ) -> Community:
        with self.lock:
            community_id = self.new_community_id()
            community = Community(
                community_id, display_name, description, privacy, str(uuid.uuid4()), hidden_until
            )
            self.communities[community_id] = community
            self.group_owners[community.group_id] = list(owner_ids)
            # Engage community admins are members of the connected Microsoft 365 group too.
            self.group_members[community.group_id] = list(owner_ids)
            return community

    def new_community_id(self) -> str:
        with self.lock:
            return b64url_json_id({"_type": "Group", "id": str(next(self._numeric_ids))})

    def new_operation(
        self, now: float, script: OperationScript, community_id: str | None, display_name: str
    ) -> Operation:
        op_id = b64url_json_id(
            {"_type": "LongRunningOperation", "id": str(uuid.uuid4()), "operation": "CreateCommunity"}
        )
        operation = Operation(op_id, now, script, community_id, display_name, last_action=now)
        with self.lock:
            self.operations[op_id] = operation
        return operation

    def community_by_group(self, group_id: str) -> Community | None:
        with self.lock:
            return next((c for c in self.communities.values() if c.group_id == group_id), None)

    def reset(self) -> None:
        """Forget communities, operations, members and the request log; the directory and tokens stay."""
        with self.lock:
            self.communities.clear()
            self.operations.clear()
            self.group_members.clear()
            self.group_owners.clear()
            self.request_log.clear()
