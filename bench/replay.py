"""Replay cost: does an orchestration's episode get slower as its status checks add up?

One request whose Graph operation never ends (the simulator's ``operation-never-ends``), driven one status
check at a time with ``DevHost.advance(30)`` on the manual clock, for ``checks`` checks (the polling timeout
is raised so it does not end first). The orchestrator continues as new every few checks
(``workflow.CHECKS_PER_EXECUTION``), so its history should stay flat. Two windows of one whole execution
each are compared, so that both hold the same mix of episodes: the execution that makes the 10th check, and
the last one up to the ``checks``-th. Per window:

* **episodes per check**: the orchestrator invocations alone, i.e. the SDK replaying the history it is given.
  The dev host's ``episode_observer`` captures the exact trigger JSON of every episode in both windows during
  the run; they are then replayed again and again, the two windows alternating, through the same worker path
  the dev host uses. Median over the repeats of the replaying thread's CPU time (which other load on the
  machine does not inflate), divided by the checks in the window.
* **check cycle**: one whole ``advance(30)`` (episodes, SQLite, the activities and the Graph call): the dev
  host process's CPU time (all its threads; the simulator's process not counted), median over the window's
  checks; its wall time is shown beside it.
"""

from __future__ import annotations

import json
import statistics
import time
from typing import Any

from bench.processes import BenchError, own_rss_mib, run_child
from bench.report import Ratio, Section, Target, doc_body
from bench.virtual import POLL_INTERVAL, virtual_env
from devhost.worker import invoke_orchestrator

ORCHESTRATOR = "provision_community"
EARLY_CHECK = 10


def windows(checks: int, per_execution: int) -> tuple[range, range]:
    """The checks of the execution that makes check 10, and of the last whole execution up to ``checks``."""
    first = (EARLY_CHECK - 1) // per_execution * per_execution + 1
    early = range(first, first + per_execution)
    last = checks // per_execution * per_execution
    late = range(last - per_execution + 1, last + 1)
    if late.start <= early.stop:
        raise BenchError(f"{checks} checks are too few to compare two executions of {per_execution}")
    return early, late


def measure(params: dict[str, Any]) -> dict[str, Any]:
    from provisioning import workflow

    checks: int = params["checks"]
    per_execution = int(getattr(workflow, "CHECKS_PER_EXECUTION", 10))
    early, late = windows(checks, per_execution)
    timeout_minutes = checks * POLL_INTERVAL // 60 + 60
    captured: dict[str, list[str]] = {"early": [], "late": []}
    current = {"window": ""}

    def observe(context_json: str, state_json: str) -> None:
        if current["window"]:
            captured[current["window"]].append(context_json)

    with virtual_env({"PROVISIONING_TIMEOUT_MINUTES": str(timeout_minutes)}) as env:
        env.sim.set_scenario("operation-never-ends")
        env.host.engine.episode_observer = observe
        instance_id = env.post_community("Bench replay")
        env.host.run_until_idle()
        cycle_ms: dict[str, list[float]] = {"early": [], "late": []}
        cycle_cpu_ms: dict[str, list[float]] = {"early": [], "late": []}
        rss: dict[str, float] = {}
        for check in range(1, late.stop):
            window = "early" if check in early else "late" if check in late else ""
            current["window"] = window
            started, started_cpu = time.perf_counter(), time.process_time()
            env.host.advance(POLL_INTERVAL)
            if window:
                cycle_ms[window].append((time.perf_counter() - started) * 1000)
                cycle_cpu_ms[window].append((time.process_time() - started_cpu) * 1000)
                rss[window] = own_rss_mib()
        current["window"] = ""
        status = env.host.status(instance_id) or {}
        made = ((status.get("customStatus") or {}).get("operation") or {}).get("checks")
        if status.get("runtimeStatus") != "Running" or made != late.stop - 1:
            raise BenchError(f"expected a running request after {late.stop - 1} checks, got {status}")
        function = env.host.engine.index.orchestrators[ORCHESTRATOR]
        episode_ms = _replay(function, captured["early"], captured["late"], params["repeats"])
        simulator_peak = env.sim.peak_mib()
    return {
        "checksPerExecution": per_execution,
        "windows": {"early": [early.start, early.stop - 1], "late": [late.start, late.stop - 1]},
        "episodes": {label: len(contexts) for label, contexts in captured.items()},
        "historyEvents": {
            label: [min(map(_history_length, contexts)), max(map(_history_length, contexts))]
            for label, contexts in captured.items()
        },
        "episodeMsPerCheck": {label: ms / per_execution for label, ms in episode_ms.items()},
        "cycleMs": {label: statistics.median(values) for label, values in cycle_ms.items()},
        "cycleCpuMs": {label: statistics.median(values) for label, values in cycle_cpu_ms.items()},
        "rssMiB": rss,
        "simulatorPeakMiB": simulator_peak,
    }


