"""Queue triggers and outputs against a real Azurite (started by the `azurite` fixture)."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue import QueueClient

from devhost.testing import Azurite, DevHost
from tests.devhost.apps import queue_app

pytestmark = pytest.mark.azurite

APP = queue_app.app


def _host_json(tmp_path: Path, **queues: Any) -> Path:
    path = tmp_path / "host.json"
    path.write_text(
        json.dumps(
            {"version": "2.0", "extensions": {"queues": {"maxPollingInterval": "00:00:00.2", **queues}}}
        )
    )
    return path


@pytest.fixture
def names() -> dict[str, str]:
    suffix = uuid.uuid4().hex[:10]
    return {
        "JOBS_QUEUE": f"jobs-{suffix}",
        "RESULTS_QUEUE": f"results-{suffix}",
        "START_QUEUE": f"start-{suffix}",
    }


def _start_host(
    factory: Callable[..., DevHost], azurite: Azurite, names: dict[str, str], host_json: Path
) -> DevHost:
    return factory(
        app=APP, settings=names, storage_connection_string=azurite.connection_string, host_json=host_json
    )


def _send(client: QueueClient, payload: Any, *, encode: bool = True) -> None:
    text = json.dumps(payload)
    client.send_message(base64.b64encode(text.encode()).decode() if encode else text)


def _drain(client: QueueClient) -> list[str]:
    """Receive and delete everything on the queue ([] when the queue was never created)."""
    messages: list[str] = []
    try:
        received = list(client.receive_messages(max_messages=32))
    except ResourceNotFoundError:
        return messages
    for message in received:
        messages.append(message.content)
        client.delete_message(message)
    return messages


def _results(host: DevHost, queue: str) -> list[dict[str, Any]]:
    return [json.loads(base64.b64decode(content)) for content in _drain(host.queue_client(queue))]


def test_base64_message_runs_once_and_is_deleted(
    devhost_factory: Callable[..., DevHost], azurite: Azurite, names: dict[str, str], tmp_path: Path
) -> None:
    host = _start_host(devhost_factory, azurite, names, _host_json(tmp_path))
    jobs = host.queue_client(names["JOBS_QUEUE"])
    _send(jobs, {"kind": "ok", "tag": "a"})
    host.wait_for_queues_idle()
    [result] = _results(host, names["RESULTS_QUEUE"])
    assert result["tag"] == "a"
    assert result["dequeueCount"] == 1
    assert result["hasTimes"] is True
    assert result["id"]
    assert jobs.get_queue_properties().approximate_message_count == 0


def test_failures_are_retried_with_growing_dequeue_count(
    devhost_factory: Callable[..., DevHost], azurite: Azurite, names: dict[str, str], tmp_path: Path
) -> None:
    host = _start_host(devhost_factory, azurite, names, _host_json(tmp_path, visibilityTimeout="00:00:00"))
    _send(host.queue_client(names["JOBS_QUEUE"]), {"kind": "flaky", "succeedOn": 3, "tag": "f"})
    host.wait_for_queues_idle(timeout=20)
    [result] = _results(host, names["RESULTS_QUEUE"])
    assert (result["tag"], result["dequeueCount"]) == ("f", 3)
    assert _drain(host.queue_client(names["JOBS_QUEUE"] + "-poison")) == []


def test_poison_after_default_max_dequeue_count(
    devhost_factory: Callable[..., DevHost], azurite: Azurite, names: dict[str, str], tmp_path: Path
) -> None:
    host = _start_host(devhost_factory, azurite, names, _host_json(tmp_path))
    jobs = host.queue_client(names["JOBS_QUEUE"])
    _send(jobs, {"kind": "fail", "tag": "p"})
    host.wait_for_queues_idle(timeout=20)
    poison = _drain(host.queue_client(names["JOBS_QUEUE"] + "-poison"))
    assert [json.loads(base64.b64decode(p)) for p in poison] == [{"kind": "fail", "tag": "p"}]
    assert jobs.get_queue_properties().approximate_message_count == 0
    assert _results(host, names["RESULTS_QUEUE"]) == []


def test_max_dequeue_count_from_host_json(
    devhost_factory: Callable[..., DevHost], azurite: Azurite, names: dict[str, str], tmp_path: Path
) -> None:
    host = _start_host(devhost_factory, azurite, names, _host_json(tmp_path, maxDequeueCount=2))
    _send(host.queue_client(names["JOBS_QUEUE"]), {"kind": "flaky", "succeedOn": 3, "tag": "x"})
    host.wait_for_queues_idle(timeout=20)
    assert len(_drain(host.queue_client(names["JOBS_QUEUE"] + "-poison"))) == 1
    assert _results(host, names["RESULTS_QUEUE"]) == []


def test_plain_text_message_is_poisoned_under_base64_encoding(
    devhost_factory: Callable[..., DevHost], azurite: Azurite, names: dict[str, str], tmp_path: Path
) -> None:
    host = _start_host(devhost_factory, azurite, names, _host_json(tmp_path))
    _send(host.queue_client(names["JOBS_QUEUE"]), {"kind": "ok", "tag": "plain"}, encode=False)
    host.wait_for_queues_idle()
    assert _drain(host.queue_client(names["JOBS_QUEUE"] + "-poison")) == [
        json.dumps({"kind": "ok", "tag": "plain"})
    ]
    assert _results(host, names["RESULTS_QUEUE"]) == []


def test_message_encoding_none(
    devhost_factory: Callable[..., DevHost], azurite: Azurite, names: dict[str, str], tmp_path: Path
) -> None:
    host = _start_host(devhost_factory, azurite, names, _host_json(tmp_path, messageEncoding="none"))
    _send(host.queue_client(names["JOBS_QUEUE"]), {"kind": "ok", "tag": "n"}, encode=False)
    host.wait_for_queues_idle()
    [content] = _drain(host.queue_client(names["RESULTS_QUEUE"]))
    assert json.loads(content)["tag"] == "n"  # outputs are not encoded either


def test_queue_started_orchestration_with_activity_queue_output(
    devhost_factory: Callable[..., DevHost], azurite: Azurite, names: dict[str, str], tmp_path: Path
) -> None:
    host = _start_host(devhost_factory, azurite, names, _host_json(tmp_path))
    _send(host.queue_client(names["START_QUEUE"]), {"tag": "d1"})
    host.wait_for_queues_idle()
    status = host.run_until_status("q-d1")
    assert (status["runtimeStatus"], status["output"]) == ("Completed", "sent")
    assert _results(host, names["RESULTS_QUEUE"]) == [{"tag": "d1", "from": "activity"}]
