"""Bulk provisioning at Viva Engage's limit: requests at once with the app-wide budget and without, a batch.

The simulator's ``rate-limit`` scenario is on (Viva Engage: 10 requests per 30 s per app, counted in the
simulator's clock, which follows the dev host's manual clock). Each run is a fresh dev host process:

* **singles, budget on**: N ``POST /api/communities`` at one virtual instant, the app as configured.
* **singles, budget off**: the same with the app setting ``GRAPH_BUDGET_REQUESTS=1000000`` (app code
  unchanged): the orchestrations still call the ``graph_budget`` entity before every Viva Engage request, but
  a reservation never waits, so only Graph's 429s and their Retry-After pace the requests. Its cost grows much
  faster than its count (every 429 adds a timer, an entity call and an activity to a history that the later
  episodes replay), so it runs fewer requests when it must, and budget on is run again at that count beside
  it.
* **batch, budget on**: the N communities as one ``POST /api/communities/batches``.
* **batch of 1,000** (the most a batch may hold), for the history of the batch orchestration only: run for its
  first few executions (each continues as new after the same number of looks at its items, so they all have
  the same shape), not to the end, which would cost about as much CPU as all the other runs together.

The clock then moves from due timer to due timer until nothing is left to run. Operations finish at their
first status check (the simulator's ``pollsToComplete`` set to 1; its default of 3 adds two status checks),
so the least a community costs is 4 Viva Engage requests (name check, create, one status check, the
confirming read), the figure docs/workflow.md and a batch's estimate use.

* **rate/limit**: accepted Viva Engage requests (routes create, operation, community, list; 429s not counted)
  per 30 s over the busy period, from the first to the last such request plus one window:
  ``accepted * 30 / (last - first + 30)``, divided by 10. 1.00 = every window full (target >= 0.90).
* **429s per 100 communities** (target <= 1); **failed** (final document not ``Succeeded``) and **dups**
  (communities beyond the first with one display name, in the simulator), both target 0.
* **makespan/ideal**: from the first POST to the last request settled (its final document's
  ``lastUpdatedAt``; for a batch, the batch document's) against every community of the run (the extra one
  included) at 4 requests each and 10 requests per 30 s (target <= 1.15).
* **extra**: one more request sent by itself in the middle of the run (at half the ideal makespan), from its
  POST to its settled document, in virtual seconds; **/alone**: against the same request with nothing else
  running (measured first in each run's own dev host; the rate window is then left to empty).
* **history**: the most events one orchestration execution was replayed with: request executions (a batch's
  items are requests), and in brackets the batch's own execution with its size in bytes.

Peak memory is that of the run's dev host process (``bench.child``'s way); CPU s is that process's CPU time
(the simulator's not counted). The runs go two at a time on two cores, so their wall times overlap.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bench.processes import RESULT_MARKER, ROOT, BenchError, clean_environ
from bench.report import Ratio, Section, Target, doc_body
from bench.virtual import OWNER_ID, VirtualEnv, final_document, graph_time, virtual_env
from devhost.testing import FINAL_STATUSES
from provisioning.batch_workflow import is_batch_id, item_request_id

LIMIT = 10
WINDOW = 30.0
ENGAGE_ROUTES = frozenset({"create", "operation", "community", "list"})
BUDGET_OFF = "1000000"  # GRAPH_BUDGET_REQUESTS: reservations never wait; the entity is still called


@dataclass(frozen=True)
class AtLeast(Target):
    """A target the ratio must reach: ``>= limit``."""

    def met(self, value: float | None) -> bool | None:
        if self.limit is None or value is None:
            return None
        return value >= self.limit - 1e-9

    def __str__(self) -> str:
        return f">= {self.limit:.2f}"


RATE_TARGET = AtLeast(0.9)
THROTTLED_PER_100 = Target(1.0)
MAKESPAN_TARGET = Target(1.15)
ZERO = Target(0.0)


# -- the measurement (in its own dev host process) ----------------------------------------------------------


class _Histories:
    """The largest history (events, bytes) any orchestrator episode replays, per kind of orchestration.

    An execution's last episode replays all of it but the events that episode adds, so this is its length to
    within one episode's decisions; continued executions start afresh and are counted on their own."""

    def __init__(self) -> None:
        self.largest: dict[str, tuple[int, int]] = {}
        self.batch_executions = 0  # batch executions seen (a history shorter than the last one's: a new one)
        self._batch_events = 0

    def clear(self) -> None:
        self.largest.clear()
        self.batch_executions = self._batch_events = 0

    def observe(self, context_json: str, state_json: str) -> None:
        events = context_json.count('"EventType": ')
        at = context_json.rfind('"instanceId": "')
        instance_id = context_json[at + 15 : context_json.find('"', at + 15)] if at >= 0 else ""
        kind = "batch" if is_batch_id(instance_id) else "request"
        if kind == "batch":
            self.batch_executions += events < self._batch_events or not self.batch_executions
            self._batch_events = events
        seen = self.largest.get(kind, (0, 0))
        if events > seen[0]:
            self.largest[kind] = (events, len(context_json))


