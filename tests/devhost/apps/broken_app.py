"""An app the worker cannot index: the binding name has no matching parameter."""

from __future__ import annotations

import azure.functions as func

app = func.FunctionApp()


@app.queue_trigger(arg_name="msg", queue_name="jobs", connection="AzureWebJobsStorage")
def wrong_parameter(message: func.QueueMessage) -> None:
    return None
