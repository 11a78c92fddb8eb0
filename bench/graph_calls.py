"""Graph calls per community against the minimum, and how long after Graph finished a request settles.

For each simulated operation duration D, a batch of communities is requested at one virtual instant through
``POST /api/communities`` and driven to the end on the dev host's manual clock. The simulator counts an
operation's progress in answered status checks, so a duration maps to the check that first sees it terminal:
``max(1, ceil(D / 30 s))`` at the poll interval (the first check comes one interval after the create). The
minimum per community is then the name check + the create + those checks + the confirming read; every Graph
request in the simulator's log counts, 429s included.

Detection delay: the operation ends in Graph at ``createdDateTime + D`` (the operation as Graph shows it, in
the simulator's virtual time); the request settles at the ``lastUpdatedAt`` of its final status document.
The delay is shown as a fraction of the poll interval. The model holds while the simulator's terminal check is
the first one at or after the modelled end; rows where it does not (checks pushed later by throttling, or
checks closer than the interval) are counted in ``off-model``. ``min gap`` is the shortest time between two
status checks of one operation (never under the interval, 30 s).

Time to settle, for context (no target): from the POST to the final document, against the least the duration
allows (``checks`` intervals); the worst request of the batch. It shows what waiting for a turn costs, which
neither ratio above sees: an app that paces its own Graph calls delays the create of some of the requests.

With throttling, the simulator's ``rate-limit`` scenario (Viva Engage: 10 requests per 30 s per app) is on.
"""

from __future__ import annotations

import itertools
import statistics
from collections import Counter, defaultdict
from typing import Any

from bench.processes import run_child
from bench.report import AT_MOST_ONE, EXACTLY_ONE, Ratio, Section, doc_body
from bench.virtual import (
    POLL_INTERVAL,
    checks_for,
    final_document,
    graph_time,
    operation_id,
    read_operations,
    virtual_env,
)


def measure(params: dict[str, Any]) -> dict[str, Any]:
    durations: list[float] = params["durations"]
    per_batch: int = params["communities"]
    throttled: bool = params["throttled"]
    rows = []
    with virtual_env() as env:
        for duration in durations:
            checks = checks_for(duration)
            env.sim.reset()
            env.sim.configure(polls_to_complete=checks)
            if throttled:
                env.sim.set_scenario("rate-limit")
            label = f"{'t' if throttled else 'u'}{int(duration)}"
            requested = env.clock.time()
            ids = [env.post_community(f"Bench calls {label} #{i}") for i in range(per_batch)]
            statuses = env.drive(ids, max_virtual_seconds=duration + 6 * 3600)
            log = env.sim.graph_requests()
            rows.append(_batch_row(env.sim, duration, checks, statuses, log, requested))
        simulator_peak = env.sim.peak_mib()
    return {"rows": rows, "simulatorPeakMiB": simulator_peak}


def _batch_row(
    sim: Any,
    duration: float,
    checks: int,
    statuses: dict[str, dict[str, Any]],
    log: list[dict[str, Any]],
    requested: float,
) -> dict[str, Any]:
    attempts: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in log:
        op_id = operation_id(entry["path"]) if entry["route"] == "operation" else None
        if op_id is not None:
            attempts[op_id].append(entry)
    operations = read_operations(sim, attempts)
    by_community = {op["resourceId"]: op_id for op_id, op in operations.items() if op.get("resourceId")}
    delays, gaps, settles, off_model, succeeded = [], [], [], 0, 0
    errors: Counter[str] = Counter()
    for status in statuses.values():
        document = final_document(status)
        if document.get("status") != "Succeeded":
            errors[str((document.get("error") or {}).get("code"))] += 1
            continue
        succeeded += 1
        op_id = by_community[document["community"]["id"]]
        ends = graph_time(operations[op_id]["createdDateTime"]) + duration
        settled = graph_time(document["lastUpdatedAt"])
        delays.append((settled - ends) / POLL_INTERVAL)
        settles.append((settled - requested) / (checks * POLL_INTERVAL))
        times = [entry["time"] for entry in attempts[op_id]]
        gaps += [later - earlier for earlier, later in itertools.pairwise(times)]
        answered = [entry["time"] for entry in attempts[op_id] if entry["status"] == 200]
        terminal_ok = len(answered) >= checks and answered[checks - 1] >= ends - 1e-6
        earlier_ok = checks < 2 or answered[checks - 2] < ends
        off_model += not (terminal_ok and earlier_ok)
    routes = Counter(entry["route"] for entry in log)
    return {
        "durationSeconds": duration,
        "checks": checks,
        "communities": len(statuses),
        "succeeded": succeeded,
        "calls": len(log),
        "minimum": len(statuses) * (3 + checks),
        "throttled": sum(1 for entry in log if entry["status"] == 429),
        "routes": dict(routes),
        "delayMax": max(delays) if delays else None,
        "delayMedian": statistics.median(delays) if delays else None,
        "minGapSeconds": min(gaps) if gaps else None,
        "settleMax": max(settles) if settles else None,
        "offModel": off_model,
        "errors": dict(errors),
    }


