"""Cold start: the app against a minimal Durable app on the same SDKs, each in fresh interpreters.

Two figures per app, from the same fresh interpreter: *import + index* (import the module and call
``app.get_functions()``, what the worker does when it loads an app) and *import + index + first POST answered*
(then build the HTTP request and run the app's POST function as the worker would, its durable client talking
to a dev host that is already up; the orchestration it starts runs there, not in the measured interpreter).
Runs alternate between the two apps; medians. The ratios use the interpreter's CPU time (wall time is shown
beside it): importing is CPU work, and on a shared machine wall time swings with whatever else runs. Then what
each dependency costs alone, and ``python -X importtime``: what the app imports beyond the minimal app, which
of its modules pulls it in, and whether the first POST needs it.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from bench.processes import ROOT, STORAGE_VARIABLE, Simulator, clean_environ
from bench.report import Ratio, Section, Target, doc_body
from bench.virtual import OWNER_ID

TARGET = Target(1.3)
FIRST_PARTY = ("function_app", "triggers", "orchestrators", "activities", "provisioning")
# Packages whose modules define the app's functions: indexing needs them, whatever the first request runs.
FUNCTION_PACKAGES = ("function_app", "triggers", "orchestrators", "activities")


@dataclass(frozen=True)
class AppCase:
    label: str
    module: str
    function: str  # the POST function's name
    route: str
    body: Mapping[str, Any]


APP = AppCase(
    "the app (function_app)",
    "function_app",
    "start_community_request",
    "api/communities",
    {"displayName": "Cold start", "owners": [OWNER_ID], "privacy": "private"},
)
MINIMAL = AppCase(
    "minimal Durable app (bench.minimal_app)", "bench.minimal_app", "start", "api/start", {"n": 1}
)

DEPENDENCY_CASES = {
    "Functions SDKs (azure-functions + durable)": "import azure.functions, azure.durable_functions",
    "pydantic": "import pydantic",
    "azure-identity + requests": "import azure.identity, requests",
}

# Runs in a fresh interpreter: nothing is imported before the clocks start but what Python itself loads.
PROBE = """
import time
started, started_cpu = time.perf_counter(), time.process_time()
import importlib
functions = importlib.import_module({module!r}).app.get_functions()
indexed, indexed_cpu = time.perf_counter(), time.process_time()
import asyncio
import azure.functions as func
function = next(f for f in functions if f.get_function_name() == {function!r})
request = func.HttpRequest(
    "POST", {url!r}, headers={{"content-type": "application/json"}}, params={{}}, route_params={{}},
    body={body!r},
)
response = function.get_user_function()(req=request, client={client!r})
if asyncio.iscoroutine(response):
    response = asyncio.run(response)
