"""``python -m bench`` (``make bench``): side-by-side measurements, printed as ratios from one run.

1. Cold start: what importing and indexing the app costs next to the Functions SDKs alone, and what each
   runtime dependency adds (each case in a fresh interpreter; medians; peak RSS of that interpreter).
2. Graph client: one pooled ``requests.Session`` per process against a new session per call, against the
   Graph simulator in its own process.
3. Provisioning under load: the app in the dev host (its own process, timers sped up) against the simulator
   (its own process), driven like Power Automate (POST, then follow ``Location`` honouring ``Retry-After``),
   one request at a time against many at once; peak memory of the dev host process (which hosts the app) and
   of the simulator next to the times.

Timings depend on the machine; read the ratios. Nothing here is asserted by the tests.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from devhost.testing import Azurite
from graph_simulator import SEED_USERS
from provisioning.graph import GraphClient

ROOT = Path(__file__).resolve().parent.parent
IDENTITY_HEADER = "bench-identity-secret"
CLOCK_SPEED = 600.0  # the dev host fires a 30 s durable timer after 50 ms

IMPORT_CASES = {
    "Functions SDKs (azure-functions + durable)": "import azure.functions, azure.durable_functions",
    "pydantic": "import pydantic",
    "azure-identity + requests": "import azure.identity, requests",
    "the app: import + index (function_app)": "import function_app; function_app.app.get_functions()",
}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run)")
    args = parser.parse_args()
    runs, calls, requests_per_level = (3, 60, 8) if args.quick else (7, 300, 24)
    print(f"python {sys.version.split()[0]} on {os.cpu_count()} cores\n")
    bench_cold_start(runs)
    with graph_simulator_process() as simulator:
        bench_session_pooling(simulator, calls)
        bench_provisioning_load(simulator, requests_per_level)
    return 0


# -- 1. cold start ------------------------------------------------------------------------------------------


def bench_cold_start(runs: int) -> None:
    print("== 1. Cold start (fresh interpreter per run, import time only; median of", runs, "runs)")
    results = {name: _time_import(code, runs) for name, code in IMPORT_CASES.items()}
    baseline_ms = results[next(iter(IMPORT_CASES))][0]
    print(f"{'case':45} {'median ms':>10} {'x SDKs':>8} {'peak RSS MiB':>13}")
    for name, (median_ms, rss_mib) in results.items():
        print(f"{name:45} {median_ms:10.1f} {median_ms / baseline_ms:8.2f} {rss_mib:13.1f}")
    print()


def _time_import(code: str, runs: int) -> tuple[float, float]:
    # VmHWM, not ru_maxrss: Linux carries the forking parent's peak RSS over into the child's ru_maxrss.
    probe = (
        "import time; t = time.perf_counter(); "
        f"{code}; "
        "elapsed = (time.perf_counter() - t) * 1000; "
        "hwm = next(l for l in open('/proc/self/status') if l.startswith('VmHWM:')).split()[1]; "
        "print(elapsed, int(hwm) / 1024)"
    )
    samples = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.split()
        samples.append((float(out[0]), float(out[1])))
    return statistics.median(s[0] for s in samples), max(s[1] for s in samples)


# -- 2. session pooling -------------------------------------------------------------------------------------


@dataclass
class Simulator:
    url: str
    process: subprocess.Popen[str]

    @property
    def env(self) -> dict[str, str]:
        return {
            "GRAPH_BASE_URL": self.url + "/v1.0",
            "IDENTITY_ENDPOINT": self.url + "/msi/token",
            "IDENTITY_HEADER": IDENTITY_HEADER,
        }


def bench_session_pooling(simulator: Simulator, calls: int) -> None:
    print(f"== 2. Graph client: {calls} status checks against the simulator (another process)")
    os.environ.update(simulator.env)
    from azure.identity import DefaultAzureCredential

    # One credential (one token cache) for both cases, so that only the connection pooling differs.
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
    rows = [("pooled session (the app)", _per_call_ms(pooled_call, calls))]
    rows.append(("new session per call", _per_call_ms(fresh_session_call, calls)))
    print(f"{'case':45} {'ms/call':>10} {'x pooled':>8}")
    for name, ms in rows:
        print(f"{name:45} {ms:10.3f} {ms / rows[0][1]:8.2f}")
    print()


def _per_call_ms(call: object, count: int) -> float:
    assert callable(call)
    start = time.perf_counter()
    for _ in range(count):
        call()
    return (time.perf_counter() - start) * 1000 / count


# -- 3. provisioning under load -----------------------------------------------------------------------------


def bench_provisioning_load(simulator: Simulator, count: int) -> None:
    print(
        f"== 3. Provisioning {count} communities through the dev host (timers {CLOCK_SPEED:.0f}x sooner), "
        "driven like Power Automate"
    )
    with dev_host_process(simulator) as (base_url, pid):
        idle_rss = _proc_status_mib(pid, "VmRSS")
        rows = []
        for concurrency in (1, min(16, count)):
            requests.post(f"{simulator.url}/_simulator/reset", timeout=10).raise_for_status()
            start = time.perf_counter()
            latencies = _drive(base_url, count, concurrency, label=f"c{concurrency}")
            elapsed = time.perf_counter() - start
            rows.append((concurrency, elapsed, statistics.median(latencies), max(latencies)))
        peak_rss = _proc_status_mib(pid, "VmHWM")
    sim_peak = _proc_status_mib(simulator.process.pid, "VmHWM")
    print(f"{'concurrent':>10} {'total s':>8} {'req/s':>7} {'x serial':>8} {'p50 s':>7} {'max s':>7}")
    serial_rate = count / rows[0][1]
    for concurrency, elapsed, p50, worst in rows:
        rate = count / elapsed
        print(
            f"{concurrency:10} {elapsed:8.2f} {rate:7.2f} {rate / serial_rate:8.2f} {p50:7.2f} {worst:7.2f}"
        )
    print(
        f"peak memory: dev host + app {peak_rss:.1f} MiB (idle after start {idle_rss:.1f} MiB), "
        f"Graph simulator {sim_peak:.1f} MiB"
    )


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
        raise SystemExit("bench: provisioning failed: " + "; ".join(failures[:5]))
    return latencies


def _provision_like_power_automate(session: requests.Session, base_url: str, name: str) -> int:
    body = {"displayName": name, "owners": [SEED_USERS[0]["userPrincipalName"]], "privacy": "private"}
    response = session.post(f"{base_url}/api/communities", json=body, timeout=30)
    while response.status_code == 202:
        time.sleep(float(response.headers.get("Retry-After", "30")) / CLOCK_SPEED)
        response = session.get(response.headers["Location"], timeout=30)
    return response.status_code


def _proc_status_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


# -- processes ----------------------------------------------------------------------------------------------


@contextmanager
def graph_simulator_process() -> Iterator[Simulator]:
    process = subprocess.Popen(
        [sys.executable, "-m", "graph_simulator", "--port", "0", "--identity-header", IDENTITY_HEADER],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield Simulator(process.stdout.readline().strip(), process)
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextmanager
def dev_host_process(simulator: Simulator) -> Iterator[tuple[str, int]]:
    port = _free_port()
    with tempfile.TemporaryDirectory() as state_dir, Azurite().start() as azurite:
        # The app's queue intake needs storage, as in Azure: a private Azurite (its queues stay idle here).
        env = {
            **os.environ,
            **simulator.env,
            "AzureWebJobsStorage": azurite.connection_string,
            "TASKHUB_NAME": "bench",
            "PROVISIONING_QUEUE": "community-requests",
            "RESULTS_QUEUE": "community-results",
        }
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "devhost",
                "--port",
                str(port),
                "--clock-speed",
                str(CLOCK_SPEED),
                "--state",
                str(Path(state_dir) / "state.db"),
                "--local-settings",
                str(Path(state_dir) / "absent.json"),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base_url = f"http://127.0.0.1:{port}"
        try:
            _wait_for_http(base_url + "/api/communities/requests/none", process)
            yield base_url, process.pid
        finally:
            process.terminate()
            process.wait(timeout=15)


def _wait_for_http(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"bench: the dev host exited with {process.returncode}")
        try:
            requests.get(url, timeout=2)
            return
        except requests.ConnectionError:
            time.sleep(0.2)
    raise SystemExit("bench: the dev host did not start within 60 s")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


if __name__ == "__main__":
    sys.exit(main())
