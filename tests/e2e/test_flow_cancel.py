"""End to end: DELETE cancels a request gracefully, and every started request ends with exactly one message.

Cancel is an event the orchestrator waits for alongside its timers, so a canceled request runs its normal
notify step: one callback and, for a queue request, one result message, both with the Canceled document.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from provisioning.idempotency import instance_id_for_key
from tests.e2e.workflow_env import (
    MEMBER,
    POLL_INTERVAL,
    CallbackReceiver,
    QueueEnv,
    WorkflowEnv,
    request_body,
)

AFTER_THE_END_SECONDS = 6 * 3600
# A Retry-After long enough that the request is still waiting in its phase when DELETE arrives.
LONG_THROTTLE_SECONDS = 600


def advance_to_phase(env: WorkflowEnv, status_url: str, phase: str) -> dict[str, Any]:
    """Let virtual time pass until the running request reports ``phase``; its status document."""
    for _ in range(10):
        env.host.run_until_idle()
        document = requests.get(status_url, timeout=30).json()
        assert document["status"] == "Running", document
        if document["phase"] == phase:
            return document
        env.host.advance(POLL_INTERVAL)
    raise AssertionError(f"the request never reached {phase}: {document}")


def test_queue_request_canceled_while_waiting_for_graph_ends_with_one_canceled_result(
    queues: QueueEnv,
) -> None:
    env = queues.env
    status_url = queues.send("item-cancel")
    advance_to_phase(env, status_url, "waiting-for-graph")
    env.host.advance(POLL_INTERVAL + 1)  # one status check made, Graph still running
    checks_before = len(env.graph_calls("operation"))
    assert checks_before == 1

    canceled = requests.delete(status_url, timeout=30)
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["status"] == "Canceled"
    env.host.run_until_status(canceled.json()["id"])
    env.host.advance(AFTER_THE_END_SECONDS)

    [result] = queues.results()
    assert result["status"] == "Canceled"
    assert result["error"]["code"] == "Canceled"
    assert result["requestId"] == "item-cancel"
    assert result["phase"] == "done"
    assert result["operation"]["checks"] == 1
    assert len(env.graph_calls("operation")) == checks_before  # nothing more asked of Graph
    final = requests.get(status_url, timeout=30)
    assert final.status_code == 409
    assert final.json()["status"] == "Canceled"
    assert final.json()["error"]["code"] == "Canceled"
    again = requests.delete(status_url, timeout=30)
    assert again.status_code == 409
    assert again.json()["code"] == "NotCancelable"
    assert again.json()["requestStatus"] == "Canceled"
    assert queues.results() == []  # still the one message


# (phase, Graph route throttled to hold the request in that phase, or None: the normal wait for Graph)
PHASES = [
    ("resolving-users", "users"),
    ("checking-name", "list"),
    ("creating", "create"),
    ("waiting-for-graph", None),
    ("confirming", "community"),
    ("adding-members", "members"),
]


@pytest.mark.parametrize(("phase", "held_by"), PHASES, ids=[phase for phase, _ in PHASES])
def test_cancel_in_each_phase_sends_one_canceled_callback(
    env: WorkflowEnv, phase: str, held_by: str | None
) -> None:
    if held_by is not None:
        env.sim.set_scenario("throttle", route=held_by, retry_after=LONG_THROTTLE_SECONDS, times=1)
    with CallbackReceiver() as receiver:
        started = env.post(request_body(callbackUrl=receiver.url, members=[MEMBER["id"]]))
        assert started.status_code == 202, started.text
        status_url = started.headers["Location"]
        advance_to_phase(env, status_url, phase)
        calls_before = len(env.graph_calls())

        canceled = requests.delete(status_url, timeout=30)
        assert canceled.status_code == 200, canceled.text
        assert canceled.json()["status"] == "Canceled"
        assert env.host.run_until_status(started.json()["id"])["runtimeStatus"] == "Completed"
        env.host.advance(AFTER_THE_END_SECONDS)

        [posted] = receiver.bodies
        final = requests.get(status_url, timeout=30)

    assert posted["status"] == "Canceled"
    assert posted["error"]["code"] == "Canceled"
    assert final.status_code == 409
    assert final.json()["status"] == "Canceled"
    assert final.json()["callback"] == "delivered"
    # The request stopped where it was: the throttled call was not repeated, nothing else was called.
    assert len(env.graph_calls()) == calls_before
    if phase in ("resolving-users", "checking-name", "creating"):
        assert env.sim.communities() == []  # canceled before Graph accepted a creation
    else:
        assert len(env.sim.communities()) == 1  # Graph cannot undo what it accepted
    # No member was added, except by the throttled call that held the request in adding-members.
    assert len(env.graph_calls("members")) == (1 if phase == "adding-members" else 0)


def test_cancel_after_the_outcome_is_settled_is_refused_and_changes_nothing(queues: QueueEnv) -> None:
    env = queues.env
    with CallbackReceiver(status=500) as receiver:  # holds the request in notifying (callback retries)
        status_url = queues.send("item-settled", callbackUrl=receiver.url)
        env.host.advance(3 * POLL_INTERVAL + 1)
        document = requests.get(status_url, timeout=30).json()
        assert document["status"] == "Succeeded"
        assert document["phase"] == "notifying"

        refused = requests.delete(status_url, timeout=30)
        assert refused.status_code == 409, refused.text
        assert refused.json()["code"] == "NotCancelable"
        assert refused.json()["requestStatus"] == "Succeeded"
        env.host.run_until_status(document["id"])
        env.host.advance(AFTER_THE_END_SECONDS)

    [result] = queues.results()
    assert result["status"] == "Succeeded"
    assert result["callback"] == "failed"
    assert {body["status"] for body in receiver.bodies} == {"Succeeded"}
    assert requests.get(status_url, timeout=30).status_code == 200


def test_cancel_racing_completion_yields_one_outcome_and_one_message(queues: QueueEnv) -> None:
    """DELETE sent while the last status check fires (real threads: the engine decides the order): either the
    cancel or the outcome wins, never both. The outcome winning for sure is the test above."""
    env = queues.env
    outcomes = []
    with CallbackReceiver() as receiver:
        for attempt in range(4):
            request_id = f"item-race-{attempt}"
            status_url = queues.send(request_id, displayName=f"Race {attempt}", callbackUrl=receiver.url)
            env.host.advance(2 * POLL_INTERVAL + 1)  # two checks made; the third one succeeds
            with ThreadPoolExecutor(max_workers=2) as pool:
                # Alternate which of the two starts first; the engine decides the order it sees them in.
                if attempt % 2:
                    pool.submit(env.host.advance, POLL_INTERVAL)
                deleting = pool.submit(requests.delete, status_url, timeout=30)
                if not attempt % 2:
                    pool.submit(env.host.advance, POLL_INTERVAL)
                answer = deleting.result()
            env.host.run_until_status(instance_id_for_key(request_id, "queue"))
            env.host.advance(AFTER_THE_END_SECONDS)

            final = requests.get(status_url, timeout=30).json()
            assert final["status"] in ("Succeeded", "Canceled")
            if final["status"] == "Canceled":
                assert answer.status_code in (200, 202), answer.text
            else:
                assert answer.status_code == 409, answer.text
                assert answer.json()["requestStatus"] == "Succeeded"
            outcomes.append((final["id"], final["status"]))

        results = queues.results()
        posted = list(receiver.bodies)

    # One message per request on each channel, each carrying the request's final outcome.
    assert sorted((result["id"], result["status"]) for result in results) == sorted(outcomes)
    assert sorted((body["id"], body["status"]) for body in posted) == sorted(outcomes)


def test_a_graph_call_under_way_finishes_before_the_cancel_is_taken(env: WorkflowEnv) -> None:
    env.sim.set_scenario("slow", route="create", seconds=1.5)
    with CallbackReceiver() as receiver:
        started = env.post(request_body(callbackUrl=receiver.url))
        assert started.status_code == 202, started.text
        deadline = time.monotonic() + 10
        while not env.graph_calls("create"):  # the create is in flight (answered after 1.5 real seconds)
            assert time.monotonic() < deadline, "the create was never sent"
            time.sleep(0.05)

        canceled = requests.delete(started.headers["Location"], timeout=30)
        assert canceled.status_code in (200, 202), canceled.text
        env.host.run_until_status(started.json()["id"])
        env.host.advance(AFTER_THE_END_SECONDS)

        [posted] = receiver.bodies
    assert posted["status"] == "Canceled"
    # The create was answered and kept (Graph made the community), then nothing more was asked of Graph.
    assert len(env.graph_calls("create")) == 1
    assert len(env.sim.communities()) == 1
    assert env.graph_calls("operation") == []
    assert posted["operation"]["checks"] == 0


def test_a_cancel_that_cannot_be_delivered_is_503_and_can_be_sent_again(
    env: WorkflowEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = env.post(request_body())
    assert started.status_code == 202, started.text
    env.host.run_until_idle()

    def storage_fault(*args: Any) -> None:
        raise OSError("storage unreachable")

    with monkeypatch.context() as patched:
        patched.setattr(env.host.engine, "raise_event", storage_fault)
        refused = requests.delete(started.headers["Location"], timeout=30)
    assert refused.status_code == 503, refused.text
    assert refused.headers["Retry-After"] == "5"
    assert refused.json()["code"] == "ServiceUnavailable"
    assert requests.get(started.headers["Location"], timeout=30).status_code == 202  # still running

    canceled = requests.delete(started.headers["Location"], timeout=30)
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["status"] == "Canceled"
