"""`vecp queue-send` through Azurite: the app's queue trigger takes the message, and --wait reads the one
result carrying its requestId without taking anyone else's message."""

from __future__ import annotations

import base64
import io
import json
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from azure.storage.queue import QueueClient

from cli.api import ExitCode
from cli.app import main
from cli.queue_send import PAGE_SIZE, take_result
from devhost.testing import AZURITE_ACCOUNT_KEY
from provisioning.batch_workflow import batch_id_for_key
from provisioning.idempotency import instance_id_for_key
from tests.cli.runner import HostClock, vecp
from tests.e2e.workflow_env import OWNER, QueueEnv, queue

pytestmark = pytest.mark.azurite

OWNER_UPN = OWNER["userPrincipalName"]
# The app's result documents sit on the results queue between the sender's; they must stay where they are.
FOREIGN = {"requestId": "someone-else", "id": "req-" + "1" * 32, "status": "Succeeded"}


def storage_environ(queues: QueueEnv, azurite: Any) -> dict[str, str]:
    return {
        "AzureWebJobsStorage": azurite.connection_string,
        "PROVISIONING_QUEUE": queues.requests_queue.queue_name,
        "RESULTS_QUEUE": queues.results_queue.queue_name,
    }


def test_queue_send_waits_for_its_own_result_and_leaves_the_others(queues: QueueEnv, azurite: Any) -> None:
    queues.results_queue.send_message(json.dumps(FOREIGN))
    run = vecp(
        queues.env,
        "queue-send", "--name", "Queued Community", "--owner", OWNER_UPN, "--request-id", "cli-queue-1",
        "--wait", "--poll-interval", "30", "--timeout", "3600", "-o", "json",
        environ=storage_environ(queues, azurite),
        clock=HostClock(queues.env, queues=True),
    )  # fmt: skip

    assert run.code == ExitCode.OK, run.output
    result = run.json()
    assert result["status"] == "Succeeded"
    assert result["requestId"] == "cli-queue-1"
    assert result["id"] == instance_id_for_key("cli-queue-1", "queue")
    assert run.stderr.splitlines()[0] == (
        f"sent requestId cli-queue-1 to queue {queues.requests_queue.queue_name} ({result['id']})"
    )
    # Ours was taken, the other sender's result is still there and visible.
    assert queues.results() == [FOREIGN]
    assert AZURITE_ACCOUNT_KEY not in run.output


def test_a_rejected_message_exits_2_with_its_field_errors(queues: QueueEnv, azurite: Any) -> None:
    run = vecp(
        queues.env,
        "queue-send", "--name", " ", "--owner", "bob", "--wait", "--poll-interval", "5", "--timeout", "600",
        environ=storage_environ(queues, azurite),
        clock=HostClock(queues.env, queues=True),
    )  # fmt: skip

    assert run.code == ExitCode.USAGE, run.output
    assert "ended Rejected: ValidationFailed" in run.stderr
    assert "  displayName: must not be empty" in run.stderr
    assert "  owners[0]: must be an Entra object id" in run.stderr
    assert queues.env.request_instances() == []


def test_without_wait_it_prints_the_ids_and_the_app_starts_the_request_or_batch(
    queues: QueueEnv, azurite: Any, tmp_path: Path
) -> None:
    environ = storage_environ(queues, azurite)
    sent = vecp(queues.env, "queue-send", "--name", "Fire And Forget", "--owner", OWNER_UPN, "-o", "json",
                environ=environ)  # fmt: skip
    assert sent.code == ExitCode.OK, sent.output
    document = sent.json()
    assert document["requestId"].startswith("vecp-")
    assert document["queue"] == queues.requests_queue.queue_name
    assert document["id"] == instance_id_for_key(document["requestId"], "queue")

    batch = tmp_path / "batch.json"
    item = {"displayName": "In A Batch", "owners": [OWNER_UPN]}
    batch.write_text(json.dumps({"requestId": "cli-batch-1", "items": [item]}))
    sent_batch = vecp(queues.env, "queue-send", "--file", str(batch), "-o", "json", environ=environ)
    assert sent_batch.code == ExitCode.OK, sent_batch.output
    assert sent_batch.json()["id"] == batch_id_for_key("cli-batch-1", "queue")

    queues.env.host.wait_for_queues_idle(timeout=20)
    assert queues.env.host.status(document["id"]) is not None
    assert queues.env.host.status(sent_batch.json()["id"]) is not None


def test_take_result_finds_its_message_behind_a_long_queue_and_leaves_every_other_one_visible(
    azurite: Any,
) -> None:
    client = queue(azurite.connection_string, f"results-scan-{uuid.uuid4().hex[:8]}")  # base64 policies
    raw = QueueClient.from_connection_string(azurite.connection_string, client.queue_name)
    others = [{"requestId": f"other-{index}", "status": "Succeeded"} for index in range(PAGE_SIZE + 8)]
    for document in others[:5]:
        client.send_message(json.dumps(document))

    assert take_result(raw, "mine") is None  # not there: nothing received (dequeue counts stay 0)
    assert {message.dequeue_count for message in client.peek_messages(max_messages=PAGE_SIZE)} == {0}

    for document in others[5:]:
        client.send_message(json.dumps(document))
    client.send_message("not base64 nor JSON, from some other sender")
    client.send_message(json.dumps({"requestId": "mine", "status": "Failed"}))

    assert take_result(raw, "mine") == {"requestId": "mine", "status": "Failed"}
    left = list(raw.receive_messages(messages_per_page=PAGE_SIZE, visibility_timeout=60))
    assert len(left) == len(others) + 1  # every other message is visible again at once, none deleted
    contents = sorted(base64.b64decode(message.content).decode() for message in left)
    assert contents == sorted(
        [*(json.dumps(document) for document in others), "not base64 nor JSON, from some other sender"]
    )
    assert take_result(raw, "mine") is None


def test_queue_send_without_azure_storage_queue_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "azure.storage.queue", None)  # import fails as when not installed
    stdout, stderr = io.StringIO(), io.StringIO()
    code = main(["queue-send", "--name", "x", "--owner", OWNER_UPN], environ={}, stdout=stdout, stderr=stderr)
    assert code == ExitCode.USAGE
    assert "queue-send needs azure-storage-queue: pip install azure-storage-queue" in stderr.getvalue()
