"""The JSON the engine sends and the actions it accepts.

The trigger JSON is the extension's `OrchestrationContextToString` (Azure/azure-functions-durable-extension
v2.13.7, `src/WebJobs.Extensions.DurableTask/Bindings/OrchestrationTriggerAttributeBindingProvider.cs`
L219-241); history events are DTFx's `HistoryEvent`s as Newtonsoft serializes them; the actions are what
azure-functions-durable 1.7.0 returns.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

from devhost.durable.history import EventType

from .conftest import START, EngineFactory

# The 4th invocation's trigger JSON of a chaining + timer orchestration (activities of 2 s and 1 s, a 30 s
# timer): every event of the history, IsPlayed set on the events of earlier episodes.
RECORDED_HISTORY: list[dict[str, Any]] = [
    {"EventType": 12, "EventId": -1, "IsPlayed": True, "Timestamp": "2024-01-01T00:00:00.0000000Z"},
    {"EventType": 0, "EventId": -1, "IsPlayed": True, "Timestamp": "2024-01-01T00:00:00.0000000Z",
     "OrchestrationInstance": {"InstanceId": "inst-1"},
     "Name": "my_orchestrator", "Version": "", "Input": '"\\"Tokyo\\""'},
    {"EventType": 4, "EventId": 0, "IsPlayed": True, "Timestamp": "2024-01-01T00:00:00.0000000Z",
     "Name": "say_hello", "Version": "", "Input": '["\\"Tokyo\\""]'},
    {"EventType": 13, "EventId": -1, "IsPlayed": True, "Timestamp": "2024-01-01T00:00:00.0000000Z"},
    {"EventType": 12, "EventId": -1, "IsPlayed": True, "Timestamp": "2024-01-01T00:00:02.0000000Z"},
    {"EventType": 5, "EventId": -1, "IsPlayed": True, "Timestamp": "2024-01-01T00:00:02.0000000Z",
     "TaskScheduledId": 0, "Result": '"Hello Tokyo"'},
    {"EventType": 10, "EventId": 1, "IsPlayed": True, "Timestamp": "2024-01-01T00:00:02.0000000Z",
     "FireAt": "2024-01-01T00:00:32.0000000Z"},
    {"EventType": 13, "EventId": -1, "IsPlayed": True, "Timestamp": "2024-01-01T00:00:02.0000000Z"},
    {"EventType": 12, "EventId": -1, "IsPlayed": True, "Timestamp": "2024-01-01T00:00:32.0000000Z"},
    {"EventType": 11, "EventId": -1, "IsPlayed": True, "Timestamp": "2024-01-01T00:00:32.0000000Z",
     "TimerId": 1, "FireAt": "2024-01-01T00:00:32.0000000Z"},
    {"EventType": 4, "EventId": 2, "IsPlayed": True, "Timestamp": "2024-01-01T00:00:32.0000000Z",
     "Name": "say_hello", "Version": "", "Input": '["\\"again\\""]'},
    {"EventType": 13, "EventId": -1, "IsPlayed": True, "Timestamp": "2024-01-01T00:00:32.0000000Z"},
    {"EventType": 12, "EventId": -1, "IsPlayed": False, "Timestamp": "2024-01-01T00:00:33.0000000Z"},
    {"EventType": 5, "EventId": -1, "IsPlayed": False, "Timestamp": "2024-01-01T00:00:33.0000000Z",
     "TaskScheduledId": 2, "Result": '"Hello again"'},
]  # fmt: skip
RECORDED_TOP_LEVEL = {
    "input": '"Tokyo"',
    "instanceId": "inst-1",
    "isReplaying": True,
    "parentInstanceId": None,
    "upperSchemaVersion": 1,
    "upperSchemaVersionNew": 2,
    "longRunningTimerIntervalDuration": "3.00:00:00",
    "maximumShortTimerDuration": "6.00:00:00",
    "defaultHttpAsyncRequestSleepTimeMillseconds": 30000,
}
CALL_TOKYO = {"actionType": 0, "functionName": "say_hello", "input": '"Tokyo"'}
TIMER_32 = {"actionType": 5, "fireAt": "2024-01-01T00:00:32.000000Z", "isCanceled": False}
CALL_AGAIN = {"actionType": 0, "functionName": "say_hello", "input": '"again"'}


def chaining_app(make_engine: EngineFactory) -> Any:
    app = df.DFApp()
    harness_box: list[Any] = []

    @app.orchestration_trigger(context_name="context")
    def my_orchestrator(context: df.DurableOrchestrationContext) -> Any:
        a = yield context.call_activity("say_hello", context.get_input())
        yield context.create_timer(context.current_utc_datetime + timedelta(seconds=30))
        b = yield context.call_activity("say_hello", "again")
        return {
            "a": a,
            "b": b,
            "now": context.current_utc_datetime.isoformat(),
            "uuid": context.new_uuid(),
            "replaying": context.is_replaying,
        }

    @app.activity_trigger(input_name="name")
    def say_hello(name: str) -> str:
        # The example's activities take 2 s and 1 s of (virtual) time.
        harness_box[0].clock.advance(2 if name == "Tokyo" else 1)
        return f"Hello {name}"

    harness = make_engine(app)
    harness_box.append(harness)
    return harness


def test_chaining_with_timer_sends_the_recorded_history_and_accepts_its_actions(
    make_engine: EngineFactory,
) -> None:
    harness = chaining_app(make_engine)
    instance_id = harness.start("my_orchestrator", "Tokyo", instance_id="inst-1")
    status = harness.run_to_end(instance_id)

    assert [state["actions"] for state in harness.states()] == [
        [[CALL_TOKYO]],
        [[CALL_TOKYO, TIMER_32]],
        [[CALL_TOKYO, TIMER_32, CALL_AGAIN]],
        [[CALL_TOKYO, TIMER_32, CALL_AGAIN]],
    ]
    context, state = harness.exchanges[-1]
    assert {key: value for key, value in context.items() if key != "history"} == RECORDED_TOP_LEVEL
    assert list(context) == ["history", *RECORDED_TOP_LEVEL]
    assert len(context["history"]) == len(RECORDED_HISTORY)
    for sent, expected in zip(context["history"], RECORDED_HISTORY, strict=True):
        expected_instance = expected.get("OrchestrationInstance")
        if expected_instance:
            assert sent["OrchestrationInstance"]["InstanceId"] == expected_instance["InstanceId"]
            assert sent["OrchestrationInstance"]["ExecutionId"]
        assert {key: sent[key] for key in expected if key != "OrchestrationInstance"} == {
            key: value for key, value in expected.items() if key != "OrchestrationInstance"
        }
    expected_output = {
        "a": "Hello Tokyo",
        "b": "Hello again",
        "now": "2024-01-01T00:00:33+00:00",
        "uuid": "552fe6d8-92a3-53d3-999b-dc8a7665fd13",
        "replaying": False,
    }
    assert state == {"isDone": True, "schemaVersion": 2, "actions": [[CALL_TOKYO, TIMER_32, CALL_AGAIN]],
                     "output": expected_output}  # fmt: skip
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == expected_output
    # Status API shape (StatusResponsePayload): input is the stored JToken, here the JSON text of "Tokyo".
    assert status["input"] == '"Tokyo"'
    assert (status["createdTime"], status["lastUpdatedTime"]) == (
        "2024-01-01T00:00:00Z",
        "2024-01-01T00:00:33Z",
    )


def test_a_timer_fires_only_when_due(make_engine: EngineFactory) -> None:
    harness = chaining_app(make_engine)
    instance_id = harness.start("my_orchestrator", "Tokyo")
    harness.engine.run_until_idle()
    assert harness.engine.next_due_time() == START + timedelta(seconds=32)
    harness.clock.advance(29)
    harness.engine.run_until_idle()
    assert len(harness.exchanges) == 2
    assert harness.engine.get_status(instance_id)["runtimeStatus"] == "Running"
    harness.clock.advance(1)
    harness.engine.run_until_idle()
    assert harness.engine.get_status(instance_id)["runtimeStatus"] == "Completed"


def _retry_app(make_engine: EngineFactory, failures_before_success: int, options: df.RetryOptions) -> Any:
    app = df.DFApp()
    attempts: list[int] = []

    @app.orchestration_trigger(context_name="context")
    def retrying(context: df.DurableOrchestrationContext) -> Any:
        try:
            result = yield context.call_activity_with_retry("flaky", options, {"n": 1})
        except Exception as error:
            return {"caught": str(error)}
        return result

    @app.activity_trigger(input_name="payload")
    def flaky(payload: Any) -> dict[str, Any]:  # the worker refuses builtin generic annotations
        attempts.append(payload["n"])
        if len(attempts) <= failures_before_success:
            raise ValueError(f"attempt {len(attempts)} failed")
        return {"ok": True, "attempts": len(attempts)}

    return make_engine(app)


def _sequence(history: list[dict[str, Any]]) -> list[tuple[str, int | None, str, str | None]]:
    """(event, id, time, FireAt) of the scheduling and completion events of a retry history."""
    names = {4: "TaskScheduled", 5: "TaskCompleted", 6: "TaskFailed", 10: "TimerCreated", 11: "TimerFired"}
    rows = []
    for event in history:
        if event["EventType"] in names:
            task_id = (
                event["EventId"]
                if event["EventType"] in (4, 10)
                else event.get("TaskScheduledId", event.get("TimerId"))
            )
            rows.append(
                (
                    names[event["EventType"]],
                    task_id,
                    event["Timestamp"][11:19],
                    event.get("FireAt", "")[11:19] or None,
                )
            )
    return rows


def test_retry_that_succeeds_on_the_third_attempt_writes_dtfx_retry_history(
    make_engine: EngineFactory,
) -> None:
    harness = _retry_app(make_engine, failures_before_success=2, options=df.RetryOptions(5000, 3))
    instance_id = harness.start("retrying")
    status = harness.run_to_end(instance_id)
    assert status["output"] == {"ok": True, "attempts": 3}
    assert _sequence(harness.engine.history(instance_id)) == [
        ("TaskScheduled", 0, "00:00:00", None),
        ("TaskFailed", 0, "00:00:00", None),
        ("TimerCreated", 1, "00:00:00", "00:00:05"),
        ("TimerFired", 1, "00:00:05", "00:00:05"),
        ("TaskScheduled", 2, "00:00:05", None),
        ("TaskFailed", 2, "00:00:05", None),
        ("TimerCreated", 3, "00:00:05", "00:00:10"),
        ("TimerFired", 3, "00:00:10", "00:00:10"),
        ("TaskScheduled", 4, "00:00:10", None),
        ("TaskCompleted", 4, "00:00:10", None),
    ]
    # The SDK keeps returning one WhenAll(CallActivityWithRetry) action: its RetryAbleTask is a WhenAllTask
    # (azure-functions-durable 1.7.0, `azure/durable_functions/models/Task.py` L471).
    retry_action = {"actionType": 1, "functionName": "flaky", "input": '{"n": 1}',
                    "retryOptions":
                    {"firstRetryIntervalInMilliseconds": 5000, "maxNumberOfAttempts": 3}}  # fmt: skip
    assert all(
        state["actions"] == [[{"actionType": 12, "compoundActions": [retry_action]}]]
        for state in harness.states()
    )


def test_exhausted_retries_add_a_timer_after_the_last_attempt_then_fail_the_task(
    make_engine: EngineFactory,
) -> None:
    harness = _retry_app(make_engine, failures_before_success=99, options=df.RetryOptions(1000, 2))
    instance_id = harness.start("retrying")
    status = harness.run_to_end(instance_id)
    assert _sequence(harness.engine.history(instance_id)) == [
        ("TaskScheduled", 0, "00:00:00", None),
        ("TaskFailed", 0, "00:00:00", None),
        ("TimerCreated", 1, "00:00:00", "00:00:01"),
        ("TimerFired", 1, "00:00:01", "00:00:01"),
        ("TaskScheduled", 2, "00:00:01", None),
        ("TaskFailed", 2, "00:00:01", None),
        ("TimerCreated", 3, "00:00:01", "00:00:01"),  # "dummy timer for back-compat": fires immediately
        ("TimerFired", 3, "00:00:01", "00:00:01"),
    ]
    caught = status["output"]["caught"]
    # TaskFailed.Reason "Activity function '<name>' failed:  <Type>: <msg>", then " \n " and the Details JSON.
    reason, details = caught.split(" \n ", 1)
    assert reason == "Activity function 'flaky' failed:  ValueError: attempt 2 failed"
    assert json.loads(details)["Message"] == "ValueError: attempt 2 failed"


def test_fan_out_fan_in_runs_activities_concurrently_up_to_the_limit(make_engine: EngineFactory) -> None:
    import threading
    import time

    app = df.DFApp()
    lock = threading.Lock()
    running = [0]
    peak = [0]

    @app.orchestration_trigger(context_name="context")
    def fan_out(context: df.DurableOrchestrationContext) -> Any:
        results = yield context.task_all([context.call_activity("square", n) for n in range(6)])
        return sum(results)

    @app.activity_trigger(input_name="n")
    def square(n: int) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return n * n

    harness = make_engine(app, max_concurrent_activities=2)
    instance_id = harness.start("fan_out")
    status = harness.run_to_end(instance_id)
    assert status["output"] == 55
    assert peak[0] == 2
    first_actions = harness.states()[0]["actions"]
    assert first_actions == [[{"actionType": 12, "compoundActions": [
        {"actionType": 0, "functionName": "square", "input": str(n)} for n in range(6)]}]]  # fmt: skip
    scheduled = [
        e["EventId"]
        for e in harness.engine.history(instance_id)
        if e["EventType"] == EventType.TASK_SCHEDULED
    ]
    assert scheduled == [0, 1, 2, 3, 4, 5]


def _approval_app(make_engine: EngineFactory, *, cancel_timer: bool = True) -> Any:
    app = df.DFApp()

    @app.orchestration_trigger(context_name="context")
    def approval(context: df.DurableOrchestrationContext) -> Any:
        timeout = context.create_timer(context.current_utc_datetime + timedelta(hours=1))
        event = context.wait_for_external_event("Approval")
        winner = yield context.task_any([event, timeout])
        if winner == event:
            if cancel_timer:
                timeout.cancel()
            return {"approved": event.result}
        return "timeout"

    return make_engine(app)


def test_event_before_timeout_wins_and_the_canceled_timer_goes_with_the_finished_instance(
    make_engine: EngineFactory,
) -> None:
    harness = _approval_app(make_engine)
    instance_id = harness.start("approval")
    harness.engine.run_until_idle()
    harness.clock.advance(60)
    # What the Python client sends: json.dumps(data) as the JSON body (double-encoded, python issue #295).
    harness.engine.raise_event(instance_id, "Approval", json.dumps(json.dumps({"by": "alice"})))
    harness.engine.run_until_idle()
    status = harness.engine.get_status(instance_id)
    assert status is not None
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == {"approved": '{"by": "alice"}'}
    # A canceled timer still fires (test_delivery.py), but the provider discards messages for a finished
    # instance (AzureStorageOrchestrationService.IsExecutableInstanceAsync).
    assert harness.engine.next_due_time() is None
    last_actions = harness.states()[-1]["actions"]
    assert last_actions == [[{"actionType": 11, "compoundActions": [
        {"actionType": 6, "externalEventName": "Approval", "reason": "ExternalEvent"},
        {"actionType": 5, "fireAt": "2024-01-01T01:00:00.000000Z", "isCanceled": True}]}]]  # fmt: skip
    types = [e["EventType"] for e in harness.engine.history(instance_id)]
    assert EventType.EVENT_RAISED in types
    assert EventType.TIMER_FIRED not in types


def test_timeout_before_event_wins(make_engine: EngineFactory) -> None:
    harness = _approval_app(make_engine)
    instance_id = harness.start("approval")
    status = harness.run_to_end(instance_id)
    assert status["output"] == "timeout"
    assert status["lastUpdatedTime"] == "2024-01-01T01:00:00Z"


def test_an_event_raised_before_the_wait_is_buffered(make_engine: EngineFactory) -> None:
    app = df.DFApp()

    @app.orchestration_trigger(context_name="context")
    def late_waiter(context: df.DurableOrchestrationContext) -> Any:
        yield context.create_timer(context.current_utc_datetime + timedelta(minutes=5))
        data = yield context.wait_for_external_event("Go")
        return data

    harness = make_engine(app)
    instance_id = harness.start("late_waiter")
    harness.engine.run_until_idle()
    harness.engine.raise_event(instance_id, "Go", json.dumps({"early": True}))  # a plain JSON body
    status = harness.run_to_end(instance_id)
    assert status["output"] == {"early": True}


def test_returning_with_an_uncanceled_timer_stays_running_until_it_fires(make_engine: EngineFactory) -> None:
    harness = _approval_app(make_engine, cancel_timer=False)
    instance_id = harness.start("approval")
    harness.engine.run_until_idle()
    harness.engine.raise_event(instance_id, "Approval", json.dumps(json.dumps("yes")))
    harness.engine.run_until_idle()
    assert harness.states()[-1]["isDone"] is True
    assert harness.engine.get_status(instance_id)["runtimeStatus"] == "Running"  # HasOpenTasks
    status = harness.run_to_end(instance_id)
    assert status["output"] == {"approved": '"yes"'}
    assert status["lastUpdatedTime"] == "2024-01-01T01:00:00Z"


def test_continue_as_new_restarts_with_a_fresh_history_and_the_new_input(make_engine: EngineFactory) -> None:
    app = df.DFApp()

    @app.orchestration_trigger(context_name="context")
    def counter(context: df.DurableOrchestrationContext) -> Any:
        count = context.get_input()
        context.set_custom_status({"iteration": count})
        if count >= 3:
            return count
        yield context.create_timer(context.current_utc_datetime + timedelta(minutes=1))
        context.continue_as_new(count + 1)

    harness = make_engine(app)
    instance_id = harness.start("counter", 1)
    status = harness.run_to_end(instance_id)
    assert status["output"] == 3
    assert status["customStatus"] == {"iteration": 3}
    assert status["input"] == "3"
    continue_states = [s for s in harness.states() if any(a["actionType"] == 4 for a in s["actions"][0])]
    assert [s["actions"][0][-1] for s in continue_states] == [
        {"actionType": 4, "input": "2"},
        {"actionType": 4, "input": "3"},
    ]
    history = harness.engine.history(instance_id)
    # DTFx runs a continued execution at once on [OrchestratorStarted, ExecutionStarted,
    # OrchestratorCompleted], then appends the episode's events and another OrchestratorCompleted.
    assert [e["EventType"] for e in history] == [12, 0, 13, 1, 13]
    assert history[1]["Input"] == '"3"'
    generation_starts = [c["history"] for c, _ in harness.exchanges if not c["history"][1]["IsPlayed"]]
    assert [[e["EventType"] for e in h] for h in generation_starts] == [[12, 0], [12, 0, 13], [12, 0, 13]]
    assert [h[1]["Input"] for h in generation_starts] == ['"1"', '"2"', '"3"']
    assert status["lastUpdatedTime"] == "2024-01-01T00:02:00Z"


def test_a_ten_day_timer_is_split_into_three_day_timers(make_engine: EngineFactory) -> None:
    app = df.DFApp()

    @app.orchestration_trigger(context_name="context")
    def long_sleeper(context: df.DurableOrchestrationContext) -> Any:
        yield context.create_timer(context.current_utc_datetime + timedelta(days=10))
        return context.current_utc_datetime.isoformat()

    harness = make_engine(app)
    instance_id = harness.start("long_sleeper")
    status = harness.run_to_end(instance_id)
    assert status["output"] == "2024-01-11T00:00:00+00:00"
    created = [
        e["FireAt"] for e in harness.engine.history(instance_id) if e["EventType"] == EventType.TIMER_CREATED
    ]
    assert created == [
        "2024-01-04T00:00:00.0000000Z",
        "2024-01-07T00:00:00.0000000Z",
        "2024-01-11T00:00:00.0000000Z",
    ]
    assert len(harness.exchanges) == 4  # start + one replay per sub-timer; the user code resumes once


def _uncaught_failure_app(make_engine: EngineFactory) -> Any:
    app = df.DFApp()

    @app.orchestration_trigger(context_name="context")
    def fragile(context: df.DurableOrchestrationContext) -> Any:
        yield context.call_activity("boom", None)
        return "unreachable"

    @app.activity_trigger(input_name="value")
    def boom(value: Any) -> None:
        raise ValueError("bad")

    return make_engine(app)


def test_an_uncaught_activity_failure_fails_the_instance_via_out_of_proc_data(
    make_engine: EngineFactory,
) -> None:
    harness = _uncaught_failure_app(make_engine)
    instance_id = harness.start("fragile")
    status = harness.run_to_end(instance_id)
    assert status["runtimeStatus"] == "Failed"
    state = harness.states()[-1]
    assert state["isDone"] is False
    assert state["actions"] == [[{"actionType": 0, "functionName": "boom", "input": "null"}]]
    assert state["error"].startswith("Activity function 'boom' failed:  ValueError: bad \n {")
    assert status["output"] == f"Orchestrator function 'fragile' failed: {state['error']}"
    history = harness.engine.history(instance_id)
    assert history[-2]["EventType"] == EventType.EXECUTION_COMPLETED
    assert history[-2]["OrchestrationStatus"] == "Failed"


def test_changing_the_orchestrator_between_episodes_fails_with_dtfx_non_determinism(
    make_engine: EngineFactory,
) -> None:
    app = df.DFApp()
    version = {"activity": "step_one"}

    @app.orchestration_trigger(context_name="context")
    def evolving(context: df.DurableOrchestrationContext) -> Any:
        yield context.call_activity(version["activity"], None)
        yield context.create_timer(context.current_utc_datetime + timedelta(minutes=1))
        return "done"

    @app.activity_trigger(input_name="value")
    def step_one(value: Any) -> str:
        version["activity"] = "step_two"  # "deploy" a changed orchestrator while the instance is in flight
        return "one"

    @app.activity_trigger(input_name="value")
    def step_two(value: Any) -> str:
        return "two"

    harness = make_engine(app)
    instance_id = harness.start("evolving")
    status = harness.run_to_end(instance_id)
    assert status["runtimeStatus"] == "Failed"
    assert status["output"] == (
        "Non-Deterministic workflow detected: A previous execution of this orchestration scheduled an "
        "activity task with sequence number 0 named 'step_one', but the current orchestration replay "
        "instead scheduled an activity task named 'step_two' with this sequence number.  Was a change made "
        "to the orchestrator code after this instance had already started running?"
    )


def test_removing_a_scheduled_step_is_non_deterministic(make_engine: EngineFactory) -> None:
    app = df.DFApp()
    plan = {"with_timer": True}

    @app.orchestration_trigger(context_name="context")
    def shrinking(context: df.DurableOrchestrationContext) -> Any:
        if plan["with_timer"]:
            plan["with_timer"] = False
            yield context.create_timer(context.current_utc_datetime + timedelta(minutes=1))
        return "done"

    harness = make_engine(app)
    status = harness.run_to_end(harness.start("shrinking"))
    assert status["runtimeStatus"] == "Failed"
    assert status["output"].startswith(
        "Non-Deterministic workflow detected: A previous execution of this orchestration scheduled a timer "
        "task with sequence number 0 but the current replay execution hasn't (yet?) scheduled this task."
    )


def test_unsupported_actions_fail_the_instance_clearly(make_engine: EngineFactory) -> None:
    app = df.DFApp()

    @app.orchestration_trigger(context_name="context")
    def http_user(context: df.DurableOrchestrationContext) -> Any:
        yield context.call_http("GET", "https://example.invalid/")

    harness = make_engine(app)
    status = harness.run_to_end(harness.start("http_user"))
    assert status["runtimeStatus"] == "Failed"
    assert "does not support CALL_HTTP actions" in status["output"]


def test_an_exception_in_orchestrator_code_fails_the_instance_with_its_message(
    make_engine: EngineFactory,
) -> None:
    app = df.DFApp()

    @app.orchestration_trigger(context_name="context")
    def validating(context: df.DurableOrchestrationContext) -> Any:
        payload = context.get_input()
        if "name" not in payload:
            raise KeyError("name is required")
        yield context.create_timer(context.current_utc_datetime)

    harness = make_engine(app)
    status = harness.run_to_end(harness.start("validating", {"other": 1}))
    assert status["runtimeStatus"] == "Failed"
    assert harness.states()[-1]["error"] == "'name is required'"
    assert status["output"] == "Orchestrator function 'validating' failed: 'name is required'"
