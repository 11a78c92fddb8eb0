"""The key comes from VECP_KEY, goes out as the x-functions-key header and is never printed (the dev host
enforcing keys, as in tests/e2e/test_api_keys.py)."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from cli.api import ExitCode
from cli.output import Console
from devhost.host import FUNCTION_KEYS_SETTING, HOST_KEYS_SETTING
from devhost.testing import DevHost
from tests.cli.runner import vecp
from tests.e2e.workflow_env import OWNER, WorkflowEnv, workflow_env

HOST_KEY = "cli-host-key-4b1d"
START_KEY = "cli-start-function-key-77"


@pytest.fixture
def keyed_env(
    devhost_factory: Callable[..., DevHost], monkeypatch: pytest.MonkeyPatch, azurite: Any
) -> Iterator[WorkflowEnv]:
    def keyed_factory(**kwargs: Any) -> DevHost:
        return devhost_factory(enforce_keys=True, **kwargs)

    settings = {FUNCTION_KEYS_SETTING: f"start_community_request={START_KEY}", HOST_KEYS_SETTING: HOST_KEY}
    with workflow_env(keyed_factory, monkeypatch, azurite.connection_string, settings=settings) as env:
        yield env


def test_a_host_key_from_the_environment_is_sent_as_a_header_and_never_printed(
    keyed_env: WorkflowEnv,
) -> None:
    env = keyed_env
    without = vecp(env, "list")
    assert without.code == ExitCode.AUTH
    assert "HTTP 401 unauthorized (set VECP_KEY to a host key of the app)" in without.stderr

    keyed = {"VECP_KEY": HOST_KEY}
    created = vecp(
        env, "create", "--name", "Keyed Community", "--owner", OWNER["userPrincipalName"], "--wait",
        environ=keyed,
    )  # fmt: skip
    assert created.code == ExitCode.OK, created.output
    listed = vecp(env, "list", "-o", "json", environ=keyed)
    assert listed.code == ExitCode.OK, listed.output
    [row] = listed.json()["items"]
    status = vecp(env, "status", row["id"], environ=keyed)
    assert status.code == ExitCode.OK

    for run in (created, listed, status):
        assert HOST_KEY not in run.output
        assert "code=" not in run.output  # a header key is never copied into the status URLs
    # No flag takes a key: it would land in the shell's history.
    assert vecp(env, "list", "--key", HOST_KEY).code == ExitCode.USAGE


def test_a_key_of_the_start_function_only_starts_and_then_cannot_follow(keyed_env: WorkflowEnv) -> None:
    run = vecp(
        keyed_env, "create", "--name", "Half Keyed", "--owner", OWNER["userPrincipalName"], "--wait",
        environ={"VECP_KEY": START_KEY},
    )  # fmt: skip

    assert run.code == ExitCode.AUTH  # started (202), then the status URL refused the key (docs/api.md, Keys)
    assert run.stderr.startswith("req-")
    assert "HTTP 401 unauthorized" in run.stderr
    assert START_KEY not in run.output


def test_secrets_are_masked_in_everything_written() -> None:
    stdout, stderr = io.StringIO(), io.StringIO()
    console = Console(stdout, stderr, "table", secrets=["s3cr3t-value", "ab"])
    console.document({"statusUri": "https://app/api/x?code=s3cr3t-value", "note": "ab stays"})
    console.err("failed with s3cr3t-value")
    console.progress("s3cr3t-value")
    assert "s3cr3t-value" not in stdout.getvalue() + stderr.getvalue()
    assert "?code=***" in stdout.getvalue()
    assert "ab stays" in stdout.getvalue()  # too short to be a key: left alone rather than garbling the text
