"""The orchestrator's cancel event, replayed by the dev host's Durable engine on a manual clock."""

from __future__ import annotations

import re

from devhost.durable.history import EventType
from provisioning.workflow import CANCEL_EVENT, CHECKS_PER_EXECUTION
from tests.e2e.workflow_env import POLL_INTERVAL, WorkflowEnv, provisioning_input

GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def test_cancel_in_a_continued_execution_ends_at_once_and_cancels_the_pending_timer(env: WorkflowEnv) -> None:
    instance_id = env.host.start_new("provision_community", provisioning_input("req-cancel-long"))
    env.host.advance((CHECKS_PER_EXECUTION + 1) * POLL_INTERVAL + 1)  # one continue-as-new behind it
    waiting = env.host.status(instance_id) or {}
    assert waiting["customStatus"]["operation"]["checks"] == CHECKS_PER_EXECUTION + 1
    checks = len(env.graph_calls("operation"))

    env.host.raise_event(instance_id, CANCEL_EVENT)
    env.host.run_until_idle()  # no virtual time passes: the pending timer must not be waited for

    status = env.host.status(instance_id)
    assert status is not None
    assert status["runtimeStatus"] == "Completed"
    document = status["output"]
    assert document["status"] == "Canceled"
    assert document["error"]["code"] == "Canceled"
    assert document["operation"]["checks"] == CHECKS_PER_EXECUTION + 1  # progress carried and kept
    assert document["createdAt"] == "2026-01-01T00:00:00Z"
    history = env.host.history(instance_id)
    # The budget entity's answers arrive as events too, named by their request's GUID: leave those out.
    raised = [
        event["Name"]
        for event in history
        if event["EventType"] == EventType.EVENT_RAISED and not GUID.fullmatch(event["Name"])
    ]
    assert raised == [CANCEL_EVENT]
    # Completed although the status-check timer it was waiting on never fired: that timer was canceled.
    last_timer = [event for event in history if event["EventType"] == EventType.TIMER_CREATED][-1]
    fired = {event["TimerId"] for event in history if event["EventType"] == EventType.TIMER_FIRED}
    assert last_timer["EventId"] not in fired
    env.host.advance(3600)
    assert len(env.graph_calls("operation")) == checks


def test_a_second_cancel_event_changes_nothing(env: WorkflowEnv) -> None:
    instance_id = env.host.start_new("provision_community", provisioning_input("req-cancel-twice"))
    env.host.advance(POLL_INTERVAL + 1)
    env.host.raise_event(instance_id, CANCEL_EVENT)
    env.host.raise_event(instance_id, CANCEL_EVENT)
    status = env.host.run_until_status(instance_id)
    assert status["runtimeStatus"] == "Completed"
    assert status["output"]["status"] == "Canceled"
    assert status["output"]["operation"]["checks"] == 1
