"""Instance semantics: ids, sub-orchestrations, terminate, purge, custom status, query, restart recovery."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import azure.durable_functions as df
import pytest

from devhost.clock import ScaledClock
from devhost.durable import (
    InstanceExistsError,
    InstanceNotFoundError,
    InstanceNotRunningError,
    InvalidInstanceIdError,
    UnknownFunctionError,
)

from .conftest import START, EngineFactory


def _waiting_app() -> df.DFApp:
    app = df.DFApp()

    @app.orchestration_trigger(context_name="context")
    def waiter(context: df.DurableOrchestrationContext) -> Any:
        context.set_custom_status({"phase": "waiting", "input": context.get_input()})
        value = yield context.wait_for_external_event("Continue")
        context.set_custom_status({"phase": "done"})
        return value

    return app


def test_starting_a_running_id_fails_and_a_finished_one_is_replaced(make_engine: EngineFactory) -> None:
    harness = make_engine(_waiting_app())
    engine = harness.engine
    assert harness.start("waiter", {"n": 1}, instance_id="job-1") == "job-1"
    with pytest.raises(
        InstanceExistsError, match="An Orchestration instance with the status Pending already"
    ):
        harness.start("waiter", {"n": 2}, instance_id="job-1")
    engine.run_until_idle()
    with pytest.raises(InstanceExistsError, match="status Running already exists"):
        harness.start("waiter", {"n": 2}, instance_id="job-1")
    engine.raise_event("job-1", "Continue", json.dumps("first"))
    engine.run_until_idle()
    assert engine.get_status("job-1")["output"] == "first"  # type: ignore[index]

    harness.clock.advance(10)
    harness.start("waiter", {"n": 2}, instance_id="job-1")
    engine.run_until_idle()
    status = engine.get_status("job-1")
    assert status is not None
    assert status["runtimeStatus"] == "Running"
    assert status["output"] is None
    assert status["customStatus"] == {"phase": "waiting", "input": {"n": 2}}
    assert status["createdTime"] == "2024-01-01T00:00:10Z"
    assert [e["EventType"] for e in engine.history("job-1")][:2] == [12, 0]  # the old history is gone


def test_start_errors_name_the_problem(make_engine: EngineFactory) -> None:
    harness = make_engine(_waiting_app())
    with pytest.raises(UnknownFunctionError, match="The function 'nope' doesn't exist"):
        harness.engine.start_new("nope", None, None)
    with pytest.raises(InvalidInstanceIdError, match="invalid"):
        harness.engine.start_new("waiter", "a/b", None)
    with pytest.raises(InvalidInstanceIdError):
        harness.engine.start_new("waiter", "@entity", None)
    generated = harness.engine.start_new("waiter", None, None)
    assert len(generated) == 32
    assert int(generated, 16) >= 0


def test_custom_status_terminate_and_events_to_finished_instances(make_engine: EngineFactory) -> None:
    harness = make_engine(_waiting_app())
    engine = harness.engine
    instance_id = harness.start("waiter", "x")
    engine.run_until_idle()
    assert engine.get_status(instance_id)["customStatus"] == {"phase": "waiting", "input": "x"}  # type: ignore[index]
    harness.clock.advance(5)
    engine.terminate(instance_id, "no longer needed")
    engine.run_until_idle()
    status = engine.get_status(instance_id)
    assert status is not None
    assert (status["runtimeStatus"], status["output"]) == ("Terminated", "no longer needed")
    assert status["customStatus"] == {"phase": "waiting", "input": "x"}
    assert status["lastUpdatedTime"] == "2024-01-01T00:00:05Z"
    with pytest.raises(InstanceNotRunningError):
        engine.raise_event(instance_id, "Continue", "1")
    with pytest.raises(InstanceNotRunningError):
        engine.terminate(instance_id, "again")
    with pytest.raises(InstanceNotFoundError, match=r"No instance with ID 'ghost' found\."):
        engine.raise_event("ghost", "Continue", "1")


def test_query_purge_and_status_history(make_engine: EngineFactory) -> None:
    harness = make_engine(_waiting_app())
    engine = harness.engine
    finished = harness.start("waiter", 1, instance_id="finished")
    engine.run_until_idle()
    engine.raise_event(finished, "Continue", json.dumps("ok"))
    engine.run_until_idle()
    harness.clock.advance(60)
    harness.start("waiter", 2, instance_id="running")
    engine.run_until_idle()

    assert [s["instanceId"] for s in engine.query(runtime_status=["Running"])] == ["running"]
    assert [s["instanceId"] for s in engine.query(created_from=START + timedelta(seconds=30))] == ["running"]
    assert [s["instanceId"] for s in engine.query(top=1)] == ["finished"]
    assert (
        engine.query(runtime_status=["Completed"])[0]["input"] is None
    )  # list queries omit inputs by default

    detailed = engine.get_status(finished, show_history=True, show_history_output=True)
    assert detailed is not None
    assert [e["EventType"] for e in detailed["historyEvents"]] == [
        "ExecutionStarted",
        "EventRaised",
        "ExecutionCompleted",
    ]
    assert detailed["historyEvents"][1]["Input"] == '"ok"'
    without_output = engine.get_status(finished, show_history=True)
    assert without_output is not None
    assert "Input" not in without_output["historyEvents"][1]

    assert engine.purge(finished) is True
    assert engine.get_status(finished) is None
    assert engine.purge(finished) is False
    assert engine.purge_where(runtime_status=["Running"]) == 1
    assert engine.query() == []


def _parent_child_app(child_failures: int) -> df.DFApp:
    app = df.DFApp()
    calls: list[int] = []

    @app.orchestration_trigger(context_name="context")
    def parent(context: df.DurableOrchestrationContext) -> Any:
        plain = yield context.call_sub_orchestrator("child", {"x": 2}, "child-plain")
        try:
            retried = yield context.call_sub_orchestrator_with_retry(
                "child", df.RetryOptions(1000, 2), {"x": 3, "fail": True}, "child-retried"
            )
        except Exception as error:
            retried = f"caught: {str(error).splitlines()[0]}"
        return {"plain": plain, "retried": retried}

    @app.orchestration_trigger(context_name="context")
    def child(context: df.DurableOrchestrationContext) -> Any:
        payload = context.get_input()
        doubled = yield context.call_activity("double", payload["x"])
        if payload.get("fail"):
            calls.append(1)
            if len(calls) <= child_failures:
                raise RuntimeError(f"child failure {len(calls)}")
        return {"doubled": doubled, "parent": context.parent_instance_id}

    @app.activity_trigger(input_name="x")
    def double(x: int) -> int:
        return 2 * x

    return app


def test_sub_orchestrations_complete_and_retry(make_engine: EngineFactory) -> None:
    harness = make_engine(_parent_child_app(child_failures=1))
    parent_id = harness.start("parent", None, instance_id="parent-1")
    status = harness.run_to_end(parent_id)
    assert status["output"] == {
        "plain": {"doubled": 4, "parent": "parent-1"},
        "retried": {"doubled": 6, "parent": "parent-1"},
    }
    history = harness.engine.history(parent_id)
    created = [(e["EventId"], e["Name"], e["InstanceId"]) for e in history if e["EventType"] == 7]
    assert created == [
        (0, "child", "child-plain"),
        (1, "child", "child-retried"),
        (3, "child", "child-retried"),
    ]
    assert [e["TimerId"] for e in history if e["EventType"] == 11] == [2]
    child_status = harness.engine.get_status("child-retried")
    assert child_status is not None
    assert child_status["runtimeStatus"] == "Completed"


def test_a_failed_sub_orchestration_reaches_the_parent_as_an_exception(make_engine: EngineFactory) -> None:
    harness = make_engine(_parent_child_app(child_failures=5))
    status = harness.run_to_end(harness.start("parent", None))
    assert status["output"]["retried"] == (
        "caught: Orchestrator function 'child' failed: child failure 2 "
    ), status["output"]
    failed_child = harness.engine.get_status("child-retried")
    assert failed_child is not None
    assert failed_child["runtimeStatus"] == "Failed"


def test_an_activity_running_when_the_process_died_runs_again_on_restart(
    make_engine: EngineFactory, tmp_path: Path
) -> None:
    app = df.DFApp()
    entered = threading.Event()
    release = threading.Event()
    invocations: list[str] = []

    @app.orchestration_trigger(context_name="context")
    def one_step(context: df.DurableOrchestrationContext) -> Any:
        result = yield context.call_activity("slow_step", context.get_input())
        return result

    @app.activity_trigger(input_name="value")
    def slow_step(value: str) -> str:
        invocations.append(value)
        if len(invocations) == 1:
            entered.set()
            release.wait(5)  # the first process "dies" while this runs: its result is never recorded
        return f"done {value}"

    first = make_engine(app, store_path=tmp_path / "first.db")
    instance_id = first.start("one_step", "job")
    assert entered.wait(5)
    # What a kill leaves on disk is exactly the committed state: take a consistent copy of it now.
    snapshot = tmp_path / "after-kill.db"
    source = sqlite3.connect(tmp_path / "first.db")
    target = sqlite3.connect(snapshot)
    source.backup(target)
    source.close()
    target.close()

    second = make_engine(app, store_path=snapshot)
    status = second.engine.wait_for_status(instance_id, ["Completed"], timeout=5)
    assert status["output"] == "done job"
    assert invocations == ["job", "job"]  # at-least-once: the interrupted invocation ran again
    release.set()


def test_a_thirty_minute_monitor_runs_in_well_under_a_second(make_engine: EngineFactory) -> None:
    app = df.DFApp()
    checks: list[int] = []

    @app.orchestration_trigger(context_name="context")
    def monitor(context: df.DurableOrchestrationContext) -> Any:
        expiry = context.current_utc_datetime + timedelta(hours=1)
        while context.current_utc_datetime < expiry:
            state = yield context.call_activity("check_job", context.get_input())
            context.set_custom_status({"last": state})
            if state == "done":
                return {"finishedAt": context.current_utc_datetime.isoformat()}
            yield context.create_timer(context.current_utc_datetime + timedelta(minutes=5))
        return "expired"

    @app.activity_trigger(input_name="job")
    def check_job(job: str) -> str:
        checks.append(1)
        return "done" if len(checks) > 6 else "running"

    harness = make_engine(app)
    began = time.monotonic()
    status = harness.run_to_end(harness.start("monitor", "job-42"))
    elapsed = time.monotonic() - began
    assert status["output"] == {"finishedAt": "2024-01-01T00:30:00+00:00"}
    assert status["customStatus"] == {"last": "done"}
    assert len(checks) == 7
    assert elapsed < 1.0, f"30 virtual minutes took {elapsed:.2f} s of real time"


def test_a_sub_orchestration_without_an_id_gets_dtfx_execution_id_and_sequence_id(
    make_engine: EngineFactory,
) -> None:
    app = df.DFApp()

    @app.orchestration_trigger(context_name="context")
    def outer(context: df.DurableOrchestrationContext) -> Any:
        result = yield context.call_sub_orchestrator("inner", "hi")
        return result

    @app.orchestration_trigger(context_name="context")
    def inner(context: df.DurableOrchestrationContext) -> Any:
        return f"{context.get_input()} from {context.instance_id}"
        yield  # a generator, like every orchestrator

    harness = make_engine(app)
    outer_id = harness.start("outer")
    status = harness.run_to_end(outer_id)
    execution_id = harness.engine.history(outer_id)[1]["OrchestrationInstance"]["ExecutionId"]
    assert status["output"] == f"hi from {execution_id}:0"


def test_terminating_a_sub_orchestration_fails_the_parent_task_with_the_reason(
    make_engine: EngineFactory,
) -> None:
    app = df.DFApp()

    @app.orchestration_trigger(context_name="context")
    def supervisor(context: df.DurableOrchestrationContext) -> Any:
        try:
            yield context.call_sub_orchestrator("stuck", None, "stuck-child")
        except Exception as error:
            return str(error).splitlines()[0]
        return "child finished"

    @app.orchestration_trigger(context_name="context")
    def stuck(context: df.DurableOrchestrationContext) -> Any:
        yield context.wait_for_external_event("Never")

    harness = make_engine(app)
    parent_id = harness.start("supervisor")
    harness.engine.run_until_idle()
    harness.engine.terminate("stuck-child", "operator stopped it")
    status = harness.run_to_end(parent_id)
    assert status["output"] == "operator stopped it "


def test_a_scaled_clock_fires_timers_sooner_but_orchestrations_see_the_full_interval(
    make_engine: EngineFactory,
) -> None:
    app = df.DFApp()

    @app.orchestration_trigger(context_name="context")
    def hourly(context: df.DurableOrchestrationContext) -> Any:
        began = context.current_utc_datetime
        yield context.create_timer(began + timedelta(hours=1))
        return (context.current_utc_datetime - began).total_seconds()

    harness = make_engine(app, clock=ScaledClock(speed=7200))  # one virtual hour = 0.5 s
    began = time.monotonic()
    status = harness.engine.wait_for_status(harness.start("hourly"), ["Completed"], timeout=5)
    elapsed = time.monotonic() - began
    assert 3600 <= status["output"] < 3600 + 7200 * 0.5  # the full hour, plus scheduling slack
    assert 0.4 <= elapsed < 2.0


def _status_size_app() -> df.DFApp:
    """Sets a custom status of `size` UTF-16 code units of JSON, between two activities."""
    app = df.DFApp()

    @app.orchestration_trigger(context_name="context")
    def sized_status(context: df.DurableOrchestrationContext) -> Any:
        options = context.get_input()
        context.set_custom_status("small")
        yield context.call_activity("noop", 1)
        # A JSON string of n characters serializes to n + 2 UTF-16 code units (2 bytes each).
        context.set_custom_status(options["char"] * (options["units"] - 2))
        if options.get("raise"):
            raise RuntimeError("after the status")
        yield context.call_activity("noop", 2)
        return "done"

    @app.activity_trigger(input_name="value")
    def noop(value: int) -> int:
        return value

    return app


def test_custom_status_up_to_16_kb_of_utf16_is_accepted(make_engine: EngineFactory) -> None:
    harness = make_engine(_status_size_app())
    # 17407 bytes is 16 KB after the extension's rounding down; CJK characters are 3 bytes in UTF-8 but one
    # UTF-16 unit, and stay unescaped in the serialized JSON (Newtonsoft's default escaping).
    status = harness.run_to_end(harness.start("sized_status", {"char": "語", "units": 17407 // 2}))
    assert status["runtimeStatus"] == "Completed"
    assert status["customStatus"] == "語" * (17407 // 2 - 2)


def test_custom_status_over_16_kb_fails_the_orchestration_with_the_extensions_message(
    make_engine: EngineFactory,
) -> None:
    harness = make_engine(_status_size_app())
    instance_id = harness.start("sized_status", {"char": "x", "units": 17408 // 2})
    status = harness.run_to_end(instance_id)
    assert status["runtimeStatus"] == "Failed"
    assert status["output"] == (
        "Orchestrator function 'sized_status' failed: The UTF-16 size of the JSON-serialized payload "
        "must not exceed 16 KB. The current payload size is 17 KB."
    )
    assert status["customStatus"] == "small"  # SetCustomStatus threw: the previous value stays
    # The shim sets the custom status before replaying actions: the second activity is never scheduled.
    scheduled = [e for e in harness.engine.history(instance_id) if e["EventType"] == 4]
    assert len(scheduled) == 1


def test_oversized_custom_status_with_an_uncaught_error_fails_with_the_bare_message(
    make_engine: EngineFactory,
) -> None:
    harness = make_engine(_status_size_app())
    status = harness.run_to_end(harness.start("sized_status", {"char": "x", "units": 40000, "raise": True}))
    assert status["runtimeStatus"] == "Failed"
    # The ArgumentException escapes the $OutOfProcData$ replay unwrapped; DTFx records its message.
    assert status["output"] == (
        "The UTF-16 size of the JSON-serialized payload must not exceed 16 KB. "
        "The current payload size is 78 KB."
    )
