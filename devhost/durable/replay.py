"""Interpret the actions an out-of-proc orchestrator returned, as the extension and DTFx do.

`OutOfProcOrchestrationShim.ProcessAsyncActionsV2` re-executes every returned action against the .NET
context, in order, awaiting each one (failures are swallowed: the Python SDK handles them), so replay stops
at the first action still pending. Activities, timers and sub-orchestrations take the next sequence id;
`WhenAll`/`WhenAny` invoke all their children first. `*WithRetry` actions run DTFx's `RetryInterceptor`
loop, which creates a timer after every failed attempt (after the last one a timer that fires immediately,
"for back-compat"). DTFx then checks every scheduling event in history against the replayed actions
(`TaskOrchestrationContext.Handle*CreatedEvent`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import IntEnum
from typing import Any

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
}
# DTFx action class names, as they appear in its non-determinism messages.
_DTFX_ACTION_CLASS = {
    "activity": "ScheduleTaskOrchestratorAction",
    "timer": "CreateTimerOrchestratorAction",
    "suborchestration": "CreateSubOrchestrationAction",
}


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
class Decisions:
    """What one episode asks the engine to do."""

    new_events: list[Event] = field(default_factory=list)
    activities: list[ScheduledActivity] = field(default_factory=list)
    timers: list[ScheduledTimer] = field(default_factory=list)
    sub_orchestrations: list[StartedSubOrchestration] = field(default_factory=list)
    canceled_timer_ids: list[int] = field(default_factory=list)
    continue_as_new_input: str | None = None
    continued_as_new: bool = False
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


class _Replayer:
    def __init__(self, history: list[Event], now: datetime, known_activities: set[str]):
        self.now = now
        self.known_activities = known_activities
        self.scheduling_events: dict[int, Event] = {}
        self.outcomes: dict[int, Event] = {}
        self.execution_id = ""
        self.fired_timers: set[int] = set()
        self.raised_counts: dict[str, int] = {}
        for event in history:
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
            elif event_type == EventType.TIMER_FIRED:
                self.fired_timers.add(event["TimerId"])
            elif event_type == EventType.EVENT_RAISED:
                self.raised_counts[event["Name"]] = self.raised_counts.get(event["Name"], 0) + 1
        self.next_id = 0
        self.produced: dict[int, _Produced] = {}
        self.open_task_ids: set[int] = set()
        self.waits_per_event: dict[str, int] = {}
        self.decisions = Decisions()

    # -- the .NET context calls ----------------------------------------------------------------------------

    def invoke(self, action: dict[str, Any]) -> bool:
        """Invoke one action; True when its task is complete (successfully or not), False when pending."""
        action_type = ActionType(action["actionType"])
        if action_type == ActionType.CALL_ACTIVITY:
            return self._task_done(self._schedule_activity(action)) is not None
        if action_type == ActionType.CALL_SUB_ORCHESTRATOR:
            return self._task_done(self._start_sub_orchestration(action)) is not None
        if action_type in (ActionType.CALL_ACTIVITY_WITH_RETRY, ActionType.CALL_SUB_ORCHESTRATOR_WITH_RETRY):
            return self._invoke_with_retry(action, action_type)
        if action_type == ActionType.CREATE_TIMER:
            return self._create_timer(
                parse_timestamp(action["fireAt"]), canceled=bool(action.get("isCanceled"))
            )
        if action_type == ActionType.WAIT_FOR_EXTERNAL_EVENT:
            name = action["externalEventName"]
            self.waits_per_event[name] = self.waits_per_event.get(name, 0) + 1
            return self.raised_counts.get(name, 0) >= self.waits_per_event[name]
        if action_type == ActionType.CONTINUE_AS_NEW:
            self.decisions.continued_as_new = True
            self.decisions.continue_as_new_input = json.dumps(action.get("input"))
            return True
        if action_type in (ActionType.WHEN_ALL, ActionType.WHEN_ANY):
            children = [self.invoke(child) for child in action.get("compoundActions") or []]
            return all(children) if action_type == ActionType.WHEN_ALL else any(children)
        raise OrchestrationFailedError(
            f"The dev host does not support {action_type.name} actions (durable entities and durable HTTP "
            "are not emulated)."
        )

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
        return task_id

    def _task_done(self, task_id: int) -> Event | None:
        outcome = self.outcomes.get(task_id)
        if outcome is None:
            self.open_task_ids.add(task_id)
        return outcome

    def _create_timer(self, fire_at: datetime, *, canceled: bool = False) -> bool:
        timer_id = self._allocate("timer", "")
        if not self._already_scheduled(timer_id, "timer", ""):
            self.decisions.new_events.append(
                new_event(
                    EventType.TIMER_CREATED, self.now, event_id=timer_id, FireAt=format_timestamp(fire_at)
                )
            )
            if not canceled:
                self.decisions.timers.append(ScheduledTimer(timer_id, fire_at))
        elif canceled and timer_id not in self.fired_timers:
            self.decisions.canceled_timer_ids.append(timer_id)
        if canceled or timer_id in self.fired_timers:
            return True
        self.open_task_ids.add(timer_id)
        return False

    def _invoke_with_retry(self, action: dict[str, Any], action_type: ActionType) -> bool:
        options = RetryOptions.from_action(action.get("retryOptions") or {})
        first_attempt: datetime | None = None
        for attempt in range(options.max_number_of_attempts):
            if action_type == ActionType.CALL_ACTIVITY_WITH_RETRY:
                task_id = self._schedule_activity(action)
            else:
                task_id = self._start_sub_orchestration(action)
            if first_attempt is None:
                scheduled = self.scheduling_events.get(task_id)
                first_attempt = parse_timestamp(scheduled["Timestamp"]) if scheduled else self.now
            outcome = self._task_done(task_id)
            if outcome is None:
                return False
            if outcome["EventType"] in (
                EventType.TASK_COMPLETED,
                EventType.SUB_ORCHESTRATION_INSTANCE_COMPLETED,
            ):
                return True
            if attempt + 1 == options.max_number_of_attempts:
                return self._create_timer(self.now)  # "Dummy timer for back-compat", fires immediately
            delay = options.next_delay(attempt, first_attempt, self.now)
            if delay <= timedelta(0):
                return True
            if not self._create_timer(self.now + delay):
                return False
        return True

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


def _as_json_text(value: Any) -> str:
    """The activity input the worker receives: the action's JSON text (the SDK always sends a string)."""
    return value if isinstance(value, str) else json.dumps(value)


def replay_actions(
    state: dict[str, Any],
    history: list[Event],
    *,
    now: datetime,
    known_activities: set[str],
) -> Decisions:
    """Replay the returned OrchestratorState's actions against history. Raises OrchestrationFailedError
    to fail the instance (non-determinism, unsupported action, unknown activity)."""
    replayer = _Replayer(history, now, known_activities)
    actions = state.get("actions") or []
    try:
        if int(state.get("schemaVersion") or 0) >= 1:
            if len(actions) > 1:
                raise OrchestrationFailedError(
                    f"With OOProc schema ReplayPatchV1, expected actions array to be of length 1 in outer "
                    f"layer but got size: {len(actions)}"
                )
            for action in actions[0] if actions else []:
                if not replayer.invoke(action):
                    break
        else:
            # Schema V1 (ProcessAsyncActions): per yield, invoke all its actions and await any of them.
            for action_set in actions:
                results = [replayer.invoke(action) for action in action_set]
                if results and not any(results):
                    break
    except _StopReplayError:
        pass
    replayer.check_history()
    replayer.decisions.has_open_tasks = bool(replayer.open_task_ids)
    return replayer.decisions
