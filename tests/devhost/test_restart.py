"""Kill the dev host process (SIGKILL) mid-orchestration, start it again on the same state: it finishes,
nothing lost. Timers are 60 s of orchestration time, run at --clock-speed 60."""

from __future__ import annotations

import time
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
    assert final["input"] == f'{{"steps": {STEPS}}}'  # the client's double encoding (fact sheet §5.3)
    # Every step ran to completion exactly once in the recorded history.
    completed = [e for e in history if e.get("EventType") == "TaskCompleted"]
    assert len(completed) == STEPS
