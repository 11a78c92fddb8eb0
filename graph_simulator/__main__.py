"""``python -m graph_simulator``: run the simulator until interrupted.

The first line printed is the bound base URL (``http://127.0.0.1:PORT``), so a launcher can use ``--port 0``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from types import FrameType

from graph_simulator.graph_api import OPERATION_HEADERS
from graph_simulator.scenarios import ScenarioError, describe_catalog, parse_scenario_spec
from graph_simulator.server import GraphSimulator


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m graph_simulator",
        description="Microsoft Graph (Viva Engage) + managed identity endpoint simulator on loopback.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="scenarios (--scenario NAME[:option=value,...]):\n" + describe_catalog(),
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (default 0 = a free port)")
    parser.add_argument(
        "--scenario",
        action="append",
        default=[],
        metavar="NAME[:k=v,...]",
        help="switch on a scenario at start (repeatable)",
    )
    parser.add_argument(
        "--operation-header",
        choices=OPERATION_HEADERS,
        default="location",
        help="polling header(s) a create answers with (default location, what Graph sends)",
    )
    parser.add_argument(
        "--polls-to-complete",
        type=int,
        default=3,
        metavar="N",
        help="poll on which an operation turns terminal (default 3: notStarted, running, succeeded)",
    )
    parser.add_argument(
        "--no-rate-limit",
        action="store_true",
        help="do not enforce Viva Engage's 10 requests per 30 s per app (enforced by default, as in Graph)",
    )
    parser.add_argument(
        "--identity-header",
        default=os.environ.get("GRAPH_SIM_IDENTITY_HEADER"),
        help="secret expected in X-IDENTITY-HEADER (default $GRAPH_SIM_IDENTITY_HEADER or random; "
        "GET /_simulator/app-env returns it)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        simulator = GraphSimulator(
            args.host,
            args.port,
            operation_header=args.operation_header,
            polls_to_complete=args.polls_to_complete,
            identity_header=args.identity_header,
            rate_limit=not args.no_rate_limit,
        )
        for spec in args.scenario:
            name, options = parse_scenario_spec(spec)
            simulator.set_scenario(name, **options)
    except (ScenarioError, ValueError) as exc:
        parser.error(str(exc))
    stopped = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    with simulator:
        print(simulator.url, flush=True)
        print(f"GRAPH_BASE_URL={simulator.graph_base_url}", flush=True)
        print(f"IDENTITY_ENDPOINT={simulator.identity_endpoint}", flush=True)
        stopped.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
