"""Figures of one bench run: printed as they come, then a table of ratios, then ``docs/benchmarks.md``.

Every section returns a ``Section``: its detail lines (what is printed) and its headline ``Ratio`` rows. The
summary table and the Markdown report are rendered from those same objects, so the document always shows the
figures of the run that wrote it.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path


@dataclass(frozen=True)
class Target:
    """What a ratio should be: ``<= limit`` or ``== limit`` (to two decimals); ``None`` = informational."""

    limit: float | None = None
    exact: bool = False

    def met(self, value: float | None) -> bool | None:
        if self.limit is None or value is None:
            return None
        if self.exact:
            return round(value, 2) == round(self.limit, 2)
        return value <= self.limit + 1e-9

    def __str__(self) -> str:
        if self.limit is None:
            return "-"
        return f"{'=' if self.exact else '<='} {self.limit:.2f}"


AT_MOST_ONE = Target(1.0)
EXACTLY_ONE = Target(1.0, exact=True)
NO_TARGET = Target()


@dataclass(frozen=True)
class Ratio:
    name: str
    value: float | None  # None: not measured (see note)
    target: Target = NO_TARGET
    figure: str = ""  # the measured quantities behind the ratio, e.g. "412 ms / 318 ms"
    memory: str = ""  # peak memory next to the figure, e.g. "dev host 92 MiB, simulator 27 MiB"
    note: str = ""

    @property
    def verdict(self) -> str:
        met = self.target.met(self.value)
        if self.value is None:
            return "failed" if self.note.startswith("failed") else "skipped"
        return "-" if met is None else ("yes" if met else "NO")

    @property
    def shown(self) -> str:
        return "-" if self.value is None else f"{self.value:.2f}"


@dataclass
class Section:
    key: str
    title: str
    about: str  # how to read it (Markdown)
    lines: list[str] = field(default_factory=list)
    ratios: list[Ratio] = field(default_factory=list)
    quiet: bool = False  # True: build it without printing (tests, re-rendering)

    def __post_init__(self) -> None:
        if not self.quiet:
            print(f"\n== {self.title}", flush=True)

    def say(self, line: str = "") -> None:
        """A detail line: printed now, kept for the report."""
        if not self.quiet:
            print(line, flush=True)
        self.lines.append(line)

    def table(self, header: Sequence[str], rows: Sequence[Sequence[object]], widths: Sequence[int]) -> None:
        def cell(value: object, width: int, first: bool) -> str:
            text = f"{value:.2f}" if isinstance(value, float) else str(value)
            return text.ljust(width) if first else text.rjust(width)

        for row in (header, *rows):
            self.say(
                " ".join(
                    cell(value, width, i == 0)
                    for i, (value, width) in enumerate(zip(row, widths, strict=True))
                )
            )


def doc_body(doc: str | None) -> str:
    """A module docstring without its summary line: a section's "how to read it"."""
    _, _, body = (doc or "").strip().partition("\n\n")
    return body.strip()


@dataclass(frozen=True)
class Machine:
    date: str
    cpus: int
    cpu_model: str
    memory_gib: float
    python: str
    platform: str

    @classmethod
    def current(cls) -> Machine:
        return cls(
            date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            cpus=os.cpu_count() or 0,
            cpu_model=_proc_field("/proc/cpuinfo", "model name") or platform.processor() or "unknown",
            memory_gib=_mem_total_gib(),
            python=platform.python_version(),
            platform=platform.platform(),
        )

    def describe(self) -> str:
        return (
            f"{self.cpus} CPUs ({self.cpu_model}), {self.memory_gib:.1f} GiB RAM, "
            f"Python {self.python}, {self.platform}"
        )


def _proc_field(path: str, name: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == name:
                return value.strip()
    except OSError:
        return None
    return None


def _mem_total_gib() -> float:
    value = _proc_field("/proc/meminfo", "MemTotal")
    return int(value.split()[0]) / 1024 / 1024 if value else 0.0


HOW_TO_READ = """\
Every figure is a **ratio of two quantities measured side by side in one run**, so it carries over to another
machine where absolute times do not; the absolute figures behind each ratio are shown next to it. Targets are
the project's (`=` is compared at two decimals); `met` says whether this run met them.

Peak memory is the kernel's high-water mark of resident memory (`VmHWM`) of the process named, or for the dev
host its highest sampled resident memory when that is larger. The *dev host* process hosts the dev host and
the app (a fresh one per measurement); the *simulator* is the Graph simulator's own process.

The virtual-time sections run the app in the dev host on its manual clock, and the simulator's clock follows
it step by step, so the simulator's request log and the app's status documents share one time line and a
30-minute Graph operation takes a fraction of a second. Each section below says what it measures and how to
read its table. Nothing here is asserted by the tests; they only check that the bench runs and writes this
file."""

SUMMARY_HEADER = ("measurement", "ratio", "target", "met", "figures", "peak memory")


def summary_lines(sections: Sequence[Section]) -> list[str]:
    """The table of ratios as plain text (what the run prints at the end)."""
    rows = [
        (ratio.name, ratio.shown, str(ratio.target), ratio.verdict, ratio.figure or ratio.note, ratio.memory)
        for section in sections
        for ratio in section.ratios
    ]
    widths = [max(len(str(row[i])) for row in (SUMMARY_HEADER, *rows)) for i in range(len(SUMMARY_HEADER))]
    lines = []
    for row in (SUMMARY_HEADER, *rows):
        lines.append(
            "  ".join(str(value).ljust(width) for value, width in zip(row, widths, strict=True)).rstrip()
        )
    return lines


def render_markdown(
    sections: Sequence[Section], machine: Machine, *, elapsed_seconds: float, command: str
) -> str:
    out = [
        "# Benchmarks",
        "",
        f"Written by `{command}`{' (`make bench`)' if command == 'python -m bench' else ''} on "
        f"{machine.date}; do not edit by hand, run it again.",
        "",
        f"**Machine**: {machine.describe()}. The run took {elapsed_seconds / 60:.1f} minutes.",
        "",
        "## How to read this",
        "",
        HOW_TO_READ,
        "",
        "## Summary",
        "",
        "| Measurement | Ratio | Target | Met | Figures | Peak memory |",
        "|---|---:|---:|:---:|---|---|",
    ]
    for section in sections:
        for ratio in section.ratios:
            figures = ratio.figure or ratio.note
            out.append(
                f"| {ratio.name} | {ratio.shown} | {ratio.target} | {ratio.verdict} | {figures} | "
                f"{ratio.memory} |"
            )
    for section in sections:
        out += ["", f"## {section.title}", "", section.about.strip(), "", "```text", *section.lines, "```"]
    return "\n".join(out).rstrip() + "\n"


def write_report(
    path: Path, sections: Sequence[Section], machine: Machine, *, elapsed_seconds: float, command: str
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_markdown(sections, machine, elapsed_seconds=elapsed_seconds, command=command))
