"""Graph client: one pooled ``requests.Session`` per process (the app) against a new session per call.

The same status check is sent ``calls`` times each way to the Graph simulator in its own process, with one
credential (one token cache) for both, so that only the connection pooling differs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import requests

from bench.processes import Simulator
from bench.report import Ratio, Section, doc_body
from graph_simulator import SEED_USERS
from provisioning.graph import GraphClient


def run(simulator: Simulator, calls: int) -> Section:
    section = Section(
        "graph-client", "Graph client: pooled session against a new session per call", doc_body(__doc__)
    )
    section.say(f"{calls} status checks against the simulator (another process)")
    os.environ.update(simulator.env)
    from azure.identity import DefaultAzureCredential

    credential = DefaultAzureCredential()
    pooled = GraphClient(simulator.url + "/v1.0", session=requests.Session(), credential=credential)
    operation_url = pooled.create_community(
        "Bench pooling", None, "private", [SEED_USERS[0]["id"]]
    ).operation_url

    def pooled_call() -> None:
        pooled.get_operation(operation_url)

    def fresh_session_call() -> None:
        with requests.Session() as session:
            GraphClient(simulator.url + "/v1.0", session=session, credential=credential).get_operation(
                operation_url
            )

    pooled_call()  # warm the token
    pooled_ms = _per_call_ms(pooled_call, calls)
    fresh_ms = _per_call_ms(fresh_session_call, calls)
    section.table(
        ("case", "ms/call", "x pooled"),
        [
            ("pooled session (the app)", f"{pooled_ms:.3f}", "1.00"),
            ("new session per call", f"{fresh_ms:.3f}", f"{fresh_ms / pooled_ms:.2f}"),
        ],
        (42, 10, 9),
    )
    section.ratios.append(
        Ratio(
            "Graph client: new session per call / pooled session (time per call)",
            fresh_ms / pooled_ms,
            figure=f"{fresh_ms:.2f} ms / {pooled_ms:.2f} ms",
        )
    )
    return section


def _per_call_ms(call: Callable[[], None], count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        call()
    return (time.perf_counter() - start) * 1000 / count
