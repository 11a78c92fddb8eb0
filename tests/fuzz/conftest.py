"""One dev host per module (hundreds of cases share it), and the Hypothesis settings of every test here.

``FUZZ`` runs derandomized without an example database: the same cases on every run and machine, so a failure
reproduces and CI time does not vary.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from devhost.testing import DevHost
from provisioning.idempotency import is_request_id
from tests.e2e.workflow_env import QueueEnv, WorkflowEnv, queue, workflow_env

FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


@contextmanager
def module_env(azurite: Any, settings: Mapping[str, str], **host_options: Any) -> Iterator[WorkflowEnv]:
    """The app in one dev host (``host_options``: DevHost's) against a Graph simulator, stopped at the end."""

    def start(**options: Any) -> DevHost:
        return DevHost(**options, **host_options).start()

    with (
        pytest.MonkeyPatch.context() as monkeypatch,
        workflow_env(start, monkeypatch, azurite.connection_string, settings=settings) as env,
    ):
        try:
            yield env
        finally:
            env.host.stop()


@pytest.fixture(scope="module")
def fuzz_env(azurite: Any) -> Iterator[QueueEnv]:
    """The app for the whole module, reading a request queue of its own."""
    suffix = uuid.uuid4().hex[:8]
    names = {"PROVISIONING_QUEUE": f"fuzz-requests-{suffix}", "RESULTS_QUEUE": f"fuzz-results-{suffix}"}
    requests_queue = queue(azurite.connection_string, names["PROVISIONING_QUEUE"])
    results_queue = queue(azurite.connection_string, names["RESULTS_QUEUE"])
    with module_env(azurite, names) as env:
        yield QueueEnv(env, requests_queue, results_queue)


def started(env: WorkflowEnv) -> set[str]:
    """Ids of the requests the host has started (not the create-try markers their orchestrations add)."""
    return {
        instance["instanceId"]
        for instance in env.host.engine.query()
        if is_request_id(instance["instanceId"])
    }
