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
from urllib.parse import urlencode

import aiohttp
import azure.durable_functions as df
import azure.functions as func

from provisioning.intake import read_status
from provisioning.status import parse_timestamp

# Rows asked of the management API per call (its own default page is 100).
BACKEND_PAGE_SIZE = 1000
CONTINUATION_PARAMETER = "continuationToken"

# (createdAt, createdTime, instance id): the order of a list and its continuation token. createdAt has whole
# seconds; createdTime orders the instances created within one second.
Key = tuple[str, str, str]
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
        created, instance_created, instance_id = key["t"], key["c"], key["i"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        key = None
    if key is None or not all(isinstance(part, str) for part in (created, instance_created, instance_id)):
        raise FilterError(CONTINUATION_PARAMETER, "is not a token this API returned")
    if parse_timestamp(created) is None:
        raise FilterError(CONTINUATION_PARAMETER, "is not a token this API returned")
    return created, instance_created, instance_id


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
    return moment.astimezone(UTC).isoformat() if moment else ""


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
    while True:
        lower: datetime | None = anchor - span - CLOCK_SLACK
        last = span > LAST_BOUNDED_WINDOW
        if created_from is not None and (last or (lower is not None and lower <= created_from)):
            lower, last = created_from, True
        elif last:
            lower = None
        for durable in await _read_instances(client, id_prefix, lower, upper, runtime_statuses):
            instance_id = str(durable.get("instanceId", ""))
            if durable.get("name") != orchestrator or not is_id(instance_id):
                continue
            if durable.get("output") is None and durable.get("customStatus") is None:
                # Not run yet: its document comes from its input, read for it alone.
                durable = await read_status(client, instance_id) or durable
            found = document_of(durable)
            if found is not None:
                created_at, document = found
                created = parse_timestamp(created_at) or parse_timestamp(durable.get("createdTime"))
                instance_created = _iso(parse_timestamp(durable.get("createdTime")))
                read[instance_id] = Listed((_iso(created), instance_created, instance_id), document)
        rows = sorted(
            (row for row in read.values() if _wanted(row.key, after, created_from, created_to)),
            key=lambda row: row.key,
            reverse=True,
        )
        rows = [row for row in rows if matches(row.document)]
        if not last:
            complete_from = _iso(lower + CLOCK_SLACK) if lower is not None else ""
            rows = [row for row in rows if row.key[0] >= complete_from]
        if last or len(rows) > top:
            return Page(rows[:top], len(rows) > top, frozenset(read))
        upper, span = lower, span * WINDOW_GROWTH


def _wanted(key: Key, after: Key | None, created_from: datetime | None, created_to: datetime | None) -> bool:
    if after is not None and not key < after:
        return False
    if created_to is not None and key[0] > _iso(created_to):
        return False
    return created_from is None or key[0] >= _iso(created_from)


async def _read_instances(
    client: df.DurableOrchestrationClient,
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
    async with aiohttp.ClientSession() as session:
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


def next_link(req: func.HttpRequest, list_url: str, params: Mapping[str, str], top: int, last: Key) -> str:
    """The URL of the page after ``last``: the same filters, ``top`` and the caller's ``code``, if any."""
    token = base64.urlsafe_b64encode(json.dumps({"t": last[0], "c": last[1], "i": last[2]}).encode()).decode()
    query = {**params, "top": str(top), CONTINUATION_PARAMETER: token}
    code = req.params.get("code")
    if code:
        query["code"] = code
    return f"{list_url}?{urlencode(query)}"
