"""Provisioning under load, in real processes: one request at a time against 16 at once.

The app runs in ``python -m devhost`` (its own process, timers 600 times sooner: a 30 s wait takes 50 ms)
against the Graph simulator (its own process), driven like Power Automate: POST, then follow ``Location``
honouring ``Retry-After`` (scaled the same way). Peak memory of the dev host process (which hosts the app) and
of the simulator is shown next to the times.
"""

from __future__ import annotations

import statistics
import threading
import time

import requests

from bench.processes import BenchError, Simulator, dev_host_process, proc_status_mib
from bench.report import Ratio, Section, doc_body
from graph_simulator import SEED_USERS

CLOCK_SPEED = 600.0


def run(simulator: Simulator, count: int) -> Section:
    section = Section("load", "Provisioning under load (scaled clock, real processes)", doc_body(__doc__))
    section.say(
        f"{count} communities through the dev host (timers {CLOCK_SPEED:.0f}x sooner), "
        "driven like Power Automate"
    )
    with dev_host_process(simulator, CLOCK_SPEED) as (base_url, pid):
        idle_rss = proc_status_mib(pid, "VmRSS")
        rows = []
        for concurrency in (1, min(16, count)):
            simulator.reset()
            start = time.perf_counter()
            latencies = _drive(base_url, count, concurrency, label=f"c{concurrency}")
            elapsed = time.perf_counter() - start
            rows.append((concurrency, elapsed, statistics.median(latencies), max(latencies)))
        peak_rss = proc_status_mib(pid, "VmHWM")
    sim_peak = simulator.peak_mib()
    serial_rate = count / rows[0][1]
    section.table(
        ("concurrent", "total s", "req/s", "x serial", "p50 s", "max s"),
        [
            (str(c), f"{e:.2f}", f"{count / e:.2f}", f"{count / e / serial_rate:.2f}", f"{p:.2f}", f"{w:.2f}")
            for c, e, p, w in rows
        ],
        (10, 8, 7, 8, 7, 7),
    )
    memory = f"dev host {peak_rss:.0f} MiB (idle {idle_rss:.0f}), simulator {sim_peak:.0f} MiB"
    section.say("peak memory: " + memory)
    concurrent_rate = count / rows[-1][1]
    section.ratios.append(
        Ratio(
            f"Load: requests/s with {rows[-1][0]} at once / one at a time (scaled clock)",
            concurrent_rate / serial_rate,
            figure=f"{concurrent_rate:.1f} / {serial_rate:.1f} req/s",
            memory=memory,
        )
    )
    return section


def _drive(base_url: str, count: int, concurrency: int, label: str) -> list[float]:
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    next_index = iter(range(count))

    def worker() -> None:
        session = requests.Session()
        while True:
            with lock:
                index = next(next_index, None)
            if index is None:
                return
            started = time.perf_counter()
            outcome = _provision_like_power_automate(session, base_url, f"Bench {label} {index}")
            with lock:
                latencies.append(time.perf_counter() - started)
                if outcome != 200:
                    failures.append(f"request {index}: final HTTP {outcome}")

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise BenchError("provisioning failed: " + "; ".join(failures[:5]))
    return latencies


def _provision_like_power_automate(session: requests.Session, base_url: str, name: str) -> int:
    body = {"displayName": name, "owners": [SEED_USERS[0]["userPrincipalName"]], "privacy": "private"}
    response = session.post(f"{base_url}/api/communities", json=body, timeout=30)
    for _ in range(1000):  # bounded: a request here takes a handful of polls
        if response.status_code != 202:
            break
        time.sleep(float(response.headers.get("Retry-After", "30")) / CLOCK_SPEED)
        response = session.get(response.headers["Location"], timeout=30)
    return response.status_code
