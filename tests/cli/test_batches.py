"""`vecp batch` from a CSV file with --wait's progress bar; the batch forms of status, list and cancel."""

from __future__ import annotations

import re
from pathlib import Path

from cli.api import ExitCode
from tests.cli.runner import HostClock, fields, vecp
from tests.e2e.workflow_env import OWNER, WorkflowEnv

OWNER_UPN = OWNER["userPrincipalName"]


def csv_file(tmp_path: Path, *names: str) -> Path:
    path = tmp_path / "batch.csv"
    rows = [f"{name},{OWNER_UPN},private" for name in names]
    path.write_text("displayName,owners,privacy\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_a_csv_batch_waits_with_a_progress_bar_and_exits_1_when_an_item_fails(
    env: WorkflowEnv, tmp_path: Path
) -> None:
    env.sim.add_community("Taken Name", owner_ids=[OWNER["id"]])
    path = csv_file(tmp_path, "Batch One", "Batch Two", "Taken Name")
    clock = HostClock(env)

    run = vecp(env, "batch", str(path), "--wait", "-o", "json", clock=clock)

    assert run.code == ExitCode.REQUEST_FAILED, run.output
    document = run.json()
    assert document["status"] == "PartiallySucceeded"
    assert document["total"] == 3
    assert [(item["index"], item["status"]) for item in document["items"]] == [
        (0, "Succeeded"),
        (1, "Succeeded"),
        (2, "Failed"),
    ]
    assert document["items"][2]["errorCode"] == "DuplicateName"
    assert "ended PartiallySucceeded (Succeeded 2, Failed 1)" in run.stderr
    # A bar over the items, one line per change (stderr is not a terminal), from nothing settled to all three.
    assert run.stderr.startswith(f"{document['id']}: Running\n")  # the POST's answer has no counts yet
    bars = [line for line in run.stderr.splitlines() if " done" in line]
    done = [int(count) for count in re.findall(r"\] (\d)/3 done", "\n".join(bars))]
    assert len(done) == len(bars)
    assert done == sorted(done)
    assert done[0] < 3
    assert done[-1] == 3
    assert bars[-1].startswith(f"{document['id']}: [{'#' * 24}] 3/3 done (")
    assert len(set(bars)) == len(bars)
    assert all(seconds >= 1 for seconds in clock.slept)


def test_a_batch_that_succeeds_exits_0_and_shows_its_items_as_a_table(
    env: WorkflowEnv, tmp_path: Path
) -> None:
    run = vecp(env, "batch", str(csv_file(tmp_path, "Table One", "Table Two")), "--wait")

    assert run.code == ExitCode.OK, run.output
    summary, items = run.stdout.split("\n\n")
    document = fields(summary)
    assert (document["status"], document["counts.Succeeded"], document["total"]) == ("Succeeded", "2", "2")
    header, *rows = items.splitlines()
    assert header.split() == ["INDEX", "ID", "STATUS", "NAME", "RESULT"]
    assert [row.split()[:1] + row.split()[2:4] for row in rows] == [
        ["0", "Succeeded", "Table"],
        ["1", "Succeeded", "Table"],
    ]
    batch_id = document["id"]

    status = vecp(env, "status", batch_id, "-o", "json")
    assert status.code == ExitCode.OK
    assert status.json()["counts"]["Succeeded"] == 2
    item_ids = [item["requestId"] for item in status.json()["items"]]
    listed = vecp(env, "list", "--batch-id", batch_id, "-o", "json")
    assert listed.code == ExitCode.OK, listed.output
    assert sorted(row["id"] for row in listed.json()["items"]) == sorted(item_ids)


def test_an_invalid_csv_exits_2_naming_rows_and_columns_and_validate_only_starts_nothing(
    env: WorkflowEnv, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(f"displayName,owners\nGood,{OWNER_UPN}\nBad,bob\n", encoding="utf-8")
    run = vecp(env, "batch", str(bad), "--validate-only")
    assert run.code == ExitCode.USAGE
    assert "HTTP 400 ValidationFailed" in run.stderr
    assert "  row 2 (line 3), column owners, entry 1: must be an Entra object id" in run.stderr

    good = vecp(env, "batch", str(csv_file(tmp_path, "Checked")), "--validate-only", "-o", "json")
    assert good.code == ExitCode.OK, good.output
    assert good.json() == {"valid": True, "items": 1, "format": "csv"}
    assert env.request_instances() == []

    unknown_format = tmp_path / "batch.txt"
    unknown_format.write_text("displayName\nx\n")
    assert vecp(env, "batch", str(unknown_format)).code == ExitCode.USAGE


def test_cancel_a_running_batch(env: WorkflowEnv, tmp_path: Path) -> None:
    env.sim.set_scenario("operation-never-ends")
    started = vecp(env, "batch", str(csv_file(tmp_path, "Stopped One", "Stopped Two")), "-o", "json")
    assert started.code == ExitCode.OK, started.output
    batch_id = started.json()["id"]
    env.host.run_until_idle()

    canceled = vecp(env, "cancel", batch_id, "-o", "json")
    assert canceled.code == ExitCode.OK, canceled.output
    assert canceled.json()["cancelRequested"] is True

    settled = vecp(env, "status", batch_id, "--wait", "-o", "json")
    assert settled.code == ExitCode.REQUEST_FAILED, settled.output
    assert settled.json()["status"] == "Canceled"
    again = vecp(env, "cancel", batch_id)
    assert again.code == ExitCode.CONFLICT
    assert "batchStatus: Canceled" in again.stderr
