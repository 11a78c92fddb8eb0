"""Interpret the actions an out-of-proc orchestrator returned, as the extension and DTFx do.

`OutOfProcOrchestrationShim.ProcessAsyncActionsV2` re-executes every returned action against the .NET
context, in order, awaiting each one (failures are swallowed: the Python SDK handles them), so replay stops
at the first action still pending. Activities, timers, sub-orchestrations and entity messages (DTFx
`SendEvent`) take the next sequence id;
`WhenAll`/`WhenAny` invoke all their children first. `*WithRetry` actions run DTFx's `RetryInterceptor`
loop, which creates a timer after every failed attempt (after the last one a timer that fires immediately,
"for back-compat"). DTFx then checks every scheduling event in history against the replayed actions
(`TaskOrchestrationContext.Handle*CreatedEvent`).

The shim's awaits advance as DTFx processes the history in order, so the replay walks the history too: that
position decides which pending wait an `EventRaised` completes (the newest of that name) and which events
arrive after `ContinueAsNew` (carried over to the next execution).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import IntEnum
from typing import Any

from devhost.durable.entities import (
    REQUEST_EVENT_NAME,
    EntityId,
    SendLabels,
    request_id,
    request_json,
)
from devhost.durable.history import Event, EventType, format_timestamp, new_event, parse_timestamp

ORCHESTRATOR_FAILED = "Orchestrator function '{name}' failed: {error}"
NON_DETERMINISTIC_PREFIX = "Non-Deterministic workflow detected: "
_CODE_CHANGED = "Was a change made to the orchestrator code after this instance had already started running?"


class ActionType(IntEnum):
    CALL_ACTIVITY = 0
    CALL_ACTIVITY_WITH_RETRY = 1
    CALL_SUB_ORCHESTRATOR = 2
    CALL_SUB_ORCHESTRATOR_WITH_RETRY = 3
    CONTINUE_AS_NEW = 4
    CREATE_TIMER = 5
    WAIT_FOR_EXTERNAL_EVENT = 6
    CALL_ENTITY = 7
    CALL_HTTP = 8
    SIGNAL_ENTITY = 9
    SCHEDULED_SIGNAL_ENTITY = 10
    WHEN_ANY = 11
    WHEN_ALL = 12


_SCHEDULING_EVENTS = {
    EventType.TASK_SCHEDULED: "activity",
    EventType.TIMER_CREATED: "timer",
    EventType.SUB_ORCHESTRATION_INSTANCE_CREATED: "suborchestration",
    EventType.EVENT_SENT: "eventsent",
}
# DTFx action class names, as they appear in its non-determinism messages.
_DTFX_ACTION_CLASS = {
    "activity": "ScheduleTaskOrchestratorAction",
    "timer": "CreateTimerOrchestratorAction",
    "suborchestration": "CreateSubOrchestrationAction",
    "eventsent": "SendEventOrchestratorAction",
}
# Actions the V1 shim does not await (they complete at once).
_FIRE_AND_FORGET = (ActionType.CONTINUE_AS_NEW, ActionType.SIGNAL_ENTITY)


class OrchestrationFailedError(Exception):
    """The episode fails the orchestration with this output text (DTFx ExecutionCompleted with Failed)."""


class _StopReplayError(Exception):
    """The awaited task is not complete yet: ProcessAsyncActionsV2 stops here."""


@dataclass
class ScheduledActivity:
    task_id: int
    name: str
    input_json: str


@dataclass
class ScheduledTimer:
    timer_id: int
    fire_at: datetime


@dataclass
class StartedSubOrchestration:
    task_id: int
    name: str
    instance_id: str
    input_json: str | None


@dataclass
class EntityMessage:
    """An "op" message to an entity instance: the `RequestMessage` JSON of a call or signal."""

    instance_id: str
    request_json: str


@dataclass
class Decisions:
    """What one episode asks the engine to do."""

    new_events: list[Event] = field(default_factory=list)
    activities: list[ScheduledActivity] = field(default_factory=list)
    timers: list[ScheduledTimer] = field(default_factory=list)
    sub_orchestrations: list[StartedSubOrchestration] = field(default_factory=list)
    entity_messages: list[EntityMessage] = field(default_factory=list)
    continue_as_new_input: str | None = None
    continued_as_new: bool = False
    # EventRaised processed after ContinueAsNew: DTFx hands them to the next execution.
    carried_over: list[Event] = field(default_factory=list)
    has_open_tasks: bool = False


@dataclass
class _Produced:
    kind: str
    name: str


@dataclass
class RetryOptions:
    """DTFx RetryOptions as the extension's RetryOptionsConverter reads them (Python sends the first two)."""

    first_retry_interval: timedelta
    max_number_of_attempts: int
    backoff_coefficient: float = 1.0
    max_retry_interval: timedelta | None = None
    retry_timeout: timedelta | None = None

    @classmethod
    def from_action(cls, options: dict[str, Any]) -> RetryOptions:
        def milliseconds(key: str) -> timedelta | None:
            value = options.get(key)
            return None if value is None else timedelta(milliseconds=value)

        first = milliseconds("firstRetryIntervalInMilliseconds")
        if first is None or first <= timedelta(0):
            raise OrchestrationFailedError(
                "Invalid retry options: firstRetryIntervalInMilliseconds must be greater than 0"
            )
        return cls(
            first_retry_interval=first,
            max_number_of_attempts=int(options.get("maxNumberOfAttempts", 1)),
            backoff_coefficient=float(options.get("backoffCoefficient", 1.0)),
            max_retry_interval=milliseconds("maxRetryIntervalInMilliseconds"),
            retry_timeout=milliseconds("retryTimeoutInMilliseconds"),
        )

    def next_delay(self, attempt: int, first_attempt: datetime, now: datetime) -> timedelta:
        """RetryInterceptor.ComputeNextDelay."""
        if self.retry_timeout is not None and now >= first_attempt + self.retry_timeout:
            return timedelta(0)
        delay = self.first_retry_interval * (self.backoff_coefficient**attempt)
        if self.max_retry_interval is not None:
            delay = min(delay, self.max_retry_interval)
        return delay


