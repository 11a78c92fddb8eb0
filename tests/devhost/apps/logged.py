"""For the invocation-log test: an orchestrator and an activity whose input and output hold a secret URL."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="start/{instance_id}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    instance_id = await client.start_new("relay", req.route_params["instance_id"], req.get_json())
    return client.create_check_status_response(req, instance_id)


@app.orchestration_trigger(context_name="context")
def relay(context: df.DurableOrchestrationContext) -> Any:
    return (yield context.call_activity("deliver", context.get_input()))


@app.activity_trigger(input_name="request")
def deliver(request: dict) -> str:
    if request.get("fail"):
        raise ValueError("the receiver refused the delivery")
    return f"delivered to {request['callbackUrl']}"
