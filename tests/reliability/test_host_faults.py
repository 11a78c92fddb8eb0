"""Host faults (docs/workflow.md, "Reliability suite").

The dev host as a process (``python -m devhost``, scaled clock) is killed with SIGKILL at seeded random
moments while 12 provisionings run, and restarted on the same state file each time. The first kill comes while
Graph holds creates it has already carried out (slow answers): the window where a re-run create could make a
second community. Every request must end, and none may make a duplicate.
"""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from graph_simulator import FOREIGN_CREDENTIAL_VARIABLES, SEED_USERS, GraphSimulator
from tests.devhost.cli import REPO_ROOT, DevHostProcess, free_port
from tests.e2e.workflow_env import POLL_INTERVAL, request_body

pytestmark = pytest.mark.azurite  # the app's queue bindings need storage

SEED = 11
REQUESTS = 12
KILLS = 4
CLOCK_SPEED = 60  # a 30 s status-check timer takes half a second
CREATE_SECONDS = 0.3  # Graph creates the community, then takes this long (real time) to answer
SETTLE_SECONDS = 120.0


@dataclass
class HostFaultRun:
    sim: GraphSimulator
    finals: dict[str, requests.Response]  # by display name
    kills: list[float]  # simulator times of the kills


def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.01)


def _creates(sim: GraphSimulator) -> list[dict[str, Any]]:
    return [entry for entry in sim.requests() if entry["route"] == "create"]


@pytest.fixture(scope="module")
def host_fault_run(azurite: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostFaultRun]:
    rng = random.Random(SEED)
    workdir = tmp_path_factory.mktemp("host-faults")
    port = free_port()
    suffix = uuid.uuid4().hex[:8]
    args = ["--app", "function_app:app", "--port", str(port), "--state", str(workdir / "state.db")]
    args += ["--clock-speed", str(CLOCK_SPEED), "--host-json", str(REPO_ROOT / "host.json")]
    with pytest.MonkeyPatch.context() as monkeypatch, GraphSimulator() as sim:
        for name in FOREIGN_CREDENTIAL_VARIABLES:
            monkeypatch.delenv(name, raising=False)
        settings = {
            **sim.app_env(),
            "AzureWebJobsStorage": azurite.connection_string,
            "TASKHUB_NAME": "HostFaults",
            "PROVISIONING_QUEUE": f"requests-{suffix}",
            "RESULTS_QUEUE": f"results-{suffix}",
            "STATUS_POLL_INTERVAL_SECONDS": str(POLL_INTERVAL),
        }
        sim.set_scenario("slow", route="create", seconds=CREATE_SECONDS, times="unlimited")
        kills: list[float] = []
        status_urls: dict[str, str] = {}
        for round_number in range(KILLS + 1):
            host = DevHostProcess(args, cwd=workdir, env=settings)
            try:
                host.wait_started()
                if round_number == 0:
                    for number in range(REQUESTS):
                        body = request_body(
                            f"Host Faults {number:02d}", owners=[SEED_USERS[number % 5]["userPrincipalName"]]
                        )
                        answer = requests.post(
                            f"http://127.0.0.1:{port}/api/communities", json=body, timeout=10
                        )
                        assert answer.status_code == 202, answer.text
                        status_urls[body["displayName"]] = answer.headers["Location"]
                    # First kill: a create Graph has carried out is waiting for its answer.
                    _wait_for(lambda: bool(_creates(sim)), 30, "a create")
                    time.sleep(rng.uniform(0.05, CREATE_SECONDS - 0.1))
                elif round_number < KILLS:
                    time.sleep(rng.uniform(0.2, 2.0))
                else:
                    finals = _settle(status_urls)
            finally:
                if round_number < KILLS:
                    kills.append(sim.now())
                    host.kill()
                else:
                    host.interrupt()
        yield HostFaultRun(sim, finals, kills)


def _settle(status_urls: dict[str, str]) -> dict[str, requests.Response]:
    """Poll every request (real time; the host's clock is scaled) until none answers 202."""
    finals: dict[str, requests.Response] = {}
    deadline = time.monotonic() + SETTLE_SECONDS
    while len(finals) < len(status_urls):
        for name, url in status_urls.items():
            if name not in finals:
                answer = requests.get(url, timeout=10)
                if answer.status_code != 202:
                    finals[name] = answer
        pending = sorted(set(status_urls) - set(finals))
        assert not pending or time.monotonic() < deadline, f"still running: {pending}"
        time.sleep(0.1)
    return finals


def test_the_first_kill_came_while_graph_held_an_accepted_create(host_fault_run: HostFaultRun) -> None:
    first_kill = host_fault_run.kills[0]
    creates = _creates(host_fault_run.sim)
    assert any(entry["time"] < first_kill < entry["time"] + CREATE_SECONDS for entry in creates)
    assert len(host_fault_run.kills) == KILLS


def test_every_request_ends_and_succeeds(host_fault_run: HostFaultRun) -> None:
    outcomes = {
        name: (final.status_code, final.json()["status"]) for name, final in host_fault_run.finals.items()
    }
    assert len(outcomes) == REQUESTS
    assert set(outcomes.values()) == {(200, "Succeeded")}, outcomes


def test_no_duplicate_community(host_fault_run: HostFaultRun) -> None:
    communities = Counter(community["displayName"] for community in host_fault_run.sim.communities())
    assert communities == Counter(host_fault_run.finals.keys()), communities
    # A create re-run after a kill was looked up and adopted, never sent again.
    assert len(_creates(host_fault_run.sim)) == REQUESTS
    for name, final in host_fault_run.finals.items():
        [community] = [c for c in host_fault_run.sim.communities() if c["displayName"] == name]
        assert final.json()["community"]["id"] == community["id"]