# -- the parent side: run the measurement in fresh interpreters, render the figures -------------------------

FULL: dict[str, Any] = {"durations": [0, 45, 130, 310, 740, 1800], "communities": 6}
QUICK: dict[str, Any] = {"durations": [0, 310], "communities": 3}


def run(quick: bool) -> Section:
    section = Section(
        "graph-calls", "Graph calls per community and detection delay (virtual time)", doc_body(__doc__)
    )
    params = QUICK if quick else FULL
    section.say(
        f"{params['communities']} communities requested at once per duration; D = simulated operation "
        "duration (min:s); delay in poll intervals (30 s)"
    )
    for throttled in (False, True):
        result = run_child("graph_calls", {**params, "throttled": throttled})
        rows = result["rows"]
        section.say()
        section.say(
            "with Viva Engage's rate limit (rate-limit: 10 requests / 30 s per app)"
            if throttled
            else "without throttling"
        )
        section.table(
            (
                "D",
                "checks",
                "calls",
                "minimum",
                "ratio",
                "429s",
                "delay p50",
                "delay max",
                "min gap s",
                "off-model",
                "settle max",
            ),
            [
                (
                    _minutes(row["durationSeconds"]),
                    str(row["checks"]),
                    str(row["calls"]),
                    str(row["minimum"]),
                    f"{row['calls'] / row['minimum']:.2f}",
                    str(row["throttled"]),
                    _fraction(row["delayMedian"]),
                    _fraction(row["delayMax"]),
                    "-" if row["minGapSeconds"] is None else f"{row['minGapSeconds']:.1f}",
                    str(row["offModel"]),
                    _fraction(row["settleMax"]),
                )
                for row in rows
            ],
            (6, 7, 6, 8, 6, 5, 10, 10, 10, 10, 11),
        )
        failed = sum(row["communities"] - row["succeeded"] for row in rows)
        if failed:
            codes = Counter[str]()
            for row in rows:
                codes.update(row["errors"])
            listed = ", ".join(f"{code} {count}" for code, count in codes.most_common())
            section.say(f"{failed} request(s) did not succeed ({listed}); their delays are not counted")
        memory = f"dev host {result['peakMiB']:.0f} MiB, simulator {result['simulatorPeakMiB']:.0f} MiB"
        section.say("peak memory: " + memory)
        calls = sum(row["calls"] for row in rows)
        minimum = sum(row["minimum"] for row in rows)
        mode = "rate limit on" if throttled else "no throttling"
        section.ratios.append(
            Ratio(
                f"Graph calls per community / minimum, D 0-{_minutes(max(params['durations']))}, {mode}",
                calls / minimum,
                EXACTLY_ONE,
                f"{calls} calls / {minimum} minimum ({sum(row['throttled'] for row in rows)} were 429)",
                memory,
            )
        )
        delays = [row["delayMax"] for row in rows if row["delayMax"] is not None]
        medians = [row["delayMedian"] for row in rows if row["delayMedian"] is not None]
        settles = [row["settleMax"] for row in rows if row["settleMax"] is not None]
        if not delays:
            section.ratios.append(
                Ratio(f"Detection delay, {mode}", None, note="failed: no request succeeded")
            )
            continue
        section.ratios.append(
            Ratio(
                f"Detection delay / poll interval (worst), {mode}",
                max(delays),
                AT_MOST_ONE,
                f"worst {max(delays) * POLL_INTERVAL:.1f} s, median of batches "
                f"{statistics.median(medians) * POLL_INTERVAL:.1f} s",
                memory,
            )
        )
        worst = max(settles)
        worst_row = next(row for row in rows if row["settleMax"] == worst)
        section.ratios.append(
            Ratio(
                f"Time to settle / least the duration allows (worst request), {mode}",
                worst,
                figure=f"D {_minutes(worst_row['durationSeconds'])}: "
                f"{worst * worst_row['checks'] * POLL_INTERVAL:.0f} s for {worst_row['checks']} check(s)",
                memory=memory,
            )
        )
    return section


def _minutes(seconds: float) -> str:
    return f"{int(seconds) // 60}:{int(seconds) % 60:02d}"


def _fraction(value: float | None) -> str:
    return "-" if value is None else f"{abs(value) if abs(value) < 5e-3 else value:.2f}"
