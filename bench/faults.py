"""Under faults: the same batch of requests with Graph faults off and with a fault mix on.

The simulator's ``fault-mix`` scenario (options ``rate``, 0..1, and ``seed``) answers a seeded random share of
Graph requests with one fault of its mix: 429 or 503 with or without ``Retry-After``, 504, a connection reset
or a dropped answer after the request was processed, a slow answer (1 s; the app's read timeout is set to 0.5
s in both runs, so it is a lost answer), and for creates an operation that ends ``failed`` or ``skipped`` or
says ``succeeded`` before the community can be read. Each run requests ``communities`` communities at one
virtual instant and drives them to the end on the manual clock; Graph calls are every request in the
simulator's log (the token endpoint aside). Figures: Graph calls per succeeded community and the share of
requests that succeeded, the fault-free run beside the faulty one. Requests whose operation Graph ended
``failed``/``skipped`` cannot succeed; they are shown apart (``OperationFailed``).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from bench.processes import run_child
from bench.report import Ratio, Section, doc_body
from bench.virtual import final_document, virtual_env

SCENARIO = "fault-mix"
SKIPPED = f"skipped: simulator has no {SCENARIO} scenario"
READ_TIMEOUT_SECONDS = 0.5  # below the mix's slow answers (1 s), so that those are lost answers


def measure(params: dict[str, Any]) -> dict[str, Any]:
    count: int = params["communities"]
    runs = []
    with virtual_env({"GRAPH_READ_TIMEOUT_SECONDS": str(READ_TIMEOUT_SECONDS)}) as env:
        if SCENARIO not in env.sim.available_scenarios():
            return {"skipped": SKIPPED}
        for rate in (0.0, params["rate"]):
            env.sim.reset()
            if rate:
                env.sim.set_scenario(SCENARIO, rate=rate, seed=params["seed"])
            ids = [env.post_community(f"Bench faults {rate:g} #{i}") for i in range(count)]
            statuses = env.drive(ids, max_virtual_seconds=8 * 3600, timeout=600)
            log = env.sim.graph_requests()
            mix = [s for s in env.sim.admin("GET", "scenarios")["active"] if s["name"] == SCENARIO]
            documents = [final_document(status) for status in statuses.values()]
            outcomes = Counter(document.get("status") for document in documents)
            errors = Counter(
                (document.get("error") or {}).get("code")
                for document in documents
                if document.get("status") != "Succeeded"
            )
            runs.append(
                {
                    "rate": rate,
                    "communities": count,
                    "succeeded": outcomes.get("Succeeded", 0),
                    "calls": len(log),
                    "answers": dict(Counter(str(entry["status"]) for entry in log)),
                    "errors": dict(errors),
                    "fired": mix[0].get("fired", {}) if mix else {},
                }
            )
        simulator_peak = env.sim.peak_mib()
    return {"runs": runs, "simulatorPeakMiB": simulator_peak}


# -- the parent side ----------------------------------------------------------------------------------------


def run(quick: bool, rate: float = 0.3, seed: int = 1) -> Section:
    section = Section("faults", f"Under faults: a {rate:.0%} Graph fault mix against none", doc_body(__doc__))
    count = 6 if quick else 20
    result = run_child("faults", {"communities": count, "rate": rate, "seed": seed})
    name = f"Faults {rate:.0%}"
    if "skipped" in result:
        section.say(result["skipped"])
        section.ratios.append(
            Ratio(f"{name}: Graph calls per succeeded community / fault-free", None, note=SKIPPED)
        )
        section.ratios.append(Ratio(f"{name}: share of requests that succeeded", None, note=SKIPPED))
        return section
    clean, faulty = result["runs"]
    section.say(
        f"{count} communities requested at once per run, seed {seed}, operations end at the 3rd check"
    )
    section.table(
        ("faults", "succeeded", "calls", "calls/succeeded", "failed by code", "Graph's answers"),
        [
            (
                f"{run['rate']:.0%}",
                f"{run['succeeded']}/{run['communities']}",
                str(run["calls"]),
                f"{_per_success(run):.2f}",
                _counts(run["errors"]) or "-",
                _counts(run["answers"]),
            )
            for run in (clean, faulty)
        ],
        (7, 10, 6, 16, 22, 0),
    )
    section.say("faults the mix fired: " + (_counts(faulty["fired"]) or "none"))
    memory = f"dev host {result['peakMiB']:.0f} MiB, simulator {result['simulatorPeakMiB']:.0f} MiB"
    section.say("peak memory: " + memory)
    section.ratios.append(
        Ratio(
            f"{name}: Graph calls per succeeded community / fault-free",
            _per_success(faulty) / _per_success(clean),
            figure=f"{_per_success(faulty):.2f} / {_per_success(clean):.2f} calls",
            memory=memory,
        )
    )
    scripted = faulty["errors"].get("OperationFailed", 0)
    section.ratios.append(
        Ratio(
            f"{name}: share of requests that succeeded (fault-free: "
            f"{clean['succeeded'] / clean['communities']:.2f})",
            faulty["succeeded"] / faulty["communities"],
            figure=f"{faulty['succeeded']}/{faulty['communities']}; {faulty['succeeded']}/"
            f"{faulty['communities'] - scripted} of those Graph did not end failed/skipped",
            memory=memory,
        )
    )
    return section


def _per_success(run: dict[str, Any]) -> float:
    return float(run["calls"]) / max(1, run["succeeded"])


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{key} {value}" for key, value in sorted(counts.items(), key=lambda item: -item[1]))
