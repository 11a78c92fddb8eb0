"""`python -m devhost.offline` (what `make run` calls): the whole app offline on one machine.

Starts Azurite (in memory, from node_modules), the Graph simulator (Graph + managed identity endpoint) and the
function app in the dev host on port 7071, wired together; prints a `curl` to try; Ctrl+C stops everything.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from devhost.__main__ import (
    add_host_options,
    configure_logging,
    describe_clock,
    make_clock,
    stop_event_on_signals,
)
from devhost.host import DevHostRuntime
from devhost.indexing import IndexingError
from devhost.local_settings import SettingsError, apply_local_settings, read_host_json, read_local_settings
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
    )
    parser.add_argument(
        "--graph-port", type=int, default=0, help="Graph simulator port (default: a free port)"
    )
    return parser.parse_args(argv)


def app_settings_file() -> Path:
    """local.settings.json when the developer has one, else the committed sample."""
    local = Path("local.settings.json")
    return local if local.exists() else Path("local.settings.sample.json")


def curl_example(base_url: str, owner_upn: str) -> str:
    body = json.dumps(
        {
            "displayName": "Offline demo community",
            "description": "Created against the Graph simulator",
            "privacy": "private",
            "owners": [owner_upn],
        }
    )
    return (
        f"curl -i -X POST {base_url}/api/communities -H 'Content-Type: application/json' "
        f"-H 'Idempotency-Key: demo-1' -d {shlex.quote(body)}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging()
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
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
    try:
        azurite.start()
        simulator.start()
        apply_local_settings(read_local_settings(app_settings_file()), os.environ)
        # These point at the processes just started, so they override any configured value.
        os.environ.update(simulator.app_env())
        os.environ["AzureWebJobsStorage"] = azurite.connection_string  # noqa: SIM112 (the host's name)
        os.environ["CALLBACK_ALLOW_LOOPBACK"] = "true"
        runtime = DevHostRuntime(
            args.app,
            clock=clock,
            state_path=state_path,
            host_json=read_host_json(args.host_json),
            port=args.port,
        )
        runtime.start()
    except (IndexingError, SettingsError, OSError, RuntimeError, TimeoutError) as exc:
        print(f"\nError: the offline environment could not be started.\n  {exc}\n", file=sys.stderr)
        _stop(runtime, simulator, azurite)
        return 1

    stopping = stop_event_on_signals()
    clock_text = describe_clock(args.clock_speed)
    print(runtime.function_host.startup_table())
    print(f"Azurite (in memory):  {', '.join(f'{s} {p}' for s, p in azurite.ports.items())}")
    print(f"Graph simulator:      {simulator.graph_base_url}   (admin API: {simulator.url}/_simulator/)")
    print(f"Durable state:        {runtime.state_path}   Clock: {clock_text}")
    example = curl_example(runtime.base_url, SEED_USERS[0]["userPrincipalName"])
    print(f"\nTry it (the owner is a seeded simulator user):\n\n  {example}\n")
    print("then GET the Location URL from the answer to follow the request.")
    print(f"\nHost started on {runtime.base_url} (Ctrl+C to stop)\n", flush=True)
    stopping.wait()
    print("Stopping...", flush=True)
    _stop(runtime, simulator, azurite)
    return 0


def _stop(runtime: DevHostRuntime | None, simulator: GraphSimulator, azurite: Azurite) -> None:
    try:
        if runtime is not None:
            runtime.stop()
        simulator.stop()
    finally:
        azurite.stop()


if __name__ == "__main__":
    sys.exit(main())
