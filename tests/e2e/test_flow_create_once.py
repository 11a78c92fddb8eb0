"""A create reaches Graph at most once per attempt, and a possible second community is never silent.

Durable runs activities at least once: a host that dies after the create's POST and before the answer was
recorded runs the create again. The dev host's fault mode `rerun_activities` does exactly that (the first
run's result is lost), so the guard is tested without killing processes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests

from provisioning.steps import CREATE_ATTEMPT_MARKER, create_attempt_marker_id
from tests.e2e.workflow_env import WorkflowEnv, request_body


def test_a_create_run_again_after_its_result_was_lost_posts_once(
    start_env: Callable[..., WorkflowEnv],
) -> None:
    env = start_env(host_options={"rerun_activities": ["create_community"]})
    final, _ = env.provision(request_body())

    assert final.status_code == 200, final.text
    # The first run posted; the re-run found its attempt recorded and did not post again.
    assert len(env.graph_calls("create")) == 1
    [community] = env.sim.communities()
    document = final.json()
    assert document["community"]["id"] == community["id"]
    assert "possibleDuplicates" not in document
    prefix = create_attempt_marker_id(document["id"], "")
    markers = [status for status in env.host.engine.query() if status["instanceId"].startswith(prefix)]
    assert [marker["name"] for marker in markers] == [CREATE_ATTEMPT_MARKER]


def test_another_new_community_with_the_name_is_reported_as_a_possible_duplicate(
    env: WorkflowEnv,
) -> None:
    # The first create's answer is lost and nothing appears; the request creates again. Meanwhile a community
    # of the same name shows up (as a slow first create would): the request succeeds and says so.
    env.sim.set_scenario("connection-reset", route="create", commit=False, times=1)
    started = env.post(request_body())
    assert started.status_code == 202, started.text
    location = started.headers["Location"]
    document: dict[str, Any] = started.json()
    for _ in range(200):
        document = requests.get(location, timeout=30).json()
        if document.get("phase") == "waiting-for-graph":
            break
        env.host.advance(30)
    assert document.get("phase") == "waiting-for-graph", document
    other = env.sim.add_community(request_body()["displayName"])

    final, _ = env.follow(requests.get(location, timeout=30))

    assert final.status_code == 200, final.text
    result = final.json()
    assert result["possibleDuplicates"] == [other["id"]]
    assert result["community"]["id"] != other["id"]
