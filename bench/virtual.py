"""The app in an in-process dev host on a manual clock, against a Graph simulator in another process.

``virtual_env()`` is what the measurements on virtual time share (Graph calls, detection delay, replay cost,
faults, dev host speed). They run in a fresh interpreter each (``python -m bench.child``), so that interpreter
is the dev host process: its peak memory is the dev host's and the app's. The simulator's clock follows the
dev host's manual clock exactly (``SyncedClock``), so its request log and the status documents share one time
line and a 30-minute Graph operation takes a fraction of a second.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests

from bench.processes import STORAGE_VARIABLE, BenchError, Simulator, graph_simulator_process
from devhost.clock import ManualClock
from devhost.testing import FINAL_STATUSES, DevHost
from graph_simulator import SEED_USERS

POLL_INTERVAL = 30
OWNER_ID = SEED_USERS[0]["id"]  # an object id: resolving owners makes no Graph call


class SyncedClock(ManualClock):
    """The dev host's manual clock; each step forward first moves the simulator's clock by as much."""

    def __init__(self, simulator_url: str, start: datetime) -> None:
        super().__init__(start)
        self._session = requests.Session()
        self._url = simulator_url + "/_simulator/clock"

    def set(self, when: datetime) -> datetime:
        step = (when - self.now()).total_seconds()
        if step > 0:
            self._session.post(self._url, json={"advanceSeconds": step}, timeout=30).raise_for_status()
        return super().set(when)


@dataclass
class VirtualEnv:
    host: DevHost
    clock: SyncedClock
    sim: Simulator
    session: requests.Session = field(default_factory=requests.Session)

    def post_community(self, name: str) -> str:
        """POST /api/communities as a caller does; returns the request (instance) id."""
        body = {"displayName": name, "owners": [OWNER_ID], "privacy": "private"}
        response = self.session.post(f"{self.host.base_url}/api/communities", json=body, timeout=30)
        if response.status_code != 202:
            raise BenchError(f"POST /api/communities answered {response.status_code}: {response.text}")
        return str(response.json()["id"])

    def drive(
        self, instance_ids: Iterable[str], max_virtual_seconds: float = 6 * 3600, timeout: float = 300
    ) -> dict[str, dict[str, Any]]:
        """Move the clock from due timer to due timer until every instance has finished; their statuses."""
        pending = set(instance_ids)
        done: dict[str, dict[str, Any]] = {}
        limit = self.clock.time() + max_virtual_seconds
        deadline = time.monotonic() + timeout
        while True:
            self.host.run_until_idle(timeout=60)
            for instance_id in sorted(pending):
                status = self.host.status(instance_id)
                if status is not None and status.get("runtimeStatus") in FINAL_STATUSES:
                    done[instance_id] = status
            pending.difference_update(done)
            if not pending:
                return done
            due = self.host.engine.next_due_time()
            if due is None or due.timestamp() > limit or time.monotonic() > deadline:
                raise BenchError(
                    f"{len(pending)} request(s) still running; next timer "
                    + ("none" if due is None else due.isoformat())
                )
            if due > self.clock.now():
                self.clock.set(due)


def final_document(status: Mapping[str, Any]) -> dict[str, Any]:
    """The request's final status document; for an orchestration that failed outright (not a request that
    failed: its document says so), a stand-in naming the failure."""
    output = status.get("output")
    if isinstance(output, dict):
        return output
    message = str(output)[:300]
    return {
        "status": "Failed",
        "error": {"code": f"Orchestration{status.get('runtimeStatus')}", "message": message},
    }


def operation_id(path: str) -> str | None:
    """The operation id in a status-check path (``…/engagementAsyncOperations('id')`` or ``…/id``)."""
    marker = "engagementAsyncOperations"
    if marker not in path:
        return None
    rest = path.split(marker, 1)[1]
    return rest.strip("/()'") or None


def graph_time(text: str) -> float:
    """Epoch seconds of a Graph timestamp (``2026-01-01T00:00:00.1234567Z``) or a status document time."""
    head, _, fraction = text.rstrip("Z").partition(".")
    whole = datetime.fromisoformat(head).replace(tzinfo=UTC).timestamp()
    return whole + (float("0." + fraction) if fraction else 0.0)


def read_operations(sim: Simulator, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Each operation as Graph shows it now, read with a token of another app (the rate limit is per app)."""
    session = requests.Session()
    token = session.get(
        sim.url + "/msi/token",
        params={"api-version": "2019-08-01", "resource": "https://graph.microsoft.com", "client_id": "bench"},
        headers={"X-IDENTITY-HEADER": sim.env["IDENTITY_HEADER"]},
        timeout=30,
    )
    token.raise_for_status()
    headers = {"Authorization": "Bearer " + token.json()["access_token"]}
    found = {}
    for op_id in ids:
        url = f"{sim.url}/v1.0/employeeExperience/engagementAsyncOperations('{op_id}')"
        response = session.get(url, headers=headers, timeout=30)
        response.raise_for_status()
        found[op_id] = response.json()
    return found


def checks_for(duration_seconds: float) -> int:
    """Status checks a Graph operation of that duration forces at the poll interval: the first check comes
    one interval after the create; the operation is seen terminal at the first check at or after its end."""
    return max(1, math.ceil(duration_seconds / POLL_INTERVAL))


@contextmanager
def virtual_env(
    settings: Mapping[str, str] | None = None, polls_to_complete: int = 3
) -> Iterator[VirtualEnv]:
    start = float(int(time.time()))
    with graph_simulator_process(virtual_start=start, polls_to_complete=polls_to_complete) as sim:
        clock = SyncedClock(sim.url, datetime.fromtimestamp(start, UTC))
        app_settings = {
            **sim.env,
            "STATUS_POLL_INTERVAL_SECONDS": str(POLL_INTERVAL),
            "PROVISIONING_TIMEOUT_MINUTES": "60",
            "PROVISIONING_QUEUE": "bench-requests",
            "RESULTS_QUEUE": "bench-results",
            "TASKHUB_NAME": "bench",
            **(settings or {}),
        }
        with DevHost(
            app="function_app:app",
            clock=clock,
            settings=app_settings,
            storage_connection_string=os.environ[STORAGE_VARIABLE],
        ) as host:
            yield VirtualEnv(host, clock, sim)
