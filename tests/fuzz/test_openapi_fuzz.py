"""Schemathesis against the OpenAPI description the app serves, offline: the app in the dev host with host
keys enforced, over real HTTP.

For each operation Schemathesis generates requests that fit the description (positive) and requests that
break it (negative: wrong types, missing or extra fields, ids off the pattern, odd headers and query strings),
sends them with a host key and runs its checks on every answer: no 5xx; status code, content type, headers
and body as documented; invalid data refused; the key enforced (the request again without it, or with a wrong
one, is 401); unsupported methods refused. Ours on top: a 4xx answer started nothing and is a problem body.

Left out: ``positive_data_acceptance``. The description states in prose rules that its JSON Schema does not
carry (trimmed lengths, at least one owner, owners as GUIDs or user principal names, the callback host
policy), so most schema-valid bodies are rightly refused with 400.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode

from devhost.host import HOST_KEYS_SETTING
from provisioning.openapi import (
    COMMUNITIES_PATH,
    OPENAPI_PATH,
    REQUEST_PATH,
    SUBSCRIPTIONS_PATH,
    UNSUBSCRIBE_PATH,
)
from tests.e2e.workflow_env import WorkflowEnv, request_body
from tests.fuzz.conftest import FUZZ, module_env, started

pytestmark = pytest.mark.azurite

KEY = "fuzz-host-key"
AUTH = {"x-functions-key": KEY}
# Cases per operation and mode: 2,080 in all. Schemathesis spends 15-25 ms of CPU generating a case (two
# thirds of the time here), so this takes about 40 s on 2 cores; thousands would take minutes. Creating
# requests is where the app does most; status and cancel take only an id, the description nothing but the key.
EXAMPLES = {
    ("POST", COMMUNITIES_PATH): 600,
    ("GET", REQUEST_PATH): 120,
    ("DELETE", REQUEST_PATH): 120,
    ("GET", OPENAPI_PATH): 20,
    # The HTTP Webhook action's calls: bodies like POST's, and a callback URL that matches nothing (404).
    ("POST", SUBSCRIPTIONS_PATH): 120,
    ("POST", UNSUBSCRIBE_PATH): 60,
}
RUNNING_REQUESTS = 6
# Explicit, so that no schemathesis.toml found on the way changes what runs.
CONFIG = schemathesis.Config.from_dict({"checks": {"positive_data_acceptance": {"enabled": False}}})


@pytest.fixture(scope="module")
def keyed_env(azurite: Any) -> Iterator[WorkflowEnv]:
    with module_env(azurite, {HOST_KEYS_SETTING: KEY}, enforce_keys=True) as env:
        yield env


@pytest.fixture(scope="module")
def schema(keyed_env: WorkflowEnv) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(
        f"{keyed_env.api}/openapi.json", config=CONFIG, headers=AUTH, timeout=10
    )


@pytest.fixture(scope="module")
def request_ids(keyed_env: WorkflowEnv) -> list[str]:
    """Requests that exist, so that status and cancel answer more than 404: running, then canceled."""
    ids = []
    for index in range(RUNNING_REQUESTS):
        response = requests.post(
            f"{keyed_env.api}/communities",
            json=request_body(f"Fuzzed Community {index}"),
            headers=AUTH,
            timeout=30,
        )
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
    keyed_env.host.run_until_idle()
    return ids


def check_answer(env: WorkflowEnv, case: Case, before: set[str]) -> None:
    response = case.call(base_url=env.api, headers=AUTH, timeout=30)
    case.validate_response(response, headers=AUTH)
    if 400 <= response.status_code < 500:
        assert started(env) == before, f"{case.method} {case.formatted_path} answered {response.status_code}"
        [content_type] = response.headers["content-type"]
        body = response.json()
        if content_type.startswith("application/json"):
            # A request that ended Failed (422) or Canceled (409): its status document, not a problem.
            assert body["status"] in ("Failed", "Canceled")
            return
        assert content_type.startswith("application/problem+json")
        assert body["status"] == response.status_code
        assert body["code"]
        assert body["detail"]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize(("method", "path"), list(EXAMPLES), ids=[" ".join(key) for key in EXAMPLES])
def test_operation_answers_as_described(
    keyed_env: WorkflowEnv,
    schema: schemathesis.BaseSchema,
    request_ids: list[str],
    method: str,
    path: str,
    mode: GenerationMode,
) -> None:
    operation = schema[path][method]
    cases = operation.as_strategy(mode)
    if path == REQUEST_PATH and mode is GenerationMode.POSITIVE:
        # Generated ids are almost never the id of a request: mix in ids that are.
        known = st.sampled_from(request_ids).flatmap(
            lambda request_id: operation.as_strategy(mode, path_parameters={"id": request_id})
        )
        cases = st.one_of(cases, known)

    @settings(FUZZ, max_examples=EXAMPLES[method, path])
    @given(case=cases)
    def run(case: Case) -> None:
        check_answer(keyed_env, case, started(keyed_env))

    run()
