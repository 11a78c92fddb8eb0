"""Message delivery where Azure is harsher than a naive host.

Sources: extension = Azure/azure-functions-durable-extension v2.13.7 (commit a7c6d694), paths under
`src/WebJobs.Extensions.DurableTask/`; DTFx = Azure/durabletask commit 52170329, paths under `src/`; SDK =
azure-functions-durable 1.7.0 (PyPI), paths under `azure/durable_functions/`.

* A canceled timer still fires. The shim creates the timer, then cancels its token (extension
  `Listener/OutOfProcOrchestrationShim.cs` L127-131); DTFx records the timer action first and on cancel only
  drops the task from its open tasks (`DurableTask.Core/TaskOrchestrationContext.cs` L305, L310-319), so the
  timer is created with its TimerFired message (`DurableTask.Core/TaskOrchestrationDispatcher.cs`
  L1236-1256). A TimerFired for a timer that is no longer open is logged as a duplicate
  (`TaskOrchestrationContext.cs` L575-588): one more episode, no error. For a finished instance the Azure
  Storage provider discards it (`DurableTask.AzureStorage/AzureStorageOrchestrationService.cs` L1094-1121).
* Events processed after ContinueAsNew are carried over (`TaskOrchestrationContext.cs` L464-474; `Carryover`
  is the Azure Storage default, `AzureStorageOrchestrationServiceSettings.cs` L202): the next execution runs
  in the same work item on [OrchestratorStarted, ExecutionStarted, the carried events, OrchestratorCompleted]
  (`TaskOrchestrationDispatcher.cs` L650-677), the events already marked played
  (`DurableTask.Core/TaskOrchestrationExecutor.cs` L161-162). Messages for an old ExecutionId are dropped
  (`TaskOrchestrationDispatcher.cs` L945-963); raised events carry none (extension
  `ContextImplementations/DurableClient.cs` L836-838), so they reach whatever execution is current.
* The extension keeps the pending waits of one name on a stack and buffers events nobody waits for in a
  queue (`ContextImplementations/DurableOrchestrationContext.cs` L853-890, L905-961). The SDK also answers
  the newest wait: `open_tasks[name]` is a list and an EventRaised pops its last task
  (`models/TaskOrchestrationExecutor.py` L205-209); events that arrive before any wait keep one deferred
  value per name (L210-216), handed to every later wait (azure-functions-durable-python issue #507).
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import azure.durable_functions as df

from devhost.clock import ManualClock
from devhost.durable.history import EventType

from .conftest import START, EngineFactory, Harness

MINUTE = timedelta(minutes=1)


def _types(events: list[dict[str, Any]]) -> list[int]:
    return [event["EventType"] for event in events]


# -- a canceled timer still fires ----------------------------------------------------------------------------


def test_a_canceled_timer_fires_into_one_more_episode_while_the_instance_runs(
    make_engine: EngineFactory,
) -> None:
    app = df.DFApp()

    @app.orchestration_trigger(context_name="context")
    def approve_then_close(context: df.DurableOrchestrationContext) -> Any:
        timeout = context.create_timer(context.current_utc_datetime + 5 * MINUTE)
        approval = context.wait_for_external_event("Approval")
        winner = yield context.task_any([approval, timeout])
        if winner == approval:
            timeout.cancel()
        closed = yield context.wait_for_external_event("Close")
        return {"approved": approval.result, "closed": closed, "timer_completed": timeout.is_completed}

    harness = make_engine(app)
    engine = harness.engine
    instance_id = harness.start("approve_then_close")
    engine.run_until_idle()
    harness.clock.advance(60)
    engine.raise_event(instance_id, "Approval", json.dumps("yes"))
    engine.run_until_idle()
    assert engine.next_due_time() == START + 5 * MINUTE  # the canceled timer's TimerFired is still queued

    harness.clock.advance(4 * 60)
    engine.run_until_idle()
    assert len(harness.exchanges) == 3
    sent, state = harness.exchanges[-1]
    assert [(e["EventType"], e.get("TimerId"), e["IsPlayed"]) for e in sent["history"][-2:]] == [
        (EventType.ORCHESTRATOR_STARTED, None, False),
        (EventType.TIMER_FIRED, 0, False),
    ]
    assert "error" not in state
    assert state["isDone"] is False
    assert state["actions"] == [[{"actionType": 11, "compoundActions": [
        {"actionType": 6, "externalEventName": "Approval", "reason": "ExternalEvent"},
        {"actionType": 5, "fireAt": "2024-01-01T00:05:00.000000Z", "isCanceled": True}]},
        {"actionType": 6, "externalEventName": "Close", "reason": "ExternalEvent"}]]  # fmt: skip
    assert engine.get_status(instance_id)["runtimeStatus"] == "Running"  # type: ignore[index]

    engine.raise_event(instance_id, "Close", json.dumps("done"))
    engine.run_until_idle()
    status = engine.get_status(instance_id)
    assert status is not None
    assert status["runtimeStatus"] == "Completed"
    # The SDK completes the canceled TimerTask with that TimerFired: cancel() would now raise.
    assert status["output"] == {"approved": "yes", "closed": "done", "timer_completed": True}
    assert _types(engine.history(instance_id)) == [
        12, 0, 10, 13,  # start: the timer and the wait
        12, 15, 13,  # Approval wins; the timer is canceled
        12, 11, 13,  # the canceled timer's TimerFired: one more episode
        12, 15, 1, 13,  # Close
    ]  # fmt: skip


def test_a_timer_canceled_before_it_is_first_sent_is_still_created_and_fires(
    make_engine: EngineFactory,
) -> None:
    app = df.DFApp()

    @app.orchestration_trigger(context_name="context")
    def pre_canceled(context: df.DurableOrchestrationContext) -> Any:
        timer = context.create_timer(context.current_utc_datetime + 5 * MINUTE)
        timer.cancel()
        go = context.wait_for_external_event("Go")
        winner = yield context.task_any([go, timer])
        return "go" if winner == go else "timer"

    harness = make_engine(app)
    instance_id = harness.start("pre_canceled")
    harness.engine.run_until_idle()
    created = [e for e in harness.engine.history(instance_id) if e["EventType"] == EventType.TIMER_CREATED]
    assert [(e["EventId"], e["FireAt"]) for e in created] == [(0, "2024-01-01T00:05:00.0000000Z")]
    assert harness.engine.next_due_time() == START + 5 * MINUTE
    status = harness.run_to_end(instance_id)
    # The shim's WhenAny is done at once (a canceled task is complete); the SDK's waits for the TimerFired.
    assert status["output"] == "timer"
    assert status["lastUpdatedTime"] == "2024-01-01T00:05:00Z"


# -- events around continue-as-new ---------------------------------------------------------------------------


def _relay_app() -> df.DFApp:
    """Generation 0 waits for a minute or for "Go", then continues as new; generation 1 waits for "Go"."""
    app = df.DFApp()

    @app.orchestration_trigger(context_name="context")
    def relay(context: df.DurableOrchestrationContext) -> Any:
        if context.get_input() == 0:
            timer = context.create_timer(context.current_utc_datetime + MINUTE)
            go = context.wait_for_external_event("Go")
            winner = yield context.task_any([timer, go])
            if winner == go:
                timer.cancel()
            context.continue_as_new(1)
            return None
        value = yield context.wait_for_external_event("Go")
        return {"value": value, "replaying": context.is_replaying}

    return app


def test_an_event_in_the_batch_that_continues_as_new_is_carried_over(
    make_engine: EngineFactory, tmp_path: Path
) -> None:
    store = tmp_path / "relay.db"
    first = make_engine(_relay_app(), store_path=store)
    instance_id = first.start("relay", 0, instance_id="relay-1")
    first.engine.run_until_idle()
    first.engine.stop()
    # With the dispatcher stopped, the timer's TimerFired and the event wait in one batch, in that order.
    later: Harness = make_engine(
        _relay_app(), store_path=store, clock=ManualClock(START + MINUTE), start=False
    )
    later.engine.raise_event(instance_id, "Go", json.dumps("carried"))
    later.engine.start()
    status = later.run_to_end(instance_id)

    continuing, continued = later.exchanges
    # The SDK stops at ContinueAsNew: it never saw the event that follows the TimerFired.
    assert _types(continuing[0]["history"])[-3:] == [12, 11, 15]
    assert continuing[1]["actions"][0][-1] == {"actionType": 4, "input": "1"}
    assert [(e["EventType"], e["IsPlayed"]) for e in continued[0]["history"]] == [
        (EventType.ORCHESTRATOR_STARTED, False),
        (EventType.EXECUTION_STARTED, False),
        (EventType.EVENT_RAISED, True),  # processed (and marked played) by the old execution
        (EventType.ORCHESTRATOR_COMPLETED, False),
    ]
    # The SDK takes the played event as replay: is_replaying is still true when the code resumes.
    assert status["output"] == {"value": "carried", "replaying": True}
    history = later.engine.history(instance_id)
    assert _types(history) == [12, 0, 15, 13, 1, 13]
    assert (history[1]["Input"], history[2]["Name"], history[2]["Input"]) == ('"1"', "Go", '"carried"')


def test_an_event_the_old_execution_awaited_is_not_carried_over(make_engine: EngineFactory) -> None:
    app = df.DFApp()

    @app.orchestration_trigger(context_name="context")
    def two_events(context: df.DurableOrchestrationContext) -> Any:
        if context.get_input() == 0:
            first = yield context.wait_for_external_event("Go")
            context.continue_as_new(first)
            return None
        second = yield context.wait_for_external_event("Go")
        return [context.get_input(), second]

    harness = make_engine(app)
    engine = harness.engine
    instance_id = harness.start("two_events", 0)
    engine.run_until_idle()
    engine.raise_event(instance_id, "Go", json.dumps("first"))
    engine.run_until_idle()
    status = engine.get_status(instance_id)
    assert status is not None
    assert (status["runtimeStatus"], status["input"]) == ("Running", '"first"')  # never ContinuedAsNew
    assert _types(engine.history(instance_id)) == [12, 0, 13]  # nothing carried, no decision yet
    engine.raise_event(instance_id, "Go", json.dumps("second"))
    engine.run_until_idle()
    assert engine.get_status(instance_id)["output"] == ["first", "second"]  # type: ignore[index]


def test_an_event_that_beat_a_canceled_timer_before_continue_as_new_is_carried_over_too(
    make_engine: EngineFactory,
) -> None:
    """The shim cancels the timer as it replays the WhenAny, so the WhenAny is done at once and the shim
    reaches ContinueAsNew before DTFx processes the event that won: the next execution receives it again
    (extension issue #2606)."""
    harness = make_engine(_relay_app())
    engine = harness.engine
    instance_id = harness.start("relay", 0)
    engine.run_until_idle()
    harness.clock.advance(30)
    engine.raise_event(instance_id, "Go", json.dumps("won"))
    engine.run_until_idle()
    continuing = harness.states()[-2]
    assert continuing["actions"][0][0]["compoundActions"][0]["isCanceled"] is True
    assert engine.get_status(instance_id)["output"] == {"value": "won", "replaying": True}  # type: ignore[index]
    # The old execution's canceled timer belongs to it: dropped, never delivered to the new one.
    assert engine.next_due_time() is None


def test_an_event_raised_while_the_continuing_episode_runs_reaches_the_next_execution(
    make_engine: EngineFactory,
) -> None:
    harness = make_engine(_relay_app())
    engine = harness.engine
    instance_id = harness.start("relay", 0)
    engine.run_until_idle()
    observe = engine.episode_observer
    assert observe is not None

    def raise_during_continue_as_new(sent: str, received: str) -> None:
        observe(sent, received)
        if '"actionType": 4' in received:  # the orchestrator returned ContinueAsNew; not committed yet
            engine.raise_event(instance_id, "Go", json.dumps("meanwhile"))

    engine.episode_observer = raise_during_continue_as_new
    harness.clock.advance(60)
    engine.run_until_idle()
    status = engine.get_status(instance_id)
    assert status is not None
    assert status["output"] == {"value": "meanwhile", "replaying": False}
    # Delivered after the new execution's first episode, as a new event.
    assert _types(engine.history(instance_id)) == [12, 0, 13, 12, 15, 1, 13]


# -- several waits on one event name -------------------------------------------------------------------------


def test_an_event_answers_the_newest_pending_wait_and_the_next_step_is_scheduled_at_once(
    make_engine: EngineFactory,
) -> None:
    app = df.DFApp()

    @app.orchestration_trigger(context_name="context")
    def polling_loop(context: df.DurableOrchestrationContext) -> Any:
        for attempt in range(2):
            go = context.wait_for_external_event("Go")  # the wait of attempt 0 is abandoned, still pending
            timer = context.create_timer(context.current_utc_datetime + MINUTE)
            winner = yield context.task_any([go, timer])
            if winner == go:
                after = yield context.call_activity("after", attempt)
                return {"answered": attempt, "after": after}
        return "no event"

    @app.activity_trigger(input_name="attempt")
    def after(attempt: int) -> str:
        return f"after attempt {attempt}"

    harness = make_engine(app)
    engine = harness.engine
    instance_id = harness.start("polling_loop")
    engine.run_until_idle()
    harness.clock.advance(60)  # attempt 0 times out
    engine.run_until_idle()
    harness.clock.advance(30)
    engine.raise_event(instance_id, "Go", json.dumps("now"))
    engine.run_until_idle()
    history = engine.history(instance_id)
    scheduled = [e for e in history if e["EventType"] == EventType.TASK_SCHEDULED]
    assert [(e["Name"], e["Timestamp"]) for e in scheduled] == [("after", "2024-01-01T00:01:30.0000000Z")]
    # The orchestrator returned, but attempt 1's timer is open (not canceled): completed when it fires.
    assert engine.get_status(instance_id)["runtimeStatus"] == "Running"  # type: ignore[index]
    status = harness.run_to_end(instance_id)
    assert status["output"] == {"answered": 1, "after": "after attempt 1"}
    assert status["lastUpdatedTime"] == "2024-01-01T00:02:00Z"


def test_of_two_waits_in_one_when_any_the_newest_takes_the_first_event(make_engine: EngineFactory) -> None:
    app = df.DFApp()

    @app.orchestration_trigger(context_name="context")
    def pair(context: df.DurableOrchestrationContext) -> Any:
        older = context.wait_for_external_event("Go")
        newer = context.wait_for_external_event("Go")
        winner = yield context.task_any([older, newer])
        other = older if winner == newer else newer
        second = yield other
        return {"winner": "newer" if winner == newer else "older", "values": [winner.result, second]}

    harness = make_engine(app)
    engine = harness.engine
    instance_id = harness.start("pair")
    engine.run_until_idle()
    engine.raise_event(instance_id, "Go", json.dumps("a"))
    engine.run_until_idle()
    assert engine.get_status(instance_id)["runtimeStatus"] == "Running"  # type: ignore[index]
    engine.raise_event(instance_id, "Go", json.dumps("b"))
    engine.run_until_idle()
    assert engine.get_status(instance_id)["output"] == {"winner": "newer", "values": ["a", "b"]}  # type: ignore[index]
    wait = {"actionType": 6, "externalEventName": "Go", "reason": "ExternalEvent"}
    assert harness.states()[-1]["actions"] == [[{"actionType": 11, "compoundActions": [wait, wait]}]]


def test_events_raised_before_any_wait_reach_the_sdk_as_the_latest_one_only(
    make_engine: EngineFactory,
) -> None:
    app = df.DFApp()

    @app.orchestration_trigger(context_name="context")
    def late_listener(context: df.DurableOrchestrationContext) -> Any:
        yield context.create_timer(context.current_utc_datetime + MINUTE)
        first = yield context.wait_for_external_event("Go")
        second = yield context.wait_for_external_event("Go")
        return [first, second]

    harness = make_engine(app)
    instance_id = harness.start("late_listener")
    harness.engine.run_until_idle()
    harness.engine.raise_event(instance_id, "Go", json.dumps("a"))
    harness.engine.raise_event(instance_id, "Go", json.dumps("b"))
    status = harness.run_to_end(instance_id)
    # The extension's context buffers both (each wait takes one), so the orchestration completes; the SDK
    # keeps only the latest early event per name and hands it to both waits.
    assert status["output"] == ["b", "b"]
    raised = [
        e["Input"] for e in harness.engine.history(instance_id) if e["EventType"] == EventType.EVENT_RAISED
    ]
    assert raised == ['"a"', '"b"']