def measure(params: dict[str, Any]) -> dict[str, Any]:
    mode: str = params["mode"]
    count: int = params["communities"]
    polls: int = params["polls"]
    settings = {"PROVISIONING_TIMEOUT_MINUTES": str(params["timeoutMinutes"])}
    if not params["budget"]:
        settings["GRAPH_BUDGET_REQUESTS"] = BUDGET_OFF
    histories = _Histories()
    started_cpu = time.process_time()
    with virtual_env(settings, polls_to_complete=polls) as env:
        env.sim.set_scenario("rate-limit", limit=LIMIT, window=WINDOW)
        env.host.engine.episode_observer = histories.observe
        label = params["label"]
        if params.get("probeSeconds"):
            return _probe_batch_history(env, histories, params, started_cpu)
        alone = _alone_latency(env, f"Bench bulk {label} alone")
        env.clock.set(env.clock.now() + timedelta(seconds=3 * WINDOW))  # the rate window and the budget empty
        env.sim.admin("DELETE", "requests")
        histories.clear()
        per_community = 3 + polls
        ideal = (count + 1) * per_community * WINDOW / LIMIT
        first_post = env.clock.time()
        batch_id = None
        if mode == "batch":
            batch_id = _post_batch(env, [f"Bench bulk {label} #{i}" for i in range(count)])
            ids = [item_request_id(batch_id, index) for index in range(count)]
        else:
            ids = [env.post_community(f"Bench bulk {label} #{i}") for i in range(count)]
        extra_id, extra_posted, steps = _drive(
            env, first_post + ideal / 2, f"Bench bulk {label} extra", params["wallTimeout"], ideal
        )
        documents = _final_documents(env, [*ids, extra_id])
        batch_document = final_document(env.host.status(batch_id) or {}) if batch_id else None
        log = [entry for entry in env.sim.graph_requests() if entry["route"] in ENGAGE_ROUTES]
        names = Counter(str(c["displayName"]) for c in env.sim.admin("GET", "communities")["value"])
        simulator_peak = env.sim.peak_mib()
    settled = [
        graph_time(str(doc["lastUpdatedAt"])) for doc in documents.values() if doc.get("lastUpdatedAt")
    ]
    if batch_document is not None and batch_document.get("lastUpdatedAt"):
        settled.append(graph_time(str(batch_document["lastUpdatedAt"])))
    accepted = [entry["time"] for entry in log if entry["status"] != 429]
    extra_document = documents[extra_id]
    statuses = Counter(str(doc.get("status")) for doc in documents.values())
    errors = Counter(
        str((doc.get("error") or {}).get("code"))
        for doc in documents.values()
        if doc.get("status") != "Succeeded"
    )
    return {
        "mode": mode,
        "budget": params["budget"],
        "communities": count,
        "polls": polls,
        "perCommunity": per_community,
        "idealSeconds": ideal,
        "accepted": len(accepted),
        "busySeconds": (max(accepted) - min(accepted)) if accepted else 0.0,
        "engageRequests": len(log),
        "throttled": sum(1 for entry in log if entry["status"] == 429),
        "statuses": dict(statuses),
        "errors": dict(errors),
        "failed": sum(1 for doc in documents.values() if doc.get("status") != "Succeeded"),
        "duplicates": sum(n - 1 for n in names.values() if n > 1),
        "makespanSeconds": max(settled) - first_post if settled else None,
        "batchStatus": None if batch_document is None else batch_document.get("status"),
        "aloneSeconds": alone,
        "extraSeconds": graph_time(str(extra_document["lastUpdatedAt"])) - extra_posted,
        "extraStatus": extra_document.get("status"),
        "extraAfterSeconds": extra_posted - first_post,
        "history": {kind: list(value) for kind, value in histories.largest.items()},
        "clockSteps": steps,
        "cpuSeconds": time.process_time() - started_cpu,
        "simulatorPeakMiB": simulator_peak,
    }


