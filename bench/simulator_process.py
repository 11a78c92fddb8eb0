"""``python -m bench.simulator_process --start EPOCH``: the Graph simulator on a clock that stands still.

Its clock shows ``--start`` until ``POST /_simulator/clock {"advanceSeconds": n}`` moves it, which the dev
host's manual clock does on every step (``bench.virtual.SyncedClock``): the simulator then runs in a process
of its own, so the dev host process's peak memory is the dev host's alone, and its request log, rate-limit
window and operation times are in the dev host's virtual time. The first line printed is the base URL.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from graph_simulator.server import GraphSimulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.simulator_process")
    parser.add_argument("--start", type=float, required=True, help="virtual start time, epoch seconds")
    parser.add_argument("--polls-to-complete", type=int, default=3)
    parser.add_argument("--identity-header", required=True)
    args = parser.parse_args(argv)
    start = float(args.start)
    simulator = GraphSimulator(
        "127.0.0.1",
        0,
        clock=lambda: start,
        polls_to_complete=args.polls_to_complete,
        identity_header=args.identity_header,
    )
    stopped = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    with simulator:
        print(simulator.url, flush=True)
        stopped.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
