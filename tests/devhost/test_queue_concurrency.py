"""Queue batches run concurrently, bounded as the queue extension bounds them.

In Azure/azure-sdk-for-net, under sdk/storage/Microsoft.Azure.WebJobs.Extensions.Storage.Common/src/Shared:
`Queues/QueueListener.cs` (commit 22354f3845a6454b0b784ea023a0d892180b12f0) receives `BatchSize` messages
per poll (L231, L242), starts each without awaiting it (L294-299) and polls again only once no more than
`NewBatchThreshold` are still running (`WaitForNewBatchThreshold`, L386-393). `Queues/QueuesOptions.cs`
(commit 3e25d84a0e3ce4e957cde5aa6885a9af1db8345c) defaults `NewBatchThreshold` to
`(BatchSize / 2) * processorCount` (L108); `SkuUtility.cs` (commit 853ae6f9517572fdb981dbfac4d99953bdb56b4d)
counts one processor when `WEBSITE_SKU` is `Dynamic` (L22-30).

The functions of `held_queue_app` wait until the test releases them, so how many run at once is observable
without timing: the tests step the releases and wait for the counts the bound allows.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.storage.queue import QueueClient

from devhost.local_settings import SettingsError
from devhost.queues import QueueOptions, QueueTriggerListener, next_polling_delay
from devhost.testing import Azurite, DevHost
from tests.devhost.apps import held_queue_app
from tests.devhost.apps.held_queue_app import Gate


def _queues(**options: Any) -> dict[str, Any]:
    return {"version": "2.0", "extensions": {"queues": options}}


# ---------------------------------------------------------------------------------------------- options


def test_new_batch_threshold_defaults_to_half_a_batch_per_processor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    assert QueueOptions.from_host_json(_queues(), environ={}).new_batch_threshold == 8 * 3
    consumption = {"WEBSITE_SKU": "Dynamic"}
    assert QueueOptions.from_host_json(_queues(), environ=consumption).new_batch_threshold == 8
    assert QueueOptions.from_host_json(_queues(batchSize=5), environ=consumption).new_batch_threshold == 2
    configured = QueueOptions.from_host_json(_queues(batchSize=5, newBatchThreshold=0), environ={})
    assert (configured.batch_size, configured.new_batch_threshold) == (5, 0)


@pytest.mark.parametrize(
    "options",
    [{"batchSize": 0}, {"batchSize": 33}, {"newBatchThreshold": -1}, {"maxPollingInterval": "00:00:00.05"}],
)
def test_queue_options_the_extension_refuses_stop_the_start(options: dict[str, Any]) -> None:
    with pytest.raises(SettingsError, match=next(iter(options))):
        QueueOptions.from_host_json(_queues(**options), environ={})


def test_polling_backs_off_like_the_extension_without_its_jitter() -> None:
    # RandomizedExponentialBackoffStrategy.cs L49-L86 (commit a256d07e7edbfbbd31bcfa3b1d5266907bb30397): the
    # minimum 0.1 s, then the minimum plus an increment that doubles, capped at maxPollingInterval.
    delays: list[float] = []
    delay, exponent = 0.0, 0
    for _ in range(8):
        delay, exponent = next_polling_delay(delay, exponent, False, 2.0)
        delays.append(delay)
    assert delays == pytest.approx([0.1, 0.2, 0.3, 0.5, 0.9, 1.7, 2.0, 2.0])
    assert next_polling_delay(delay, exponent, True, 2.0) == (pytest.approx(0.1), 1)


# ------------------------------------------------------------------------------------- against Azurite


@pytest.fixture
def names() -> dict[str, str]:
    suffix = uuid.uuid4().hex[:10]
    return {"HOLD_QUEUE": f"hold-{suffix}", "HOLD_ASYNC_QUEUE": f"hold-async-{suffix}"}


@pytest.fixture
def gate(devhost_factory: Callable[..., DevHost], monkeypatch: pytest.MonkeyPatch) -> Iterator[Gate]:
    """A fresh gate for the app's functions, opened before the hosts stop (this fixture tears down first)."""
    fresh = Gate()
    monkeypatch.setattr(held_queue_app, "GATE", fresh)
    yield fresh
    fresh.release()


@pytest.fixture
def receives(monkeypatch: pytest.MonkeyPatch, gate: Gate) -> list[tuple[str, int | None, int]]:
    """Every receive on any queue: (queue, messages per request, invocations inside the gate at that time)."""
    calls: list[tuple[str, int | None, int]] = []
    original = QueueClient.receive_messages

    def recording(self: QueueClient, *args: Any, **kwargs: Any) -> Any:
        calls.append((self.queue_name, kwargs.get("messages_per_page"), gate.inside))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(QueueClient, "receive_messages", recording)
    return calls


