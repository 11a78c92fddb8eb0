"""Processes the benchmarks run: the Graph simulator, the dev host, fresh interpreters; and their peak memory.

Everything listens on loopback only. Peak memory is the kernel's high-water mark of resident memory (``VmHWM``
in ``/proc/PID/status``), read while the process still runs; ``ru_maxrss`` is not used because Linux carries a
forking parent's peak over into its children.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from graph_simulator.identity import FOREIGN_CREDENTIAL_VARIABLES

ROOT = Path(__file__).resolve().parent.parent
IDENTITY_HEADER = "bench-identity-secret"
# The storage the dev host's queue triggers need (an Azurite the bench run started, or one it was given).
STORAGE_VARIABLE = "BENCH_STORAGE_CONNECTION_STRING"
RESULT_MARKER = "BENCH-RESULT "


class BenchError(RuntimeError):
    """A benchmark could not run (a process did not start, a request did not finish)."""


def clean_environ(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without foreign credentials, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in FOREIGN_CREDENTIAL_VARIABLES}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra or {})
    return env


# -- memory -------------------------------------------------------------------------------------------------


def proc_status_mib(pid: int | str, field: str) -> float:
    """A memory field of ``/proc/PID/status`` (``VmHWM`` = peak RSS, ``VmRSS`` = current RSS) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise BenchError(f"{field} not in /proc/{pid}/status")


def own_peak_mib() -> float:
    return proc_status_mib("self", "VmHWM")


def own_rss_mib() -> float:
    return proc_status_mib("self", "VmRSS")


# -- the Graph simulator ------------------------------------------------------------------------------------


@dataclass
class Simulator:
    """A Graph simulator in its own process, driven through its admin API."""

    url: str
    process: subprocess.Popen[str]

    def __post_init__(self) -> None:
        self.session = requests.Session()

    @property
    def env(self) -> dict[str, str]:
        return {
            "GRAPH_BASE_URL": self.url + "/v1.0",
            "IDENTITY_ENDPOINT": self.url + "/msi/token",
            "IDENTITY_HEADER": IDENTITY_HEADER,
        }

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        response = self.session.request(method, f"{self.url}/_simulator/{path}", json=body, timeout=30)
        if response.status_code >= 400:
            raise BenchError(f"simulator {method} {path}: {response.status_code} {response.text}")
        return response.json() if response.content else None

    def reset(self) -> None:
        self.admin("POST", "reset")

    def set_scenario(self, name: str, **options: Any) -> None:
        self.admin("POST", "scenarios", {"name": name, "options": options})

    def available_scenarios(self) -> set[str]:
        return {entry["name"] for entry in self.admin("GET", "scenarios")["available"]}

    def configure(self, polls_to_complete: int) -> None:
        self.admin("PATCH", "config", {"pollsToComplete": polls_to_complete})

    def graph_requests(self) -> list[dict[str, Any]]:
        """The request log without the token endpoint (Graph calls only), in arrival order."""
        entries = self.admin("GET", "requests")["value"]
        return [entry for entry in entries if entry.get("route") not in (None, "token")]

    def peak_mib(self) -> float:
        return proc_status_mib(self.process.pid, "VmHWM")


@contextmanager
def graph_simulator_process(
    *, virtual_start: float | None = None, polls_to_complete: int = 3
) -> Iterator[Simulator]:
    """The simulator on a free loopback port. With ``virtual_start`` (epoch seconds) its clock stands still
    at that time and moves only by ``POST /_simulator/clock`` (``bench.virtual``); else it is real time."""
    if virtual_start is None:
        # No rate limit: these measurements are about the client and the host, not about Graph's limit.
        command = [
            "-m",
            "graph_simulator",
            "--port",
            "0",
            "--identity-header",
            IDENTITY_HEADER,
            "--no-rate-limit",
        ]
        command += ["--polls-to-complete", str(polls_to_complete)]
    else:
        command = ["-m", "bench.simulator_process", "--start", repr(virtual_start)]
        command += ["--polls-to-complete", str(polls_to_complete), "--identity-header", IDENTITY_HEADER]
    process = subprocess.Popen(
        [sys.executable, *command], cwd=ROOT, stdout=subprocess.PIPE, text=True, env=clean_environ()
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        if not url.startswith("http://127.0.0.1:"):
            raise BenchError(f"the Graph simulator did not start (first line {url!r})")
        yield Simulator(url, process)
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


# -- the dev host as its own process (real or scaled clock) -------------------------------------------------


@contextmanager
def dev_host_process(simulator: Simulator, clock_speed: float) -> Iterator[tuple[str, int]]:
    """``python -m devhost`` with the app, against ``simulator``; yields its base URL and process id."""
    port = free_port()
    with tempfile.TemporaryDirectory() as state_dir:
        env = clean_environ(
            {
                **simulator.env,
                "AzureWebJobsStorage": os.environ[STORAGE_VARIABLE],
                "TASKHUB_NAME": "bench",
                "PROVISIONING_QUEUE": "bench-requests",
                "RESULTS_QUEUE": "bench-results",
            }
        )
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "devhost",
                "--port",
                str(port),
                "--clock-speed",
                str(clock_speed),
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
            wait_for_http(base_url + "/api/communities/requests/none", process)
            yield base_url, process.pid
        finally:
            process.terminate()
            process.wait(timeout=15)


def wait_for_http(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"the process serving {url} exited with {process.returncode}")
        try:
            requests.get(url, timeout=2)
            return
        except requests.ConnectionError:
            time.sleep(0.2)
    raise BenchError(f"nothing answered on {url} within {timeout:.0f} s")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- measurements in a fresh interpreter --------------------------------------------------------------------


def run_child(measurement: str, params: Mapping[str, Any], timeout: float = 600) -> dict[str, Any]:
    """Run ``bench.<measurement>.measure(params)`` in a fresh interpreter (``python -m bench.child``), so that
    its peak memory is that of one dev host process; returns the measurement's JSON result."""
    with tempfile.TemporaryFile(mode="w+") as stderr:
        completed = subprocess.run(
            [sys.executable, "-m", "bench.child", measurement, json.dumps(dict(params))],
            cwd=ROOT,
            env=clean_environ(),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            timeout=timeout,
            check=False,
        )
        stderr.seek(0)
        errors = stderr.read()
    results = [line for line in completed.stdout.splitlines() if line.startswith(RESULT_MARKER)]
    if completed.returncode != 0 or not results:
        tail = "\n".join(errors.strip().splitlines()[-25:])
        raise BenchError(f"measurement {measurement!r} failed (exit {completed.returncode}):\n{tail}")
    result: dict[str, Any] = json.loads(results[-1][len(RESULT_MARKER) :])
    return result
