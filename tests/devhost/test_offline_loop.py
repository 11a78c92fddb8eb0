"""`python -m devhost.offline` for the local loop: busy ports, `--enforce-keys`, the printed curl's own
Idempotency-Key, and `Retry-After` in real seconds under `--clock-speed`."""

from __future__ import annotations

import json
import re
import shlex
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from devhost.offline import curl_example, demo_idempotency_key
from tests.devhost.cli import REPO_ROOT, free_port


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield int(listener.getsockname()[1])


def _run(module: str, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *options],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("flag", "what"), [("--port", "the app's HTTP port"), ("--graph-port", "the Graph simulator")]
)
def test_offline_on_a_busy_port_stops_at_once_with_one_line(busy_port: int, flag: str, what: str) -> None:
    other = "--graph-port" if flag == "--port" else "--port"
    result = _run("devhost.offline", flag, str(busy_port), other, str(free_port()))
    assert result.returncode == 1
    assert result.stderr == (
        f"Error: port {busy_port} ({what}) is already in use: stop what listens there or choose another port "
        f"with {flag} N\n"
    )
    assert "Azurite" not in result.stdout  # checked before anything was started


def test_devhost_on_a_busy_port_stops_with_one_line(busy_port: int) -> None:
    result = _run("devhost", "--port", str(busy_port), "--app", "tests.devhost.apps.http_app:app")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.strip().splitlines() == [
        f"Error: port {busy_port} (the app's HTTP port) is already in use: stop what listens there or choose "
        "another port with --port N"
    ]


def test_the_printed_curl_has_a_new_idempotency_key_every_run() -> None:
    keys = {demo_idempotency_key() for _ in range(20)}
    assert len(keys) == 20
    assert all(re.fullmatch(r"offline-[0-9a-f]{16}", key) for key in keys)
    command = shlex.split(curl_example("http://127.0.0.1:7071", "a@b.c", "offline-1", "k/y+="))
    assert command[4] == "http://127.0.0.1:7071/api/communities?code=k%2Fy%2B%3D"
    assert command[command.index("-H", 6) + 1] == "Idempotency-Key: offline-1"
    assert json.loads(command[-1])["owners"] == ["a@b.c"]


@pytest.mark.azurite
def test_offline_with_enforced_keys_and_a_fast_clock() -> None:
    port = free_port()
    options = ["--port", str(port), "--clock-speed", "600", "--enforce-keys"]
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
    output = "".join(lines)
    try:
        assert "Host started on" in output, output
        assert "Keys: enforced" in output
        assert "Clock: 600x (durable timers and Retry-After)" in output
        command = next(shlex.split(line) for line in lines if line.strip().startswith("curl "))
        url = command[4]
        headers = dict(h.split(": ", 1) for h in command[6:-2:2])
        body = command[-1]
        key = parse_qs(urlsplit(url).query)["code"][0]
        assert output.count(key) == 1  # printed once, in the curl
        assert re.fullmatch(r"offline-[0-9a-f]{16}", headers["Idempotency-Key"])
        base = f"http://127.0.0.1:{port}/api/communities"

        # The key is required, as in Azure; the printed curl has it.
        assert requests.post(base, data=body, headers=headers, timeout=10).status_code == 401
        started = requests.post(url, data=body, headers=headers, timeout=10)
        assert started.status_code == 202, started.text
        # The workflow's 30 s become 50 ms at 600x: the caller is told to come back in 1 s, not 30.
        assert started.headers["Retry-After"] == "1"
        location = started.headers["Location"]
        assert parse_qs(urlsplit(location).query)["code"] == [key]  # following Location needs no header
        assert requests.get(location, timeout=10).status_code in (200, 202)

        # Sent again, the same curl answers with the same request; another body under the key is a 409.
        again = requests.post(url, data=body, headers=headers, timeout=10)
        assert again.status_code in (200, 202), again.text
        assert again.json()["id"] == started.json()["id"]
        edited = json.dumps({**json.loads(body), "displayName": "Edited name"})
        conflict = requests.post(url, data=edited, headers=headers, timeout=10)
        assert (conflict.status_code, conflict.json()["code"]) == (409, "IdempotencyConflict")

        # A route of the app without that method: 405 and what it takes (Azure answers 404: docs/devhost.md).
        wrong = requests.put(url, data=body, headers=headers, timeout=10)
        assert wrong.status_code == 405
        allowed = wrong.json()["allowedMethods"]
        assert "POST" in allowed
        assert "PUT" not in allowed
        assert wrong.headers["Allow"] == ", ".join(allowed)
    finally:
        process.send_signal(signal.SIGINT)
        remaining, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    assert key not in remaining  # nor logged afterwards
