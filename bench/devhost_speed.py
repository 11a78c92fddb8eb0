"""Dev host speed: provisioning orchestrations completed per second of wall time on the manual clock.

Each request goes the whole way (POST, name check, create, three status checks 30 s apart in virtual time,
confirm): 90 virtual seconds. First ``sequential`` requests one after the other, then ``concurrent`` requested
at one virtual instant. The manual clock jumps from one due timer to the next as soon as the host is idle, so
the figure is what the dev host, the SDK's replays and the app's activities cost, with no waiting. The Graph
simulator runs in its own process; each clock step also moves its clock (one loopback request).
"""

from __future__ import annotations

import time
from typing import Any

from bench.processes import BenchError, run_child
from bench.report import Ratio, Section, doc_body
from bench.virtual import final_document, virtual_env


def measure(params: dict[str, Any]) -> dict[str, Any]:
    sequential: int = params["sequential"]
    concurrent: int = params["concurrent"]
    with virtual_env(polls_to_complete=3) as env:
        virtual_start = env.clock.time()
        started, started_cpu = time.perf_counter(), time.process_time()
        for index in range(sequential):
            _expect_succeeded(env.drive([env.post_community(f"Bench speed one {index}")]))
        one_at_a_time = time.perf_counter() - started
        one_at_a_time_cpu = time.process_time() - started_cpu
        virtual_per_request = (env.clock.time() - virtual_start) / sequential
        started, started_cpu = time.perf_counter(), time.process_time()
        ids = [env.post_community(f"Bench speed many {index}") for index in range(concurrent)]
        _expect_succeeded(env.drive(ids))
        at_once = time.perf_counter() - started
        at_once_cpu = time.process_time() - started_cpu
        simulator_peak = env.sim.peak_mib()
    return {
        "sequential": sequential,
        "sequentialSeconds": one_at_a_time,
        "sequentialCpuSeconds": one_at_a_time_cpu,
        "concurrent": concurrent,
        "concurrentSeconds": at_once,
        "concurrentCpuSeconds": at_once_cpu,
        "virtualSecondsPerRequest": virtual_per_request,
        "simulatorPeakMiB": simulator_peak,
    }


def _expect_succeeded(statuses: dict[str, dict[str, Any]]) -> None:
    failed = [final_document(s) for s in statuses.values()]
    failed = [document for document in failed if document.get("status") != "Succeeded"]
    if failed:
        raise BenchError(f"{len(failed)} request(s) did not succeed: {failed[0].get('error')}")


# -- the parent side ----------------------------------------------------------------------------------------


def run(quick: bool) -> Section:
    section = Section("devhost-speed", "Dev host speed on the manual clock", doc_body(__doc__))
    sequential, concurrent = (3, 10) if quick else (10, 40)
    result = run_child("devhost_speed", {"sequential": sequential, "concurrent": concurrent})
    one_rate = sequential / result["sequentialSeconds"]
    many_rate = concurrent / result["concurrentSeconds"]
    virtual = result["virtualSecondsPerRequest"]
    section.table(
        ("requests", "wall s", "orchestrations/s", "x real time", "dev host CPU s", "per CPU s"),
        [
            (
                f"{count} {label}",
                f"{result[key + 'Seconds']:.2f}",
                f"{count / result[key + 'Seconds']:.1f}",
                f"{count / result[key + 'Seconds'] * virtual:.0f}",
                f"{result[key + 'CpuSeconds']:.2f}",
                f"{count / result[key + 'CpuSeconds']:.1f}",
            )
            for count, label, key in (
                (sequential, "one at a time", "sequential"),
                (concurrent, "at once", "concurrent"),
            )
        ],
        (24, 8, 17, 12, 15, 10),
    )
    section.say(
        f"each request is {virtual:.0f} s of virtual time; 'x real time' = virtual seconds per wall second; "
        "'per CPU s' = orchestrations per CPU second of the dev host process (the simulator's not counted)"
    )
    memory = f"dev host {result['peakMiB']:.0f} MiB, simulator {result['simulatorPeakMiB']:.0f} MiB"
    section.say("peak memory: " + memory)
    section.ratios.append(
        Ratio(
            f"Dev host: orchestrations completed/s, {concurrent} at once / one at a time (manual clock)",
            many_rate / one_rate,
            figure=f"{many_rate:.1f} / {one_rate:.1f} per s ({many_rate * virtual:.0f}x real time; "
            f"{concurrent / result['concurrentCpuSeconds']:.1f} per dev host CPU s)",
            memory=memory,
        )
    )
    return section
