"""`python -m devhost` as a process: start-up table, invocation log, settings precedence, indexing errors."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import requests

from tests.devhost.cli import DevHostProcess, free_port

HTTP_APP = "tests.devhost.apps.http_app:app"


def test_serves_app_with_local_settings_where_the_environment_wins(tmp_path: Path) -> None:
    (tmp_path / "local.settings.json").write_text(
        json.dumps({"IsEncrypted": False, "Values": {"FROM_FILE": "file", "IN_BOTH": "file"}})
    )
    port = free_port()
    host = DevHostProcess(
        ["--port", str(port), "--app", HTTP_APP, "--state", str(tmp_path / "state.db")],
        cwd=tmp_path,
        env={"IN_BOTH": "environment"},
    )
    try:
        host.wait_started()
        base = f"http://127.0.0.1:{port}/api"
        assert requests.get(f"{base}/setting/FROM_FILE", timeout=5).text == "file"
        assert requests.get(f"{base}/setting/IN_BOTH", timeout=5).text == "environment"
        assert requests.get(f"{base}/items/3?secret=hidden", timeout=5).status_code == 200
    finally:
        code = host.interrupt()
    assert code == 0
    output = host.output
    assert f"get_item: [GET] http://127.0.0.1:{port}/api/items/{{id:int}}" in output
    assert "echo: [POST,PUT]" in output
    assert "Executed 'Functions.setting' (Succeeded" in output
    assert "Executed 'Functions.get_item' (Succeeded" in output
    assert "secret=hidden" not in output  # query strings (keys, tokens) are never logged


def _wait_finished(status_url: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status = dict(requests.get(status_url, timeout=5).json())
        if status["runtimeStatus"] in ("Completed", "Failed"):
            return status
        assert time.monotonic() < deadline, f"gave up waiting; last status {status}"
        time.sleep(0.05)


def test_logs_orchestrator_and_activity_invocations_without_inputs_or_outputs(tmp_path: Path) -> None:
    port = free_port()
    host = DevHostProcess(
        ["--port", str(port), "--app", "tests.devhost.apps.logged:app", "--state", str(tmp_path / "s.db")],
        cwd=tmp_path,
    )
    callback = "https://flow.example/callback?sig=top-secret-signature"
    try:
        host.wait_started()
        base = f"http://127.0.0.1:{port}/api/start"
        statuses = [
            _wait_finished(
                requests.post(
                    f"{base}/{name}", json={"callbackUrl": callback, "fail": fail}, timeout=10
                ).json()["statusQueryGetUri"]
            )
            for name, fail in (("works", False), ("fails", True))
        ]
    finally:
        host.interrupt()
    assert [s["runtimeStatus"] for s in statuses] == ["Completed", "Failed"]
    output = host.output
    uuid = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    for name in ("relay", "deliver"):
        started = re.findall(rf"Executing 'Functions\.{name}' \(Reason='\(null\)', Id=({uuid})\)", output)
        finished = re.findall(
            rf"Executed 'Functions\.{name}' \((Succeeded|Failed), Id=({uuid}), Duration=\d+ms\)", output
        )
        # Every invocation logs both lines with one id; the orchestrator runs once per episode.
        assert sorted(started) == sorted(invocation for _, invocation in finished)
        assert {outcome for outcome, _ in finished} == {"Succeeded", "Failed"}
    assert len(re.findall("Executing 'Functions.deliver'", output)) == 2
    assert re.search(
        rf"Executing 'Functions\.start' \(Reason='This function was programmatically called via the host "
        rf"APIs\.', Id={uuid}\)",
        output,
    )
    assert "top-secret-signature" not in output  # neither inputs nor outputs are logged
    assert "flow.example" not in output


def test_indexing_error_is_printed_and_stops_the_start(tmp_path: Path) -> None:
    host = DevHostProcess(
        ["--app", "tests.devhost.apps.broken_app:app", "--port", str(free_port())], cwd=tmp_path
    )
    assert host.wait_exit() == 1
    assert "could not be started" in host.output
    assert (
        "Worker failed to index functions: FunctionLoadError: cannot load the wrong_parameter function"
        in (host.output)
    )
    assert "{'message'}" in host.output


def test_an_app_the_worker_refuses_stops_the_start_with_the_workers_message(tmp_path: Path) -> None:
    host = DevHostProcess(
        ["--app", "tests.devhost.apps.generic_annotation_app:app", "--port", str(free_port())], cwd=tmp_path
    )
    assert host.wait_exit() == 1
    assert "Worker failed to index functions" in host.output
    assert (
        "FunctionLoadError: cannot load the resolve function: binding references has invalid non-type "
        "annotation list[str]"
    ) in host.output


def test_missing_module_is_an_indexing_error(tmp_path: Path) -> None:
    host = DevHostProcess(["--app", "no_such_module:app", "--port", str(free_port())], cwd=tmp_path)
    assert host.wait_exit() == 1
    assert "cannot import module 'no_such_module'" in host.output


def test_invalid_local_settings_stops_the_start(tmp_path: Path) -> None:
    (tmp_path / "local.settings.json").write_text("{not json")
    host = DevHostProcess(["--app", HTTP_APP, "--port", str(free_port())], cwd=tmp_path)
    assert host.wait_exit() == 1
    assert "local.settings.json: not valid JSON" in host.output


def test_unreachable_queue_storage_stops_the_start_quickly(tmp_path: Path) -> None:
    closed_port = free_port()
    storage = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
        f"QueueEndpoint=http://127.0.0.1:{closed_port}/devstoreaccount1;"
    )
    queues = {"JOBS_QUEUE": "jobs", "RESULTS_QUEUE": "results", "START_QUEUE": "start"}
    host = DevHostProcess(
        ["--app", "tests.devhost.apps.queue_app:app", "--port", str(free_port())],
        cwd=tmp_path,
        env={"AzureWebJobsStorage": storage, **queues},
    )
    assert host.wait_exit(timeout=30) == 1
    assert "cannot reach queue storage" in host.output
    assert "is Azurite running?" in host.output
    assert "a2V5" not in host.output  # the account key is not printed
