"""``python -m graph_simulator``: prints its URL first, serves, applies --scenario, stops on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
import requests

from graph_simulator import SCENARIOS
from tests.graph_simulator.helpers import community_body


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "graph_simulator", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_cli_serves_with_scenarios_and_options() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "graph_simulator",
            "--port",
            "0",
            "--scenario",
            "throttle:route=create,retry_after=2.128",
            "--scenario",
            "operation-skipped",
            "--operation-header",
            "operation-location",
            "--polls-to-complete",
            "1",
            "--identity-header",
            "cli-secret",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        token = requests.get(
            f"{url}/msi/token",
            params={"api-version": "2019-08-01", "resource": "https://graph.microsoft.com"},
            headers={"X-IDENTITY-HEADER": "cli-secret"},
            timeout=5,
        ).json()["access_token"]
        graph = requests.Session()
        graph.headers["Authorization"] = f"Bearer {token}"
        create_url = f"{url}/v1.0/employeeExperience/communities"

        throttled = graph.post(create_url, json=community_body(), timeout=5)
        accepted = graph.post(create_url, json=community_body(), timeout=5)
        operation = graph.get(accepted.headers["Operation-Location"], timeout=5).json()

        assert throttled.headers["Retry-After"] == "2.128"
        assert "Location" not in accepted.headers
        assert operation["status"] == "skipped"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
    assert process.returncode == 0


def test_help_lists_every_scenario_and_option() -> None:
    result = _run("--help")

    assert result.returncode == 0
    for name, spec in SCENARIOS.items():
        assert f"  {name}: " in result.stdout
        for option in spec.options:
            assert f"      {option.name}: " in result.stdout


def test_bad_scenario_on_the_command_line_is_a_usage_error() -> None:
    result = _run("--scenario", "throttle:colour=red")
    assert result.returncode == 2
    assert "colour" in result.stderr


@pytest.mark.parametrize(("flags", "statuses"), [([], [200] * 10 + [429]), (["--no-rate-limit"], [200] * 11)])
def test_cli_enforces_viva_engages_rate_limit_unless_told_not_to(
    flags: list[str], statuses: list[int]
) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "graph_simulator", "--port", "0", "--identity-header", "cli-secret", *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        token = requests.get(
            f"{url}/msi/token",
            params={"api-version": "2019-08-01", "resource": "https://graph.microsoft.com"},
            headers={"X-IDENTITY-HEADER": "cli-secret"},
            timeout=5,
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        answers = [
            requests.get(f"{url}/v1.0/employeeExperience/communities", headers=headers, timeout=5).status_code
            for _ in range(11)
        ]
        assert answers == statuses
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