def _send(azurite: Azurite, queue: str, count: int) -> QueueClient:
    """Create `queue` with `count` messages before the host starts, so its first receive finds them all."""
    client = QueueClient.from_connection_string(azurite.connection_string, queue)
    client.create_queue()
    for number in range(count):
        client.send_message(base64.b64encode(json.dumps({"n": number}).encode()).decode())
    return client


def _start(
    factory: Callable[..., DevHost], azurite: Azurite, names: dict[str, str], tmp_path: Path, **queues: Any
) -> DevHost:
    host_json = tmp_path / "host.json"
    host_json.write_text(json.dumps(_queues(maxPollingInterval="00:00:00.2", **queues)))
    return factory(
        app=held_queue_app.app,
        settings=names,
        storage_connection_string=azurite.connection_string,
        host_json=host_json,
    )


@pytest.mark.azurite
def test_a_batch_runs_at_once_and_the_next_waits_for_new_batch_threshold(
    devhost_factory: Callable[..., DevHost],
    azurite: Azurite,
    names: dict[str, str],
    tmp_path: Path,
    gate: Gate,
    receives: list[tuple[str, int | None, int]],
) -> None:
    jobs = _send(azurite, names["HOLD_QUEUE"], 10)
    host = _start(devhost_factory, azurite, names, tmp_path, batchSize=4, newBatchThreshold=2)

    gate.wait_until(lambda g: (g.entered, g.inside) == (4, 4))  # the whole first batch at once
    gate.release(1)
    gate.wait_until(lambda g: g.inside == 3)  # still above the threshold: no new batch
    gate.release(1)
    gate.wait_until(lambda g: (g.entered, g.inside) == (8, 6))  # 2 left running + a batch of 4
    gate.release()
    gate.wait_until(lambda g: g.entered == 10)
    gate.release()
    host.wait_for_queues_idle()

    assert gate.peak == 6  # batchSize + newBatchThreshold
    polls = [(per_request, inside) for queue, per_request, inside in receives if queue == names["HOLD_QUEUE"]]
    assert all(per_request == 4 for per_request, _ in polls)
    assert all(inside <= 2 for _, inside in polls), polls
    assert jobs.get_queue_properties().approximate_message_count == 0


@pytest.mark.azurite
def test_async_functions_run_concurrently_on_the_event_loop(
    devhost_factory: Callable[..., DevHost],
    azurite: Azurite,
    names: dict[str, str],
    tmp_path: Path,
    gate: Gate,
    receives: list[tuple[str, int | None, int]],
) -> None:
    _send(azurite, names["HOLD_ASYNC_QUEUE"], 4)
    host = _start(devhost_factory, azurite, names, tmp_path, batchSize=3, newBatchThreshold=0)

    gate.wait_until(lambda g: (g.entered, g.inside) == (3, 3))
    gate.release(2)
    gate.wait_until(lambda g: (g.entered, g.inside) == (3, 1))  # threshold 0: the batch must finish first
    gate.release(1)
    gate.wait_until(lambda g: g.entered == 4)
    gate.release()
    host.wait_for_queues_idle()
    assert gate.peak == 3
    assert all(inside == 0 for queue, _, inside in receives if queue == names["HOLD_ASYNC_QUEUE"])


@pytest.mark.azurite
def test_stop_waits_for_the_running_messages(
    devhost_factory: Callable[..., DevHost],
    azurite: Azurite,
    names: dict[str, str],
    tmp_path: Path,
    gate: Gate,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    jobs = _send(azurite, names["HOLD_QUEUE"], 2)
    host = _start(devhost_factory, azurite, names, tmp_path)
    gate.wait_until(lambda g: g.inside == 2)
    # Spy on the listener's last step, so the messages are released only once it waits for them.
    wait_until_running_at_most = QueueTriggerListener._wait_until_running_at_most

    def noting_final_wait(listener: QueueTriggerListener, count: int) -> None:
        if count == 0 and listener.queue_name == names["HOLD_QUEUE"]:
            gate.note("stopping")
        wait_until_running_at_most(listener, count)

    monkeypatch.setattr(QueueTriggerListener, "_wait_until_running_at_most", noting_final_wait)

    def stop() -> None:
        host.stop()
        gate.note("stopped")

    stopper = threading.Thread(target=stop)
    stopper.start()
    gate.wait_until(lambda g: "stopping" in g.events)
    gate.release()
    stopper.join(timeout=20)

    assert gate.events == ["stopping", "finished", "finished", "stopped"]
    assert jobs.get_queue_properties().approximate_message_count == 0  # both completed and deleted
