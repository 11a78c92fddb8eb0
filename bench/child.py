"""``python -m bench.child MEASUREMENT PARAMS_JSON``: one measurement in a fresh interpreter.

Runs ``bench.<MEASUREMENT>.measure(params)`` and prints its JSON result on a line starting with
``BENCH-RESULT``, with this process's peak memory (``peakMiB``) added: the process hosts the dev host and the
app (the Graph simulator has a process of its own), so that figure is the dev host process's.
"""

from __future__ import annotations

import importlib
import json
import logging
import sys
import threading

from bench.processes import RESULT_MARKER, own_peak_mib, own_rss_mib

MEASUREMENTS = ("graph_calls", "replay", "faults", "devhost_speed", "listing")


def main(argv: list[str]) -> int:
    name, params = argv[0], json.loads(argv[1])
    if name not in MEASUREMENTS:
        raise SystemExit(f"unknown measurement {name!r}; known: {', '.join(MEASUREMENTS)}")
    # The app logs every throttled or failed Graph call; only errors are worth seeing here (on stderr).
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    module = importlib.import_module(f"bench.{name}")
    sampler = _RssSampler()
    sampler.start()
    result = module.measure(params)
    result["peakMiB"] = max(own_peak_mib(), sampler.stop())
    print(RESULT_MARKER + json.dumps(result), flush=True)
    return 0


class _RssSampler(threading.Thread):
    """The kernel updates VmHWM lazily (memory returned without an unmap can leave it below a peak that was
    reached), so resident memory is also sampled; the peak is the larger of the two."""

    def __init__(self) -> None:
        super().__init__(name="bench-rss-sampler", daemon=True)
        self._stopped = threading.Event()
        self.peak = 0.0

    def run(self) -> None:
        while not self._stopped.wait(0.05):
            self.peak = max(self.peak, own_rss_mib())

    def stop(self) -> float:
        self._stopped.set()
        self.join()
        return max(self.peak, own_rss_mib())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
