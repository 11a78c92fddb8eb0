"""Function keys are per function (docs/api.md, Authentication), end to end with the keys enforced.

A key of `start_community_request` starts a request, but the status URL in `Location` is another function
(`get_community_request`), which refuses that key with 401 even when `Location` carries it as `code`. A host
key opens start, status and cancel.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from devhost.host import FUNCTION_KEYS_SETTING, HOST_KEYS_SETTING
from devhost.testing import DevHost
from tests.e2e.workflow_env import WorkflowEnv, request_body, workflow_env

START_KEY = "start-function-key"
HOST_KEY = "flows-host-key"
TRANSPORTS = ["code", "x-functions-key"]


@pytest.fixture
def keyed_env(
    devhost_factory: Callable[..., DevHost], monkeypatch: pytest.MonkeyPatch, azurite: Any
) -> Iterator[WorkflowEnv]:
    def keyed_factory(**kwargs: Any) -> DevHost:
        return devhost_factory(enforce_keys=True, **kwargs)

    settings = {FUNCTION_KEYS_SETTING: f"start_community_request={START_KEY}", HOST_KEYS_SETTING: HOST_KEY}
    with workflow_env(keyed_factory, monkeypatch, azurite.connection_string, settings=settings) as env:
        yield env


def start(env: WorkflowEnv, key: str, transport: str, name: str) -> tuple[requests.Response, dict[str, str]]:
    """POST a request with `key` sent as `transport`; the answer and the headers to send on later calls."""
    query, headers = (f"?code={key}", {}) if transport == "code" else ("", {"x-functions-key": key})
    response = requests.post(
        f"{env.api}/communities{query}", json=request_body(name=name), headers=headers, timeout=30
    )
    assert response.status_code == 202, response.text
    return response, headers


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_key_of_the_start_function_cannot_follow_location(keyed_env: WorkflowEnv, transport: str) -> None:
    env = keyed_env
    started, headers = start(env, START_KEY, transport, "Start Key Community")
    location = started.headers["Location"]
    assert location.endswith(f"?code={START_KEY}") if transport == "code" else START_KEY not in location

    assert requests.get(location, headers=headers, timeout=30).status_code == 401
    assert requests.delete(location, headers=headers, timeout=30).status_code == 401

    # The request runs all the same: the caller created a community whose outcome it cannot read.
    env.host.run_until_status(started.json()["id"])
    with_host_key = requests.get(location, headers={"x-functions-key": HOST_KEY}, timeout=30)
    assert with_host_key.status_code == 200
    assert with_host_key.json()["status"] == "Succeeded"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_host_key_follows_location_to_the_outcome_and_cancels(
    keyed_env: WorkflowEnv, transport: str
) -> None:
    env = keyed_env
    started, headers = start(env, HOST_KEY, transport, "Host Key Community")
    location = started.headers["Location"]
    assert requests.get(location, headers=headers, timeout=30).status_code == 202
    env.host.run_until_status(started.json()["id"])
    final = requests.get(location, headers=headers, timeout=30)
    assert final.status_code == 200
    assert final.json()["status"] == "Succeeded"

    running, headers = start(env, HOST_KEY, transport, "Canceled Community")
    env.host.run_until_idle()
    canceled = requests.delete(running.headers["Location"], headers=headers, timeout=30)
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["status"] == "Canceled"