def _probe_batch_history(
    env: VirtualEnv, histories: _Histories, params: dict[str, Any], started_cpu: float
) -> dict[str, Any]:
    """A batch of ``communities`` items run for its first ``probeSeconds`` of virtual time only: its own
    executions all have the same shape (``CHECKS_PER_EXECUTION`` looks), so their largest history is reached
    within the first few; the rest of the run would only repeat them."""
    count, label = int(params["communities"]), params["label"]
    first_post = env.clock.time()
    batch_id = _post_batch(env, [f"Bench bulk {label} #{i}" for i in range(count)])
    until = first_post + float(params["probeSeconds"])
    deadline = time.monotonic() + float(params["wallTimeout"])
    steps = 0
    while True:
        env.host.run_until_idle(timeout=120)
        due = env.host.engine.next_due_time()
        if due is None or due.timestamp() > until:
            break
        if time.monotonic() > deadline:
            raise BenchError(f"the batch probe took more than {params['wallTimeout']:.0f} s of wall time")
        if due > env.clock.now():
            env.clock.set(due)
            steps += 1
    document = (env.host.status(batch_id) or {}).get("customStatus") or {}
    return {
        "mode": "batch-probe",
        "communities": count,
        "virtualSeconds": env.clock.time() - first_post,
        "settled": int(document.get("total", count))
        - sum(int((document.get("counts") or {}).get(name, 0)) for name in ("Running", "NotStarted")),
        "batchExecutions": histories.batch_executions,
        "history": {kind: list(value) for kind, value in histories.largest.items()},
        "clockSteps": steps,
        "cpuSeconds": time.process_time() - started_cpu,
        "simulatorPeakMiB": env.sim.peak_mib(),
    }


def _alone_latency(env: VirtualEnv, name: str) -> float:
    posted = env.clock.time()
    instance_id = env.post_community(name)
    document = final_document(env.drive([instance_id])[instance_id])
    if document.get("status") != "Succeeded":
        raise BenchError(f"the request alone did not succeed: {document.get('error')}")
    return graph_time(str(document["lastUpdatedAt"])) - posted


def _post_batch(env: VirtualEnv, names: list[str]) -> str:
    items = [{"displayName": name, "owners": [OWNER_ID], "privacy": "private"} for name in names]
    response = env.session.post(
        f"{env.host.base_url}/api/communities/batches", json={"items": items}, timeout=120
    )
    if response.status_code != 202:
        raise BenchError(
            f"POST /api/communities/batches answered {response.status_code}: {response.text[:300]}"
        )
    return str(response.json()["id"])


def _drive(
    env: VirtualEnv, extra_at: float, extra_name: str, wall_timeout: float, ideal: float
) -> tuple[str, float, int]:
    """Move the clock from due timer to due timer until nothing is due; on the way, at ``extra_at``, send one
    more request. Returns its id, the virtual time it was sent, and the clock steps taken."""
    extra_id: str | None = None
    extra_posted = 0.0
    limit = env.clock.time() + 20 * ideal + 6 * 3600
    deadline = time.monotonic() + wall_timeout
    steps = 0
    while True:
        env.host.run_until_idle(timeout=120)
        due = env.host.engine.next_due_time()
        if extra_id is None and (due is None or due.timestamp() >= extra_at):
            if env.clock.time() < extra_at:
                env.clock.set(env.clock.now() + timedelta(seconds=extra_at - env.clock.time()))
            extra_posted = env.clock.time()
            extra_id = env.post_community(extra_name)
            continue
        if due is None:
            assert extra_id is not None
            return extra_id, extra_posted, steps
        if due.timestamp() > limit or time.monotonic() > deadline:
            raise BenchError(f"still running after {steps} clock steps; next timer {due.isoformat()}")
        if due > env.clock.now():
            env.clock.set(due)
            steps += 1


