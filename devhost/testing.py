"""In-process dev host for tests: a free port, a manual clock, helpers to move virtual time and wait for work.

with DevHost(app="function_app:app", settings={...}) as host:
    requests.post(f"{host.base_url}/api/communities", json=...)
    host.run_until_status(instance_id)
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from azure.functions.decorators.function_app import FunctionRegister
from azure.storage.queue import QueueClient, QueueServiceClient

from devhost.clock import Clock, ManualClock
from devhost.durable import DurableEngine
from devhost.host import AccessKeys, DevHostRuntime
from devhost.local_settings import read_host_json
from devhost.queues import storage_connection_string

FINAL_STATUSES = ("Completed", "Failed", "Terminated")


class DevHost:
    def __init__(
        self,
        app: str | FunctionRegister = "function_app:app",
        clock: Clock | None = None,
        settings: Mapping[str, str] | None = None,
        state_path: str | Path | None = None,
        port: int = 0,
        enforce_keys: bool = False,
        storage_connection_string: str | None = None,
        host_json: str | Path | None = "host.json",
        keys: AccessKeys | None = None,
        atomic_starts: bool = False,
        rerun_activities: Collection[str] = (),
        retry_after_speed: float = 1.0,
    ) -> None:
        self.clock: Clock = clock if clock is not None else ManualClock()
        self._settings = dict(settings or {})
        if storage_connection_string is not None:
            self._settings["AzureWebJobsStorage"] = storage_connection_string
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        if state_path is None:
            self._tempdir = tempfile.TemporaryDirectory(prefix="devhost-")
            state_path = Path(self._tempdir.name) / "state.db"
        self.state_path = Path(state_path)
        self._runtime = DevHostRuntime(
            app,
            clock=self.clock,
            state_path=self.state_path,
            host_json=read_host_json(host_json),
            port=port,
            enforce_keys=enforce_keys,
            keys=keys,
            atomic_starts=atomic_starts,
            rerun_activities=rerun_activities,
            retry_after_speed=retry_after_speed,
        )
        self._saved_environ: dict[str, str | None] = {}
        self._started = False

    # ------------------------------------------------------------------------------------------ lifecycle
    def start(self) -> DevHost:
        self._saved_environ = {name: os.environ.get(name) for name in self._settings}
        os.environ.update(self._settings)
        try:
            self._runtime.start()
        except BaseException:
            self._restore_environ()
            raise
        self._started = True
        return self

    def stop(self) -> None:
        if self._started:
            self._started = False
            try:
                self._runtime.stop()
            finally:
                self._restore_environ()
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None

    def __enter__(self) -> DevHost:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _restore_environ(self) -> None:
        for name, value in self._saved_environ.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    # ---------------------------------------------------------------------------------------- properties
    @property
    def base_url(self) -> str:
        return self._runtime.base_url

    @property
    def engine(self) -> DurableEngine:
        return self._runtime.engine

    @property
    def system_key(self) -> str:
        """The master key, also the durable system key here: in the management URLs, accepted everywhere."""
        return self._runtime.function_host.system_key

    def durable_client_json(self, task_hub: str | None = None) -> str:
        """The `durableClient` binding value functions receive (for tests that build a client directly)."""
        return self._runtime.function_host.durable_client_json({"taskHub": task_hub} if task_hub else {})

    # ------------------------------------------------------------------------------------------ durable
    def run_until_idle(self, timeout: float = 10.0) -> None:
        self.engine.run_until_idle(timeout)

    def advance(self, seconds: float) -> None:
        """Move the manual clock forward by `seconds`, stopping at every due timer on the way."""
        clock = self._manual_clock()
        target = clock.now().timestamp() + seconds
        self.run_until_idle()
        while True:
            due = self.engine.next_due_time()
            if due is None or due.timestamp() > target:
                break
            if due > clock.now():
                clock.set(due)
            self.run_until_idle()
        if clock.now().timestamp() < target:
            clock.set(datetime.fromtimestamp(target, UTC))
        self.run_until_idle()

    def run_until_status(
        self,
        instance_id: str,
        statuses: Collection[str] = FINAL_STATUSES,
        max_virtual_seconds: float = 6 * 3600,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        """Drive the instance until its runtimeStatus is one of `statuses`: with a manual clock, jump to each
        next due timer (at most `max_virtual_seconds` ahead); with a real/scaled clock, wait `timeout` s."""
        if not isinstance(self.clock, ManualClock):
            return self.engine.wait_for_status(instance_id, statuses, timeout=timeout)
        clock = self.clock
        limit = clock.now().timestamp() + max_virtual_seconds
        deadline = time.monotonic() + timeout
        while True:
            self.run_until_idle()
            status = self.status(instance_id)
            if status is not None and status.get("runtimeStatus") in statuses:
                return status
            due = self.engine.next_due_time()
            if due is not None and due > clock.now() and due.timestamp() <= limit:
                clock.set(due)
                continue
            if time.monotonic() > deadline or due is None or due.timestamp() > limit:
                current = status.get("runtimeStatus") if status else "not found"
                raise TimeoutError(
                    f"instance {instance_id} is {current}, not one of {sorted(statuses)}, and "
                    + (
                        "nothing is scheduled"
                        if due is None
                        else f"its next timer is due at {due.isoformat()}"
                    )
                )

    def status(self, instance_id: str) -> dict[str, Any] | None:
        return self.engine.get_status(instance_id, show_input=True)

    def history(self, instance_id: str) -> list[dict[str, Any]]:
        return self.engine.history(instance_id)

    def start_new(self, name: str, input: Any = None, instance_id: str | None = None) -> str:
        """Start an orchestration with a Python value as input (JSON-encoded like the client does)."""
        return self.engine.start_new(name, instance_id, None if input is None else json.dumps(input))

    def raise_event(self, instance_id: str, name: str, data: Any = None) -> None:
        self.engine.raise_event(instance_id, name, json.dumps(data))

    def _manual_clock(self) -> ManualClock:
        if not isinstance(self.clock, ManualClock):
            raise TypeError(
                "advance() needs the manual clock (the default); this host runs on real/scaled time"
            )
        return self.clock

    # ------------------------------------------------------------------------------------------- queues
    def queue_client(self, queue_name: str) -> QueueClient:
        """A QueueClient on the host's storage (AzureWebJobsStorage); messages are not encoded for you."""
        connection_string = storage_connection_string("AzureWebJobsStorage", {**os.environ, **self._settings})
        if connection_string is None:
            raise RuntimeError(
                "no storage configured: pass storage_connection_string= or set AzureWebJobsStorage"
            )
        return QueueServiceClient.from_connection_string(connection_string).get_queue_client(queue_name)

    def wait_for_queues_idle(self, timeout: float = 10.0) -> None:
        """Wait until every trigger queue is empty and no queue-triggered function is running."""
        triggers = self._runtime.queue_triggers
        deadline = time.monotonic() + timeout
        while triggers is not None and not triggers.idle():
            if time.monotonic() > deadline:
                raise TimeoutError(f"queues still busy after {timeout} s")
            time.sleep(0.05)


