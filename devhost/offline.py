"""`python -m devhost.offline` (what `make run` calls): the whole app offline on one machine.

Starts Azurite (in memory, from node_modules), the Graph simulator (Graph + managed identity endpoint) and the
function app in the dev host on port 7071, wired together; prints a `curl` to try (with an Idempotency-Key of
its own every run, and under `--enforce-keys` a host key generated for the run); Ctrl+C stops everything.
A busy `--port` or `--graph-port` stops it at once with one line naming the port and the flag.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import sys
import tempfile
from collections.abc import MutableMapping, Sequence
from pathlib import Path
from urllib.parse import quote

from devhost.__main__ import (
    add_host_options,
    configure_logging,
    describe_clock,
    make_clock,
    stop_event_on_signals,
)
from devhost.host import HOST_KEYS_SETTING, DevHostRuntime
from devhost.indexing import IndexingError
from devhost.local_settings import SettingsError, apply_local_settings, read_host_json, read_local_settings
from devhost.ports import PortInUseError, address_in_use, ensure_port_free
from devhost.testing import Azurite, port_open
from graph_simulator import SEED_USERS, GraphSimulator

AZURITE_DEFAULT_PORTS = {"blob": 10000, "queue": 10001, "table": 10002}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devhost.offline",
        description="Run the app offline: Azurite + Graph simulator + the function app in the dev host.",
    )
    add_host_options(
        parser,
        # The simulator and Azurite keep their state in memory: orchestrations kept from an earlier run would
        # poll operations (on another simulator port) that no longer exist. Start clean unless asked not to.
        state_help="SQLite state file to keep and reuse (default: a fresh one per run, removed at exit)",
        state_default=None,
        enforce_keys_help="require a key on the app's FUNCTION-level routes, as in Azure: a host key is "
        f"generated for the run and printed in the curl (keys set in {HOST_KEYS_SETTING} and the other "
        "DEVHOST_*_KEY(S) settings are accepted too)",
        clock_speed_help="durable timers fire N times sooner and the Retry-After of the app's answers is "
        "divided by N (rounded up to whole seconds), so a poller keeps pace; orchestrations see the full "
        "intervals (default: real time)",
    )
    parser.add_argument(
        "--graph-port", type=int, default=0, help="Graph simulator port (default: a free port)"
    )
    return parser.parse_args(argv)


def app_settings_file() -> Path:
    """local.settings.json when the developer has one, else the committed sample."""
    local = Path("local.settings.json")
    return local if local.exists() else Path("local.settings.sample.json")


def demo_idempotency_key() -> str:
    """The printed curl's Idempotency-Key, new every run: a key kept across runs (with `--state`) would answer
    with an earlier run's request, or 409 once the body is edited."""
    return f"offline-{secrets.token_hex(8)}"


def add_run_host_key(environ: MutableMapping[str, str]) -> str:
    """A host key for this run (`--enforce-keys`), accepted next to any configured in the settings."""
    key = secrets.token_urlsafe(24)
    configured = environ.get(HOST_KEYS_SETTING, "").strip()
    environ[HOST_KEYS_SETTING] = f"{key},{configured}" if configured else key
    return key


