"""A pytest session that dies while holding the `azurite` fixture leaves no Azurite process behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.devhost.cli import REPO_ROOT

HOLDING_TEST = """
import json, os, time
from pathlib import Path

def test_holds_azurite(azurite):
    Path(os.environ["AZURITE_MARKER"]).write_text(json.dumps({"pid": azurite.pid}))
    time.sleep(120)
"""


def _alive(pid: int) -> bool:
    """True while the process exists and is not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _session_holding_azurite(tmp_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    (tmp_path / "test_hold.py").write_text(HOLDING_TEST)
    marker = tmp_path / "azurite.json"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "AZURITE_MARKER": str(marker)}
    plugins = ["-p", "devhost.pytest_plugin", "-p", "no:cacheprovider"]
    session = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", *plugins, "--rootdir", str(tmp_path), "test_hold.py"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # A shell starts background jobs with SIGINT ignored, and Python keeps an inherited SIG_IGN: reset it
        # so that the inner session reacts to SIGINT as an interactive one would, however this suite was run.
        preexec_fn=_default_sigint,
    )
    deadline = time.monotonic() + 60
    while not marker.exists():
        if session.poll() is not None or time.monotonic() > deadline:
            session.kill()
            pytest.fail(f"the inner session did not start Azurite (exit code {session.poll()})")
        time.sleep(0.1)
    time.sleep(0.1)  # the marker may be visible before its content is flushed
    return session, int(json.loads(marker.read_text())["pid"])


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_an_interrupted_session_stops_its_azurite(tmp_path: Path, signum: int) -> None:
    session, azurite_pid = _session_holding_azurite(tmp_path)
    try:
        assert _alive(azurite_pid)
        session.send_signal(signum)
        session.wait(timeout=30)
        deadline = time.monotonic() + 10
        while _alive(azurite_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(azurite_pid), f"Azurite (pid {azurite_pid}) outlived the session"
    finally:
        if session.poll() is None:
            session.kill()
        if _alive(azurite_pid):
            os.killpg(azurite_pid, signal.SIGKILL)
