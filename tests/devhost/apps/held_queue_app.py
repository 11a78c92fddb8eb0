"""Queue triggers that hold every message until the test releases it, counting how many are inside at once.

`hold` is sync (the dev host runs it on the message's own thread), `hold_async` is async (it runs on the
worker's event loop).
Tests install a fresh `Gate` as `GATE`; the functions look it up at call time.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

# A held message gives up after this long, so a broken test fails instead of hanging.
HOLD_TIMEOUT_SECONDS = 20.0


class Gate:
    """Counts the invocations inside the functions; each waits until `release` lets it go on."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._held: list[Future[None]] = []
        self.inside = 0
        self.entered = 0
        self.peak = 0
        self.events: list[str] = []

    def enter(self) -> Future[None]:
        release: Future[None] = Future()
        with self._changed:
            self._held.append(release)
            self.inside += 1
            self.entered += 1
            self.peak = max(self.peak, self.inside)
            self._changed.notify_all()
        return release

    def leave(self) -> None:
        with self._changed:
            self.inside -= 1
            self._changed.notify_all()
        self.note("finished")

    def note(self, event: str) -> None:
        """Record an event in `events`, in the order events happen (functions record "finished")."""
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def release(self, count: int | None = None) -> None:
        """Let the `count` longest-held invocations go on (all of them when None)."""
        with self._changed:
            waiting = [release for release in self._held if not release.done()]
            for release in waiting[:count]:
                release.set_result(None)

    def wait_until(self, condition: Callable[[Gate], bool], timeout: float = 10.0) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: condition(self), timeout):
                raise TimeoutError(f"inside={self.inside} entered={self.entered} peak={self.peak}")


GATE = Gate()


@app.queue_trigger(arg_name="msg", queue_name="%HOLD_QUEUE%", connection="AzureWebJobsStorage")
def hold(msg: func.QueueMessage) -> None:
    release = GATE.enter()
    try:
        release.result(timeout=HOLD_TIMEOUT_SECONDS)
    finally:
        GATE.leave()


@app.queue_trigger(arg_name="msg", queue_name="%HOLD_ASYNC_QUEUE%", connection="AzureWebJobsStorage")
async def hold_async(msg: func.QueueMessage) -> None:
    release = GATE.enter()
    try:
        await asyncio.wait_for(asyncio.wrap_future(release), HOLD_TIMEOUT_SECONDS)
    finally:
        GATE.leave()
