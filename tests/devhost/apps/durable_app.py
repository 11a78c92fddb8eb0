"""A Durable app driven through a real HTTP starter and `df.DurableOrchestrationClient`."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="start/{name}/{instance_id?}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def http_start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    body = req.get_body()
    try:
        instance_id = await client.start_new(
            req.route_params["name"], req.route_params.get("instance_id"), json.loads(body) if body else None
        )
    except Exception as exc:
        return func.HttpResponse(
            json.dumps({"error": str(exc)}), status_code=409, mimetype="application/json"
        )
    return client.create_check_status_response(req, instance_id)


@app.route(route="manage/{instance_id}/{action}", methods=["POST", "GET"])
@app.durable_client_input(client_name="client")
async def manage(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    instance_id, action = req.route_params["instance_id"], req.route_params["action"]
    result: Any = None
    if action == "status":
        status = await client.get_status(instance_id, show_history=True, show_input=True)
        # The SDK maps `history`, but the extension sends `historyEvents` (it lands as a plain attribute).
        if status:
            result = {**status.to_json(), "historyEvents": getattr(status, "historyEvents", None)}
    elif action == "terminate":
        await client.terminate(instance_id, "stopped by test")
    elif action == "raise":
        await client.raise_event(instance_id, "approval", req.get_json())
    elif action == "purge":
        result = (await client.purge_instance_history(instance_id)).instances_deleted
    return func.HttpResponse(json.dumps({"result": result}, default=str), mimetype="application/json")


@app.route(route="query", methods=["GET"])
@app.durable_client_input(client_name="client")
async def query(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    statuses = [df.OrchestrationRuntimeStatus(s) for s in req.params.get("status", "Running").split(",")]
    found = await client.get_status_by(runtime_status=statuses)
    return func.HttpResponse(json.dumps(sorted(s.instance_id for s in found)), mimetype="application/json")


@app.orchestration_trigger(context_name="context")
def greet(context: df.DurableOrchestrationContext) -> Any:
    name = context.get_input()
    first = yield context.call_activity("say_hello", name)
    yield context.create_timer(context.current_utc_datetime + timedelta(minutes=30))
    second = yield context.call_activity("say_hello", "again")
    return [first, second]


@app.orchestration_trigger(context_name="context")
def approval(context: df.DurableOrchestrationContext) -> Any:
    context.set_custom_status({"waiting": "approval"})
    decision = yield context.wait_for_external_event("approval")
    return {"decision": decision}


@app.activity_trigger(input_name="name")
def say_hello(name: str) -> str:
    return f"Hello {name}"
