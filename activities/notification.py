"""Activities that tell the caller: the callback POST and the results-queue message.

Binding parameters are annotated with classes (``dict``), never ``dict[str, Any]``: see ``graph_calls``."""

from __future__ import annotations

import json

import azure.durable_functions as df
import azure.functions as func

from provisioning.logs import ids_of, log_fields

bp = df.Blueprint()


@bp.activity_trigger(input_name="delivery")
def deliver_callback(delivery: dict) -> dict:
    # Imported on first use: requests is not needed to index the app or answer the first POST.
    from provisioning.notify import deliver_callback as post_callback

    with log_fields(**ids_of(str(delivery["document"].get("id", "")))):
        return post_callback(delivery["url"], delivery["document"])


@bp.activity_trigger(input_name="document")
@bp.queue_output(arg_name="message", queue_name="%RESULTS_QUEUE%", connection="AzureWebJobsStorage")
def publish_result(document: dict, message: func.Out[str]) -> None:
    message.set(json.dumps(document))
