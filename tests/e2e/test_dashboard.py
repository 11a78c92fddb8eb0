"""The operators' dashboard (GET /api/dashboard) in a real headless Chromium against the app in the dev host.

Playwright drives Debian's /usr/bin/chromium (its own browser download cannot work offline). Virtual time
moves only when the test says so (``env.host.advance``); the page refreshes itself every second
(``?refresh=1``) while something runs, so the test advances time and then waits for the page to show it.

The test run writes the screenshots of docs/dashboard.md (docs/images/dashboard-*.png).
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, Page, expect, sync_playwright

import function_app
from devhost.host import HOST_KEYS_SETTING
from devhost.indexing import index_app
from devhost.testing import DevHost
from provisioning import batch_workflow as batches
from provisioning import openapi
from tests.e2e.workflow_env import OWNER, WorkflowEnv, request_body, workflow_env
from triggers.requests_api import retry_id_for

# Debian's chromium here; GitHub's Ubuntu runners set CHROMIUM_PATH to their preinstalled Chrome.
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
HOST_KEY = "dashboard-host-key-7f3a"
HOSTILE_NAME = '<img src=x id="injected"> Gamma & <b>Sons</b>'
WAIT_MS = 15_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (.ci/run does)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, locale="en-GB")
    opened = context.new_page()
    opened.set_default_timeout(WAIT_MS)
    yield opened
    context.close()


def rows(page: Page) -> Any:
    return page.locator("#requests tbody tr")


def row(page: Page, request_id: str) -> Any:
    return page.locator(f'#requests tbody tr[data-id="{request_id}"]')


def batch_row(page: Page, batch_id: str) -> Any:
    return page.locator(f'#batches tbody tr[data-id="{batch_id}"]')


def api_status(env: WorkflowEnv, request_id: str) -> dict[str, Any]:
    answer = requests.get(f"{env.api}/communities/requests/{request_id}", timeout=30)
    document: dict[str, Any] = answer.json()
    return document


def settled(document: dict[str, Any]) -> int:
    return sum(document["counts"].get(status, 0) for status in ("Succeeded", "Failed", "Canceled"))


def wait_until(check: Callable[[], bool], what: str, seconds: float = WAIT_MS / 1000) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def api_calls(page: Page) -> list[Any]:
    """Every request the page sends from now on (recorded as Playwright sees them)."""
    seen: list[Any] = []

    def record(request: Any) -> None:  # Playwright cannot wrap a built-in method as a handler
        seen.append(request)

    page.on("request", record)
    return seen


def test_operator_lists_filters_follows_a_batch_retries_and_cancels(env: WorkflowEnv, page: Page) -> None:
    # A request Graph fails after a throttled create and two status checks: its timeline has all three kinds.
    env.sim.set_scenario("throttle", retry_after=2, route="create", times=1)
    env.sim.set_scenario("operation-failed", polls=2, times=1, status_detail="Group provisioning failed.")
    failed, _ = env.provision(request_body("Beta Team"))
    assert failed.status_code == 422, failed.text
    beta = failed.json()
    env.sim.clear_scenarios()
    succeeded, _ = env.provision(request_body("Alpha Team"))
    assert succeeded.status_code == 200, succeeded.text
    # A request whose Graph operation never ends (to cancel), named with markup the page must show as text.
    env.sim.set_scenario("operation-never-ends", times=1)
    stuck = env.post(request_body(HOSTILE_NAME)).json()["id"]
    env.host.advance(5)
    items = [{"displayName": f"Delta {n}", "owners": [OWNER["userPrincipalName"]]} for n in range(6)]
    started = requests.post(f"{env.api}/communities/batches", json={"items": items}, timeout=30)
    assert started.status_code == 202, started.text
    batch_id = started.json()["id"]
    env.host.advance(1)

    calls = api_calls(page)
    page.goto(f"{env.api}/dashboard?refresh=1")

    # The list fills: three requests and the batch's six items; the batch has its bar.
    expect(rows(page)).to_have_count(9)
    expect(batch_row(page, batch_id).locator(".chip")).to_have_text("Running")
    expect(row(page, beta["id"]).locator(".chip")).to_have_text("Failed")
    expect(row(page, stuck).locator("button[data-action=details]")).to_have_text(HOSTILE_NAME)
    assert page.locator("#injected").count() == 0  # the name is text, never markup
    assert page.locator("#requests tbody b").count() == 0
    assert all(call.url.startswith(env.host.base_url) for call in calls), "the page loads nothing else"
    page.screenshot(path=str(IMAGES / "dashboard-list.png"), full_page=True)

    # Filters: part of the name, a status, a batch (from the batch's row), then all again.
    page.fill("#filter-name", "alPHa")
    page.click("#filters button[type=submit]")
    expect(rows(page)).to_have_count(1)
    expect(rows(page).first).to_have_attribute("data-id", succeeded.json()["id"])
    page.fill("#filter-name", "")
    page.select_option("#filter-status", "Failed")
    expect(rows(page)).to_have_count(1)
    expect(rows(page).first).to_have_attribute("data-id", beta["id"])
    page.click("#clear-filters")
    expect(rows(page)).to_have_count(9)
    batch_row(page, batch_id).locator("button[data-action=show-batch]").click()
    expect(page.locator("#filter-batch")).to_have_value(batch_id)
    expect(rows(page)).to_have_count(6)
    item_ids = {batches.item_request_id(batch_id, index) for index in range(6)}
    assert {rows(page).nth(n).get_attribute("data-id") for n in range(6)} == item_ids
    page.click("#clear-filters")
    expect(rows(page)).to_have_count(9)

    # The detail view: phases, each status check with Graph's status, the wait Graph asked for, the error
    # with Graph's request-id, as the status document has them.
    row(page, beta["id"]).locator("button[data-action=details]").click()
    detail = page.locator("#detail")
    expect(detail).to_have_attribute("data-status", "Failed")
    timeline = beta["timeline"]
    expect(page.locator("#timeline li")).to_have_count(len(timeline))
    assert [entry["event"] for entry in timeline].count("check") == 2
    expect(page.locator("#timeline li[data-event=check]").last).to_contain_text("Graph status: failed")
    expect(page.locator("#timeline li[data-event=retry]")).to_contain_text("HTTP 429")
    graph_request_id = beta["error"]["graphRequestId"]
    assert graph_request_id
    expect(page.locator("#timeline li[data-event=error]")).to_contain_text(graph_request_id)
    expect(detail.locator(".graph-request-id")).to_have_text(graph_request_id)
    expect(page.locator("#timeline li[data-event=phase]").first).to_contain_text("resolving-users")
    page.screenshot(path=str(IMAGES / "dashboard-detail.png"), full_page=True)

    # Retry starts a new request that names the old one, and the page shows it.
    detail.locator("button[data-action=retry]").click()
    retry_id = retry_id_for(beta["id"])
    expect(detail).to_have_attribute("data-id", retry_id)
    expect(row(page, retry_id)).to_have_attribute("data-retry-of", beta["id"])
    expect(row(page, beta["id"]).locator("button[data-action=open-retry]")).to_be_visible()
    assert api_status(env, retry_id)["retryOf"] == beta["id"]

    # Cancel ends a running request (after the confirmation).
    page.once("dialog", lambda dialog: dialog.accept())
    row(page, stuck).locator("button[data-action=cancel]").click()
    expect(row(page, stuck).locator(".chip")).to_have_text("Canceled")
    assert api_status(env, stuck)["status"] == "Canceled"

    # A running batch's bar moves as its items settle (the page refreshes by itself), with an ETA.
    bar = batch_row(page, batch_id).locator("progress")
    expect(bar).to_have_attribute("value", "0")
    expect(batch_row(page, batch_id).locator(".eta")).to_contain_text("left")
    progress = requests.get(f"{env.api}/communities/batches/{batch_id}", timeout=30).json()
    for _ in range(40):
        if 0 < settled(progress) < progress["total"]:
            break
        env.host.advance(5)
        progress = requests.get(f"{env.api}/communities/batches/{batch_id}", timeout=30).json()
    assert 0 < settled(progress) < progress["total"], progress
    expect(bar).to_have_attribute("value", str(settled(progress)))
    expect(batch_row(page, batch_id).locator(".eta")).to_contain_text("current pace")
    env.host.run_until_status(batch_id)
    expect(bar).to_have_attribute("value", "6")
    expect(batch_row(page, batch_id).locator(".chip")).to_have_text("Succeeded")

    # Once nothing runs any more, the page stops asking.
    env.host.run_until_status(retry_id)
    expect(page.locator("#refresh-state")).to_have_attribute("data-auto-refresh", "off")
    expect(detail).to_have_attribute("data-status", "Succeeded")
    before = len(calls)
    time.sleep(2.5)
    assert len(calls) == before, [call.url for call in calls[before:]]


def test_a_finished_batch_with_failures_is_retried_from_its_row(env: WorkflowEnv, page: Page) -> None:
    env.sim.set_scenario("http-error", status=403, code="accessDenied", route="create", times=1)
    items = [{"displayName": f"Epsilon {n}", "owners": [OWNER["userPrincipalName"]]} for n in range(3)]
    started = requests.post(f"{env.api}/communities/batches", json={"items": items}, timeout=30)
    assert started.status_code == 202, started.text
    batch_id = started.json()["id"]
    env.host.run_until_status(batch_id)

    page.goto(f"{env.api}/dashboard?refresh=1")
    expect(batch_row(page, batch_id).locator(".chip")).to_have_text("PartiallySucceeded")
    batch_row(page, batch_id).locator("button[data-action=retry-batch]").click()

    retry_id = batches.retry_batch_id_for(batch_id)
    expect(batch_row(page, retry_id)).to_contain_text("retry of")
    expect(batch_row(page, batch_id).locator("button[data-action=retry-batch]")).to_have_count(0)
    env.host.run_until_status(retry_id)
    expect(batch_row(page, retry_id).locator(".chip")).to_have_text("Succeeded")
    assert requests.get(f"{env.api}/communities/batches/{retry_id}", timeout=30).json()["total"] == 1


@pytest.fixture
def keyed_env(
    devhost_factory: Callable[..., DevHost], monkeypatch: pytest.MonkeyPatch, azurite: Any
) -> Iterator[WorkflowEnv]:
    def keyed_factory(**kwargs: Any) -> DevHost:
        return devhost_factory(enforce_keys=True, **kwargs)

    settings = {HOST_KEYS_SETTING: HOST_KEY}
    with workflow_env(keyed_factory, monkeypatch, azurite.connection_string, settings=settings) as env:
        yield env


def shown_urls(page: Page) -> list[str]:
    """The location bar and every URL in the page's markup (links, sources, form targets)."""
    found: list[str] = page.evaluate(
        """() => [location.href, ...Array.from(document.querySelectorAll('[href],[src],[action]'))
            .flatMap((node) => ['href', 'src', 'action'].map((name) => node.getAttribute(name) || ''))]"""
    )
    return found