REPO_ROOT = Path(__file__).resolve().parents[1]
AZURITE_ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


class Azurite:
    """An Azurite process (node_modules/.bin), in memory, on the given or free ports.

    `services` picks the binary: ("queue",) runs `azurite-queue`, anything else the full `azurite`.
    Azurite runs in its own process group, which `stop()` kills. A session that dies without calling `stop()`
    must not leave it running: every started Azurite is also stopped at interpreter exit, on SIGTERM/SIGHUP
    (before the previous handler runs), and, when started from the main thread on Linux, by the kernel when
    this process dies even by SIGKILL or `os._exit` (pytest-timeout's thread method).
    """

    def __init__(
        self,
        *,
        services: tuple[str, ...] = ("queue",),
        ports: Mapping[str, int] | None = None,
        binary_dir: Path = REPO_ROOT / "node_modules" / ".bin",
    ) -> None:
        self.services = services
        self.ports = {service: (ports or {}).get(service) or _free_port() for service in services}
        self._binary = binary_dir / ("azurite-queue" if services == ("queue",) else "azurite")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The Azurite process id (also its process group id) while it runs."""
        return None if self._process is None else self._process.pid

    @property
    def connection_string(self) -> str:
        endpoints = "".join(
            f"{service.capitalize()}Endpoint=http://127.0.0.1:{port}/devstoreaccount1;"
            for service, port in self.ports.items()
        )
        account = (
            f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURITE_ACCOUNT_KEY};"
        )
        return account + endpoints

    def start(self, timeout: float = 30.0) -> Azurite:
        if not self._binary.exists():
            raise FileNotFoundError(
                f"Azurite is not installed ({self._binary} is missing): run `npm ci` in {REPO_ROOT}"
            )
        args = [
            str(self._binary),
            "--inMemoryPersistence",
            "--skipApiVersionCheck",
            "--silent",
            "--disableTelemetry",
        ]
        for service, port in self.ports.items():
            args += [f"--{service}Host", "127.0.0.1", f"--{service}Port", str(port)]
        _install_cleanup()
        self._process = subprocess.Popen(
            args,
            cwd=tempfile.gettempdir(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group: stop() kills Azurite and anything it spawned
            preexec_fn=_parent_death_signal(),  # only a prctl call in the child
        )
        _running.add(self)
        deadline = time.monotonic() + timeout
        for port in self.ports.values():
            while not port_open(port):
                if self._process.poll() is not None:
                    stderr = (
                        self._process.stderr.read().decode(errors="replace") if self._process.stderr else ""
                    )
                    code = self._process.returncode
                    self.stop()
                    raise RuntimeError(f"Azurite exited with code {code}: {stderr.strip()}")
                if time.monotonic() > deadline:
                    self.stop()
                    raise TimeoutError(f"Azurite did not open port {port} within {timeout} s")
                time.sleep(0.1)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        _running.discard(self)
        if process is None:
            return
        _signal_group(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _signal_group(process.pid, signal.SIGKILL)
            process.wait(timeout=timeout)
        _signal_group(process.pid, signal.SIGKILL)  # whatever else is left in its group
        if process.stderr is not None:
            process.stderr.close()

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


# Started Azurite processes not stopped yet, and the cleanup hooks that stop them when the session dies.
_running: set[Azurite] = set()
_cleanup_lock = threading.Lock()
_cleanup_installed = False
_CLEANUP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
_PR_SET_PDEATHSIG = 1


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def stop_all_azurite() -> None:
    """Stop every Azurite this process started (atexit and signal hook; safe to call more than once)."""
    for azurite in list(_running):
        with contextlib.suppress(Exception):
            azurite.stop(timeout=2.0)


def _install_cleanup() -> None:
    """Once per process: stop Azurite at exit and on SIGTERM/SIGHUP. Pytest turns SIGINT into
    KeyboardInterrupt and still tears fixtures down, and atexit covers what it misses."""
    global _cleanup_installed
    with _cleanup_lock:
        if _cleanup_installed:
            return
        _cleanup_installed = True
    atexit.register(stop_all_azurite)
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers can only be set from the main thread; atexit still applies
    for signum in _CLEANUP_SIGNALS:
        previous = signal.getsignal(signum)
        if previous is signal.SIG_IGN or previous is None:
            continue  # ignored (or set outside Python): the process does not die of it
        signal.signal(signum, _chained_handler(signum, previous))


def _chained_handler(
    signum: int, previous: Callable[[int, FrameType | None], Any] | int
) -> Callable[[int, FrameType | None], None]:
    def handler(received: int, frame: FrameType | None) -> None:
        stop_all_azurite()
        if callable(previous):
            previous(received, frame)
            return
        # The default action (terminate): restore it and deliver the signal again.
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    return handler


def _parent_death_signal() -> Callable[[], None] | None:
    """Linux: have the kernel SIGKILL Azurite when the thread that started it dies (even by SIGKILL). Only
    for the main thread: the signal is tied to the starting thread, not to the process."""
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    prctl = libc.prctl

    def set_parent_death_signal() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)

    return set_parent_death_signal


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class HoldFirstStart:
    """A `DurableEngine.start_hook` for tests of racing starts: the first start it sees (of the instances
    ``holds`` selects) waits between its check and its write until ``release`` is set."""

    def __init__(
        self, holds: Callable[[str], bool] = lambda instance_id: True, timeout: float = 20.0
    ) -> None:
        self.calls = 0
        self.held = threading.Event()
        self.release = threading.Event()
        self._holds = holds
        self._timeout = timeout
        self._lock = threading.Lock()

    def __call__(self, instance_id: str) -> None:
        if not self._holds(instance_id):
            return
        with self._lock:
            self.calls += 1
            first = self.calls == 1
        if first:
            self.held.set()
            if not self.release.wait(self._timeout):
                raise AssertionError(f"the held start of {instance_id} was never released")
