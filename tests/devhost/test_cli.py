"""`python -m devhost` as a process: start-up table, invocation log, settings precedence, indexing errors."""

from __future__ import annotations

import json
from pathlib import Path

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


def test_indexing_error_is_printed_and_stops_the_start(tmp_path: Path) -> None:
    host = DevHostProcess(
        ["--app", "tests.devhost.apps.broken_app:app", "--port", str(free_port())], cwd=tmp_path
    )
    assert host.wait_exit() == 1
    assert "could not be started" in host.output
    assert "wrong_parameter" in host.output
    assert "'msg'" in host.output


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