def _replay(function: Any, early: list[str], late: list[str], repeats: int) -> dict[str, float]:
    """Median CPU time of replaying all of a window's episodes once, the two windows taking turns."""
    totals: dict[str, list[float]] = {"early": [], "late": []}
    for _ in range(repeats):
        for label, contexts in (("early", early), ("late", late)):
            started = time.thread_time()
            for context_json in contexts:
                invoke_orchestrator(function, context_json)
            totals[label].append((time.thread_time() - started) * 1000)
    return {label: statistics.median(values) for label, values in totals.items()}


def _history_length(context_json: str) -> int:
    return len(json.loads(context_json).get("history") or [])


# -- the parent side ----------------------------------------------------------------------------------------

TARGET = Target(1.5)


def run(quick: bool) -> Section:
    section = Section("replay", "Replay cost: episode time after many status checks", doc_body(__doc__))
    checks = 100 if quick else 1000
    result = run_child("replay", {"checks": checks, "repeats": 5 if quick else 20})
    (early_first, early_last), (late_first, late_last) = result["windows"].values()
    episode, cycle, wall, rss, events = (
        result["episodeMsPerCheck"],
        result["cycleCpuMs"],
        result["cycleMs"],
        result["rssMiB"],
        result["historyEvents"],
    )
    section.say(
        f"one request, operation never ends, {late_last} status checks; continue-as-new every "
        f"{result['checksPerExecution']} checks"
    )
    section.table(
        ("", f"checks {early_first}-{early_last}", f"checks {late_first}-{late_last}", "ratio"),
        [
            (
                "orchestrator episodes in the window",
                str(result["episodes"]["early"]),
                str(result["episodes"]["late"]),
                "",
            ),
            (
                "history events per episode (min-max)",
                "-".join(map(str, events["early"])),
                "-".join(map(str, events["late"])),
                "",
            ),
            (
                "episodes' replay, CPU ms per check",
                f"{episode['early']:.2f}",
                f"{episode['late']:.2f}",
                f"{episode['late'] / episode['early']:.2f}",
            ),
            (
                "check cycle, dev host CPU ms (median)",
                f"{cycle['early']:.2f}",
                f"{cycle['late']:.2f}",
                f"{cycle['late'] / cycle['early']:.2f}",
            ),
            (
                "check cycle, wall ms (median)",
                f"{wall['early']:.2f}",
                f"{wall['late']:.2f}",
                f"{wall['late'] / wall['early']:.2f}",
            ),
            ("dev host RSS MiB at the window's end", f"{rss['early']:.1f}", f"{rss['late']:.1f}", ""),
        ],
        (40, 14, 14, 7),
    )
    memory = (
        f"dev host {result['peakMiB']:.0f} MiB (RSS {rss['early']:.0f} at check {early_last}, "
        f"{rss['late']:.0f} at {late_last}), simulator {result['simulatorPeakMiB']:.0f} MiB"
    )
    section.say("peak memory: " + memory)
    section.ratios.append(
        Ratio(
            f"Replay: episodes per check, checks {late_first}-{late_last} / {early_first}-{early_last}",
            episode["late"] / episode["early"],
            TARGET,
            f"{episode['late']:.1f} / {episode['early']:.1f} CPU ms per check",
            memory,
        )
    )
    section.ratios.append(
        Ratio(
            f"Replay: whole status-check cycle, checks {late_first}-{late_last} / {early_first}-{early_last}",
            cycle["late"] / cycle["early"],
            TARGET,
            f"{cycle['late']:.1f} / {cycle['early']:.1f} dev host CPU ms (wall {wall['late']:.1f} / "
            f"{wall['early']:.1f})",
            memory,
        )
    )
    return section
