"""Lists of durable instances for the operators' routes (requests and batches): newest first, keyset-paged.

The Durable management API (``GET instances/``) is read page by page with its ``x-ms-continuation-token``:
the SDK's ``get_status_by`` / ``get_status_all`` return one backend page only and drop that header, so the
query is sent here, to the client's own ``rpcBaseUrl``.

Paging is keyset paging on (created time, id), newest first: the continuation token is the last row's key,
and the next page holds only rows strictly older than it. Instances started while a caller pages are newer
than every key already handed out, so pages never repeat or skip a row; the new ones appear on a fresh first
page.

The created time is the document's ``createdAt`` (what the starter recorded), not the instance's
``createdTime``: the Azure Storage provider sets ``CreatedTime`` from every ``ExecutionStarted``, so an
instance that continued as new reads as created at its last continuation
(``AzureTableTrackingStore.UpdateStateAsync`` in Azure/durabletask). ``createdTime`` is never earlier than
``createdAt``, which is what lets ``newest_page`` read the task hub in time windows: a page costs the rows
created since its oldest row, not the whole task hub. An Azure Table query returns rows in instance-id order
only, so without windows every page would read every request.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qsl, urlencode

import aiohttp
import azure.durable_functions as df

from provisioning.intake import read_statuses
from provisioning.status import HttpAnswer, parse_timestamp

# Rows asked of the management API per call (its own default page is 100).
BACKEND_PAGE_SIZE = 1000
CONTINUATION_PARAMETER = "continuationToken"

# (createdAt, instance id): the order of a list and its continuation token. Both never change (createdTime
# does, at every continue-as-new), so a row never moves across a page boundary while a caller pages.
Key = tuple[str, str]
S = TypeVar("S", bound=StrEnum)


class FilterError(ValueError):
    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message


def parse_statuses(value: str | None, allowed: Sequence[S]) -> set[S]:
    """The comma-separated ``status`` filter (case-insensitive); empty means every status."""
    if value is None or not value.strip():
        return set()
    known = {status.value.casefold(): status for status in allowed}
    wanted = set()
    for name in value.split(","):
        status = known.get(name.strip().casefold())
        if status is None:
            names = ", ".join(status.value for status in allowed)
            raise FilterError("status", f"{name.strip()!r} is not one of {names}")
        wanted.add(status)
    return wanted


def parse_top(params: Mapping[str, str], default: int, maximum: int) -> int:
    top = params.get("top", str(default))
    if not top.strip().isdigit() or not 1 <= int(top) <= maximum:
        raise FilterError("top", f"must be a whole number from 1 to {maximum}")
    return int(top)


def parse_time(params: Mapping[str, str], name: str) -> datetime | None:
    value = params.get(name)
    if value is None or not value.strip():
        return None
    # An unencoded '+' of an offset arrives as a space.
    parsed = parse_timestamp(value.strip().replace(" ", "+"))
    if parsed is None:
        raise FilterError(name, "must be an ISO-8601 date and time, e.g. 2026-01-01T00:00:00Z")
    return parsed


def decode_token(value: str | None) -> Key | None:
    if not value:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(value.encode()))
        created, instance_id = key["t"], key["i"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        key = None
    if key is None or not isinstance(created, str) or not isinstance(instance_id, str):
        raise FilterError(CONTINUATION_PARAMETER, "is not a token this API returned")
    if parse_timestamp(created) is None:
        raise FilterError(CONTINUATION_PARAMETER, "is not a token this API returned")
    return created, instance_id


# Newest first without reading the whole task hub: the instance query is read in created-time windows going
# back from the newest row wanted, each FIRST_WINDOW x WINDOW_GROWTH^n long, until the page is complete; past
# LAST_BOUNDED_WINDOW one open-ended query reads whatever is older.
FIRST_WINDOW = timedelta(hours=1)
WINDOW_GROWTH = 4
LAST_BOUNDED_WINDOW = timedelta(days=60)
# createdAt (the starter's clock) may run ahead of createdTime (the host's) by this much at most.
CLOCK_SLACK = timedelta(minutes=1)

D = TypeVar("D")


@dataclass(frozen=True)
class Listed(Generic[D]):
    key: Key
    document: D


@dataclass(frozen=True)
class Page(Generic[D]):
    rows: list[Listed[D]]  # at most the page size
    more: bool  # another page follows
    seen: frozenset[str]  # every instance id read (a retry among them needs no read of its own)


def _iso(moment: datetime | None) -> str:
    """A key's time: fixed width, so that keys compare as strings in time order."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if moment else ""