Condition = Callable[[], bool]
# A chain of awaits of the .NET shim: yields the condition it waits on, resumed once that condition holds.
Steps = Generator[Condition, None, None]


@dataclass
class _Waiter:
    """A pending `WaitForExternalEvent` of the extension's context."""

    done: bool = False


class _Process:
    """One chain of awaits running in the shim: the action loop, a WhenAll/WhenAny child, a retry loop."""

    def __init__(self, steps: Steps) -> None:
        self.steps = steps
        self.waiting_on: Condition | None = None
        self.done = False

    def advance(self) -> bool:
        """Run until a condition does not hold yet or the chain ends; True if anything ran."""
        progressed = False
        while not self.done and (self.waiting_on is None or self.waiting_on()):
            progressed = True
            try:
                self.waiting_on = next(self.steps)
            except StopIteration:
                self.done = True
        return progressed


def _all_done(processes: list[_Process]) -> Condition:
    return lambda: all(process.done for process in processes)


def _any_done(processes: list[_Process]) -> Condition:
    return lambda: any(process.done for process in processes)


class _Replayer:
    """DTFx's `TaskOrchestrationExecutor` over the history, with the shim's replay of the returned actions.

    Events are processed in order; an await of the shim resumes as soon as the event that completes it is
    processed (DTFx runs continuations inline: `SynchronousTaskScheduler`), so `cursor` is the history
    position the shim has reached. That position decides which pending wait an `EventRaised` answers and
    which events arrive after `ContinueAsNew`.
    """

    def __init__(
        self,
        history: list[Event],
        now: datetime,
        known_activities: set[str],
        known_entities: set[str],
        instance_id: str,
    ):
        self.history = history
        self.now = now
        self.known_activities = known_activities
        self.known_entities = known_entities
        self.instance_id = instance_id
        self.scheduling_events: dict[int, Event] = {}
        self.outcomes: dict[int, Event] = {}
        # Task or timer id -> history position of its first completion (TaskCompleted, TimerFired, ...).
        self.completed_at: dict[int, int] = {}
        self.execution_id = ""
        for position, event in enumerate(history):
            event_type = event["EventType"]
            if event_type == EventType.EXECUTION_STARTED:
                self.execution_id = event["OrchestrationInstance"]["ExecutionId"]
            elif event_type in _SCHEDULING_EVENTS:
                self.scheduling_events[event["EventId"]] = event
            elif event_type in (
                EventType.TASK_COMPLETED,
                EventType.TASK_FAILED,
                EventType.SUB_ORCHESTRATION_INSTANCE_COMPLETED,
                EventType.SUB_ORCHESTRATION_INSTANCE_FAILED,
            ):
                self.outcomes.setdefault(event["TaskScheduledId"], event)
                self.completed_at.setdefault(event["TaskScheduledId"], position)
            elif event_type == EventType.TIMER_FIRED:
                self.completed_at.setdefault(event["TimerId"], position)
        self.cursor = -1
        # CurrentUtcDateTime: the timestamp of the latest OrchestratorStarted processed.
        self.current_time = now
        self.next_id = 0
        # The extension's context, new for every replay: its NewGuid counter and its message labels.
        self.guid_counter = 0
        self.send_labels = SendLabels()
        self.produced: dict[int, _Produced] = {}
        # DTFx's openTasks: activities, sub-orchestrations and timers the shim did not cancel.
        self.open_task_ids: list[int] = []
        # Per event name (the extension compares names ignoring case): pending waits, newest last, and the
        # number of events that arrived while none was pending.
        self.waiters: dict[str, list[_Waiter]] = {}
        self.buffered: dict[str, int] = {}
        self.processes: list[_Process] = []
        self.continued_at: int | None = None
        self.decisions = Decisions()

    # -- DTFx's event loop ---------------------------------------------------------------------------------

    def play(self, main: Steps) -> None:
        for position, event in enumerate(self.history):
            self.cursor = position
            event_type = event["EventType"]
            if event_type == EventType.ORCHESTRATOR_STARTED:
                self.current_time = parse_timestamp(event["Timestamp"])
            elif event_type == EventType.EXECUTION_STARTED:
                self._spawn(main)  # the orchestrator function, hence the shim's replay, runs here
            elif event_type == EventType.EVENT_RAISED:
                self._raise_event(event)
            self._settle()

    def _raise_event(self, event: Event) -> None:
        """`HandleEventRaisedEvent`: once ContinueAsNew was called, the event is kept for the next execution
        (`AddEventToNextIteration`); before, the extension's context hands it to the newest pending wait of
        that name (its waits are a stack) or buffers it for the next wait (a queue)."""
        if self.continued_at is not None:
            self.decisions.carried_over.append(event)
            return
        name = str(event.get("Name", "")).lower()
        waiters = self.waiters.get(name)
        if waiters:
            waiters.pop().done = True
        else:
            self.buffered[name] = self.buffered.get(name, 0) + 1

    def _spawn(self, steps: Steps) -> _Process:
        process = _Process(steps)
        self.processes.append(process)
        process.advance()
        return process

    def _settle(self) -> None:
        """Resume every chain whose condition now holds, until none can go further."""
        progressed = True
        while progressed:
            progressed = False
            for process in list(self.processes):
                progressed = process.advance() or progressed
            self.processes = [process for process in self.processes if not process.done]

    def has_open_tasks(self) -> bool:
        return any(task_id not in self.completed_at for task_id in self.open_task_ids)

    # -- the shim's action loop and the .NET context calls -------------------------------------------------

    def main_v2(self, actions: list[dict[str, Any]]) -> Steps:
        """`ProcessAsyncActionsV2`: each action invoked and awaited in turn."""
        for action in actions:
            yield from self._steps(action)

    def main_v1(self, action_sets: list[list[dict[str, Any]]]) -> Steps:
        """`ProcessAsyncActionsV1`: per yield, invoke all its actions, then await any of their tasks."""
        for action_set in action_sets:
            started = [(action, self._spawn(self._steps(action))) for action in action_set]
            awaited = [process for action, process in started if action["actionType"] not in _FIRE_AND_FORGET]
            if awaited:
                yield _any_done(awaited)

    def _steps(self, action: dict[str, Any]) -> Steps:
        """`InvokeAPIFromAction` and the await of its task (a failed task counts as done)."""
        action_type = ActionType(action["actionType"])
        if action_type == ActionType.CALL_ACTIVITY:
            yield self._completed(self._schedule_activity(action))
        elif action_type == ActionType.CALL_SUB_ORCHESTRATOR:
            yield self._completed(self._start_sub_orchestration(action))
        elif action_type in (
            ActionType.CALL_ACTIVITY_WITH_RETRY,
            ActionType.CALL_SUB_ORCHESTRATOR_WITH_RETRY,
        ):
            yield from self._retry_steps(action, action_type)
        elif action_type == ActionType.CREATE_TIMER:
            yield from self._timer_steps(
                parse_timestamp(action["fireAt"]), canceled=bool(action.get("isCanceled"))
            )
        elif action_type == ActionType.WAIT_FOR_EXTERNAL_EVENT:
            yield self._wait_for_event(action["externalEventName"])
        elif action_type == ActionType.CALL_ENTITY:
            # WaitForEntityResponse: an external-event wait named after the request id.
            yield self._wait_for_event(self._send_to_entity(action, signal=False))
        elif action_type == ActionType.SIGNAL_ENTITY:
            self._send_to_entity(action, signal=True)
        elif action_type == ActionType.CONTINUE_AS_NEW:
            self.decisions.continued_as_new = True
            self.decisions.continue_as_new_input = json.dumps(action.get("input"))
            self.continued_at = self.cursor
        elif action_type in (ActionType.WHEN_ALL, ActionType.WHEN_ANY):
            children = [self._spawn(self._steps(child)) for child in action.get("compoundActions") or []]
            yield _all_done(children) if action_type == ActionType.WHEN_ALL else _any_done(children)
        else:
            raise OrchestrationFailedError(
                f"The dev host does not support {action_type.name} actions (durable HTTP and scheduled "
                "entity signals are not emulated)."
            )

    def _completed(self, task_id: int) -> Condition:
        return lambda: self.completed_at.get(task_id, len(self.history)) <= self.cursor

    def _allocate(self, kind: str, name: str) -> int:
        task_id = self.next_id
        self.next_id += 1
        self.produced[task_id] = _Produced(kind, name)
        return task_id

    def _already_scheduled(self, task_id: int, kind: str, name: str) -> bool:
        """True if history has this task; a mismatch stops replay here and is reported by `check_history`."""
        event = self.scheduling_events.get(task_id)
        if event is None:
            return False
        if _SCHEDULING_EVENTS[EventType(event["EventType"])] != kind or (
            kind != "timer" and str(event.get("Name", "")).lower() != name.lower()
        ):
            raise _StopReplayError
        return True

    def _schedule_activity(self, action: dict[str, Any]) -> int:
        name = action["functionName"]
        input_json = action.get("input")
        task_id = self._allocate("activity", name)
        if not self._already_scheduled(task_id, "activity", name):
            if name not in self.known_activities:
                raise OrchestrationFailedError(
                    f"The function '{name}' doesn't exist, is disabled, or is not an activity function."
                )
            self.decisions.new_events.append(
                new_event(
                    EventType.TASK_SCHEDULED,
                    self.now,
                    event_id=task_id,
                    Name=name,
                    Version="",
                    Input=json.dumps([input_json]),
                )
            )
            self.decisions.activities.append(ScheduledActivity(task_id, name, _as_json_text(input_json)))
        self.open_task_ids.append(task_id)
        return task_id

    def _start_sub_orchestration(self, action: dict[str, Any]) -> int:
        name = action["functionName"]
        task_id = self._allocate("suborchestration", name)
        if not self._already_scheduled(task_id, "suborchestration", name):
            # DTFx CreateSubOrchestrationInstanceCore: "<ExecutionId>:<sequence id>" when none is given.
            child_id = action.get("instanceId") or f"{self.execution_id}:{task_id}"
            input_text = action.get("input")
            input_json = None if input_text is None else json.dumps(input_text)
            self.decisions.new_events.append(
                new_event(
                    EventType.SUB_ORCHESTRATION_INSTANCE_CREATED,
                    self.now,
                    event_id=task_id,
                    Name=name,
                    Version="",
                    InstanceId=child_id,
                    Input=input_json,
                )
            )
            self.decisions.sub_orchestrations.append(
                StartedSubOrchestration(task_id, name, child_id, input_json)
            )
        self.open_task_ids.append(task_id)
        return task_id

    def _send_to_entity(self, action: dict[str, Any], *, signal: bool) -> str:
        """`CallDurableTaskFunctionAsync` for an entity: a RequestMessage with a replayable id, sent with
        DTFx `SendEvent` (an `EventSent` taking the next sequence id). Returns the request id."""
        entity = EntityId.from_scheduler_id(action["instanceId"])
        if entity.name not in self.known_entities:
            # ThrowIfFunctionDoesNotExist. For a signal it escapes the shim and fails the orchestration; for a
            # call it faults the task, which the shim swallows (the instance would wait forever): the dev
            # host fails it in both cases.
            raise OrchestrationFailedError(
                f"The function '{entity.name}' doesn't exist, is disabled, or is not an entity function."
            )
        guid = request_id(self.instance_id, self.current_time, self.guid_counter)
        self.guid_counter += 1
        labels = self.send_labels.label(entity.scheduler_id, self.current_time)
        task_id = self._allocate("eventsent", REQUEST_EVENT_NAME)
        if not self._already_scheduled(task_id, "eventsent", REQUEST_EVENT_NAME):
            message = request_json(
                operation=action["operation"],
                input_json=_request_input(action.get("input")),
                request_guid=guid,
                signal=signal,
                parent=(self.instance_id, self.execution_id),
                labels=labels,
            )
            self.decisions.new_events.append(
                new_event(
                    EventType.EVENT_SENT,
                    self.now,
                    event_id=task_id,
                    InstanceId=entity.scheduler_id,
                    Name=REQUEST_EVENT_NAME,
                    Input=message,
                )
            )
            self.decisions.entity_messages.append(EntityMessage(entity.scheduler_id, message))
        return guid

    def _timer_steps(self, fire_at: datetime, *, canceled: bool = False) -> Steps:
        timer_id = self._allocate("timer", "")
        if not self._already_scheduled(timer_id, "timer", ""):
            self.decisions.new_events.append(
                new_event(
                    EventType.TIMER_CREATED, self.now, event_id=timer_id, FireAt=format_timestamp(fire_at)
                )
            )
            # Created even when the shim cancels it at once (CreateTimer, then the token's Cancel): its
            # TimerFired is still delivered at FireAt.
            self.decisions.timers.append(ScheduledTimer(timer_id, fire_at))
        if canceled:
            return  # a canceled task is done, and DTFx no longer counts the timer as open
        self.open_task_ids.append(timer_id)
        yield self._completed(timer_id)

    def _retry_steps(self, action: dict[str, Any], action_type: ActionType) -> Steps:
        """DTFx `RetryInterceptor.Invoke`."""
        options = RetryOptions.from_action(action.get("retryOptions") or {})
        first_attempt = self.current_time
        for attempt in range(options.max_number_of_attempts):
            if action_type == ActionType.CALL_ACTIVITY_WITH_RETRY:
                task_id = self._schedule_activity(action)
            else:
                task_id = self._start_sub_orchestration(action)
            yield self._completed(task_id)
            if self.outcomes[task_id]["EventType"] in (
                EventType.TASK_COMPLETED,
                EventType.SUB_ORCHESTRATION_INSTANCE_COMPLETED,
            ):
                return
            if attempt + 1 == options.max_number_of_attempts:
                # "Dummy timer for back-compat": fires immediately.
                yield from self._timer_steps(self.current_time)
                return
            delay = options.next_delay(attempt, first_attempt, self.current_time)
            if delay <= timedelta(0):
                return
            yield from self._timer_steps(self.current_time + delay)

    def _wait_for_event(self, name: str) -> Condition:
        """`WaitForExternalEvent`: takes the oldest buffered event of that name, else waits on top of the
        name's stack of pending waits."""
        key = name.lower()
        waiter = _Waiter()
        if self.buffered.get(key):
            self.buffered[key] -= 1
            waiter.done = True
        else:
            self.waiters.setdefault(key, []).append(waiter)
        return lambda: waiter.done

    # -- DTFx's checks of history against the replayed actions ---------------------------------------------

    def check_history(self) -> None:
        for task_id, event in sorted(self.scheduling_events.items()):
            kind = _SCHEDULING_EVENTS[EventType(event["EventType"])]
            produced = self.produced.get(task_id)
            message = _non_determinism_message(task_id, event, kind, produced)
            if message:
                raise OrchestrationFailedError(NON_DETERMINISTIC_PREFIX + message)


