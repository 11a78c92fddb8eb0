"""Concurrent starts of one instance id, as the Azure Storage provider does them.

`CreateTaskOrchestrationAsync` (Azure/durabletask, src/DurableTask.AzureStorage/
AzureStorageOrchestrationService.cs L1752-1797 at tag durabletask.azurestorage-v2.9.1, commit 84a7e82c) reads
the instance, refuses a live one, queues the ExecutionStarted and only then writes the instance;
`SetNewExecutionAsync` (Tracking/AzureTableTrackingStore.cs L810-827) ignores the 409/412 of a losing write.
So two starts whose checks both precede the first write both answer 202, the instance holds the first write,
and the other ExecutionStarted is discarded (`DedupeExecutionStartedMessagesAsync`,
OrchestrationSessionManager.cs L282-318). A start that begins after another's write is refused.

The starts go through a real HTTP starter using `df.DurableOrchestrationClient`; `engine.start_hook` holds
the first start between its check and its write, which makes the race deterministic.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from devhost.durable.history import EventType
from devhost.testing import DevHost, HoldFirstStart
from tests.devhost.apps import durable_app


def _start(host: DevHost, name: str, body: Any, instance_id: str) -> requests.Response:
    return requests.post(f"{host.base_url}/api/start/{name}/{instance_id}", data=json.dumps(body), timeout=20)


def _race(host: DevHost, first_body: Any, second_body: Any) -> tuple[requests.Response, requests.Response]:
    """Start `first_body` and hold it after its duplicate check, start `second_body`, release the first."""
    hold = HoldFirstStart()
    host.engine.start_hook = hold
    with ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(_start, host, "greet", first_body, "job-1")
        assert hold.held.wait(10), "the first start never reached the engine"
        second = _start(host, "greet", second_body, "job-1")
        hold.release.set()
        first_response = first.result(timeout=20)
    host.engine.start_hook = None
    assert hold.calls == 2
    return first_response, second


def _execution_inputs(host: DevHost) -> list[Any]:
    """The inputs of the ExecutionStarted events in the instance's history, as the status shows them."""
    history = host.history("job-1")
    return [json.loads(e["Input"]) for e in history if e["EventType"] == EventType.EXECUTION_STARTED]


@pytest.mark.parametrize("earlier_run", [False, True], ids=["new id", "finished id"])
def test_starts_checked_before_the_first_write_all_answer_202_and_the_first_write_runs(
    devhost_factory: Callable[..., DevHost], earlier_run: bool
) -> None:
    host = devhost_factory(app=durable_app.app, host_json=None)
    if earlier_run:  # both starts then replace a Completed instance (a conditional replace in Azure)
        assert _start(host, "greet", "Eve", "job-1").status_code == 202
        assert host.run_until_status("job-1")["runtimeStatus"] == "Completed"

    held, second = _race(host, "Ada", "Bob")

    assert (held.status_code, second.status_code) == (202, 202), held.text
    assert held.json()["id"] == second.json()["id"] == "job-1"
    # The second start wrote the instance while the first was held: its input is the one shown and run.
    assert (host.status("job-1") or {})["input"] == '"Bob"'
    final = host.run_until_status("job-1")
    assert final["output"] == ["Hello Bob", "Hello again"]
    assert _execution_inputs(host) == ['"Bob"']
    assert host.engine.next_due_time() is None  # the held start's ExecutionStarted was dropped, not parked


def test_a_start_after_another_start_wrote_the_instance_is_refused(
    devhost_factory: Callable[..., DevHost],
) -> None:
    host = devhost_factory(app=durable_app.app, host_json=None)
    assert _start(host, "greet", "Ada", "job-1").status_code == 202
    assert (host.status("job-1") or {})["runtimeStatus"] in ("Pending", "Running")
    refused = _start(host, "greet", "Bob", "job-1")
    assert refused.status_code == 409  # the starter's answer to the client's exception
    assert "already exists" in refused.json()["error"]


def test_atomic_starts_refuse_the_start_that_writes_second(devhost_factory: Callable[..., DevHost]) -> None:
    host = devhost_factory(app=durable_app.app, host_json=None, atomic_starts=True)

    held, second = _race(host, "Ada", "Bob")

    assert second.status_code == 202
    assert held.status_code == 409
    assert "already exists" in held.json()["error"]
    assert host.run_until_status("job-1")["output"] == ["Hello Bob", "Hello again"]
    assert _execution_inputs(host) == ['"Bob"']
