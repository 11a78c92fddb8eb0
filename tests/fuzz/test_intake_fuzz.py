"""Hostile and generated bodies through both intakes of the app in the dev host: real HTTP and Azurite queues.

Whatever arrives, the HTTP intake answers as the models say (202 for a valid request, else a 400/413 problem
naming the problem) and never 5xx; the queue intake writes exactly one Rejected result per invalid message and
poisons nothing. Nothing is started for a rejected body: the durable instance list of the host shows it.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any, Literal

import pytest
import requests
from azure.core.exceptions import ResourceNotFoundError
from hypothesis import given, settings
from hypothesis import strategies as st

from provisioning.models import BodyTooLargeError, RequestValidationError, validate_request
from tests.e2e.workflow_env import QueueEnv, WorkflowEnv
from tests.fuzz.conftest import FUZZ, started
from tests.fuzz.strategies import BODIES, HOSTILE_BODIES

pytestmark = pytest.mark.azurite

HTTP_EXAMPLES = 300
QUEUE_BATCHES = 20
QUEUE_BATCH_SIZE = 10
# A queue message holds at most 64 KiB of base64.
MAX_QUEUE_BODY_BYTES = 48 * 1024
Source = Literal["http", "queue"]


def post(env: WorkflowEnv, body: bytes) -> requests.Response:
    return requests.post(
        f"{env.api}/communities", data=body, headers={"Content-Type": "application/json"}, timeout=30
    )


def expected_answer(body: bytes, source: Source = "http") -> tuple[int, list[dict[str, str]]]:
    """What the intake must answer, from the models themselves (the host runs in this process, with these
    settings in the environment)."""
    try:
        validate_request(body, source=source)
    except BodyTooLargeError as err:
        return 413, err.errors
    except RequestValidationError as err:
        return 400, err.errors
    return 202, []


def assert_problem(response: requests.Response, status: int, errors: list[dict[str, str]]) -> None:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == status
    assert problem["code"] == ("PayloadTooLarge" if status == 413 else "ValidationFailed")
    assert problem["errors"] == errors
    assert problem["detail"]


# ------------------------------------------------------------------------------------------------------- HTTP


@pytest.mark.parametrize("case", sorted(HOSTILE_BODIES))
def test_hostile_body_is_a_400_naming_the_problem(fuzz_env: QueueEnv, case: str) -> None:
    env = fuzz_env.env
    body, message_part = HOSTILE_BODIES[case]
    before = started(env)
    response = post(env, body)
    assert_problem(response, 400, expected_answer(body)[1])
    [error] = response.json()["errors"]
    assert error["field"] == "body"
    assert message_part in error["message"]
    assert started(env) == before


@settings(FUZZ, max_examples=HTTP_EXAMPLES)
@given(body=BODIES)
def test_generated_bodies_are_answered_as_the_models_say(fuzz_env: QueueEnv, body: bytes) -> None:
    env = fuzz_env.env
    status, errors = expected_answer(body)
    before = started(env)
    response = post(env, body)
    if status == 202:
        assert response.status_code == 202, response.text
        assert started(env) == before | {response.json()["id"]}
    else:
        assert_problem(response, status, errors)
        assert started(env) == before


# ------------------------------------------------------------------------------------------------------ queue


def send_and_collect(env: QueueEnv, bodies: list[bytes], timeout: float = 30) -> list[dict[str, Any]]:
    """Put raw message bodies on the request queue; the result documents once every message is processed."""
    raw = env.env.host.queue_client(env.requests_queue.queue_name)
    for body in bodies:
        raw.send_message(base64.b64encode(body).decode())
    env.env.host.wait_for_queues_idle(timeout=timeout)
    results: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(results) < len(bodies) and time.monotonic() < deadline:
        for message in env.results_queue.receive_messages(messages_per_page=32, visibility_timeout=60):
            results.append(json.loads(message.content))
            env.results_queue.delete_message(message)
    return results


def poisoned(env: QueueEnv) -> int:
    poison = env.env.host.queue_client(env.requests_queue.queue_name + "-poison")
    try:
        return len(poison.peek_messages(max_messages=32))
    except ResourceNotFoundError:  # no poison queue: nothing was ever poisoned
        return 0


def assert_rejected(results: list[dict[str, Any]], expected: list[list[dict[str, str]]]) -> None:
    assert sorted(json.dumps(result["error"]["errors"]) for result in results) == sorted(
        json.dumps(errors) for errors in expected
    )
    for result in results:
        assert result["status"] == "Rejected"
        assert result["error"]["code"] == "ValidationFailed"


def test_hostile_messages_are_rejected_once_each(fuzz_env: QueueEnv) -> None:
    bodies = [body for body, _ in HOSTILE_BODIES.values()]
    assert max(len(body) for body in bodies) <= MAX_QUEUE_BODY_BYTES
    before = started(fuzz_env.env)
    results = send_and_collect(fuzz_env, bodies)
    assert_rejected(results, [expected_answer(body, "queue")[1] for body in bodies])
    assert poisoned(fuzz_env) == 0
    assert started(fuzz_env.env) == before


def _invalid_message(body: bytes) -> bool:
    return len(body) <= MAX_QUEUE_BODY_BYTES and expected_answer(body, "queue")[0] != 202


@settings(FUZZ, max_examples=QUEUE_BATCHES)
@given(batch=st.lists(BODIES.filter(_invalid_message), min_size=QUEUE_BATCH_SIZE, max_size=QUEUE_BATCH_SIZE))
def test_generated_messages_each_get_one_rejected_result(fuzz_env: QueueEnv, batch: list[bytes]) -> None:
    before = started(fuzz_env.env)
    results = send_and_collect(fuzz_env, batch)
    assert_rejected(results, [expected_answer(body, "queue")[1] for body in batch])
    assert poisoned(fuzz_env) == 0
    assert started(fuzz_env.env) == before


# Messages whose Rejected document, echoing them and listing their errors, would outgrow a queue message.
WORST_CASE_MESSAGES = {
    "long-request-id": {"requestId": "r" * 40_000, "displayName": "x", "owners": ["a@b.com"]},
    "multibyte-errors": {
        "requestId": "item-1",
        "displayName": "x",
        "description": "\u20ac" * 10_000,
        "owners": ["\U0001f600" * 64 + str(index) for index in range(50)],
    },
    "escaped-text": "\u0001" * 16_000,
}


@pytest.mark.parametrize("case", sorted(WORST_CASE_MESSAGES))
def test_worst_case_message_gets_its_rejected_result(fuzz_env: QueueEnv, case: str) -> None:
    message = WORST_CASE_MESSAGES[case]
    body = (message if isinstance(message, str) else json.dumps(message, ensure_ascii=False)).encode()
    assert len(body) <= MAX_QUEUE_BODY_BYTES
    [result] = send_and_collect(fuzz_env, [body])
    assert_rejected([result], [expected_answer(body, "queue")[1]])
    assert result["originalMessage"]
    assert poisoned(fuzz_env) == 0
