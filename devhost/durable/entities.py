"""Durable entities: the messages and JSON the Durable extension exchanges for out-of-proc (Python) entities.

An entity is a DTFx instance `@<name lower-cased>@<key>` whose inbox holds `EventRaised` messages named "op",
each a serialized `RequestMessage`; a call is answered with an `EventRaised` named after the request id,
holding a serialized `ResponseMessage`. Paths are the extension's (`src/WebJobs.Extensions.DurableTask/`).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from devhost.durable.history import format_timestamp

# EntityMessageEventNames.RequestMessageEventName.
REQUEST_EVENT_NAME = "op"
# The orchestration and entity shims keep DTFx's default JsonDataConverter (TypeNameHandling.Objects) unless
# the app customizes serialization (TaskOrchestrationShim.cs L61-64, TaskEntityShim.cs L215-218), so the
# request and response objects they send carry a `$type`; the client sends a JToken, which carries none.
_ASSEMBLY = "Microsoft.Azure.WebJobs.Extensions.DurableTask"
_REQUEST_TYPE = f"{_ASSEMBLY}.RequestMessage, {_ASSEMBLY}"
_RESPONSE_TYPE = f"{_ASSEMBLY}.ResponseMessage, {_ASSEMBLY}"
# GuidManager.UrlNamespaceValue: DurableOrchestrationContext.NewGuid names each request with it.
_REQUEST_ID_NAMESPACE = uuid.UUID("9e952959-5e33-4daf-827f-2fa12937b875")
# MessageSorter.LabelOutgoingMessage: EntityMessageReorderWindowInMinutes (30) and its collection interval.
_REORDER_WINDOW_TICKS = 30 * 60 * 10_000_000
_MIN_COLLECTION_INTERVAL_TICKS = 10 * 10_000_000
_DOTNET_EPOCH = datetime(1, 1, 1, tzinfo=UTC)


class InvalidEntityIdError(ValueError):
    pass


@dataclass(frozen=True)
class EntityId:
    """`EntityId`: the name is lower-cased, the key kept as is."""

    name: str
    key: str

    @classmethod
    def of(cls, name: str, key: str) -> EntityId:
        if not name:
            raise InvalidEntityIdError("Invalid entity id: entity name must not be a null or empty string.")
        return cls(name.lower(), key)

    @classmethod
    def from_scheduler_id(cls, scheduler_id: str) -> EntityId:
        name, _, key = scheduler_id[1:].partition("@")
        return cls.of(name, key)

    @property
    def scheduler_id(self) -> str:
        return f"@{self.name}@{self.key}"


def is_entity_instance(instance_id: str) -> bool:
    """Orchestration ids cannot start with '@', entity instance ids always do."""
    return instance_id.startswith("@")


def request_id(instance_id: str, current_time: datetime, counter: int) -> str:
    """`DurableOrchestrationContext.NewGuid`: a name-based (v5) UUID of `<instance>_<time "o">_<counter>`,
    replayable because the time is the orchestration's `CurrentUtcDateTime`."""
    return str(uuid.uuid5(_REQUEST_ID_NAMESPACE, f"{instance_id}_{format_timestamp(current_time)}_{counter}"))


class SendLabels:
    """`MessageSorter.LabelOutgoingMessage` of one orchestrator replay: a per-destination monotonic
    `Timestamp` (.NET ticks) and the previous one as `Predecessor`; entries older than the reorder window
    are forgotten."""

    def __init__(self) -> None:
        self._last_sent: dict[str, int] = {}
        self._send_horizon = 0

    def label(self, destination: str, now: datetime) -> tuple[int, int | None]:
        ticks = _ticks(now)
        if self._send_horizon + _REORDER_WINDOW_TICKS + _MIN_COLLECTION_INTERVAL_TICKS < ticks:
            self._send_horizon = ticks - _REORDER_WINDOW_TICKS
            self._last_sent = {d: t for d, t in self._last_sent.items() if t >= self._send_horizon}
        key = destination.lower()  # the sorter's dictionary ignores case
        predecessor = self._last_sent.get(key)
        timestamp = ticks if predecessor is None or ticks > predecessor else predecessor + 1
        self._last_sent[key] = timestamp
        return timestamp, predecessor


