"""The durable client binding end to end: a real HTTP starter using `df.DurableOrchestrationClient`, which
calls the dev host's management API over HTTP, and the status URLs `create_check_status_response` gives."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import requests

from devhost.durable.history import EventType
from devhost.testing import DevHost
from tests.devhost.apps import durable_app

APP = durable_app.app


@pytest.fixture
def host(devhost_factory: Callable[..., DevHost]) -> DevHost:
    return devhost_factory(app=APP, host_json=None)


def _start(host: DevHost, name: str, body: Any = None, instance_id: str | None = None) -> requests.Response:
    path = f"{host.base_url}/api/start/{name}" + (f"/{instance_id}" if instance_id else "")
    return requests.post(path, data=None if body is None else json.dumps(body), timeout=10)


def test_binding_json_has_the_extension_shape(host: DevHost) -> None:
    binding = json.loads(host.durable_client_json())
    assert set(binding) == {
        "taskHubName", "connectionName", "creationUrls", "managementUrls", "baseUrl",
        "requiredQueryStringParameters", "rpcBaseUrl", "httpBaseUrl", "maxGrpcMessageSizeInBytes",
        "grpcHttpClientTimeout",
    }  # fmt: skip
    assert binding["taskHubName"] == "TestHubName"
    assert binding["rpcBaseUrl"] == f"{host.base_url}/durabletask/"
    assert binding["baseUrl"] == f"{host.base_url}/runtime/webhooks/durabletask"
    assert binding["requiredQueryStringParameters"] == f"code={host.system_key}"
    assert binding["managementUrls"]["id"] == "INSTANCEID"
    assert binding["managementUrls"]["statusQueryGetUri"] == (
        f"{host.base_url}/runtime/webhooks/durabletask/instances/INSTANCEID"
        f"?taskHub=TestHubName&connection=Storage&code={host.system_key}"
    )
    assert binding["creationUrls"]["createNewInstancePostUri"].endswith(
        f"/orchestrators/{{functionName}}[/{{instanceId}}]?code={host.system_key}"
    )


def test_start_check_status_and_complete(host: DevHost) -> None:
    response = _start(host, "greet", "Ada")
    assert response.status_code == 202
    assert response.headers["Retry-After"] == "10"
    payload = response.json()
    instance_id = payload["id"]
    assert response.headers["Location"] == payload["statusQueryGetUri"]
    assert payload["statusQueryGetUri"].startswith(f"{host.base_url}/runtime/webhooks/durabletask/instances/")

    host.run_until_idle()
    running = requests.get(payload["statusQueryGetUri"], timeout=5)
    assert running.status_code == 202
    assert running.headers["Retry-After"] == "5"
    assert running.headers["Location"] == payload["statusQueryGetUri"]
    assert running.json()["runtimeStatus"] == "Running"
    assert running.json()["name"] == "greet"

    final = host.run_until_status(instance_id)
    assert final["runtimeStatus"] == "Completed"
    done = requests.get(payload["statusQueryGetUri"], timeout=5)
    assert done.status_code == 200
    body = done.json()
    assert body["output"] == ["Hello Ada", "Hello again"]
    # The client posts df_dumps(input) as JSON (start_new in Azure/azure-functions-durable-python
    # azure/durable_functions/models/DurableOrchestrationClient.py), so the stored input is JSON text of JSON.
    assert body["input"] == '"Ada"'
    assert body["createdTime"].endswith("Z")
    assert body["lastUpdatedTime"].endswith("Z")
    assert "Location" not in done.headers

    # get_status through the client, with history
    status = requests.post(f"{host.base_url}/api/manage/{instance_id}/status", timeout=10).json()["result"]
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == ["Hello Ada", "Hello again"]
    assert any(event.get("EventType") == "ExecutionCompleted" for event in status["historyEvents"])
    without_input = requests.get(payload["statusQueryGetUri"] + "&showInput=false", timeout=5).json()
    assert without_input["input"] is None


def test_unknown_orchestrator_is_rejected_by_the_client(host: DevHost) -> None:
    response = _start(host, "no_such_orchestrator")
    assert response.status_code == 409  # the test starter maps the client's exception
    assert "no_such_orchestrator" in response.json()["error"]
    assert "doesn't exist" in response.json()["error"]


def test_duplicate_running_id_fails_and_finished_id_is_replaced(host: DevHost) -> None:
    assert _start(host, "approval", instance_id="job-1").status_code == 202
    host.run_until_idle()
    duplicate = _start(host, "approval", instance_id="job-1")
    assert duplicate.status_code == 409
    assert "already exists" in duplicate.json()["error"]

    requests.post(f"{host.base_url}/api/manage/job-1/raise", json={"ok": True}, timeout=10).raise_for_status()
    assert host.run_until_status("job-1")["runtimeStatus"] == "Completed"
    again = _start(host, "greet", "Bo", instance_id="job-1")
    assert again.status_code == 202
    final = host.run_until_status("job-1")
    assert (final["name"], final["output"]) == ("greet", ["Hello Bo", "Hello again"])


def test_raise_event_through_client_and_through_send_event_url(host: DevHost) -> None:
    via_client = _start(host, "approval").json()
    host.run_until_idle()
    status = requests.get(via_client["statusQueryGetUri"], timeout=5).json()
    assert status["customStatus"] == {"waiting": "approval"}
    requests.post(
        f"{host.base_url}/api/manage/{via_client['id']}/raise", json={"by": "alice"}, timeout=10
    ).raise_for_status()
    # The Python client double-encodes event data (python issue #295): the orchestrator gets the JSON text.
    assert host.run_until_status(via_client["id"])["output"] == {"decision": '{"by": "alice"}'}

    via_url = _start(host, "approval").json()
    host.run_until_idle()
    url = via_url["sendEventPostUri"].replace("{eventName}", "approval")
    assert (
        requests.post(url, data="text", headers={"Content-Type": "text/plain"}, timeout=5).status_code == 400
    )
    assert requests.post(url, json={"by": "bob"}, timeout=5).status_code == 202
    assert host.run_until_status(via_url["id"])["output"] == {"decision": {"by": "bob"}}
    assert requests.post(url, json={"late": True}, timeout=5).status_code == 410
    missing = url.replace(via_url["id"], "nope")
    assert requests.post(missing, json={}, timeout=5).status_code == 404


def test_terminate_then_purge(host: DevHost) -> None:
    payload = _start(host, "approval").json()
    instance_id = payload["id"]
    host.run_until_idle()
    terminate = requests.post(f"{host.base_url}/api/manage/{instance_id}/terminate", timeout=10)
    assert terminate.status_code == 200
    status = host.run_until_status(instance_id, statuses=("Terminated",))
    assert status["output"] == "stopped by test"
    # Terminating a finished instance is 410 (the client accepts it silently).
    url = payload["terminatePostUri"].replace("{text}", "again")
    assert requests.post(url, timeout=5).status_code == 410

    purged = requests.post(f"{host.base_url}/api/manage/{instance_id}/purge", timeout=10).json()
    assert purged == {"result": 1}
    assert requests.get(payload["statusQueryGetUri"], timeout=5).status_code == 404
    assert requests.post(f"{host.base_url}/api/manage/{instance_id}/purge", timeout=10).json() == {
        "result": 0
    }


def test_purge_of_a_running_instance_is_refused(host: DevHost) -> None:
    payload = _start(host, "approval").json()
    host.run_until_idle()
    response = requests.delete(payload["purgeHistoryDeleteUri"], timeout=5)
    assert response.status_code == 412
    assert host.status(payload["id"]) is not None


def test_query_by_status_and_purge_by_filter(host: DevHost) -> None:
    waiting = _start(host, "approval").json()["id"]
    finished = _start(host, "greet", "Cy").json()["id"]
    host.run_until_status(finished)
    assert requests.get(f"{host.base_url}/api/query?status=Running", timeout=10).json() == [waiting]
    assert requests.get(f"{host.base_url}/api/query?status=Completed", timeout=10).json() == [finished]
    both = requests.get(f"{host.base_url}/api/query?status=Running,Completed", timeout=10).json()
    assert both == sorted([waiting, finished])

    rpc = f"{host.base_url}/durabletask/instances/"
    page = requests.get(rpc, params={"top": "1"}, timeout=5)
    assert len(page.json()) == 1
    rest = requests.get(
        rpc,
        params={"top": "1"},
        headers={"x-ms-continuation-token": page.headers["x-ms-continuation-token"]},
        timeout=5,
    )
    assert {page.json()[0]["instanceId"], rest.json()[0]["instanceId"]} == {waiting, finished}
    assert "x-ms-continuation-token" not in rest.headers

    assert requests.delete(rpc, timeout=5).status_code == 400  # createdTimeFrom is required
    params = {"createdTimeFrom": "2000-01-01T00:00:00.000000Z", "runtimeStatus": "Completed"}
    assert requests.delete(rpc, params=params, timeout=5).json() == {"instancesDeleted": 1}
    assert host.status(finished) is None
    assert host.status(waiting) is not None
    assert requests.delete(rpc, params=params, timeout=5).status_code == 404


def test_status_of_an_unknown_instance_is_falsy_through_the_client(host: DevHost) -> None:
    assert requests.post(f"{host.base_url}/api/manage/nope/status", timeout=10).json() == {"result": None}


def test_advance_moves_virtual_time_through_the_timer(host: DevHost) -> None:
    instance_id = _start(host, "greet", "Di").json()["id"]
    host.run_until_idle()
    host.advance(29 * 60)
    running = host.status(instance_id)
    assert running is not None
    assert running["runtimeStatus"] == "Running"
    host.advance(60)
    status = host.status(instance_id)
    assert status is not None
    assert (status["runtimeStatus"], status["output"]) == ("Completed", ["Hello Di", "Hello again"])
    assert [e["EventType"] for e in host.history(instance_id)].count(EventType.TIMER_FIRED) == 1