def _final_documents(env: VirtualEnv, ids: list[str]) -> dict[str, dict[str, Any]]:
    documents = {}
    for instance_id in ids:
        status = env.host.status(instance_id)
        if status is None or status.get("runtimeStatus") not in FINAL_STATUSES:
            raise BenchError(
                f"request {instance_id} did not settle: {status and status.get('runtimeStatus')}"
            )
        documents[instance_id] = final_document(status)
    return documents


# -- the parent side: one fresh dev host process per run, render the figures --------------------------------

POLLS = 1  # an operation is done at its first status check: 4 Viva Engage requests per community
# ``budgetOff``: requests at once with the budget off. Every 429 adds a timer, an entity call and an activity
# to the history of a request that its later episodes replay, so that run's cost grows much faster than its
# count (on 2 cores: 50 took about 35 s, 100 about 290 s, 200 did not finish in 300 s); budget on is run
# again at that count to compare the two side by side. ``big``: the largest batch allowed, run only for its
# first ``bigExecutions`` executions of its own (its history; the whole of it took about 190 CPU s on 2 cores,
# with rate/limit 0.97, makespan/ideal 1.03, no 429s).
FULL: dict[str, Any] = {"communities": 200, "budgetOff": 50, "big": 1000, "bigExecutions": 3}
QUICK: dict[str, Any] = {"communities": 12, "budgetOff": 12, "big": 40, "bigExecutions": 1}


@dataclass(frozen=True)
class _Run:
    name: str
    mode: str
    budget: bool
    communities: int
    probe_seconds: float = 0.0

    @property
    def title(self) -> str:
        return f"{self.name} ({self.communities})"

    def params(self, label: str) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "budget": self.budget,
            "communities": self.communities,
            "polls": POLLS,
            "label": label,
            # Far beyond the makespan: no request may time out on the way.
            "timeoutMinutes": max(240, self.communities),
            "wallTimeout": 300.0,
            "probeSeconds": self.probe_seconds,
        }


def run(quick: bool) -> Section:
    from provisioning.batch_workflow import CHECK_INTERVAL_SECONDS, CHECKS_PER_EXECUTION

    section = Section("bulk", "Bulk provisioning at Viva Engage's limit (virtual time)", doc_body(__doc__))
    plan = QUICK if quick else FULL
    count, off, big = plan["communities"], plan["budgetOff"], plan["big"]
    started = time.monotonic()
    section.say(
        f"rate-limit {LIMIT} requests / {WINDOW:.0f} s per app; operations done at status check {POLLS}, so "
        f"at least {3 + POLLS} Viva Engage requests per community; 'budget off' = GRAPH_BUDGET_REQUESTS="
        f"{BUDGET_OFF} (the entity is still called, a reservation never waits)"
    )
    if off != count:
        section.say(
            f"budget off runs {off} requests, not {count}: its cost grows much faster than the count (each "
            f"429 lengthens the history later episodes replay); budget on is also run at {off} beside it"
        )
    singles_on = _Run("singles, budget on", "single", True, count)
    paired_on = _Run("singles, budget on", "single", True, off) if off != count else None
    singles_off = _Run("singles, budget off", "single", False, off)
    batch = _Run("batch, budget on", "batch", True, count)
    # Enough virtual time for ``bigExecutions`` whole executions of the batch orchestration, and a look more.
    probe_seconds = (plan["bigExecutions"] * CHECKS_PER_EXECUTION + 1) * CHECK_INTERVAL_SECONDS
    probe = _Run("batch, budget on", "batch", True, big, probe_seconds) if big else None
    # Two lanes on two cores, each run a dev host process (and a simulator) of its own.
    lanes = [[singles_on, singles_off], [r for r in (paired_on, batch, probe) if r is not None]]
    labels = {id(spec): f"r{index}" for index, spec in enumerate(r for lane in lanes for r in lane)}
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [
            pool.submit(lambda lane: [(r, run_measurement(r.params(labels[id(r)]))) for r in lane], lane)
            for lane in lanes
        ]
        done = {id(spec): result for future in futures for spec, result in future.result()}
    order = [r for r in (singles_on, paired_on, singles_off, batch) if r is not None]
    _render(section, [(r.title, done[id(r)]) for r in order])
    if probe is not None:
        _render_probe(section, probe, done[id(probe)], done[id(batch)])
    section.say(f"section took {time.monotonic() - started:.0f} s of wall time (two runs at a time)")
    return section


