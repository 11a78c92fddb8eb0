"""Queue triggers and queue outputs (queue names come from app settings, so each test uses fresh queues)."""

from __future__ import annotations

import json
from typing import Any

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.queue_trigger(arg_name="msg", queue_name="%JOBS_QUEUE%", connection="AzureWebJobsStorage")
@app.queue_output(arg_name="out", queue_name="%RESULTS_QUEUE%", connection="AzureWebJobsStorage")
def work(msg: func.QueueMessage, out: func.Out[str]) -> None:
    job = msg.get_json()
    if job["kind"] == "fail" or (job["kind"] == "flaky" and msg.dequeue_count < job["succeedOn"]):
        raise RuntimeError(f"failing on purpose (dequeue count {msg.dequeue_count})")
    out.set(
        json.dumps(
            {
                "tag": job["tag"],
                "id": msg.id,
                "dequeueCount": msg.dequeue_count,
                "hasTimes": None not in (msg.insertion_time, msg.expiration_time, msg.pop_receipt),
            }
        )
    )


@app.queue_trigger(arg_name="msg", queue_name="%START_QUEUE%", connection="AzureWebJobsStorage")
@app.durable_client_input(client_name="client")
async def queue_start(msg: func.QueueMessage, client: df.DurableOrchestrationClient) -> None:
    await client.start_new("notify", f"q-{msg.get_json()['tag']}", msg.get_json())


@app.orchestration_trigger(context_name="context")
def notify(context: df.DurableOrchestrationContext) -> Any:
    sent = yield context.call_activity("send_result", context.get_input())
    return sent


@app.activity_trigger(input_name="payload")
@app.queue_output(arg_name="out", queue_name="%RESULTS_QUEUE%", connection="AzureWebJobsStorage")
def send_result(payload: dict, out: func.Out[str]) -> str:
    out.set(json.dumps({"tag": payload["tag"], "from": "activity"}))
    return "sent"