def _query_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def newest_page(
    client: df.DurableOrchestrationClient,
    *,
    id_prefix: str,
    orchestrator: str,
    is_id: Callable[[str], bool],
    document_of: Callable[[dict[str, Any]], tuple[str | None, D] | None],
    matches: Callable[[D], bool],
    top: int,
    after: Key | None,
    created_from: datetime | None,
    created_to: datetime | None,
    runtime_statuses: Collection[str] | None,
    now: datetime,
) -> Page[D]:
    """The ``top`` newest rows (by the ``createdAt`` that ``document_of`` reads from a status) that match,
    older than the continuation key ``after`` and in the created range.

    A window's query asks for ``createdTime`` from its lower bound on: since ``createdTime`` is never earlier
    than ``createdAt`` (continue-as-new only moves it later), every row created since the lower bound has
    been read once that query returns, and when those alone fill the page it is final."""
    anchor = now
    if after is not None and (cursor := parse_timestamp(after[0])) is not None:
        anchor = min(anchor, cursor)
    if created_to is not None:
        anchor = min(anchor, created_to)
    read: dict[str, Listed[D]] = {}
    upper: datetime | None = None
    span = FIRST_WINDOW
    async with aiohttp.ClientSession() as session:
        while True:
            lower: datetime | None = anchor - span - CLOCK_SLACK
            last = span > LAST_BOUNDED_WINDOW
            if created_from is not None and (last or anchor - span <= created_from):
                lower, last = created_from - CLOCK_SLACK, True
            elif last:
                lower = None
            statuses = await _read_instances(client, session, id_prefix, lower, upper, runtime_statuses)
            listed = [
                durable
                for durable in statuses
                if durable.get("name") == orchestrator and is_id(str(durable.get("instanceId", "")))
            ]
            for durable in await _with_inputs_where_needed(client, listed):
                found = document_of(durable)
                if found is not None:
                    instance_id = str(durable.get("instanceId", ""))
                    created = parse_timestamp(found[0]) or parse_timestamp(durable.get("createdTime"))
                    read[instance_id] = Listed((_iso(created), instance_id), found[1])
            rows = sorted(
                (row for row in read.values() if _wanted(row.key, after, created_from, created_to)),
                key=lambda row: row.key,
                reverse=True,
            )
            rows = [row for row in rows if matches(row.document)]
            if not last and lower is not None:
                # Rows created before this bound may have been continued into windows not read yet.
                rows = [row for row in rows if row.key[0] >= _iso(lower + CLOCK_SLACK)]
            if last or len(rows) > top:
                return Page(rows[:top], len(rows) > top, frozenset(read))
            upper, span = lower, span * WINDOW_GROWTH


async def _with_inputs_where_needed(
    client: df.DurableOrchestrationClient, statuses: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The statuses, each instance that has not run yet (no custom status, no output) read again with its
    input, which is where its document comes from; those reads run several at a time."""
    pending = [
        index
        for index, durable in enumerate(statuses)
        if durable.get("output") is None and durable.get("customStatus") is None
    ]
    reads = await read_statuses(client, [str(statuses[index].get("instanceId", "")) for index in pending])
    for index, status in zip(pending, reads, strict=True):
        if status is not None:
            statuses[index] = status
    return statuses


def _wanted(key: Key, after: Key | None, created_from: datetime | None, created_to: datetime | None) -> bool:
    if after is not None and not key < after:
        return False
    if created_to is not None and key[0] > _iso(created_to):
        return False
    return created_from is None or key[0] >= _iso(created_from)


async def _read_instances(
    client: df.DurableOrchestrationClient,
    session: aiohttp.ClientSession,
    id_prefix: str,
    created_from: datetime | None,
    created_to: datetime | None,
    runtime_statuses: Collection[str] | None,
) -> list[dict[str, Any]]:
    """Every instance whose id has ``id_prefix`` and whose ``createdTime`` is in the range, through the
    management API's continuation token; without inputs (the documents hold what a row shows)."""
    params: dict[str, str] = {
        "instanceIdPrefix": id_prefix,
        "showInput": "false",
        "top": str(BACKEND_PAGE_SIZE),
    }
    if created_from is not None:
        params["createdTimeFrom"] = _query_time(created_from)
    if created_to is not None:
        params["createdTimeTo"] = _query_time(created_to)
    if runtime_statuses is not None:
        params["runtimeStatus"] = ",".join(sorted(runtime_statuses))
    base_url = client._orchestration_bindings.rpc_base_url  # the SDK has no paging call
    url = f"{base_url}instances/?{urlencode(params)}"
    found: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        headers = {"x-ms-continuation-token": token} if token else {}
        async with session.get(url, headers=headers) as response:
            if response.status != 200:
                raise RuntimeError(f"listing instances answered {response.status}")
            statuses = await response.json(content_type=None)
            token = response.headers.get("x-ms-continuation-token")
        found.extend(statuses or [])
        if not token:
            return found


def page_answer(
    list_url: str, params: Mapping[str, str], top: int, page: Page[Any], items: list[Any]
) -> HttpAnswer:
    """200 with one page of ``items``; while more follow, ``nextLink`` and a ``Link: <...>; rel="next"``
    header: ``list_url`` (with its own query, such as the caller's ``code``) plus the filters, ``top`` and
    the continuation token."""
    body: dict[str, Any] = {"items": items}
    headers = {"Cache-Control": "no-store"}
    if page.more:
        last = page.rows[-1].key
        token = base64.urlsafe_b64encode(json.dumps({"t": last[0], "i": last[1]}).encode()).decode()
        base, _, own_query = list_url.partition("?")
        query = {**dict(parse_qsl(own_query)), **params, "top": str(top), CONTINUATION_PARAMETER: token}
        link = f"{base}?{urlencode(query)}"
        body["nextLink"] = link
        headers["Link"] = f'<{link}>; rel="next"'
    return HttpAnswer(200, body, headers)


def list_url_of(placeholder_item_url: str) -> str:
    """The list's URL from the URL its route builds for an item with the id ``_`` (same base, same query)."""
    base, separator, query = placeholder_item_url.partition("?")
    return base.removesuffix("/_") + separator + query
