"""For the restart test: steps separated by 60-second durable timers; progress visible in custom status."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="start/{instance_id}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    instance_id = await client.start_new("slow_steps", req.route_params["instance_id"], req.get_json())
    return client.create_check_status_response(req, instance_id)


@app.orchestration_trigger(context_name="context")
def slow_steps(context: df.DurableOrchestrationContext) -> Any:
    steps = int(context.get_input()["steps"])
    done: list[str] = []
    for number in range(steps):
        done.append((yield context.call_activity("step", number)))
        context.set_custom_status({"done": len(done)})
        yield context.create_timer(context.current_utc_datetime + timedelta(seconds=60))
    return done


@app.activity_trigger(input_name="number")
def step(number: int) -> str:
    return f"step-{number}"
