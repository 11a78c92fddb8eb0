"""The smallest Durable Functions app on the same SDKs as the real app: the cold-start baseline.

An HTTP starter (auth level ``FUNCTION`` like the app's API), one orchestrator, one activity; nothing else is
imported. ``bench.cold_start`` compares importing + indexing the real app, and answering its first
``POST``, with doing the same here. Never deployed.
"""

from collections.abc import Generator
from typing import Any

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.route(route="start", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    instance_id = await client.start_new("minimal_orchestrator", None, req.get_json())
    response: func.HttpResponse = client.create_check_status_response(req, instance_id)
    return response


@app.orchestration_trigger(context_name="context")
def minimal_orchestrator(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    result = yield context.call_activity("minimal_activity", context.get_input())
    return result


# A class annotation: the worker refuses builtin generics such as dict[str, Any] on a binding parameter.
@app.activity_trigger(input_name="payload")
def minimal_activity(payload: dict) -> dict:
    return payload
