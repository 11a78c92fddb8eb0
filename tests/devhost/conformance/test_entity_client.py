"""Entities from the durable client: `signal_entity` / `read_entity_state` of azure-functions-durable 1.7.0
over the dev host's management API, and a restart on the same state file.

Sources: extension = Azure/azure-functions-durable-extension v2.13.7 (commit a7c6d694), paths under
`src/WebJobs.Extensions.DurableTask/`; SDK = azure-functions-durable 1.7.0 (PyPI), paths under
`azure/durable_functions/`.

* Routes `entities/{entityName?}/{entityKey?}` (`HttpApiHandler.cs` L143-148, L314-345): GET reads the state
  (200 with the state as JSON, 404 when the entity does not exist, key `$` = empty key, L1022-1044); POST
  signals `?op=`, DELETE signals "delete", with JSON content as a JToken and any other content as a string,
  no input without content; an `ArgumentException` (unknown entity function, bad key) is a 400 (L1046-1092,
  `ContextImplementations/DurableClient.cs` L305-358).
* The client posts `json.dumps(input)` as JSON (so the entity reads the value back through
  `json.loads` + `df_loads`), but sends no body at all for a falsy input
  (`models/DurableOrchestrationClient.py` L595), which the entity's `get_input()` cannot read
  (`models/DurableEntityContext.py` L187); `read_entity_state` returns the response JSON as is, `""` for a
  `null` state (`models/utils/http_utils.py` L152-153).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from devhost.testing import DevHost
from tests.devhost.apps import entity_app


def _host(devhost_factory: Callable[..., DevHost], **options: Any) -> DevHost:
    return devhost_factory(app=entity_app.app, host_json=None, **options)


def _signal(host: DevHost, name: str, key: str, operation: str, value: Any = None) -> requests.Response:
    body = None if value is None else json.dumps(value)
    return requests.post(f"{host.base_url}/api/entities/{name}/{key}/{operation}", data=body, timeout=10)


def _read(host: DevHost, name: str, key: str) -> Any:
    return requests.get(f"{host.base_url}/api/entities/{name}/{key}", timeout=10).json()


def test_the_client_signals_and_reads_an_entity(devhost_factory: Callable[..., DevHost]) -> None:
    host = _host(devhost_factory)
    assert _read(host, "Counter", "k") == {"exists": False, "state": None}
    assert _signal(host, "Counter", "k", "add", 5).status_code == 202
    assert _signal(host, "counter", "k", "add", 2).status_code == 202  # entity names ignore case
    host.run_until_idle()
    assert _read(host, "Counter", "k") == {"exists": True, "state": 7}
    assert _read(host, "Counter", "other") == {"exists": False, "state": None}
    # set_result makes the entity exist (its state None, JSON null), which the client reads back as "".
    _signal(host, "Counter", "fresh", "get")
    host.run_until_idle()
    assert _read(host, "Counter", "fresh") == {"exists": True, "state": ""}

    refused = _signal(host, "Missing", "k", "add", 1)
    assert (refused.status_code, refused.json()) == (
        400,
        {"error": "The operation failed with an unexpected status code 400"},
    )


def test_a_falsy_signal_input_never_reaches_the_entity(devhost_factory: Callable[..., DevHost]) -> None:
    host = _host(devhost_factory)
    _signal(host, "Counter", "k", "set", 5)
    _signal(host, "Counter", "k", "set", 0)  # sent without a body: get_input() raises in the entity
    host.run_until_idle()
    assert _read(host, "Counter", "k") == {"exists": True, "state": 5}


def test_the_management_api_entity_routes(devhost_factory: Callable[..., DevHost]) -> None:
    host = _host(devhost_factory)
    base = f"{host.base_url}/runtime/webhooks/durabletask/entities"
    # What the Python client sends: its input's JSON text, as a JSON string.
    added = requests.post(f"{base}/Counter/k?op=add", json=json.dumps(3), timeout=10)
    emptied = requests.post(f"{base}/Counter?op=add", json=json.dumps(4), timeout=10)  # the empty key
    assert (added.status_code, added.content, emptied.status_code) == (202, b"", 202)
    host.run_until_idle()
    read = requests.get(f"{base}/COUNTER/k", timeout=10)
    assert (read.status_code, read.json()) == (200, 3)
    assert requests.get(f"{base}/counter/$", timeout=10).json() == 4  # only GET maps `$` to the empty key

    assert requests.delete(f"{base}/counter/k", timeout=10).status_code == 202
    host.run_until_idle()
    assert requests.get(f"{base}/counter/k", timeout=10).status_code == 404
    assert requests.get(f"{base}/counter", timeout=10).status_code == 501  # entity queries

    unknown = requests.post(f"{base}/missing/k?op=add", timeout=10)
    assert unknown.status_code == 400
    assert unknown.json()["Message"].startswith("The function 'missing' doesn't exist")
    bad_key = requests.post(f"{base}/counter/a%01b?op=add", timeout=10)
    assert (bad_key.status_code, bad_key.json()["Message"]) == (
        400,
        "Entity keys must not contain /, \\, #, ?, or control characters.",
    )


def test_entity_state_survives_a_dev_host_restart(
    devhost_factory: Callable[..., DevHost], tmp_path: Path
) -> None:
    state_path = tmp_path / "state.db"
    first = _host(devhost_factory, state_path=state_path)
    _signal(first, "Counter", "k", "add", 32)
    first.run_until_idle()
    first.stop()

    second = _host(devhost_factory, state_path=state_path)
    assert _read(second, "Counter", "k") == {"exists": True, "state": 32}
    status = second.run_until_status(second.start_new("counter_user", json.dumps("k")))
    assert (status["runtimeStatus"], status["output"]) == ("Completed", 42)
