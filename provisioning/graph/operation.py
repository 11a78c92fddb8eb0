"""The state of an ``engagementAsyncOperation``, read from its ``status`` string."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class OperationState(StrEnum):
    IN_PROGRESS = "inProgress"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


# Lower-cased status strings. Graph documents notStarted/running/succeeded/failed/skipped; an early beta enum
# had inProgress and invalid, and real clients have seen "inprogress". skipped means nothing was created.
_STATES: dict[str, OperationState] = {
    "notstarted": OperationState.IN_PROGRESS,
    "running": OperationState.IN_PROGRESS,
    "inprogress": OperationState.IN_PROGRESS,
    "succeeded": OperationState.SUCCEEDED,
    "failed": OperationState.FAILED,
    "skipped": OperationState.FAILED,
    "invalid": OperationState.FAILED,
}


def map_status(raw_status: str) -> tuple[OperationState, bool]:
    """(state, is_unknown) for a status string, case-insensitively.

    An unknown value (``unknownFutureValue`` or anything new) keeps the operation in progress: declaring it
    failed could abandon a community that is being created. The caller's overall timeout bounds the wait.
    """
    state = _STATES.get(raw_status.strip().lower())
    if state is None:
        return OperationState.IN_PROGRESS, True
    return state, False


@dataclass(frozen=True)
class OperationStatus:
    state: OperationState
    raw_status: str
    is_unknown: bool
    status_detail: str | None
    resource_id: str | None
    resource_location: str | None
    request_id: str | None
    # Graph's long-running-operation pattern may ask for a longer wait before the next poll.
    retry_after_seconds: float | None = None

    @classmethod
    def from_json(
        cls,
        document: Mapping[str, Any],
        *,
        request_id: str | None,
        retry_after_seconds: float | None = None,
    ) -> OperationStatus:
        """Read an operation body; ``status`` is a plain string, never a closed enum."""
        status = document.get("status")
        raw_status = status if isinstance(status, str) else ("" if status is None else str(status))
        state, is_unknown = map_status(raw_status)
        return cls(
            state=state,
            raw_status=raw_status,
            is_unknown=is_unknown,
            status_detail=_optional_string(document.get("statusDetail")),
            resource_id=_optional_string(document.get("resourceId")),
            resource_location=_optional_string(document.get("resourceLocation")),
            request_id=request_id,
            retry_after_seconds=retry_after_seconds,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON (camelCase) for activity results."""
        return {
            "state": self.state.value,
            "rawStatus": self.raw_status,
            "isUnknown": self.is_unknown,
            "statusDetail": self.status_detail,
            "resourceId": self.resource_id,
            "resourceLocation": self.resource_location,
            "requestId": self.request_id,
            "retryAfterSeconds": self.retry_after_seconds,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OperationStatus:
        return cls(
            state=OperationState(data["state"]),
            raw_status=data["rawStatus"],
            is_unknown=data["isUnknown"],
            status_detail=data.get("statusDetail"),
            resource_id=data.get("resourceId"),
            resource_location=data.get("resourceLocation"),
            request_id=data.get("requestId"),
            retry_after_seconds=data.get("retryAfterSeconds"),
        )


def _optional_string(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)
