"""`python -m devhost`: run the function app locally the way `func start` does (see docs/devhost.md)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from devhost.clock import Clock, RealClock, ScaledClock
from devhost.durable.store import latest_recorded_time
from devhost.host import FUNCTION_KEYS_SETTING, HOST_KEYS_SETTING, MASTER_KEY_SETTING, DevHostRuntime
from devhost.indexing import IndexingError
from devhost.local_settings import SettingsError, apply_local_settings, read_host_json, read_local_settings
from devhost.ports import PortInUseError
from devhost.queues import StorageUnavailableError

# Keys come from settings only: a command line is visible to every user of the machine.
ENFORCE_KEYS_HELP = (
    "require x-functions-key or ?code= for non-anonymous functions, checked as in Azure: host keys "
    f"({HOST_KEYS_SETTING}=k1,k2) open every function, function keys ({FUNCTION_KEYS_SETTING}="
    f"name=k3;other=k4) only their own, the master key ({MASTER_KEY_SETTING}) everything"
)


class _UtcFormatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return (
            datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z")
        )


def configure_logging() -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_UtcFormatter("[%(asctime)s] %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    # Library chatter (every storage request) would drown the invocation log.
    for noisy in ("azure", "urllib3", "aiohttp"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def add_host_options(
    parser: argparse.ArgumentParser,
    *,
    state_help: str = "SQLite state file (default .devhost/state.db)",
    state_default: str | None = ".devhost/state.db",
    enforce_keys_help: str = ENFORCE_KEYS_HELP,
    clock_speed_help: str = (
        "durable timers fire N times sooner; orchestrations see the full intervals (default: real time)"
    ),
) -> None:
    """The options of every command that runs the app in the dev host (`devhost`, `devhost.offline`)."""
    parser.add_argument("--port", type=int, default=7071, help="app HTTP port (default 7071, as func start)")
    parser.add_argument(
        "--clock-speed",
        type=float,
        default=None,
        metavar="N",
        help=clock_speed_help,
    )
    parser.add_argument("--state", default=state_default, help=state_help)
    parser.add_argument("--app", default="function_app:app", help="module:attribute of the FunctionApp")
    parser.add_argument("--host-json", default="host.json", help="host.json to read (default ./host.json)")
    parser.add_argument("--enforce-keys", action="store_true", help=enforce_keys_help)


def describe_clock(speed: float | None, *, retry_after: bool = False) -> str:
    if speed in (None, 1):
        return "real time"
    return f"{speed:g}x (durable timers{' and Retry-After' if retry_after else ' only'})"


def stop_event_on_signals() -> threading.Event:
    """An event set by Ctrl+C (SIGINT) or SIGTERM: the command waits on it, then stops what it started."""
    stopping = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    return stopping


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devhost",
        description="Run the function app offline: HTTP/queue triggers, Durable Functions, state in SQLite.",
    )
    add_host_options(parser)
    parser.add_argument(
        "--local-settings", default="local.settings.json", help="settings file whose Values are applied"
    )
    parser.add_argument(
        "--rerun-activity",
        action="append",
        default=[],
        metavar="NAME",
        help="fault mode: run every work item of this activity twice and lose the first result, as after a "
        "host crash between the activity's effects and its recorded result (repeatable)",
    )
    return parser.parse_args(argv)


def make_clock(speed: float | None, state_path: str | Path) -> Clock:
    """Real time, or `speed` times faster. A restart continues from the latest time the state file recorded
    when that is ahead of real time (a scaled clock runs ahead), so orchestration time never goes backwards
    and timers that were due before a stop fire right away."""
    rate = 1.0 if speed is None else speed
    resume_from = latest_recorded_time(state_path)
    if resume_from is not None and resume_from > datetime.now(UTC):
        return ScaledClock(rate, start=resume_from)
    return RealClock() if rate == 1 else ScaledClock(rate)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging()
    # The app module is imported from the working directory (the repo root), as the worker imports it.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        apply_local_settings(read_local_settings(args.local_settings), os.environ)
        host_json = read_host_json(args.host_json)
        runtime = DevHostRuntime(
            args.app,
            clock=make_clock(args.clock_speed, args.state),
            state_path=args.state,
            host_json=host_json,
            port=args.port,
            enforce_keys=args.enforce_keys,
            rerun_activities=args.rerun_activity,
        )
        runtime.start()
    except PortInUseError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except (IndexingError, SettingsError, StorageUnavailableError) as exc:
        print(f"\nError: the function app could not be started.\n  {exc}\n", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"\nError: the dev host could not start: {exc}\n", file=sys.stderr)
        return 1

    stopping = stop_event_on_signals()
    clock = describe_clock(args.clock_speed)
    print(runtime.function_host.startup_table(), flush=True)
    print(
        f"Durable state: {runtime.state_path}   Clock: {clock}   Task hub: {runtime.function_host.task_hub}"
    )
    print(runtime.function_host.describe_keys())
    print(f"Host started on {runtime.base_url} (Ctrl+C to stop)\n", flush=True)
    stopping.wait()
    print("Stopping the dev host...", flush=True)
    runtime.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
