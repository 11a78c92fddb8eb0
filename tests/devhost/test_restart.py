"""Kill the dev host process (SIGKILL) mid-orchestration, start it again on the same state: it finishes,
nothing lost, and a scaled clock continues from the time it had reached."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

from tests.devhost.cli import DevHostProcess, free_port

APP = "tests.devhost.apps.slow:app"
STEPS = 4


def _status(url: str) -> dict[str, Any]:
    return dict(requests.get(url, timeout=5).json())


def _wait(url: str, done: Any, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status = _status(url)
        if done(status):
            return status
        assert time.monotonic() < deadline, f"gave up waiting; last status {status}"
        time.sleep(0.1)


def test_orchestration_survives_sigkill_and_restart(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    port = free_port()
    args = ["--app", APP, "--port", str(port), "--state", str(state), "--clock-speed", "60"]
    first = DevHostProcess(args, cwd=tmp_path)
    try:
        first.wait_started()
        started = requests.post(
            f"http://127.0.0.1:{port}/api/start/restart-1", json={"steps": STEPS}, timeout=10
        )
        assert started.status_code == 202
        status_url = started.json()["statusQueryGetUri"]
        midway = _wait(status_url, lambda s: (s.get("customStatus") or {}).get("done", 0) >= 2)
        assert midway["runtimeStatus"] == "Running"
    finally:
        first.kill()
    assert first.process.returncode == -9

    second = DevHostProcess(args, cwd=tmp_path)
    try:
        second.wait_started()
        final = _wait(status_url, lambda s: s["runtimeStatus"] in ("Completed", "Failed", "Terminated"), 60)
        history = _status(status_url + "&showHistory=true")["historyEvents"]
    finally:
        second.interrupt()
    assert final["runtimeStatus"] == "Completed"
    assert final["output"] == [f"step-{n}" for n in range(STEPS)]
    # The durable client posts df_dumps(input) as JSON (start_new in Azure/azure-functions-durable-python
    # azure/durable_functions/models/DurableOrchestrationClient.py), so the stored input is JSON text of JSON.
    assert final["input"] == f'{{"steps": {STEPS}}}'
    # Every step ran to completion exactly once in the recorded history.
    completed = [e for e in history if e.get("EventType") == "TaskCompleted"]
    assert len(completed) == STEPS


def test_a_scaled_clock_continues_after_a_restart_instead_of_going_back_to_real_time(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    port = free_port()
    # One orchestration hour is one real second: before the kill, orchestration time is an hour ahead.
    args = ["--app", "tests.devhost.apps.timeline:app", "--port", str(port), "--state", str(state)]
    args += ["--clock-speed", "3600"]
    first = DevHostProcess(args, cwd=tmp_path)
    try:
        first.wait_started()
        started = requests.post(f"http://127.0.0.1:{port}/api/start/timeline-1", timeout=10)
        assert started.status_code == 202
        urls = started.json()
        _wait(urls["statusQueryGetUri"], lambda s: s.get("customStatus") == "waiting")
    finally:
        first.kill()

    second = DevHostProcess(args, cwd=tmp_path)
    try:
        second.wait_started()
        raised = requests.post(urls["sendEventPostUri"].replace("{eventName}", "go"), json=True, timeout=10)
        assert raised.status_code == 202
        final = _wait(urls["statusQueryGetUri"], lambda s: s["runtimeStatus"] in ("Completed", "Failed"))
        history = _status(urls["statusQueryGetUri"] + "&showHistory=true")["historyEvents"]
    finally:
        second.interrupt()
    assert final["runtimeStatus"] == "Completed"
    began, after_timer, after_event = (datetime.fromisoformat(text) for text in final["output"])
    assert (after_timer - began).total_seconds() >= 3600
    # Without resuming, the restarted clock was an hour behind: the event was stamped before the timer
    # fired, and the SDK (which never moves current_utc_datetime back) saw no time pass.
    stamps = [(e["EventType"], datetime.fromisoformat(e["Timestamp"])) for e in history]
    assert stamps == sorted(stamps, key=lambda stamp: stamp[1]), stamps
    assert after_event > after_timer
