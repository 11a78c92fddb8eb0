"""`python -m devhost.offline` (what `make run` starts): Azurite + Graph simulator + the product app."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from devhost.testing import port_open
from tests.devhost.cli import REPO_ROOT, free_port

pytestmark = pytest.mark.azurite


def _start_offline(*options: str) -> tuple[subprocess.Popen[str], str]:
    """Start `python -m devhost.offline` and read its output up to the "Host started" line."""
    if not (REPO_ROOT / "function_app.py").exists():
        pytest.fail("function_app.py is missing: the offline launcher runs the product app")
    process = subprocess.Popen(
        [sys.executable, "-m", "devhost.offline", *options],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
        if "Host started on" in line:
            break
    return process, "".join(lines)


def _stop(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGINT)
    return process.wait(timeout=30)


def test_offline_environment_serves_the_app_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    process, output = _start_offline(
        "--port", str(port), "--clock-speed", "600", "--state", str(tmp_path / "state.db")
    )
    azurite_ports: list[int] = []
    try:
        assert "Host started on" in output, output
        curl = re.search(r"curl -i -X POST (\S+) .* -d '(.*)'", output)
        assert curl is not None, output
        azurite_ports = [int(p) for p in re.findall(r"(?:blob|queue|table) (\d+)", output)]
        response = requests.post(
            curl.group(1), data=curl.group(2), headers={"Content-Type": "application/json"}, timeout=10
        )
        assert response.status_code == 202, response.text
        deadline = time.monotonic() + 60
        while (status := requests.get(response.headers["Location"], timeout=10).json())[
            "status"
        ] == "Running":
            assert time.monotonic() < deadline, status
            time.sleep(0.2)
        assert status["status"] == "Succeeded", status
        assert status["community"]["displayName"] == "Offline demo community"
    finally:
        code = _stop(process)
    assert code == 0
    assert not [p for p in [port, *azurite_ports] if port_open(p)]  # Azurite and the host are gone


def test_without_state_option_each_run_starts_with_fresh_durable_state() -> None:
    # The simulator keeps Graph in memory: orchestrations from an earlier run would poll operations that no
    # longer exist, so by default the durable state lives exactly as long as the simulator does.
    process, output = _start_offline("--port", str(free_port()))
    try:
        assert "Host started on" in output, output
        state = re.search(r"Durable state:\s+(\S+)", output)
        assert state is not None, output
        state_file = Path(state.group(1))
        assert state_file.resolve() != (REPO_ROOT / ".devhost" / "state.db").resolve()
        assert state_file.exists()
    finally:
        code = _stop(process)
    assert code == 0
    assert not state_file.exists()