answered, answered_cpu = time.perf_counter(), time.process_time()
import json
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:")).split()[1]
print(json.dumps({{
    "wall": [(indexed - started) * 1000, (answered - started) * 1000],
    "cpu": [(indexed_cpu - started_cpu) * 1000, (answered_cpu - started_cpu) * 1000],
    "status": response.status_code,
    "peak": int(hwm) / 1024,
}}))
"""


def run(simulator: Simulator, runs: int) -> Section:
    section = Section("cold-start", "Cold start: the app against a minimal Durable app", doc_body(__doc__))
    section.say(f"a fresh interpreter per run and case, the cases taking turns; median of {runs} runs")
    samples: dict[str, list[dict[str, Any]]] = {APP.label: [], MINIMAL.label: []}
    dependency_samples: dict[str, list[dict[str, Any]]] = {name: [] for name in DEPENDENCY_CASES}
    with _warm_hosts(simulator) as hosts:
        for index in range(runs):
            for name, dependency in DEPENDENCY_CASES.items():
                dependency_samples[name].append(_time_import(dependency))
            for case in (APP, MINIMAL):
                samples[case.label].append(_probe(case, hosts[case.label], index))
        run_by_post = modules_run_by_first_post(hosts)

    def median(rows: list[dict[str, Any]], clock: str, position: int) -> float:
        return statistics.median(row[clock][position] for row in rows)

    section.table(
        ("case", "import+index", "+ first POST", "(wall clock)", "peak RSS MiB"),
        [
            (
                label,
                f"{median(rows, 'cpu', 0):.1f}",
                f"{median(rows, 'cpu', 1):.1f}",
                f"{median(rows, 'wall', 0):.0f} / {median(rows, 'wall', 1):.0f}",
                f"{max(row['peak'] for row in rows):.1f}",
            )
            for label, rows in samples.items()
        ],
        (42, 13, 13, 14, 13),
    )
    section.say(
        "CPU ms of the interpreter (wall ms in brackets): on a busy machine wall time swings with the other "
        "load; CPU time stays what the interpreter itself spent"
    )
    app, minimal = samples[APP.label], samples[MINIMAL.label]
    memory = (
        f"app interpreter {max(r['peak'] for r in app):.0f} MiB, "
        f"minimal {max(r['peak'] for r in minimal):.0f} MiB"
    )
    for position, what in ((0, "import + index"), (1, "import + index + first POST answered")):
        app_ms, minimal_ms = median(app, "cpu", position), median(minimal, "cpu", position)
        section.ratios.append(
            Ratio(
                f"Cold start: {what}, app / minimal Durable app (CPU time)",
                app_ms / minimal_ms,
                TARGET,
                f"{app_ms:.0f} ms / {minimal_ms:.0f} ms (wall {median(app, 'wall', position):.0f} / "
                f"{median(minimal, 'wall', position):.0f})",
                memory,
            )
        )
    section.say()
    section.say("what each runtime dependency costs alone (import only, in the same turns)")
    minimal_cpu = median(minimal, "cpu", 0)
    rows = []
    for name, found in dependency_samples.items():
        cpu_ms = median(found, "cpu", 0)
        peak = max(row["peak"] for row in found)
        rows.append((name, f"{cpu_ms:.1f}", f"{cpu_ms / minimal_cpu:.2f}", f"{peak:.1f}"))
    section.table(("case", "CPU ms", "x minimal", "peak RSS MiB"), rows, (42, 10, 10, 13))
    section.say()
    _import_analysis(section, run_by_post)
    return section


def _probe(case: AppCase, host: tuple[str, str, dict[str, str]], index: int) -> dict[str, Any]:
    base_url, client_json, env = host
    body = {**case.body, "displayName": f"Cold start {index}"} if case is APP else case.body
    code = PROBE.format(
        module=case.module,
        function=case.function,
        url=f"{base_url}/{case.route}",
        body=json.dumps(body).encode(),
        client=client_json,
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"cold-start probe of {case.module} failed:\n{out.stderr[-3000:]}")
    sample: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    if sample["status"] != 202:
        raise RuntimeError(f"the first POST to {case.module} answered {sample['status']}")
    return sample


@contextmanager
def _warm_hosts(simulator: Simulator) -> Iterator[dict[str, tuple[str, str, dict[str, str]]]]:
    """A dev host per app, already up (manual clock: started orchestrations wait at their first timer)."""
    from devhost.testing import DevHost

    settings = {
        **simulator.env,
        "TASKHUB_NAME": "bench",
        "PROVISIONING_QUEUE": "bench-requests",
        "RESULTS_QUEUE": "bench-results",
        "AzureWebJobsStorage": os.environ[STORAGE_VARIABLE],
    }
    with ExitStack() as stack:
        hosts = {}
        for case in (APP, MINIMAL):
            host = stack.enter_context(DevHost(app=f"{case.module}:app", settings=settings))
            hosts[case.label] = (host.base_url, host.durable_client_json(), clean_environ(settings))
        yield hosts


def _time_import(code: str) -> dict[str, Any]:
    """Wall and CPU milliseconds of running ``code`` (imports) in a fresh interpreter, and its peak RSS."""
    probe = (
        "import time; t, c = time.perf_counter(), time.process_time(); "
        f"{code}; "
        "wall, cpu = (time.perf_counter() - t) * 1000, (time.process_time() - c) * 1000; "
        "hwm = next(l for l in open('/proc/self/status') if l.startswith('VmHWM:')).split()[1]; "
        "print(wall, cpu, int(hwm) / 1024)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    return {"wall": [float(out[0])], "cpu": [float(out[1])], "peak": float(out[2])}


# -- python -X importtime -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Imported:
    name: str
    self_us: int
    cumulative_us: int
    parent: str | None  # the module whose import imported it (None at top level)


def import_tree(module: str, runs: int = 3) -> dict[str, Imported]:
    """``python -X importtime`` of importing and indexing ``module``: per module, the median self and
    cumulative times over ``runs`` and the module that imported it."""
    trees = [_one_import_tree(module) for _ in range(runs)]
    merged = {}
    for name, first in trees[0].items():
        found = [tree[name] for tree in trees if name in tree]
        merged[name] = Imported(
            name,
            int(statistics.median(i.self_us for i in found)),
            int(statistics.median(i.cumulative_us for i in found)),
            first.parent,
        )
    return merged


def _one_import_tree(module: str) -> dict[str, Imported]:
    code = f"import {module}; {module}.app.get_functions()"
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    rows: list[tuple[int, str, int, int]] = []
    for line in out.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_text, cumulative_text, name_text = line[len("import time:") :].split("|")
        depth = (len(name_text) - len(name_text.lstrip(" "))) // 2
        rows.append((depth, name_text.strip(), int(self_text), int(cumulative_text)))
    # Lines come when a module finishes importing (children before their parent, one level deeper): the
    # parent of a line is the next line one level up.
    tree: dict[str, Imported] = {}
    waiting: dict[int, list[tuple[str, int, int]]] = defaultdict(list)
    for depth, name, self_us, cumulative_us in rows:
        for child, child_self, child_cumulative in waiting.pop(depth + 1, []):
            tree[child] = Imported(child, child_self, child_cumulative, name)
        waiting[depth].append((name, self_us, cumulative_us))
    for entries in waiting.values():
        for name, self_us, cumulative_us in entries:
            tree[name] = Imported(name, self_us, cumulative_us, None)
    return tree


def _is_first_party(name: str) -> bool:
    return name.split(".")[0] in FIRST_PARTY


def _group(name: str) -> str:
    """The app's own modules one by one, everything else by package (``azure.*`` by its second part)."""
    if _is_first_party(name):
        return name
    parts = name.split(".")
    return ".".join(parts[:2]) if parts[0] == "azure" and len(parts) > 1 else parts[0]


