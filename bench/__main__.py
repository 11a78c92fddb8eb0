"""``python -m bench`` (``make bench``): side-by-side measurements, printed as ratios from one run.

Sections (``--only`` takes their names, comma-separated):

* ``cold-start``: importing + indexing the app, and answering its first POST, against a minimal Durable app on
  the same SDKs (fresh interpreters); what each dependency costs; ``-X importtime`` of what the app adds.
* ``graph-client``: the Graph client's pooled session against a new session per call.
* ``load``: provisioning through ``python -m devhost`` on a scaled clock, one request at a time against 16.
* ``graph-calls``: Graph calls per community against the minimum over operation durations of 0-30 min, with
  and without Viva Engage's rate limit; and how long after Graph finished a request settles.
* ``replay``: an orchestrator episode after 1,000 status checks against after 10.
* ``faults``: a 30 % Graph fault mix against none: calls per succeeded community, share that succeeds.
* ``devhost-speed``: orchestrations completed per second on the manual clock.
* ``bulk``: 200 communities at Viva Engage's rate limit: requests at once with the app-wide budget on and
  off, and one batch; Graph's limit used, 429s, makespan against the ideal, a request sent alone mid-run.
* ``listing``: a page of ``GET /api/communities/requests`` against one status GET, with 1,000 and 10,000
  requests seeded into the dev host's store; where the time goes (dev host API, app); how it scales.

Everything runs on loopback. ``graph-calls`` to ``bulk`` run the app in a dev host on the manual clock, one
fresh interpreter per measurement (its peak memory is shown as the dev host's), against a Graph simulator
process whose clock follows it; ``listing`` runs it the same way on a seeded store, without Graph. A full
run (no ``--quick``, no ``--only``) writes ``docs/benchmarks.md`` from the same figures it prints, unless a
section failed (the others still run; the exit status is then 1). Timings depend on the machine; read the
ratios. Nothing here is asserted by the tests.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from bench import bulk, cold_start, devhost_speed, faults, graph_calls, listing, load, replay, session_pool
from bench.processes import (
    FOREIGN_CREDENTIAL_VARIABLES,
    ROOT,
    STORAGE_VARIABLE,
    Simulator,
    graph_simulator_process,
)
from bench.report import Machine, Ratio, Section, summary_lines, write_report

REPORT = ROOT / "docs" / "benchmarks.md"
SECTIONS = (
    "cold-start",
    "graph-client",
    "load",
    "graph-calls",
    "replay",
    "faults",
    "devhost-speed",
    "bulk",
    "listing",
)
# Sections that use the real-clock Graph simulator of the run (the others start their own).
NEEDS_SIMULATOR = {"cold-start", "graph-client", "load"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="sections: " + ", ".join(SECTIONS),
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer repetitions and smaller runs (a smoke run)"
    )
    parser.add_argument(
        "--only", type=_sections, default=SECTIONS, metavar="NAME[,NAME...]", help="run these"
    )
    parser.add_argument(
        "--report",
        type=Path,
        default=None,
        metavar="PATH",
        help=f"write the Markdown report here (default: {REPORT.relative_to(ROOT)} on a full run, else none)",
    )
    parser.add_argument(
        "--storage",
        default=os.environ.get(STORAGE_VARIABLE),
        metavar="CONNECTION_STRING",
        help=f"Azurite for the dev host's queue triggers (default ${STORAGE_VARIABLE}, else one is started)",
    )
    return parser.parse_args(argv)


def _sections(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in SECTIONS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown section(s) {', '.join(unknown)}; known: {', '.join(SECTIONS)}"
        )
    return tuple(name for name in SECTIONS if name in names)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for name in FOREIGN_CREDENTIAL_VARIABLES:  # the app's credential must find only the simulator's identity
        os.environ.pop(name, None)
    started = time.perf_counter()
    machine = Machine.current()
    print(f"bench on {machine.describe()}", flush=True)
    full_run = not args.quick and args.only == SECTIONS
    report = args.report or (REPORT if full_run else None)
    sections: list[Section] = []
    with _storage(args.storage), _simulator(NEEDS_SIMULATOR & set(args.only)) as simulator:
        runners: dict[str, Callable[[], Section]] = {
            "cold-start": lambda: cold_start.run(_need(simulator), 3 if args.quick else 9),
            "graph-client": lambda: session_pool.run(_need(simulator), 60 if args.quick else 300),
            "load": lambda: load.run(_need(simulator), 8 if args.quick else 24),
            "graph-calls": lambda: graph_calls.run(args.quick),
            "replay": lambda: replay.run(args.quick),
            "faults": lambda: faults.run(args.quick),
            "devhost-speed": lambda: devhost_speed.run(args.quick),
            "bulk": lambda: bulk.run(args.quick),
            "listing": lambda: listing.run(args.quick),
        }
        failed = []
        for name in args.only:
            try:
                sections.append(runners[name]())
            except Exception as exc:  # one broken section must not cost the figures of the others
                failed.append(name)
                section = Section(name, f"{name}: failed", "")
                section.say(f"{type(exc).__name__}: {exc}")
                section.ratios.append(Ratio(name, None, note=f"failed: {type(exc).__name__}"))
                sections.append(section)
    elapsed = time.perf_counter() - started
    print("\n== Ratios (one run, side by side)")
    for line in summary_lines(sections):
        print(line)
    print(f"\nbench took {elapsed / 60:.1f} min")
    if failed:
        print(f"failed: {', '.join(failed)}" + ("; the report is not written" if report else ""))
        return 1
    if report is not None:
        command = "python -m bench" + (" " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()
        write_report(report, sections, machine, elapsed_seconds=elapsed, command=command.strip())
        print(f"wrote {report}")
    return 0


def _need(simulator: Simulator | None) -> Simulator:
    if simulator is None:
        raise RuntimeError("this section needs the run's Graph simulator")
    return simulator


@contextlib.contextmanager
def _storage(connection_string: str | None) -> Iterator[None]:
    """The dev hosts' queue storage: the Azurite given, or a private one for the run (in memory)."""
    if connection_string:
        os.environ[STORAGE_VARIABLE] = connection_string
        yield
        return
    from devhost.testing import Azurite

    with Azurite() as azurite:
        os.environ[STORAGE_VARIABLE] = azurite.connection_string
        yield


@contextlib.contextmanager
def _simulator(needed: set[str]) -> Iterator[Simulator | None]:
    if not needed:
        yield None
        return
    with graph_simulator_process() as simulator:
        yield simulator


if __name__ == "__main__":
    sys.exit(main())
