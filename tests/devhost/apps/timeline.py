"""For the scaled-clock restart test: `current_utc_datetime` around an hour-long timer and an event."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="start/{instance_id}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    instance_id = await client.start_new("timeline", req.route_params["instance_id"])
    return client.create_check_status_response(req, instance_id)


@app.orchestration_trigger(context_name="context")
def timeline(context: df.DurableOrchestrationContext) -> Any:
    seen = [context.current_utc_datetime.isoformat()]
    yield context.create_timer(context.current_utc_datetime + timedelta(hours=1))
    seen.append(context.current_utc_datetime.isoformat())
    context.set_custom_status("waiting")
    yield context.wait_for_external_event("go")
    seen.append(context.current_utc_datetime.isoformat())
    return seen
