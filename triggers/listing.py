"""Lists of durable instances for the operators' routes (requests and batches): newest first, keyset-paged.

The Durable management API (``GET instances/``) is read page by page with its ``x-ms-continuation-token``:
the SDK's ``get_status_by`` / ``get_status_all`` return one backend page only and drop that header, so the
query is sent here, to the client's own ``rpcBaseUrl``.

Paging is keyset paging on (created time, id), newest first: the continuation token is the last row's key,
and the next page holds only rows strictly older than it. Instances started while a caller pages are newer
than every key already handed out, so pages never repeat or skip a row; the new ones appear on a fresh first
page.

The created time is the ``createdAt`` the starter recorded in the instance's input, not the instance's
``createdTime``: the Azure Storage provider sets ``CreatedTime`` from every ``ExecutionStarted``, so an
instance that continued as new reads as created at its last continuation
(``AzureTableTrackingStore.UpdateStateAsync`` in Azure/durabletask). ``createdTime`` is never earlier than
``createdAt``, so only ``createdTimeFrom`` is passed to the query; the upper bounds are applied here.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar
from urllib.parse import urlencode

import aiohttp
import azure.durable_functions as df
import azure.functions as func

from provisioning.status import instance_input, parse_timestamp

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


def created_key(durable: Mapping[str, Any]) -> Key:
    instance_created = parse_timestamp(durable.get("createdTime"))
    created = parse_timestamp(instance_input(durable).get("createdAt")) or instance_created
    return (_iso(created), _iso(instance_created), str(durable.get("instanceId", "")))


def _iso(moment: datetime | None) -> str:
    return moment.astimezone(UTC).isoformat() if moment else ""


def newest_first(
    instances: Iterable[dict[str, Any]],
    after: Key | None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
) -> list[tuple[Key, dict[str, Any]]]:
    """The instances older than the continuation key ``after`` (and created at or before ``created_to``),
    newest first, with their keys."""
    keyed = [(created_key(durable), durable) for durable in instances]
    if after is not None:
        keyed = [(key, durable) for key, durable in keyed if key < after]
    if created_to is not None:
        bound = created_to.astimezone(UTC).isoformat()
        keyed = [(key, durable) for key, durable in keyed if key[0] <= bound]
    if created_from is not None:
        bound = created_from.astimezone(UTC).isoformat()
        keyed = [(key, durable) for key, durable in keyed if key[0] >= bound]
    keyed.sort(key=lambda row: row[0], reverse=True)
    return keyed


async def list_instances(
    client: df.DurableOrchestrationClient,
    *,
    id_prefix: str,
    orchestrator: str,
    is_id: Callable[[str], bool],
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    after: Key | None = None,
    runtime_statuses: Collection[str] | None = None,
) -> list[dict[str, Any]]:
    """Every ``orchestrator`` instance whose id has ``id_prefix`` and passes ``is_id``, whose ``createdTime``
    is not before ``created_from``, through the management API's continuation token (``newest_first`` then
    applies the created range and the continuation key on ``createdAt``)."""
    params: dict[str, str] = {
        "instanceIdPrefix": id_prefix,
        "showInput": "true",
        "top": str(BACKEND_PAGE_SIZE),
    }
    if created_from is not None:
        params["createdTimeFrom"] = created_from.isoformat().replace("+00:00", "Z")
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
            found.extend(
                status
                for status in statuses or []
                if status.get("name") == orchestrator and is_id(str(status.get("instanceId", "")))
            )
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
