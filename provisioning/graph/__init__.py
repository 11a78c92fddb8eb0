"""Microsoft Graph client for Viva Engage communities (no Azure Functions imports).

The client and its HTTP stack (requests, urllib3, azure-core) are imported on first use, not when the app is
indexed: only activities call Graph, and cold start is paid on every scale-out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import ErrorKind, GraphError, parse_retry_after
from .models import MEMBERS_PER_REQUEST, Community, CreatedOperation, MemberAddResult
from .operation import OperationState, OperationStatus, map_status

if TYPE_CHECKING:
    from .client import GraphClient, get_graph_client


def __getattr__(name: str) -> Any:
    if name in ("GraphClient", "get_graph_client"):
        from . import client

        return getattr(client, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "MEMBERS_PER_REQUEST",
    "Community",
    "CreatedOperation",
    "ErrorKind",
    "GraphClient",
    "GraphError",
    "MemberAddResult",
    "OperationState",
    "OperationStatus",
    "get_graph_client",
    "map_status",
    "parse_retry_after",
]