def _non_determinism_message(task_id: int, event: Event, kind: str, produced: _Produced | None) -> str | None:
    """DTFx's message for a history scheduling event the replay does not match, or None if it matches."""
    name = event.get("Name")
    previous = "A previous execution of this orchestration scheduled"
    if kind == "activity":
        if produced is None:
            return (
                f"{previous} an activity task with sequence ID {task_id} and name '{name}' (version ''), "
                f"but the current replay execution hasn't (yet?) scheduled this task. {_CODE_CHANGED}"
            )
        if produced.kind != kind:
            return (
                f"{previous} an activity task with sequence number {task_id} named '{name}', but the current "
                f"orchestration replay instead produced a {_DTFX_ACTION_CLASS[produced.kind]} action with "
                f"this sequence number. {_CODE_CHANGED}"
            )
        if produced.name.lower() != str(name).lower():
            return (
                f"{previous} an activity task with sequence number {task_id} named '{name}', but the current "
                f"orchestration replay instead scheduled an activity task named '{produced.name}' with this "
                f"sequence number.  {_CODE_CHANGED}"
            )
        return None
    if kind == "eventsent":
        target = f"name '{name}', instance ID '{event.get('InstanceId')}', but the current"
        sent = f"{previous} a send event task with sequence ID {task_id}, type 'EventSent'"
        if produced is None:
            return f"{sent} {target} replay execution hasn't (yet?) scheduled this task. {_CODE_CHANGED}"
        if produced.kind != kind:
            action_class = _DTFX_ACTION_CLASS[produced.kind]
            return (
                f"{sent}, {target} orchestration replay instead scheduled a {action_class} task at this "
                f"sequence number. {_CODE_CHANGED}"
            )
        return None
    if kind == "timer":
        if produced is None:
            return (
                f"{previous} a timer task with sequence number {task_id} but the current replay execution "
                f"hasn't (yet?) scheduled this task. {_CODE_CHANGED}"
            )
        if produced.kind != kind:
            return (
                f"{previous} a timer task with sequence number {task_id} named but the current orchestration "
                f"replay instead produced a {_DTFX_ACTION_CLASS[produced.kind]} action with this sequence "
                f"number. {_CODE_CHANGED}"
            )
        return None
    sub_orchestration = (
        f"{previous} a sub-orchestration task with sequence ID {task_id} and name '{name}' (version '', "
        f"instance ID '{event.get('InstanceId')}'), but the current"
    )
    if produced is None:
        return f"{sub_orchestration} replay execution hasn't (yet?) scheduled this task. {_CODE_CHANGED}"
    if produced.kind != kind:
        return (
            f"{sub_orchestration} orchestration replay instead produced a "
            f"{_DTFX_ACTION_CLASS[produced.kind]} action at this sequence number. {_CODE_CHANGED}"
        )
    if produced.name.lower() != str(name).lower():
        return (
            f"{sub_orchestration} orchestration replay instead scheduled a sub-orchestration task with name "
            f"{produced.name} at this sequence number. {_CODE_CHANGED}"
        )
    return None


