"""Durable entities as the extension runs them for a Python app (out-of-proc, JSON protocol 1.x).

Sources: extension = Azure/azure-functions-durable-extension v2.13.7 (commit a7c6d694), paths under
`src/WebJobs.Extensions.DurableTask/`; DTFx = Azure/durabletask commit 52170329, paths under `src/`; SDK =
azure-functions-durable 1.7.0 (PyPI), paths under `azure/durable_functions/`.

* Entity trigger JSON: `Bindings/EntityTriggerAttributeBindingProvider.cs` L181-203 (`self`, `exists`,
  `state`, `batch` of `name`/`input`/`isSignal`; `JObject.ToString()` is indented). The SDK answers
  `entityExists`/`entityState`/`results` (`isError`, `duration`, `startTime`, `result`)/`signals`
  (`models/entities/EntityState.py` L52-68, `OperationResult.py`), read as `TaskEntityShim.OutOfProcResult`
  (`Listener/TaskEntityShim.cs` L715-792).
* One invocation per batch; the state after the batch is kept whatever the operations did
  (`TaskEntityShim.cs` L564-613): the per-operation rollback (`RollbackEntityOperationsOnExceptions`,
  L500-518) is only on the in-process path, and the SDK keeps what a failing operation set (`entity.py`
  L53-82). A call is answered with a `ResponseMessage` whose `exceptionType` is "Error" when the operation
  failed (L663-676).
* Batches: up to `maxEntityOperationBatchSize` queued operations (`DurableTaskExtension.cs` L987-1012);
  one batch of an entity at a time (an entity is one DTFx instance, whose work items never overlap).
* From an orchestrator: `CallEntity`/`SignalEntity` actions (`Listener/OutOfProcOrchestrationShim.cs`
  L145-159) become a `RequestMessage` sent with DTFx `SendEvent` (`ContextImplementations/
  DurableOrchestrationContext.cs` L651-700, L1168-1207): an `EventSent` taking the next sequence id
  (`DurableTask.Core/TaskOrchestrationContext.cs` L229-248, `TaskOrchestrationDispatcher.cs` L1340-1375),
  request id = `NewGuid()` (L1221-1234), the orchestration's default `JsonDataConverter` writing a `$type`
  (`TaskOrchestrationShim.cs` L61-64, `DurableTask.Core/Serializing/JsonDataConverter.cs` L40). The response
  is an `EventRaised` named after the request id (L835-847); the SDK re-keys the call on the `EventSent`'s
  `id` and raises the result as a plain `Exception` when `exceptionType` is present
  (`models/TaskOrchestrationExecutor.py` L146-157, L221-228).
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import azure.durable_functions as df
import pytest

from devhost.durable.history import EventType
from devhost.host import entity_batch_size
from devhost.indexing import IndexingError
from devhost.local_settings import SettingsError

from .conftest import START, EngineFactory, Harness

ASSEMBLY = "Microsoft.Azure.WebJobs.Extensions.DurableTask"
REQUEST_TYPE = f"{ASSEMBLY}.RequestMessage, {ASSEMBLY}"
RESPONSE_TYPE = f"{ASSEMBLY}.ResponseMessage, {ASSEMBLY}"


def counter_app() -> df.DFApp:
    app = df.DFApp()

    @app.entity_trigger(context_name="context", entity_name="Counter")
    def counter(context: df.DurableEntityContext) -> None:
        value = context.get_state(lambda: 0)
        operation = context.operation_name
        if operation == "add":
            context.set_state(value + context.get_input())
        elif operation == "reset":
            context.set_state(0)
        elif operation == "get":
            context.set_result(value)
        elif operation == "add_then_fail":
            context.set_state(value + context.get_input())
            raise ValueError("over the limit")

    return app


def _signal(harness: Harness, key: str, operation: str, value: Any) -> None:
    """Signal like the Python client: the body is the JSON string of json.dumps(value), stored as is."""
    harness.engine.signal_entity("Counter", key, operation, json.dumps(json.dumps(value)))


def _entity_batches(harness_exchanges: list[tuple[str, str]]) -> list[list[str]]:
    return [[op["name"] for op in json.loads(context)["batch"]] for context, _ in harness_exchanges]


def _observing(
    make_engine: EngineFactory, app: df.DFApp, **options: Any
) -> tuple[Harness, list[tuple[str, str]]]:
    batches: list[tuple[str, str]] = []
    harness = make_engine(
        app, entity_observer=lambda sent, received: batches.append((sent, received)), **options
    )
    return harness, batches


# -- the protocol --------------------------------------------------------------------------------------------


def test_call_and_signal_send_the_extensions_messages_and_entity_json(make_engine: EngineFactory) -> None:
    app = counter_app()

    @app.orchestration_trigger(context_name="context")
    def caller(context: df.DurableOrchestrationContext) -> Any:
        counter = df.EntityId("Counter", "k")
        context.signal_entity(counter, "add", 5)
        yield context.call_entity(counter, "add", 1)
        return (yield context.call_entity(counter, "get"))

    harness, batches = _observing(make_engine, app)
    status = harness.run_to_end(harness.start("caller", instance_id="inst-1"))
    assert status["output"] == 6

    history = harness.engine.history("inst-1")
    execution_id = history[1]["OrchestrationInstance"]["ExecutionId"]
    sent = [e for e in history if e["EventType"] == EventType.EVENT_SENT]
    # Sequence ids 0, 1, 2; request ids are NewGuid(): v5 UUIDs of "inst-1_2024-01-01T00:00:00.0000000Z_<n>"
    # in GuidManager.UrlNamespaceValue. Timestamp/Predecessor are MessageSorter labels (+1 tick per message).
    assert [(e["EventId"], e["InstanceId"], e["Name"]) for e in sent] == [
        (n, "@counter@k", "op") for n in range(3)
    ]
    assert sent[0]["Input"] == (
        f'{{"$type":"{REQUEST_TYPE}","op":"add","signal":true,"input":"\\"5\\"",'
        f'"id":"caf372d6-f2e5-5adb-b8b9-af97eec0ea87","parent":"inst-1","parentExecution":"{execution_id}",'
        '"Timestamp":"2024-01-01T00:00:00Z","Predecessor":"0001-01-01T00:00:00"}'
    )
    assert json.loads(sent[1]["Input"]) == {
        "$type": REQUEST_TYPE,
        "op": "add",
        "input": '"1"',
        "id": "62599eec-c0b2-5f48-8a73-30f674226315",
        "parent": "inst-1",
        "parentExecution": execution_id,
        "Timestamp": "2024-01-01T00:00:00.0000001Z",
        "Predecessor": "2024-01-01T00:00:00Z",
    }
    responses = [e for e in history if e["EventType"] == EventType.EVENT_RAISED]
    assert [(e["Name"], json.loads(e["Input"])) for e in responses] == [
        ("62599eec-c0b2-5f48-8a73-30f674226315", {"$type": RESPONSE_TYPE, "result": "null"}),
        (json.loads(sent[2]["Input"])["id"], {"$type": RESPONSE_TYPE, "result": "6"}),
    ]

    # The signal and the call queued together form the first batch; the input is JSON text in a string.
    context_json, result_json = batches[0]
    assert context_json == (
        "{\n"
        '  "self": {\n    "name": "counter",\n    "key": "k"\n  },\n'
        '  "exists": false,\n  "state": null,\n'
        '  "batch": [\n'
        '    {\n      "name": "add",\n      "input": "\\"5\\"",\n      "isSignal": true\n    },\n'
        '    {\n      "name": "add",\n      "input": "\\"1\\"",\n      "isSignal": false\n    }\n'
        "  ]\n}"
    )
    result = json.loads(result_json)
    assert list(result) == ["entityExists", "entityState", "results", "signals"]
    assert (result["entityExists"], result["entityState"], result["signals"]) == (True, "6", [])
    assert [list(r) for r in result["results"]] == [["isError", "duration", "startTime", "result"]] * 2
    assert [(r["isError"], r["result"]) for r in result["results"]] == [(False, "null"), (False, "null")]
    assert json.loads(batches[1][0])["state"] == "6"


def test_entity_messages_take_sequence_ids_and_replay_across_episodes(make_engine: EngineFactory) -> None:
    app = counter_app()

    @app.orchestration_trigger(context_name="context")
    def tally(context: df.DurableOrchestrationContext) -> Any:
        counter = df.EntityId("Counter", context.get_input())
        seen = []
        for amount in (2, 3):
            context.signal_entity(counter, "add", amount)
            yield context.create_timer(context.current_utc_datetime + timedelta(minutes=1))
            seen.append((yield context.call_entity(counter, "get")))
        yield context.call_activity("note", seen)
        context.signal_entity(counter, "reset")
        return {"seen": seen, "replaying": context.is_replaying}

    @app.activity_trigger(input_name="seen")
    def note(seen: list) -> int:  # the worker refuses generic annotations such as list[int]
        return len(seen)

    harness = make_engine(app)
    status = harness.run_to_end(harness.start("tally", "k"))
    assert status["output"] == {"seen": [2, 5], "replaying": False}
    # The signal sent in the episode that completes the instance is still delivered.
    harness.engine.run_until_idle()
    assert harness.engine.read_entity_state("counter", "k") == "0"

    history = harness.engine.history(status["instanceId"])
    scheduling = [
        (e["EventId"], EventType(e["EventType"]).name)
        for e in history
        if e["EventType"] in (EventType.EVENT_SENT, EventType.TIMER_CREATED, EventType.TASK_SCHEDULED)
    ]
    assert scheduling == [
        (0, "EVENT_SENT"), (1, "TIMER_CREATED"), (2, "EVENT_SENT"),
        (3, "EVENT_SENT"), (4, "TIMER_CREATED"), (5, "EVENT_SENT"),
        (6, "TASK_SCHEDULED"), (7, "EVENT_SENT"),
    ]  # fmt: skip
    # Each request id is named after the time of the episode that sent it: the replays found the same ids.
    sent_ids = [json.loads(e["Input"])["id"] for e in history if e["EventType"] == EventType.EVENT_SENT]
    answered = [e["Name"] for e in history if e["EventType"] == EventType.EVENT_RAISED]
    assert answered == [sent_ids[1], sent_ids[3]]
    assert len(set(sent_ids)) == len(sent_ids) == 5


def test_a_changed_entity_call_is_non_deterministic(make_engine: EngineFactory) -> None:
    app = counter_app()
    plan = {"entity_first": True}

    @app.orchestration_trigger(context_name="context")
    def changing(context: df.DurableOrchestrationContext) -> Any:
        if plan["entity_first"]:
            plan["entity_first"] = False
            yield context.call_entity(df.EntityId("Counter", "k"), "get")
        yield context.call_activity("noop")

    @app.activity_trigger(input_name="unused")
    def noop(unused: str) -> None:
        return None

    harness = make_engine(app)
    status = harness.run_to_end(harness.start("changing"))
    assert status["runtimeStatus"] == "Failed"
    # TaskOrchestrationContext.HandleEventSentEvent (L427-467).
    assert status["output"].startswith(
        "Non-Deterministic workflow detected: A previous execution of this orchestration scheduled a send "
        "event task with sequence ID 0, type 'EventSent', name 'op', instance ID '@counter@k', but the "
        "current orchestration replay instead scheduled a ScheduleTaskOrchestratorAction task at this "
        "sequence number."
    )


def test_an_unknown_entity_fails_the_orchestration(make_engine: EngineFactory) -> None:
    app = counter_app()

    @app.orchestration_trigger(context_name="context")
    def lost(context: df.DurableOrchestrationContext) -> Any:
        return (yield context.call_entity(df.EntityId("Missing", "k"), "get"))

    harness = make_engine(app)
    status = harness.run_to_end(harness.start("lost"))
    assert status["runtimeStatus"] == "Failed"
    assert (
        status["output"] == "The function 'missing' doesn't exist, is disabled, or is not an entity function."
    )


def test_two_entity_functions_with_one_name_are_refused(make_engine: EngineFactory) -> None:
    app = counter_app()

    @app.entity_trigger(context_name="context", entity_name="COUNTER")
    def other_counter(context: df.DurableEntityContext) -> None:
        context.set_result(None)

    with pytest.raises(IndexingError, match="two entity functions are named 'counter'"):
        make_engine(app)


# -- operation errors ----------------------------------------------------------------------------------------


def test_an_operation_error_raises_in_the_caller_and_the_batch_keeps_its_state(
    make_engine: EngineFactory, caplog: pytest.LogCaptureFixture
) -> None:
    app = counter_app()

    @app.orchestration_trigger(context_name="context")
    def careful(context: df.DurableOrchestrationContext) -> Any:
        counter = df.EntityId("Counter", "k")
        try:
            yield context.call_entity(counter, "add_then_fail", 100)
        except Exception as error:  # the SDK raises a plain Exception with the operation's message
            failure = f"{type(error).__name__}: {error}"
        return {"failure": failure, "after": (yield context.call_entity(counter, "get"))}

    harness, batches = _observing(make_engine, app)
    with caplog.at_level(logging.INFO, logger="devhost"):
        status = harness.run_to_end(harness.start("careful"))
    # No rollback for out-of-proc entities: the failed operation's set_state is kept.
    assert status["output"] == {"failure": "Exception: over the limit", "after": 100}
    result = json.loads(batches[0][1])
    assert (result["entityState"], result["results"][0]["isError"], result["results"][0]["result"]) == (
        "100",
        True,
        '"over the limit"',
    )
    response = [
        e for e in harness.engine.history(status["instanceId"]) if e["EventType"] == EventType.EVENT_RAISED
    ]
    assert json.loads(response[0]["Input"]) == {
        "$type": RESPONSE_TYPE,
        "result": '"over the limit"',
        "exceptionType": "Error",
    }
    # The extension rethrows operation errors, so the host logs the entity invocation as failed.
    executed = [
        r.getMessage() for r in caplog.records if r.getMessage().startswith("Executed 'Functions.counter'")
    ]
    assert [line.split(" (")[1].split(",")[0] for line in executed] == ["Failed", "Succeeded"]


def test_a_batch_the_worker_cannot_finish_runs_again_after_the_queues_back_off(
    make_engine: EngineFactory,
) -> None:
    app = df.DFApp()
    failures = {"left": 2}

    @app.entity_trigger(context_name="context")
    def fragile(context: df.DurableEntityContext) -> None:
        # A state the SDK cannot serialize fails the whole invocation, not one operation.
        context.set_state({"ok"} if failures["left"] else ["ok"])
        failures["left"] -= 1
        context.set_result(failures["left"])

    @app.orchestration_trigger(context_name="context")
    def patient(context: df.DurableOrchestrationContext) -> Any:
        return (yield context.call_entity(df.EntityId("fragile", "k"), "touch"))

    harness = make_engine(app)
    instance_id = harness.start("patient")
    harness.engine.run_until_idle()
    # DurableTask.AzureStorage TaskHubQueue.AbandonMessageAsync: 2^n s, at most 600 s.
    assert harness.engine.next_due_time() == START + timedelta(seconds=2)
    harness.clock.advance(2)
    harness.engine.run_until_idle()
    assert harness.engine.next_due_time() == START + timedelta(seconds=6)
    status = harness.run_to_end(instance_id)
    assert (status["output"], status["lastUpdatedTime"]) == (-1, "2024-01-01T00:00:06Z")
    assert harness.engine.read_entity_state("fragile", "k") == '["ok"]'


# -- batching and concurrency --------------------------------------------------------------------------------


@pytest.mark.parametrize(("max_batch", "expected"), [(5000, [5]), (2, [2, 2, 1])])
def test_queued_operations_run_in_batches_of_at_most_the_max_size(
    make_engine: EngineFactory, max_batch: int, expected: list[int]
) -> None:
    harness, batches = _observing(
        make_engine, counter_app(), start=False, max_entity_operation_batch_size=max_batch
    )
    for amount in range(1, 6):
        _signal(harness, "k", "add", amount)
    harness.engine.start()
    harness.engine.run_until_idle()
    assert [len(names) for names in _entity_batches(batches)] == expected
    assert harness.engine.read_entity_state("counter", "k") == "15"


def test_the_max_batch_size_defaults_like_the_azure_storage_provider() -> None:
    # AzureStorageDurabilityProviderFactory.cs L61, L88; DurableTaskOptions.cs L348-351.
    assert entity_batch_size({}, {}) == 5000
    assert entity_batch_size({}, {"WEBSITE_SKU": "Dynamic"}) == 50
    assert entity_batch_size({"MaxEntityOperationBatchSize": 3}, {"WEBSITE_SKU": "Dynamic"}) == 3
    with pytest.raises(SettingsError, match="must be a positive integer"):
        entity_batch_size({"maxEntityOperationBatchSize": 0}, {})


def test_operations_of_one_entity_never_overlap(make_engine: EngineFactory) -> None:
    app = df.DFApp()
    active: Counter[str] = Counter()
    changed = threading.Condition()
    # The first operations of the two entities wait for each other: different entities do run at once.
    first_meeting = threading.Barrier(2, timeout=5)
    observed = {"same_entity_at_once": 0}

    @app.entity_trigger(context_name="context")
    def tally(context: df.DurableEntityContext) -> None:
        key = context.entity_key
        count = context.get_state(lambda: 0)
        if count == 0:
            first_meeting.wait()
        with changed:
            active[key] += 1
            changed.notify_all()
            # Hold the operation a moment for a second batch of the same entity to show up.
            changed.wait_for(lambda: active[key] > 1, timeout=0.02)
            observed["same_entity_at_once"] = max(observed["same_entity_at_once"], active[key])
            active[key] -= 1
        context.set_state(count + 1)
        context.set_result(count + 1)

    @app.orchestration_trigger(context_name="context")
    def caller(context: df.DurableOrchestrationContext) -> Any:
        return (yield context.call_entity(df.EntityId("tally", context.get_input()), "count"))

    harness = make_engine(app, start=False, max_entity_operation_batch_size=1)
    instance_ids = [harness.start("caller", key) for key in ["a", "b"] * 6]
    harness.engine.start()
    statuses = [harness.run_to_end(instance_id) for instance_id in instance_ids]
    outputs = sorted((status["input"], status["output"]) for status in statuses)

    assert observed["same_entity_at_once"] == 1
    assert outputs == sorted((json.dumps(key), n) for key in "ab" for n in range(1, 7))
    assert (
        harness.engine.read_entity_state("tally", "a")
        == harness.engine.read_entity_state("tally", "b")
        == "6"
    )


# -- durability ----------------------------------------------------------------------------------------------


def test_state_and_queued_operations_survive_a_restart(make_engine: EngineFactory, tmp_path: Path) -> None:
    app = counter_app()

    @app.orchestration_trigger(context_name="context")
    def reader(context: df.DurableOrchestrationContext) -> Any:
        return (yield context.call_entity(df.EntityId("Counter", "k"), "get"))

    store_path = tmp_path / "restart.db"
    first = make_engine(app, store_path=store_path)
    _signal(first, "k", "add", 7)
    first.engine.run_until_idle()
    first.engine.stop()

    queued = make_engine(app, store_path=store_path, start=False)
    _signal(queued, "k", "add", 1)
    queued.engine.stop()  # never started: the operation stays queued in the file

    second = make_engine(app, store_path=store_path)
    status = second.run_to_end(second.start("reader"))
    assert status["output"] == 8
