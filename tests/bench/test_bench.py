"""``python -m bench`` runs and writes its report; nothing here asserts a timing or a ratio."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.__main__ import SECTIONS, parse_args
from bench.report import (
    AT_MOST_ONE,
    EXACTLY_ONE,
    Machine,
    Ratio,
    Section,
    Target,
    doc_body,
    render_markdown,
    summary_lines,
    write_report,
)

ROOT = Path(__file__).resolve().parents[2]


def _sections() -> list[Section]:
    calls = Section("graph-calls", "Graph calls", "How to read it.", quiet=True)
    calls.table(("D", "calls"), [("0:00", "12"), ("5:10", "42")], (6, 6))
    calls.ratios += [
        Ratio("Graph calls / minimum", 1.0, EXACTLY_ONE, "54 / 54", "dev host 83 MiB"),
        Ratio("Detection delay / interval", 1.2, AT_MOST_ONE, "worst 36 s", "dev host 83 MiB"),
    ]
    faults = Section("faults", "Under faults", "", quiet=True)
    faults.say("skipped: simulator has no fault-mix scenario")
    faults.ratios.append(Ratio("Faults", None, note="skipped: simulator has no fault-mix scenario"))
    return [calls, faults]


def test_targets_and_verdicts() -> None:
    assert EXACTLY_ONE.met(1.004) is True
    assert EXACTLY_ONE.met(1.08) is False
    assert Target(1.3).met(1.3) is True
    assert Target(1.3).met(1.31) is False
    assert Target().met(5.0) is None
    assert Ratio("x", 2.0, Target(1.5)).verdict == "NO"
    assert Ratio("x", None, note="skipped").verdict == "skipped"
    assert Ratio("x", None, note="failed: BenchError").verdict == "failed"
    assert str(Target(1.5)) == "<= 1.50"
    assert str(EXACTLY_ONE) == "= 1.00"


def test_summary_lists_every_ratio_in_aligned_columns() -> None:
    lines = summary_lines(_sections())
    assert lines[0].startswith("measurement")
    assert [line.split("  ")[0] for line in lines[1:]] == [
        "Graph calls / minimum",
        "Detection delay / interval",
        "Faults",
    ]
    ratio_column = lines[0].index("ratio")
    assert lines[2][ratio_column:].startswith("1.20")
    assert "skipped: simulator has no fault-mix scenario" in lines[3]


def test_report_has_machine_summary_and_each_section(tmp_path: Path) -> None:
    machine = Machine("2026-01-01 00:00 UTC", 2, "Test CPU", 4.0, "3.11.7", "Linux")
    path = tmp_path / "docs" / "benchmarks.md"
    write_report(path, _sections(), machine, elapsed_seconds=90, command="python -m bench")
    text = path.read_text()
    assert text == render_markdown(_sections(), machine, elapsed_seconds=90, command="python -m bench")
    assert "on 2026-01-01 00:00 UTC" in text
    assert "2 CPUs (Test CPU), 4.0 GiB RAM, Python 3.11.7" in text
    assert "| Graph calls / minimum | 1.00 | = 1.00 | yes | 54 / 54 | dev host 83 MiB |" in text
    assert "| Detection delay / interval | 1.20 | <= 1.00 | NO | worst 36 s | dev host 83 MiB |" in text
    assert "| Faults | - | - | skipped | skipped: simulator has no fault-mix scenario |  |" in text
    assert "## Graph calls\n\nHow to read it.\n\n```text\nD       calls\n0:00       12\n" in text


def test_doc_body_drops_the_summary_line() -> None:
    assert doc_body("Summary.\n\nFirst paragraph.\n\nSecond.\n") == "First paragraph.\n\nSecond."
    assert doc_body(None) == ""


def test_sections_option() -> None:
    assert parse_args([]).only == SECTIONS
    assert parse_args(["--only", "faults, replay"]).only == ("replay", "faults")  # run in the usual order
    with pytest.raises(SystemExit):
        parse_args(["--only", "replay,nonsense"])


@pytest.mark.azurite
def test_quick_run_of_the_virtual_time_sections_writes_its_report(tmp_path: Path, azurite: Any) -> None:
    report = tmp_path / "benchmarks.md"
    command = [sys.executable, "-m", "bench", "--quick", "--only", "replay,faults,devhost-speed"]
    command += ["--report", str(report), "--storage", azurite.connection_string]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=280, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "== Ratios (one run, side by side)" in run.stdout
    text = report.read_text()
    for heading in ("## Replay cost", "## Under faults", "## Dev host speed"):
        assert heading in text
    assert "| Replay: episodes per check, checks " in text
    assert "peak memory: dev host" in text


def test_at_least_target_of_the_bulk_section() -> None:
    from bench.bulk import RATE_TARGET

    assert RATE_TARGET.met(0.93) is True
    assert RATE_TARGET.met(0.85) is False
    assert RATE_TARGET.met(None) is None
    assert str(RATE_TARGET) == ">= 0.90"
    assert Ratio("x", 0.95, RATE_TARGET).verdict == "yes"


@pytest.mark.azurite
def test_quick_run_of_the_bulk_section_writes_its_report(tmp_path: Path, azurite: Any) -> None:
    report = tmp_path / "benchmarks.md"
    command = [sys.executable, "-m", "bench", "--quick", "--only", "bulk"]
    command += ["--report", str(report), "--storage", azurite.connection_string]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=280, check=False)
    assert run.returncode == 0, run.stderr[-3000:] + run.stdout[-3000:]
    text = report.read_text()
    assert "## Bulk provisioning at Viva Engage's limit (virtual time)" in text
    for name in ("singles, budget on (12)", "singles, budget off (12)", "batch, budget on (12)"):
        assert f"| Bulk {name}: Viva Engage requests per 30 s / limit |" in text
        assert f"| Bulk {name}: 429s per 100 communities |" in text
        assert f"| Bulk {name}: makespan / ideal |" in text
    assert "| Bulk batch of 40 / of 12: largest execution history of the batch orchestration" in text
    assert "GRAPH_BUDGET_REQUESTS=1000000" in text
    assert "dev host" in text


def test_seeded_requests_read_back_as_the_app_reads_them(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from bench.listing import MARKER_ORCHESTRATOR, ORCHESTRATOR, seed_requests
    from devhost.durable.store import Store
    from provisioning.idempotency import is_request_id
    from provisioning.status import document_from_durable, input_of
    from triggers.requests_api import retry_id_for

    now = datetime(2026, 1, 2, tzinfo=UTC)
    hub = seed_requests(tmp_path / "state.db", 50, now=now)
    store = Store(tmp_path / "state.db")
    with store.transaction() as tx:
        rows = tx.query_instances()
    store.close()
    requests = [row for row in rows if row.name == ORCHESTRATOR]
    markers = [row for row in rows if row.name == MARKER_ORCHESTRATOR]
    assert (len(requests), len(markers)) == (50, hub.markers)
    assert all(is_request_id(row.instance_id) for row in requests)
    assert all(row.instance_id.split(":create-")[0] in {r.instance_id for r in requests} for row in markers)
    assert all(hub.start <= row.created <= now for row in rows)
    statuses = set()
    for row in requests:
        durable = {
            "name": row.name,
            "instanceId": row.instance_id,
            "runtimeStatus": row.runtime_status,
            "input": row.input,
            "customStatus": row.custom_status,
            "output": row.output,
            "createdTime": row.created.isoformat(),
        }
        document = document_from_durable(row.instance_id, durable)
        assert document is not None
        assert document.id == row.instance_id
        assert document.request is not None
        assert document.request.display_name
        assert input_of(durable) is not None
        original = document.retry_of
        assert original is None or retry_id_for(original) == row.instance_id
        statuses.add(document.status.value)
    assert {"Running", "Succeeded", "Failed"} <= statuses
    assert hub.succeeded_id in {row.instance_id for row in requests}


@pytest.mark.azurite
def test_quick_run_of_the_listing_section_writes_its_report(tmp_path: Path, azurite: Any) -> None:
    report = tmp_path / "benchmarks.md"
    command = [sys.executable, "-m", "bench", "--quick", "--only", "listing"]
    command += ["--report", str(report), "--storage", azurite.connection_string]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=280, check=False)
    assert run.returncode == 0, run.stderr[-3000:] + run.stdout[-3000:]
    text = report.read_text()
    assert "## Listing requests with a full task hub" in text
    assert "| Requests list, first page (top 50) / one status GET, 200 requests |" in text
    assert "| Requests list, first page: 200 / 50 requests in the task hub |" in text
    assert "status GET (one request)" in text
    assert "peak memory: dev host" in text