def _first_party_importer(name: str, tree: Mapping[str, Imported]) -> str | None:
    """The nearest of the app's own modules up the import chain of ``name``."""
    parent = tree[name].parent
    while parent is not None and not _is_first_party(parent):
        parent = tree[parent].parent if parent in tree else None
    return parent


def modules_run_by_first_post(hosts: Mapping[str, tuple[str, str, dict[str, str]]]) -> set[str]:
    """The modules whose code runs while the app answers its first POST (a profiler on every thread)."""
    base_url, client_json, env = hosts[APP.label]
    code = PROBE.format(
        module=APP.module,
        function=APP.function,
        url=f"{base_url}/{APP.route}",
        body=json.dumps({**APP.body, "displayName": "Cold start traced"}).encode(),
        client=client_json,
    )
    tracer = (
        "import sys, threading\n"
        "_run = set()\n"
        "def _profile(frame, event, arg):\n"
        "    if event == 'call':\n"
        "        _run.add(frame.f_globals.get('__name__'))\n"
        "threading.setprofile(_profile)\n"
        "sys.setprofile(_profile)\n"
    )
    code = code.replace("response = function", tracer + "response = function", 1)
    code += "sys.setprofile(None)\nprint(json.dumps(sorted(m for m in _run if m)))\n"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"traced cold-start probe failed:\n{out.stderr[-3000:]}")
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def _import_analysis(section: Section, run_by_post: set[str]) -> None:
    app_tree, minimal_tree = import_tree(APP.module), import_tree(MINIMAL.module)
    extra = {name: entry for name, entry in app_tree.items() if name not in minimal_tree}
    total_ms = sum(entry.self_us for entry in extra.values()) / 1000
    minimal_ms = sum(entry.self_us for entry in minimal_tree.values()) / 1000
    section.say(
        f"python -X importtime (median of 3 runs; its own overhead included): the minimal app's imports take "
        f"{minimal_ms:.0f} ms; the app imports {len(extra)} modules more, taking {total_ms:.0f} ms:"
    )
    groups: dict[str, list[Imported]] = defaultdict(list)
    for entry in extra.values():
        groups[_group(entry.name)].append(entry)
    rows = []
    not_needed_ms = 0.0
    for group, entries in sorted(groups.items(), key=lambda item: -sum(e.self_us for e in item[1])):
        self_ms = sum(e.self_us for e in entries) / 1000
        if group == APP.module:
            continue
        importers = sorted(
            {
                importer
                for e in entries
                if (importer := _first_party_importer(e.name, app_tree)) is not None
                and _group(importer) != group
            }
        )
        # Own modules: does any of their code run? Others: does a module that imports them run?
        needed = group in run_by_post if _is_first_party(group) else bool(set(importers) & run_by_post)
        verdict = "yes" if needed else "index" if group.split(".")[0] in FUNCTION_PACKAGES else "no"
        not_needed_ms += self_ms if verdict == "no" else 0.0
        if self_ms < 1.0:
            continue
        via = ", ".join(importers[:2]) + (" ..." if len(importers) > 2 else "")
        rows.append((group, f"{self_ms:.1f}", f"{self_ms / total_ms:.0%}", verdict, via))
    section.table(
        ("imported (own modules one by one)", "self ms", "share", "1st POST needs", "  imported by"),
        [(*row[:4], "  " + row[4]) for row in rows],
        (36, 8, 6, 16, 0),
    )
    section.say(
        "'1st POST needs': for the app's own modules, some of their code runs while the first POST is "
        "answered (a profiler on every thread); for packages, a module of the app that imports them does. "
        "'index': it defines functions, so indexing needs it. 'no' rows are imported at start-up for later "
        "work: candidates for a lazy import. 'imported by' is the first importer only (Python imports a "
        "module once)."
    )
    section.say(
        f"all 'no' rows (smaller ones included) take {not_needed_ms:.0f} ms of the {total_ms:.0f} ms, "
        f"{not_needed_ms / total_ms:.0%}: about what lazy imports could take off the first POST"
    )