def _render_probe(section: Section, probe: _Run, result: dict[str, Any], batch: dict[str, Any]) -> None:
    own = result["history"].get("batch", [0, 0])
    reference = batch["history"].get("batch", [0, 0])
    request = result["history"].get("request", [0, 0])
    memory = f"dev host {result['peakMiB']:.0f} MiB, simulator {result['simulatorPeakMiB']:.0f} MiB"
    whole = probe.communities * (3 + POLLS) * WINDOW / LIMIT
    section.say(
        f"{probe.title}, its first {result['virtualSeconds']:.0f} virtual s only (of about {whole:.0f}; "
        f"{result['batchExecutions']} executions of the batch orchestration, {result['settled']} items "
        f"settled): largest batch execution {own[0]} events ({own[1] / 1024:.0f} KiB), largest request "
        f"execution {request[0]} events; {memory}; {result['cpuSeconds']:.0f} CPU s, "
        f"{result['wallSeconds']:.0f} wall s"
    )
    section.ratios.append(
        Ratio(
            f"Bulk batch of {probe.communities} / of {batch['communities']}: largest execution history of "
            "the batch orchestration (events)",
            own[0] / reference[0] if reference[0] else None,
            figure=f"{own[0]} / {reference[0]} events ({own[1] / 1024:.0f} / {reference[1] / 1024:.0f} KiB; "
            f"first {result['batchExecutions']} executions of the {probe.communities}-item batch)",
            memory=memory,
        )
    )


def run_measurement(params: dict[str, Any]) -> dict[str, Any]:
    """``measure(params)`` in a fresh interpreter through ``bench.child`` (so that its peak memory is that of
    one dev host process), with its wall time."""
    started = time.monotonic()
    with tempfile.TemporaryFile(mode="w+") as stderr:
        completed = subprocess.run(
            [sys.executable, "-m", "bench.bulk", "bulk", json.dumps(params)],
            cwd=ROOT,
            env=clean_environ(),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            timeout=float(params["wallTimeout"]) + 120,
            check=False,
        )
        stderr.seek(0)
        errors = stderr.read()
    results = [line for line in completed.stdout.splitlines() if line.startswith(RESULT_MARKER)]
    if completed.returncode != 0 or not results:
        tail = "\n".join(errors.strip().splitlines()[-25:])
        raise BenchError(f"bulk run {params['label']} failed (exit {completed.returncode}):\n{tail}")
    result: dict[str, Any] = json.loads(results[-1][len(RESULT_MARKER) :])
    result["wallSeconds"] = time.monotonic() - started
    return result


def _rate(result: dict[str, Any]) -> float:
    return float(result["accepted"]) * WINDOW / (float(result["busySeconds"]) + WINDOW) / LIMIT


