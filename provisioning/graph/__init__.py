"""Microsoft Graph client for Viva Engage communities (no Azure Functions imports)."""

from .client import MEMBERS_PER_REQUEST, GraphClient, get_graph_client
from .errors import ErrorKind, GraphError, parse_retry_after
from .models import Community, CreatedOperation, MemberAddResult
from .operation import OperationState, OperationStatus, map_status

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
