"""The request list over a day of requests (seeded as the benchmark seeds them): a page reads the task hub in
created-time windows, yet every request is listed once, newest first, those that continued as new included."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

from bench.listing import ORCHESTRATOR, seed_requests
from devhost.durable.store import Store
from devhost.testing import DevHost

REQUESTS = 300
SETTINGS = {"TASKHUB_NAME": "windows", "PROVISIONING_QUEUE": "w-requests", "RESULTS_QUEUE": "w-results"}


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory, azurite: Any) -> Iterator[DevHost]:
    state_path = tmp_path_factory.mktemp("windows") / "state.db"
    seed_requests(state_path, REQUESTS, now=datetime.now(UTC).replace(microsecond=0))
    store = Store(state_path)
    with store.transaction() as tx:
        # Every tenth request continued as new just now: its createdTime moves on, its createdAt stays.
        for row in [row for row in tx.query_instances() if row.name == ORCHESTRATOR][::10]:
            row.created_time = datetime.now(UTC).timestamp()
            tx.put_instance(row)
    store.close()
    with DevHost(
        state_path=state_path, settings=SETTINGS, storage_connection_string=azurite.connection_string
    ) as host:
        yield host


def walk(url: str) -> list[dict[str, Any]]:
    """Every row of a list, following nextLink."""
    rows: list[dict[str, Any]] = []
    next_url: str | None = url
    while next_url:
        answer = requests.get(next_url, timeout=60)
        assert answer.status_code == 200, answer.text
        rows += answer.json()["items"]
        next_url = answer.json().get("nextLink")
    return rows


def created(row: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(row["createdAt"].replace("Z", "+00:00"))


def seeded_created_at(host: DevHost) -> dict[str, str]:
    store = Store(host.state_path)
    with store.transaction() as tx:
        rows = [row for row in tx.query_instances() if row.name == ORCHESTRATOR]
    store.close()
    return {row.instance_id: json.loads(row.input or "{}")["createdAt"] for row in rows}


def test_paging_lists_every_request_once_newest_first(seeded: DevHost) -> None:
    listed = walk(f"{seeded.base_url}/api/communities/requests?top=37")
    ids = [row["id"] for row in listed]
    assert len(ids) == len(set(ids)) == REQUESTS
    assert {row["id"]: row["createdAt"] for row in listed} == seeded_created_at(seeded)
    keys = [(row["createdAt"], row["id"]) for row in listed]
    assert [key[0] for key in keys] == sorted((key[0] for key in keys), reverse=True)


def test_the_first_page_reads_a_window_not_the_task_hub(
    seeded: DevHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    read: list[int] = []
    original = seeded.engine.query_page

    def counting(**kwargs: Any) -> Any:
        page, next_id = original(**kwargs)
        read.append(len(page))
        return page, next_id

    monkeypatch.setattr(seeded.engine, "query_page", counting)
    answer = requests.get(f"{seeded.base_url}/api/communities/requests?top=10", timeout=60)
    assert answer.status_code == 200, answer.text
    newest = max(seeded_created_at(seeded).values())
    assert answer.json()["items"][0]["createdAt"] == newest
    # The task hub holds about 560 instances (requests and their create-try markers); the first windows hold
    # the last hours' requests and the tenth that continued as new just now.
    assert 0 < sum(read) < REQUESTS / 2, read


def test_a_created_range_lists_exactly_the_requests_created_in_it(seeded: DevHost) -> None:
    everything = walk(f"{seeded.base_url}/api/communities/requests?top=500")
    start = sorted(created(row) for row in everything)[100]
    end = start + timedelta(hours=3)
    expected = {row["id"] for row in everything if start <= created(row) <= end}
    query = urlencode({"createdFrom": start.isoformat(), "createdTo": end.isoformat(), "top": "7"})
    found = [row["id"] for row in walk(f"{seeded.base_url}/api/communities/requests?{query}")]
    assert len(found) == len(set(found))
    assert set(found) == expected
    assert len(expected) > 7  # more than one page


def test_a_request_continuing_as_new_while_a_caller_pages_is_neither_skipped_nor_repeated(
    seeded: DevHost,
) -> None:
    """The page key is (createdAt, id), which never changes; createdTime moves at every continue-as-new."""
    listed: list[str] = []
    url: str | None = f"{seeded.base_url}/api/communities/requests?top=25"
    while url:
        answer = requests.get(url, timeout=60).json()
        listed += [row["id"] for row in answer["items"]]
        url = answer.get("nextLink")
        store = Store(seeded.state_path)
        with store.transaction() as tx:
            # Every request not listed yet continues as new now.
            for row in tx.query_instances():
                if row.name == ORCHESTRATOR and row.instance_id not in listed:
                    row.created_time = datetime.now(UTC).timestamp()
                    tx.put_instance(row)
        store.close()
    assert len(listed) == len(set(listed)) == REQUESTS