def _render(section: Section, results: list[tuple[str, dict[str, Any]]]) -> None:
    section.say()
    section.table(
        (
            "run",
            "rate/limit",
            "429s",
            "/100",
            "failed",
            "dups",
            "makespan s",
            "/ideal",
            "extra s",
            "/alone",
            "history",
            "dev host MiB",
            "CPU s",
            "wall s",
        ),
        [
            (
                name,
                f"{_rate(r):.2f}",
                str(r["throttled"]),
                f"{100 * r['throttled'] / r['communities']:.1f}",
                str(r["failed"]),
                str(r["duplicates"]),
                "-" if r["makespanSeconds"] is None else f"{r['makespanSeconds']:.0f}",
                "-" if r["makespanSeconds"] is None else f"{r['makespanSeconds'] / r['idealSeconds']:.2f}",
                f"{r['extraSeconds']:.0f}",
                f"{r['extraSeconds'] / r['aloneSeconds']:.1f}",
                _history(r),
                f"{r['peakMiB']:.0f}",
                f"{r['cpuSeconds']:.0f}",
                f"{r['wallSeconds']:.0f}",
            )
            for name, r in results
        ],
        (24, 10, 5, 5, 6, 5, 10, 6, 7, 6, 20, 12, 6, 6),
    )
    section.say(
        "history = most events one execution replayed: request (item) executions, and for a batch its own "
        "execution in brackets; extra = one more request sent alone mid-run, POST to settled (virtual s)"
    )
    for name, r in results:
        details = [
            f"{r['accepted']} accepted + {r['throttled']} throttled Viva Engage requests over "
            f"{r['busySeconds']:.0f} s; ideal {r['idealSeconds']:.0f} s = {r['communities'] + 1} x "
            f"{r['perCommunity']} requests at {LIMIT}/{WINDOW:.0f} s",
            f"extra sent at +{r['extraAfterSeconds']:.0f} s ({r['extraStatus']}), "
            f"alone {r['aloneSeconds']:.0f} s",
            f"{r['clockSteps']} clock steps",
            f"simulator {r['simulatorPeakMiB']:.0f} MiB",
        ]
        if r["errors"]:
            details.append("not succeeded: " + ", ".join(f"{code} {n}" for code, n in r["errors"].items()))
        if r.get("batchStatus"):
            details.append(f"batch {r['batchStatus']}")
        section.say(f"{name}: " + "; ".join(details))
    for name, r in results:
        memory = f"dev host {r['peakMiB']:.0f} MiB, simulator {r['simulatorPeakMiB']:.0f} MiB"
        n = r["communities"]
        section.ratios.append(
            Ratio(
                f"Bulk {name}: Viva Engage requests per 30 s / limit",
                _rate(r),
                RATE_TARGET,
                f"{r['accepted']} accepted in {r['busySeconds'] + WINDOW:.0f} s ({_rate(r):.3f})",
                memory,
            )
        )
        section.ratios.append(
            Ratio(
                f"Bulk {name}: 429s per 100 communities",
                100 * r["throttled"] / n,
                THROTTLED_PER_100,
                f"{r['throttled']} 429s; {r['failed']} failed, {r['duplicates']} duplicate communities",
                memory,
            )
        )
        if r["makespanSeconds"] is not None:
            section.ratios.append(
                Ratio(
                    f"Bulk {name}: makespan / ideal",
                    r["makespanSeconds"] / r["idealSeconds"],
                    MAKESPAN_TARGET,
                    f"{r['makespanSeconds']:.0f} s / {r['idealSeconds']:.0f} s",
                    memory,
                )
            )
        section.ratios.append(
            Ratio(
                f"Bulk {name}: one request sent mid-run / alone (latency)",
                r["extraSeconds"] / r["aloneSeconds"],
                figure=f"{r['extraSeconds']:.0f} s / {r['aloneSeconds']:.0f} s; "
                f"largest history: {_history(r, True)}",
                memory=memory,
            )
        )
        if r["failed"] or r["duplicates"]:
            section.ratios.append(
                Ratio(
                    f"Bulk {name}: failed + duplicate communities",
                    float(r["failed"] + r["duplicates"]),
                    ZERO,
                    f"{r['failed']} failed, {r['duplicates']} duplicates",
                    memory,
                )
            )


def _history(result: dict[str, Any], long: bool = False) -> str:
    history = result["history"]
    request, batch = history.get("request", [0, 0]), history.get("batch")
    if long:
        text = f"request {request[0]} events"
        return text + (f", batch {batch[0]} events ({batch[1] / 1024:.0f} KiB)" if batch else "")
    return str(request[0]) + (f" [{batch[0]}, {batch[1] / 1024:.0f} KiB]" if batch else "")


if __name__ == "__main__":
    # ``python -m bench.bulk bulk PARAMS_JSON``: ``bench.child`` (its result line, its peak memory sampling)
    # with this measurement added to the ones it knows.
    from bench import child

    child.MEASUREMENTS = (*child.MEASUREMENTS, "bulk")  # type: ignore[assignment]
    sys.exit(child.main(sys.argv[1:]))
