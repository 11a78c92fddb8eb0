"""Runs `vecp` in this process against the app in the dev host, on the host's virtual clock.

The CLI's clock is a parameter: here sleeping for a ``Retry-After`` moves the dev host's manual clock by that
much (running every timer that falls due), so ``--wait`` follows a request through minutes of virtual time
without a real sleep, and ``--timeout`` is measured on the same clock.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cli.app import main
from tests.e2e.workflow_env import WorkflowEnv


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@dataclass
class HostClock:
    env: WorkflowEnv
    # After each sleep, wait for the queue triggers too (queue-send: the host polls its queues in real time).
    queues: bool = False
    slept: list[float] = field(default_factory=list)

    def now(self) -> float:
        return self.env.host.clock.now().timestamp()

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        if self.queues:
            self.env.host.wait_for_queues_idle(timeout=20)
        self.env.host.advance(seconds)


def vecp(
    env: WorkflowEnv, *args: str, environ: Mapping[str, str] | None = None, clock: HostClock | None = None
) -> Run:
    """``vecp ARGS`` with ``VECP_URL`` set to the dev host (plus ``environ``): exit code, stdout, stderr."""
    stdout, stderr = io.StringIO(), io.StringIO()
    code = main(
        list(args),
        environ={"VECP_URL": env.host.base_url, **(environ or {})},
        stdout=stdout,
        stderr=stderr,
        clock=clock or HostClock(env),
    )
    return Run(code, stdout.getvalue(), stderr.getvalue())


def fields(text: str) -> dict[str, str]:
    """The FIELD/VALUE table of a document (table output) as a dict, read by the VALUE column's position."""
    header, *lines = text.splitlines()
    assert header.split() == ["FIELD", "VALUE"], header
    column = header.index("VALUE")
    assert all(line[column - 2 : column] == "  " for line in lines), "columns are not aligned"
    return {line[:column].strip(): line[column:] for line in lines}
