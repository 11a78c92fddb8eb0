"""Activities of the batch orchestrator: start its items, see which have settled, cancel the ones in flight.

They talk to the Durable extension through the durable client binding (items are ordinary orchestrations).
"""

from __future__ import annotations

import azure.durable_functions as df

from provisioning.intake import read_status, start_once
from provisioning.models import ProvisioningInput, RequestStatus
from provisioning.status import document_from_durable
from provisioning.workflow import CANCEL_EVENT

bp = df.Blueprint()


@bp.activity_trigger(input_name="batch")
@bp.durable_client_input(client_name="client")
async def start_batch_items(batch: dict, client: df.DurableOrchestrationClient) -> dict:
    # Idempotent: an item already started (this activity ran before a crash) is left as it is.
    for item in batch["items"]:
        await start_once(client, ProvisioningInput.model_validate(item))
    return {"started": len(batch["items"])}


@bp.activity_trigger(input_name="items")
@bp.durable_client_input(client_name="client")
async def check_batch_items(items: dict, client: df.DurableOrchestrationClient) -> dict:
    settled: dict[str, str] = {}
    for request_id in items["requestIds"]:
        document = document_from_durable(request_id, await read_status(client, request_id))
        if document is not None and document.status is not RequestStatus.RUNNING:
            settled[request_id] = document.status.value
    return {"settled": settled}


@bp.activity_trigger(input_name="items")
@bp.durable_client_input(client_name="client")
async def cancel_batch_items(items: dict, client: df.DurableOrchestrationClient) -> dict:
    canceled = 0
    for request_id in items["requestIds"]:
        try:
            await client.raise_event(request_id, CANCEL_EVENT)
            canceled += 1
        except Exception:  # it settled meanwhile (410): its outcome stands
            continue
    return {"canceled": canceled}
