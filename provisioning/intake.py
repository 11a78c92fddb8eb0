"""Starting a request exactly once: the logic the HTTP starter and the queue intake share.

The durable instance id is the lock, but not an atomic one. With the extension's default
``overridableExistingInstanceStates`` (NonRunningStates), ``start_new`` with an id that is Pending or Running
fails; yet the Azure Storage provider checks the instance and writes it in two steps, so concurrent starts
whose checks precede the first write all succeed, and only the start whose instance write lands first runs
(the others' ExecutionStarted messages are discarded). A successful ``start_new`` therefore does not mean
"this request runs": the instance is read back, and its input's body hash says whose request it holds.
A finished instance is never started again: its result is the answer (the extension would replace it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from provisioning.logs import get_logger, ids_of
from provisioning.models import ORCHESTRATOR_NAME, ProvisioningInput
from provisioning.status import recorded_body_hash

logger = get_logger(__name__)

# After a start, refused or not, look a few times before giving up on reading the instance with its input.
EXISTING_INSTANCE_READ_ATTEMPTS = 5
EXISTING_INSTANCE_READ_DELAY_SECONDS = 0.2


class DurableClient(Protocol):
    """The subset of ``azure.durable_functions.DurableOrchestrationClient`` used here."""

    async def start_new(
        self,
        orchestration_function_name: str,
        instance_id: str | None = None,
        client_input: Any | None = None,
    ) -> str: ...

    async def get_status(self, instance_id: str, show_input: bool = False) -> Any: ...


class StartOutcome(StrEnum):
    STARTED = "started"  # this call's start succeeded and the instance holds this request
    EXISTING = "existing"  # the same request was started before: answer from its status
    CONFLICT = "conflict"  # the idempotency key belongs to a different request


@dataclass(frozen=True)
class StartResult:
    outcome: StartOutcome
    instance_id: str
    durable_status: Mapping[str, Any] | None = None  # for EXISTING / CONFLICT


class StartFailedError(RuntimeError):
    """The start failed, or which request the instance holds could not be read: a transient fault. A retry is
    safe: the same idempotency key finds the instance if one was started."""


async def read_status(client: DurableClient, instance_id: str) -> dict[str, Any] | None:
    """The extension's status JSON of ``instance_id`` (input included), or None when it does not exist."""
    status = await client.get_status(instance_id, show_input=True)
    if not status or getattr(status, "runtime_status", None) is None:
        return None
    result: dict[str, Any] = status.to_json()
    return result


# Status reads sent to the extension at once by read_statuses (a batch page has up to 1,000 items).
CONCURRENT_READS = 50


async def read_statuses(client: DurableClient, instance_ids: Sequence[str]) -> list[dict[str, Any] | None]:
    """``read_status`` of each id, in order, ``CONCURRENT_READS`` at a time."""
    found: list[dict[str, Any] | None] = []
    for start in range(0, len(instance_ids), CONCURRENT_READS):
        chunk = instance_ids[start : start + CONCURRENT_READS]
        found += await asyncio.gather(*(read_status(client, instance_id) for instance_id in chunk))
    return found


async def start_once(client: DurableClient, provisioning_input: ProvisioningInput) -> StartResult:
    """Start the orchestration for an idempotent request unless its instance already exists."""
    return await start_instance_once(
        client,
        ORCHESTRATOR_NAME,
        provisioning_input.request_id,
        provisioning_input.to_json(),
        provisioning_input.body_hash,
    )


async def start_instance_once(
    client: DurableClient, name: str, instance_id: str, instance_input: Mapping[str, Any], body_hash: str
) -> StartResult:
    """Start orchestration ``name`` as ``instance_id`` unless it exists; ``body_hash`` (also recorded in the
    input) tells the same work sent again from other work under the same idempotency key."""

    def same_request(durable: Mapping[str, Any]) -> bool:
        return recorded_body_hash(durable) == body_hash

    existing = await read_status(client, instance_id)
    if existing is None:
        try:
            await client.start_new(name, instance_id, dict(instance_input))
        except Exception as err:  # the client raises bare Exception for every refusal and fault
            # Most likely a concurrent duplicate won the race (the instance is now Pending or Running).
            existing = await _read_existing(client, instance_id)
            if existing is None:
                raise StartFailedError(f"starting {instance_id} failed: {err.__class__.__name__}") from err
        else:
            # Accepted, yet a concurrent start may have written the instance first: then that one runs.
            existing = await _read_existing(client, instance_id)
            if existing is None:
                raise StartFailedError(f"{instance_id} was started but cannot be read back")
            if same_request(existing):
                return StartResult(StartOutcome.STARTED, instance_id)
            return StartResult(StartOutcome.CONFLICT, instance_id, existing)
    elif recorded_body_hash(existing) is None:
        existing = await _read_existing(client, instance_id)
        if existing is None:
            raise StartFailedError(f"the input of {instance_id} cannot be read")
    if same_request(existing):
        return StartResult(StartOutcome.EXISTING, instance_id, existing)
    return StartResult(StartOutcome.CONFLICT, instance_id, existing)


async def start_fresh(client: DurableClient, provisioning_input: ProvisioningInput) -> StartResult:
    """Start the orchestration of a request without an idempotency key (its id is new)."""
    try:
        await client.start_new(ORCHESTRATOR_NAME, provisioning_input.request_id, provisioning_input.to_json())
    except Exception as err:
        raise StartFailedError(
            f"starting {provisioning_input.request_id} failed: {err.__class__.__name__}"
        ) from err
    return StartResult(StartOutcome.STARTED, provisioning_input.request_id)


async def _read_existing(client: DurableClient, instance_id: str) -> dict[str, Any] | None:
    """The instance's status once it is visible with its input, or None after a few short waits."""
    for attempt in range(EXISTING_INSTANCE_READ_ATTEMPTS):
        if attempt:
            await asyncio.sleep(EXISTING_INSTANCE_READ_DELAY_SECONDS)
        try:
            existing = await read_status(client, instance_id)
        except Exception:
            logger.warning(
                "could not read %s after its start", instance_id, exc_info=True, extra=ids_of(instance_id)
            )
            continue
        if existing is not None and recorded_body_hash(existing) is not None:
            return existing
    return None
