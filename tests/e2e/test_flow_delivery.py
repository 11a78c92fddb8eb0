"""End to end: the app survives the Durable delivery rules where Azure is harsher than a naive host.

* A canceled timer still fires (DTFx creates it and delivers its TimerFired at FireAt): a cancel that lands
  while the request waits for a status check leaves that check's timer to fire later, into one more episode.
* Cancel events raised around a continue-as-new reach the next execution: DTFx carries over events processed
  after ContinueAsNew, and raised events carry no execution id, so later ones go to the new execution.

The rules and their sources: docs/devhost-engine.md; tests/devhost/conformance/test_delivery.py pins them.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import requests

from devhost.durable.history import EventType, new_event
from devhost.durable.store import Store
from provisioning.workflow import CANCEL_EVENT, CHECKS_PER_EXECUTION
from tests.e2e.workflow_env import POLL_INTERVAL, CallbackReceiver, WorkflowEnv, request_body

AFTER_THE_END_SECONDS = 6 * 3600


def _start(env: WorkflowEnv, receiver: CallbackReceiver) -> str:
    started = env.post(request_body(callbackUrl=receiver.url))
    assert started.status_code == 202, started.text
    env.host.run_until_idle()
    return str(started.json()["id"])


def _progress(env: WorkflowEnv, instance_id: str) -> dict[str, Any]:
    status = env.host.status(instance_id)
    assert status is not None
    return dict(status["customStatus"])


def _wait_for_check(env: WorkflowEnv, instance_id: str, checks: int) -> datetime:
    """Advance until `checks` status checks are made and the next one waits on its timer; its due time."""
    for _ in range(checks + 5):
        operation = _progress(env, instance_id).get("operation") or {}
        if operation.get("checks") == checks and operation.get("nextCheckAt"):
            return datetime.fromisoformat(operation["nextCheckAt"].replace("Z", "+00:00"))
        env.host.advance(POLL_INTERVAL)
    raise AssertionError(f"the request never waited for check {checks + 1}: {_progress(env, instance_id)}")


def _last_timer_id(history: list[dict[str, Any]]) -> int:
    return int([e for e in history if e["EventType"] == EventType.TIMER_CREATED][-1]["EventId"])


def test_a_cancel_during_a_status_check_wait_ends_canceled_and_the_canceled_timer_fires_harmlessly(
    env: WorkflowEnv,
) -> None:
    with CallbackReceiver(status=500) as receiver:  # callback retries keep the request running a while
        instance_id = _start(env, receiver)
        next_check = _wait_for_check(env, instance_id, checks=0)
        status_url = f"{env.api}/communities/requests/{instance_id}"
        canceled_timer = _last_timer_id(env.host.history(instance_id))

        canceled = requests.delete(status_url, timeout=30)
        assert canceled.status_code == 200, canceled.text
        assert canceled.json()["status"] == "Canceled"
        env.host.run_until_idle()
        assert env.host.engine.next_due_time() is not None
        # Past the canceled timer's FireAt, callback retries still running: its TimerFired arrives.
        env.host.advance((next_check - env.host.clock.now()).total_seconds() + 1)
        running = env.host.status(instance_id)
        assert running is not None
        assert running["runtimeStatus"] == "Running"
        fired = [
            e["TimerId"] for e in env.host.history(instance_id) if e["EventType"] == EventType.TIMER_FIRED
        ]
        assert canceled_timer in fired
        assert running["customStatus"]["status"] == "Canceled"
        attempts = len(receiver.bodies)
        assert attempts >= 2

        receiver.status = 200
        final = env.host.run_until_status(instance_id)
        env.host.advance(AFTER_THE_END_SECONDS)
        bodies = list(receiver.bodies)

    assert final["runtimeStatus"] == "Completed"
    assert final["output"]["status"] == "Canceled"
    assert final["output"]["callback"] == "delivered"
    assert len(bodies) == attempts + 1  # exactly one more attempt, the delivered one; nothing after it
    assert {body["status"] for body in bodies} == {"Canceled"}
    assert env.graph_calls("operation") == []  # the canceled check was never made
    answer = requests.get(status_url, timeout=30)
    assert answer.status_code == 409
    assert answer.json()["status"] == "Canceled"


def test_a_cancel_raised_while_the_request_continues_as_new_cancels_the_next_execution(
    env: WorkflowEnv,
) -> None:
    env.sim.set_scenario("operation-never-ends")
    engine = env.host.engine
    observe = engine.episode_observer
    raised: list[str] = []

    with CallbackReceiver() as receiver:
        instance_id = _start(env, receiver)

        def cancel_during_continue_as_new(sent: str, received: str) -> None:
            if observe is not None:
                observe(sent, received)
            # The orchestrator returned ContinueAsNew; the episode is not committed yet.
            if '"actionType": 4' in received and not raised:
                raised.append(instance_id)
                env.host.raise_event(instance_id, CANCEL_EVENT)

        engine.episode_observer = cancel_during_continue_as_new
        final = env.host.run_until_status(instance_id)
        env.host.advance(AFTER_THE_END_SECONDS)
        bodies = list(receiver.bodies)

    assert raised == [instance_id]
    document = final["output"]
    assert (document["status"], document["error"]["code"]) == ("Canceled", "Canceled")
    assert document["operation"]["checks"] == CHECKS_PER_EXECUTION
    assert len(env.graph_calls("operation")) == CHECKS_PER_EXECUTION
    assert [body["status"] for body in bodies] == ["Canceled"]


def test_a_cancel_queued_behind_the_last_check_of_an_execution_is_carried_over(env: WorkflowEnv) -> None:
    env.sim.set_scenario("operation-never-ends")
    with CallbackReceiver() as receiver:
        instance_id = _start(env, receiver)
        last_check = _wait_for_check(env, instance_id, checks=CHECKS_PER_EXECUTION - 1)
        # Hold the execution's last status check in Graph, stop the host while it is answered: its result is
        # queued but not processed, and the cancel queues behind it. Both are delivered in one batch.
        env.sim.set_scenario("slow", route="operation", seconds=2)
        env.host.clock.set(last_check)  # type: ignore[attr-defined]
        deadline = time.monotonic() + 10
        while len(env.graph_calls("operation")) < CHECKS_PER_EXECUTION:
            assert time.monotonic() < deadline, "the last status check was never sent"
            time.sleep(0.02)
        env.host.stop()
        store = Store(env.host.state_path)
        try:
            with store.transaction() as tx:
                # What DurableEngine.raise_event queues for the Python client's raise_event(id, "cancel").
                now = env.host.clock.now()
                tx.add_message(
                    instance_id,
                    None,
                    now.timestamp(),
                    new_event(EventType.EVENT_RAISED, now, Name=CANCEL_EVENT, Input="null"),
                )
        finally:
            store.close()
        env.restart_host()
        final = env.host.run_until_status(instance_id)
        env.host.advance(AFTER_THE_END_SECONDS)
        bodies = list(receiver.bodies)

    document = final["output"]
    assert (document["status"], document["error"]["code"]) == ("Canceled", "Canceled")
    assert document["operation"]["checks"] == CHECKS_PER_EXECUTION
    assert len(env.graph_calls("operation")) == CHECKS_PER_EXECUTION
    assert [body["status"] for body in bodies] == ["Canceled"]
    # The next execution starts with the carried-over cancel, right after its ExecutionStarted.
    history = env.host.history(instance_id)
    assert [e["EventType"] for e in history[:4]] == [12, 0, 15, 13]
    assert (history[2]["Name"], history[2]["IsPlayed"]) == (CANCEL_EVENT, True)