def request_json(
    *,
    operation: str,
    input_json: str | None,
    request_guid: str,
    signal: bool,
    parent: tuple[str, str] | None = None,
    labels: tuple[int, int | None] | None = None,
) -> str:
    """A `RequestMessage` as Newtonsoft writes it: declared order, defaults left out (`signal`, `input`,
    `parent`, `parentExecution`), the unattributed `Timestamp`/`Predecessor` DateTimes always present
    (`DateTime.MinValue` when not labelled). `parent` is the calling orchestration (instance, execution):
    its messages are typed and labelled."""
    message: dict[str, Any] = {"$type": _REQUEST_TYPE} if parent is not None else {}
    message["op"] = operation
    if signal:
        message["signal"] = True
    if input_json is not None:
        message["input"] = input_json
    message["id"] = request_guid
    if parent is not None:
        message["parent"], message["parentExecution"] = parent
    timestamp, predecessor = labels or (None, None)
    message["Timestamp"] = _newtonsoft_datetime(timestamp)
    message["Predecessor"] = _newtonsoft_datetime(predecessor)
    return _compact(message)


def response_json(result: str | None, *, is_error: bool) -> str:
    """The `ResponseMessage` the entity shim sends back for a call (`ExecuteOutOfProcBatch`, L670-675):
    `exceptionType` is "Error" for a failed operation, left out otherwise."""
    message: dict[str, Any] = {"$type": _RESPONSE_TYPE, "result": result}
    if is_error:
        message["exceptionType"] = "Error"
    return _compact(message)


@dataclass
class OperationRequest:
    """One queued operation, as the entity scheduler reads it from an "op" message."""

    id: str
    operation: str
    input: str | None
    signal: bool
    parent_instance_id: str | None
    parent_execution_id: str | None

    @classmethod
    def parse(cls, text: str) -> OperationRequest:
        message = json.loads(text)
        return cls(
            id=message["id"],
            operation=message.get("op") or "",
            input=message.get("input"),
            signal=bool(message.get("signal")),
            parent_instance_id=message.get("parent"),
            parent_execution_id=message.get("parentExecution"),
        )


def entity_context_json(
    entity: EntityId, exists: bool, state: str | None, batch: list[OperationRequest]
) -> str:
    """The entity-trigger JSON (`EntityTriggerAttributeBindingProvider.EntityContextToString`, L181-203):
    `JObject.ToString()`, i.e. indented by two spaces; `state` and each `input` are JSON text in a string."""
    context = {
        "self": {"name": entity.name, "key": entity.key},
        "exists": exists,
        "state": state,
        "batch": [
            {"name": request.operation, "input": request.input, "isSignal": request.signal}
            for request in batch
        ],
    }
    return json.dumps(context, indent=2, ensure_ascii=False)


@dataclass
class OperationResult:
    is_error: bool
    result: str | None


@dataclass
class BatchResult:
    """`TaskEntityShim.OutOfProcResult`: the state after the whole batch and one result per operation."""

    exists: bool
    state: str | None
    results: list[OperationResult]

    @classmethod
    def parse(cls, text: str, batch_size: int) -> BatchResult:
        answer = json.loads(text)
        results = [OperationResult(bool(r.get("isError")), r.get("result")) for r in answer["results"]]
        if len(results) < batch_size:
            # The shim indexes the results by batch position: a short list is an internal error.
            raise ValueError(f"the entity answered {len(results)} results for a batch of {batch_size}")
        return cls(bool(answer.get("entityExists")), answer.get("entityState"), results[:batch_size])


def _ticks(moment: datetime) -> int:
    return (moment - _DOTNET_EPOCH) // timedelta(microseconds=1) * 10


def _newtonsoft_datetime(ticks: int | None) -> str:
    """Newtonsoft's ISO format: trailing zeros of the 7-digit fraction dropped; a UTC DateTime ends with
    `Z`, `DateTime.MinValue` (unspecified kind) with nothing."""
    if ticks is None:
        return "0001-01-01T00:00:00"
    seconds, fraction = divmod(ticks, 10_000_000)
    text = (_DOTNET_EPOCH + timedelta(seconds=seconds)).replace(tzinfo=None).isoformat()
    digits = f"{fraction:07d}".rstrip("0")
    return f"{text}.{digits}Z" if digits else f"{text}Z"


def _compact(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
