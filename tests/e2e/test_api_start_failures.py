"""When the orchestration cannot be started: HTTP answers 503, a queue message is retried, then poisoned.

A real start failure is produced by hosting the API blueprints without the orchestrator: the durable engine
then refuses ``start_new`` exactly as the extension refuses an unknown orchestrator.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import azure.durable_functions as df
import azure.functions as func
import pytest
import requests

from devhost.testing import DevHost
from tests.e2e.workflow_env import request_body
from triggers import http_api, queue_intake

pytestmark = pytest.mark.azurite

HOST_JSON = {
    "version": "2.0",
    # Retry at once and poison after two attempts, so the test needs no real waiting.
    "extensions": {
        "queues": {"messageEncoding": "base64", "visibilityTimeout": "00:00:00", "maxDequeueCount": 2}
    },
}


def api_without_orchestrator() -> df.DFApp:
    app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
    app.register_functions(http_api.bp)
    app.register_functions(queue_intake.bp)
    return app


@pytest.fixture
def host(devhost_factory: Callable[..., DevHost], azurite: Any, tmp_path: Path) -> DevHost:
    host_json = tmp_path / "host.json"
    host_json.write_text(json.dumps(HOST_JSON))
    started = devhost_factory(
        app=api_without_orchestrator(),
        settings={
            "PROVISIONING_QUEUE": "start-fail-requests",
            "RESULTS_QUEUE": "start-fail-results",
            "TASKHUB_NAME": "StartFailures",
        },
        storage_connection_string=azurite.connection_string,
        host_json=host_json,
    )
    for name in ("start-fail-requests", "start-fail-results", "start-fail-requests-poison"):
        client = started.queue_client(name)
        try:
            client.create_queue()
        except Exception:  # left over from an earlier test in this Azurite session
            client.clear_messages()
    return started


@pytest.mark.parametrize("idempotency_key", [None, "key-1"])
def test_http_start_failure_is_503_with_retry_after_and_nothing_started(
    host: DevHost, idempotency_key: str | None
) -> None:
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    response = requests.post(
        f"{host.base_url}/api/communities", json=request_body(), headers=headers, timeout=30
    )
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "5"
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert response.json()["code"] == "ServiceUnavailable"
    assert "Location" not in response.headers
    assert host.engine.query() == []


def test_queue_start_failure_is_retried_then_poisoned_without_a_result(host: DevHost) -> None:
    message = json.dumps({**request_body(), "requestId": "item-poison"})
    host.queue_client("start-fail-requests").send_message(base64.b64encode(message.encode()).decode())
    host.wait_for_queues_idle(timeout=30)
    poisoned = host.queue_client("start-fail-requests-poison").peek_messages(max_messages=5)
    assert [json.loads(base64.b64decode(item.content))["requestId"] for item in poisoned] == ["item-poison"]
    assert host.queue_client("start-fail-results").peek_messages(max_messages=5) == []
    assert host.engine.query() == []
