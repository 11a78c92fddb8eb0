"""Clock, indexing and worker conversions (what the Python worker does around user functions)."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.durable_functions as df
import azure.functions as func
import pytest

from devhost.clock import ManualClock, ScaledClock
from devhost.indexing import IndexingError, index_app, load_app
from devhost.worker import ActivityFailed, invoke_activity, invoke_orchestrator

START = datetime(2024, 1, 1, tzinfo=UTC)


class ListSink:
    def __init__(self) -> None:
        self.writes: list[tuple[dict[str, Any], Any]] = []

    def write(self, binding: dict[str, Any], value: Any) -> None:
        self.writes.append((binding, value))


def build_app() -> df.DFApp:
    app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.orchestration_trigger(context_name="context", orchestration="renamed_orchestrator")
    def orchestrator(context: df.DurableOrchestrationContext) -> Any:
        result = yield context.call_activity("greet", context.get_input())
        return result

    @app.activity_trigger(input_name="name", activity="greet")
    @app.queue_output(arg_name="out", queue_name="results", connection="AzureWebJobsStorage")
    def greet_activity(name: str, out: func.Out[str]) -> str:
        if name == "boom":
            raise ValueError("bad name")
        out.set(f"greeted {name}")
        return f"Hello {name}"

    @app.activity_trigger(input_name="value")
    async def async_echo(value: Any) -> Any:
        return {"echo": value}

    return app


def test_index_names_follow_the_trigger_properties_and_can_be_repeated() -> None:
    app = build_app()
    index_app(app)
    index = index_app(app)  # a second get_functions() on the same app must not fail
    assert set(index.orchestrators) == {"renamed_orchestrator"}
    assert set(index.activities) == {"greet", "async_echo"}
    greet = index.activities["greet"]
    assert greet.name == "greet_activity"
    assert greet.trigger == {
        "direction": "IN",
        "type": "activityTrigger",
        "name": "name",
        "activity": "greet",
    }
    assert greet.output_bindings() == [
        {
            "direction": "OUT",
            "type": "queue",
            "name": "out",
            "queueName": "results",
            "connection": "AzureWebJobsStorage",
        }
    ]
    assert index.activities["async_echo"].is_async


def test_load_app_accepts_a_durable_app() -> None:
    app = load_app("tests.devhost.conformance.loadable_app:app")
    assert set(index_app(app).activities) == {"echo"}


def test_load_app_errors_are_clear() -> None:
    with pytest.raises(IndexingError, match="cannot import module 'no_such_module_xyz'"):
        load_app("no_such_module_xyz:app")
    with pytest.raises(IndexingError, match="has no attribute 'nope'"):
        load_app("json:nope")
    with pytest.raises(IndexingError, match=r"not an azure\.functions\.FunctionApp"):
        load_app("json:loads")


def test_duplicate_activity_names_are_rejected() -> None:
    app = df.DFApp()

    @app.activity_trigger(input_name="x", activity="same")
    def first(x: int) -> int:
        return x

    @app.activity_trigger(input_name="x", activity="same")
    def second(x: int) -> int:
        return x

    with pytest.raises(IndexingError, match="two activity functions are named 'same'"):
        index_app(app)


def test_activity_conversions_and_output_binding() -> None:
    index = index_app(build_app())
    sink = ListSink()
    assert invoke_activity(index.activities["greet"], '"Tokyo"', sink) == '"Hello Tokyo"'
    assert sink.writes == [(index.activities["greet"].output_bindings()[0], "greeted Tokyo")]
    # Non-JSON input falls back to the raw string, as ActivityTriggerConverter.decode does.
    assert invoke_activity(index.activities["greet"], "Osaka", sink) == '"Hello Osaka"'
    assert invoke_activity(index.activities["async_echo"], '{"a": [1, 2]}', None) == '{"echo": {"a": [1, 2]}}'


def test_activity_failure_reports_the_worker_message_and_writes_no_output() -> None:
    index = index_app(build_app())
    sink = ListSink()
    with pytest.raises(ActivityFailed) as failure:
        invoke_activity(index.activities["greet"], '"boom"', sink)
    assert failure.value.worker_message == "ValueError: bad name"
    assert "Traceback" in failure.value.stack
    assert sink.writes == []


def test_orchestrator_is_invoked_with_the_context_json() -> None:
    index = index_app(build_app())
    context = {
        "history": [
            {"EventType": 12, "EventId": -1, "IsPlayed": False, "Timestamp": "2024-01-01T00:00:00.0000000Z"},
            {
                "EventType": 0,
                "EventId": -1,
                "IsPlayed": False,
                "Timestamp": "2024-01-01T00:00:00.0000000Z",
                "Name": "renamed_orchestrator",
                "Version": "",
                "Input": '"\\"Tokyo\\""',
            },
        ],
        "input": '"Tokyo"',
        "instanceId": "i1",
        "isReplaying": False,
        "parentInstanceId": None,
        "upperSchemaVersion": 1,
        "upperSchemaVersionNew": 2,
    }
    state = json.loads(invoke_orchestrator(index.orchestrators["renamed_orchestrator"], json.dumps(context)))
    assert state == {
        "isDone": False,
        "schemaVersion": 2,
        "actions": [[{"actionType": 0, "functionName": "greet", "input": '"Tokyo"'}]],
    }


def test_manual_clock_wakes_sleepers_on_advance() -> None:
    clock = ManualClock(START)
    woke = threading.Event()

    def sleeper() -> None:
        clock.sleep_until(START + timedelta(hours=1), threading.Event())
        woke.set()

    thread = threading.Thread(target=sleeper)
    thread.start()
    time.sleep(0.05)
    assert not woke.is_set()
    clock.advance(3600)
    assert woke.wait(1)
    thread.join()
    assert clock.now() == START + timedelta(hours=1)
    with pytest.raises(ValueError, match="backwards"):
        clock.set(START)


def test_scaled_clock_sleeps_a_fraction_of_the_virtual_interval() -> None:
    clock = ScaledClock(speed=600)
    began = time.monotonic()
    clock.sleep_until(clock.now() + timedelta(seconds=60), threading.Event())  # 60 s virtual = 0.1 s real
    elapsed = time.monotonic() - began
    assert 0.08 <= elapsed < 1.0