def test_the_key_is_asked_once_kept_in_the_tab_and_sent_only_as_a_header(
    keyed_env: WorkflowEnv, page: Page
) -> None:
    env = keyed_env
    key_header = {"x-functions-key": HOST_KEY}
    started = requests.post(
        f"{env.api}/communities", json=request_body("Keyed Community"), headers=key_header, timeout=30
    )
    assert started.status_code == 202, started.text
    # The page holds no data: served without a key, with a policy that lets it load nothing else.
    served = requests.get(f"{env.api}/dashboard", timeout=30)
    assert served.status_code == 200
    assert served.headers["Content-Type"].startswith("text/html")
    policy = served.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert "connect-src 'self'" in policy
    assert requests.get(f"{env.api}/communities/requests", timeout=30).status_code == 401

    calls = api_calls(page)
    page.goto(f"{env.api}/dashboard?refresh=1")
    expect(page.locator("#key-panel")).to_be_visible()
    expect(page.locator("#key-message")).to_contain_text("401")
    asked = [call for call in calls if "/api/communities/" in call.url]
    assert asked
    assert not [call for call in asked if "x-functions-key" in call.headers]
    before_key = len(calls)
    page.fill("#key-input", HOST_KEY)
    page.click("#key-form button[type=submit]")
    expect(row(page, started.json()["id"])).to_be_visible()
    expect(page.locator("#key-panel")).to_be_hidden()

    keyed = [call for call in calls[before_key:] if "/api/communities/" in call.url]
    assert {"/api/communities/requests", "/api/communities/batches"} <= {
        call.url.split("?")[0].removeprefix(env.host.base_url) for call in keyed
    }
    assert all(call.headers.get("x-functions-key") == HOST_KEY for call in keyed)
    assert all(HOST_KEY not in call.url for call in calls)
    assert page.evaluate("() => sessionStorage.getItem('communityProvisioner.functionKey')") == HOST_KEY
    assert page.evaluate("() => localStorage.length") == 0
    assert not [url for url in shown_urls(page) if HOST_KEY in url]
    assert HOST_KEY not in page.content()

    # Asked once: a reload in the same tab goes straight to the list.
    page.reload()
    expect(row(page, started.json()["id"])).to_be_visible()
    expect(page.locator("#key-panel")).to_be_hidden()

    # A key typed into the address bar moves into the tab's storage and out of the location bar.
    page.evaluate("() => sessionStorage.clear()")
    page.goto(f"{env.api}/dashboard?refresh=1&code={HOST_KEY}")
    expect(row(page, started.json()["id"])).to_be_visible()
    assert HOST_KEY not in page.url
    assert not [url for url in shown_urls(page) if HOST_KEY in url]

    # A refused key is dropped and asked for again, with the reason.
    page.evaluate("() => sessionStorage.setItem('communityProvisioner.functionKey', 'not-the-key')")
    page.click("#refresh-now")
    expect(page.locator("#key-panel")).to_be_visible()
    expect(page.locator("#key-message")).to_contain_text("refused")
    assert page.evaluate("() => sessionStorage.getItem('communityProvisioner.functionKey')") is None
    assert json.loads(page.evaluate("() => JSON.stringify(Object.keys(sessionStorage))")) == []
    assert re.search(r"/api/dashboard\?refresh=1$", page.url)


