"""A counter entity driven from an orchestrator and from HTTP functions through the durable client
(`signal_entity` / `read_entity_state` call the dev host's management API)."""

from __future__ import annotations

import json
from typing import Any

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.entity_trigger(context_name="context", entity_name="Counter")
def counter(context: df.DurableEntityContext) -> None:
    value = context.get_state(lambda: 0)
    operation = context.operation_name
    if operation == "add":
        context.set_state(value + context.get_input())
    elif operation == "set":
        context.set_state(context.get_input())
    elif operation == "reset":
        context.set_state(0)
    elif operation == "get":
        context.set_result(value)
    elif operation == "delete":
        context.destruct_on_exit()
    else:
        raise ValueError(f"unknown operation {operation}")


@app.orchestration_trigger(context_name="context")
def counter_user(context: df.DurableOrchestrationContext) -> Any:
    entity = df.EntityId("Counter", context.get_input())
    context.signal_entity(entity, "add", 10)
    total = yield context.call_entity(entity, "get")
    return total


@app.route(route="entities/{name}/{key}/{operation}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def signal(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    body = req.get_body()
    entity = df.EntityId(req.route_params["name"], req.route_params["key"])
    try:
        await client.signal_entity(entity, req.route_params["operation"], json.loads(body) if body else None)
    except Exception as exc:
        return func.HttpResponse(
            json.dumps({"error": str(exc)}), status_code=400, mimetype="application/json"
        )
    return func.HttpResponse(status_code=202)


@app.route(route="entities/{name}/{key}", methods=["GET"])
@app.durable_client_input(client_name="client")
async def read(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    response = await client.read_entity_state(df.EntityId(req.route_params["name"], req.route_params["key"]))
    body = {"exists": response.entity_exists, "state": response.entity_state}
    return func.HttpResponse(json.dumps(body), mimetype="application/json")
