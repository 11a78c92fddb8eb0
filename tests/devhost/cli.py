"""Run `python -m devhost` as a separate process for the CLI and restart tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DevHostProcess:
    """`python -m devhost ARGS` in `cwd`; collects its output; `wait_started()` waits for the ready line."""

    def __init__(self, args: Sequence[str], *, cwd: Path, env: Mapping[str, str] | None = None) -> None:
        environ = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1", **(env or {})}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devhost", *args],
            cwd=cwd,
            env=environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self._lines)

    def wait_started(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while "Host started on" not in self.output:
            if self.process.poll() is not None:
                raise AssertionError(f"dev host exited with {self.process.returncode}:\n{self.output}")
            if time.monotonic() > deadline:
                raise AssertionError(f"dev host did not start within {timeout} s:\n{self.output}")
            time.sleep(0.05)

    def wait_exit(self, timeout: float = 30.0) -> int:
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def interrupt(self) -> int:
        self.process.send_signal(signal.SIGINT)
        return self.wait_exit()

    def kill(self) -> None:
        self.process.kill()
        self.wait_exit()