def test_the_page_is_an_anonymous_get_outside_the_api_description() -> None:
    [page_function] = [
        function
        for function in index_app(function_app.app).of_type("httpTrigger")
        if function.name == "get_dashboard"
    ]
    binding = page_function.trigger
    assert binding["route"] == "dashboard"
    assert str(getattr(binding["authLevel"], "value", binding["authLevel"])).lower() == "anonymous"
    assert "get_dashboard" in openapi.UNDESCRIBED_FUNCTIONS
    for document in (openapi.openapi_document(), openapi.connector_definition()):
        assert not [path for path in document["paths"] if "dashboard" in path]


def test_the_page_files_are_deployed() -> None:
    # .funcignore (honoured by azd and func publish) must not leave out the files the route reads.
    root = Path(__file__).resolve().parents[2]
    lines = (root / ".funcignore").read_text(encoding="utf-8").splitlines()
    patterns = [line.strip().rstrip("/") for line in lines if line.strip() and not line.startswith("#")]
    files = sorted((root / "triggers" / "dashboard_page").iterdir())
    assert {path.name for path in files} >= {"index.html", "dashboard.css", "dashboard.js"}
    for path in files:
        relative = path.relative_to(root)
        for part in (*relative.parts, str(relative)):
            assert not [pattern for pattern in patterns if fnmatch.fnmatch(part, pattern)], relative