def _request_input(value: Any) -> str | None:
    """`RequestMessage.SetInput` of the action's input: the extension serializes the value it read, so the
    SDK's JSON text becomes a JSON string (`"1"` -> `"\\"1\\""`)."""
    return None if value is None else json.dumps(value, ensure_ascii=False)


def _as_json_text(value: Any) -> str:
    """The activity input the worker receives: the action's JSON text (the SDK always sends a string)."""
    return value if isinstance(value, str) else json.dumps(value)


def replay_actions(
    state: dict[str, Any],
    history: list[Event],
    *,
    now: datetime,
    known_activities: set[str],
    known_entities: set[str],
    instance_id: str,
) -> Decisions:
    """Replay the returned OrchestratorState's actions against history. Raises OrchestrationFailedError
    to fail the instance (non-determinism, unsupported action, unknown activity or entity)."""
    replayer = _Replayer(history, now, known_activities, known_entities, instance_id)
    actions = state.get("actions") or []
    if int(state.get("schemaVersion") or 0) >= 1:
        if len(actions) > 1:
            raise OrchestrationFailedError(
                f"With OOProc schema ReplayPatchV1, expected actions array to be of length 1 in outer "
                f"layer but got size: {len(actions)}"
            )
        main = replayer.main_v2(actions[0] if actions else [])
    else:
        main = replayer.main_v1(actions)
    with contextlib.suppress(_StopReplayError):
        replayer.play(main)
    replayer.check_history()
    replayer.decisions.has_open_tasks = replayer.has_open_tasks()
    return replayer.decisions