def curl_example(base_url: str, owner_upn: str, idempotency_key: str, function_key: str | None = None) -> str:
    """A POST that creates a community. The key goes in `?code=` because the app copies it into `Location`,
    so following `Location` (another function) needs no header."""
    url = f"{base_url}/api/communities"
    if function_key is not None:
        url += "?code=" + quote(function_key, safe="")
    body = json.dumps(
        {
            "displayName": "Offline demo community",
            "description": "Created against the Graph simulator",
            "privacy": "private",
            "owners": [owner_upn],
        }
    )
    return (
        f"curl -i -X POST {shlex.quote(url)} -H 'Content-Type: application/json' "
        f"-H {shlex.quote('Idempotency-Key: ' + idempotency_key)} -d {shlex.quote(body)}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging()
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        # Before anything starts: a taken port fails in a second, not after Azurite and the app are up.
        ensure_port_free(args.port, what="the app's HTTP port", flag="--port")
        ensure_port_free(args.graph_port, what="the Graph simulator", flag="--graph-port")
    except PortInUseError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    busy = [port for port in AZURITE_DEFAULT_PORTS.values() if port_open(port)]
    azurite = Azurite(
        services=tuple(AZURITE_DEFAULT_PORTS),
        # Another Azurite (or anything) on the default ports: run ours on free ports instead of failing.
        ports=None if busy else AZURITE_DEFAULT_PORTS,
    )
    # Removed by its finalizer when the process exits.
    fresh_state = tempfile.TemporaryDirectory(prefix="devhost-offline-") if args.state is None else None
    state_path = args.state if fresh_state is None else str(Path(fresh_state.name) / "state.db")
    clock = make_clock(args.clock_speed, state_path)
    # Graph's Viva Engage rate limit is on, as in Graph: the app's budget keeps it under the limit.
    simulator = GraphSimulator(port=args.graph_port, clock=clock.time, rate_limit=True)
    runtime: DevHostRuntime | None = None
    function_key: str | None = None
    try:
        azurite.start()
        _start_simulator(simulator, args.graph_port)
        apply_local_settings(read_local_settings(app_settings_file()), os.environ)
        # These point at the processes just started, so they override any configured value.
        os.environ.update(simulator.app_env())
        os.environ["AzureWebJobsStorage"] = azurite.connection_string  # noqa: SIM112 (the host's name)
        os.environ["CALLBACK_ALLOW_LOOPBACK"] = "true"
        if args.enforce_keys:
            function_key = add_run_host_key(os.environ)
        runtime = DevHostRuntime(
            args.app,
            clock=clock,
            state_path=state_path,
            host_json=read_host_json(args.host_json),
            port=args.port,
            enforce_keys=args.enforce_keys,
            retry_after_speed=args.clock_speed or 1.0,
        )
        runtime.start()
    except PortInUseError as exc:  # taken between the check above and the bind
        print(f"Error: {exc}", file=sys.stderr)
        _stop(runtime, simulator, azurite)
        return 1
    except (IndexingError, SettingsError, OSError, RuntimeError, TimeoutError) as exc:
        print(f"\nError: the offline environment could not be started.\n  {exc}\n", file=sys.stderr)
        _stop(runtime, simulator, azurite)
        return 1

    stopping = stop_event_on_signals()
    clock_text = describe_clock(args.clock_speed, retry_after=True)
    print(runtime.function_host.startup_table())
    print(f"Azurite (in memory):  {', '.join(f'{s} {p}' for s, p in azurite.ports.items())}")
    print(f"Graph simulator:      {simulator.graph_base_url}   (admin API: {simulator.url}/_simulator/)")
    print(f"Durable state:        {runtime.state_path}   Clock: {clock_text}")
    print(runtime.function_host.describe_keys())
    example = curl_example(
        runtime.base_url, SEED_USERS[0]["userPrincipalName"], demo_idempotency_key(), function_key
    )
    key_note = " and a host key made for this run" if function_key is not None else ""
    print(f"\nTry it (the owner is a seeded simulator user{key_note}):\n\n  {example}\n")
    print(
        "then GET the Location URL from the answer to follow the request. Sent again, the same curl\n"
        "answers with the same request (its Idempotency-Key); with another body it answers 409: change\n"
        "the key for a new request."
    )
    print(f"\nHost started on {runtime.base_url} (Ctrl+C to stop)\n", flush=True)
    stopping.wait()
    print("Stopping...", flush=True)
    _stop(runtime, simulator, azurite)
    return 0


def _start_simulator(simulator: GraphSimulator, port: int) -> None:
    try:
        simulator.start()
    except OSError as exc:
        if address_in_use(exc):
            raise PortInUseError(port, what="the Graph simulator", flag="--graph-port") from None
        raise


def _stop(runtime: DevHostRuntime | None, simulator: GraphSimulator, azurite: Azurite) -> None:
    try:
        if runtime is not None:
            runtime.stop()
        simulator.stop()
    finally:
        azurite.stop()


if __name__ == "__main__":
    sys.exit(main())
