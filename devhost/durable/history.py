"""DTFx history events and the orchestration-trigger JSON, in the shapes the Durable extension sends.

Events are plain dicts as Newtonsoft serializes DTFx's `HistoryEvent` classes: PascalCase keys,
`EventType` as an int, DateTimes with 7 fractional digits and `Z`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

Event = dict[str, Any]

# What the extension sends for the Azure Storage provider (AzureStorageDurabilityProvider): timers up to
# 6 days, longer ones split into 3-day intervals.
MAXIMUM_SHORT_TIMER_DURATION = "6.00:00:00"
LONG_RUNNING_TIMER_INTERVAL = "3.00:00:00"
DEFAULT_HTTP_ASYNC_SLEEP_MILLISECONDS = 30000


class EventType(IntEnum):
    EXECUTION_STARTED = 0
    EXECUTION_COMPLETED = 1
    EXECUTION_FAILED = 2
    EXECUTION_TERMINATED = 3
    TASK_SCHEDULED = 4
    TASK_COMPLETED = 5
    TASK_FAILED = 6
    SUB_ORCHESTRATION_INSTANCE_CREATED = 7
    SUB_ORCHESTRATION_INSTANCE_COMPLETED = 8
    SUB_ORCHESTRATION_INSTANCE_FAILED = 9
    TIMER_CREATED = 10
    TIMER_FIRED = 11
    ORCHESTRATOR_STARTED = 12
    ORCHESTRATOR_COMPLETED = 13
    EVENT_SENT = 14
    EVENT_RAISED = 15
    CONTINUE_AS_NEW = 16
    GENERIC_EVENT = 17
    HISTORY_STATE = 18
    EXECUTION_SUSPENDED = 19
    EXECUTION_RESUMED = 20


# Names the extension's status API uses for `historyEvents[].EventType`.
EVENT_TYPE_NAMES = {
    member.value: "".join(part.capitalize() for part in member.name.split("_")) for member in EventType
}


def format_timestamp(moment: datetime) -> str:
    """.NET round-trip UTC format: 2024-01-01T00:00:32.0000000Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def format_status_time(moment: datetime) -> str:
    """The status API's `yyyy-MM-ddTHH:mm:ssZ`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text: str) -> datetime:
    """Parse an ISO-8601 UTC time with up to 7 fractional digits (DTFx) or 6 (the Python SDK's `fireAt`)."""
    text = text.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    head, _, offset = text.partition("+")
    if "." in head:
        seconds, _, fraction = head.partition(".")
        head = f"{seconds}.{fraction[:6].ljust(6, '0')}"
    parsed = datetime.fromisoformat(f"{head}+{offset}" if offset else head)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def new_event(event_type: EventType, timestamp: datetime, *, event_id: int = -1, **fields: Any) -> Event:
    return {
        "EventType": int(event_type),
        "EventId": event_id,
        "IsPlayed": False,
        "Timestamp": format_timestamp(timestamp),
        **fields,
    }


def execution_started(
    timestamp: datetime,
    *,
    instance_id: str,
    execution_id: str,
    name: str,
    input_json: str | None,
    parent: dict[str, Any] | None,
) -> Event:
    return new_event(
        EventType.EXECUTION_STARTED,
        timestamp,
        OrchestrationInstance={"InstanceId": instance_id, "ExecutionId": execution_id},
        ParentInstance=parent,
        Name=name,
        Version="",
        Input=input_json,
        Tags=None,
        Correlation=None,
        ScheduledStartTime=None,
        Generation=0,
    )


def orchestration_context_json(
    *, instance_id: str, history: list[Event], input_json: str | None, parent_instance_id: str | None
) -> str:
    """The orchestration-trigger JSON (`OrchestrationContextToString` of the extension's
    OrchestrationTriggerAttributeBindingProvider).

    `input` is `JToken.Parse(ExecutionStarted.Input)`: for a Python-started instance a JSON string holding the
    input's JSON text.
    """
    execution_started_event = next(e for e in history if e["EventType"] == EventType.EXECUTION_STARTED)
    context = {
        "history": history,
        "input": None if input_json is None else json.loads(input_json),
        "instanceId": instance_id,
        "isReplaying": execution_started_event["IsPlayed"],
        "parentInstanceId": parent_instance_id,
        "upperSchemaVersion": 1,
        "upperSchemaVersionNew": 2,
        "longRunningTimerIntervalDuration": LONG_RUNNING_TIMER_INTERVAL,
        "maximumShortTimerDuration": MAXIMUM_SHORT_TIMER_DURATION,
        "defaultHttpAsyncRequestSleepTimeMillseconds": DEFAULT_HTTP_ASYNC_SLEEP_MILLISECONDS,
    }
    return json.dumps(context)
