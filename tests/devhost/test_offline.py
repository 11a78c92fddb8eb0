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


def test_offline_environment_serves_the_app_and_stops_cleanly(tmp_path: Path) -> None:
    if not (REPO_ROOT / "function_app.py").exists():
        pytest.fail("function_app.py is missing: the offline launcher runs the product app")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "devhost.offline", "--port", str(port), "--clock-speed", "600",
         "--state", str(tmp_path / "state.db")],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    lines: list[str] = []
    azurite_ports: list[int] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if "Host started on" in line:
                break
        output = "".join(lines)
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
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=30)
    assert code == 0
    assert not [p for p in [port, *azurite_ports] if port_open(p)]  # Azurite and the host are gone
