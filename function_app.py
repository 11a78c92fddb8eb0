"""The Functions app: composition only. Every function lives in a blueprint; settings are read lazily."""

import azure.durable_functions as df
import azure.functions as func

from activities import batch_calls, graph_calls, notification
from entities import graph_budget
from orchestrators import batch, provision
from triggers import (
    batch_api,
    batch_list,
    dashboard,
    http_api,
    openapi,
    queue_intake,
    requests_api,
    webhook_api,
)

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
for blueprint in (
    http_api.bp,
    webhook_api.bp,
    requests_api.bp,
    batch_api.bp,
    batch_list.bp,
    queue_intake.bp,
    openapi.bp,
    dashboard.bp,
    provision.bp,
    batch.bp,
    graph_calls.bp,
    batch_calls.bp,
    notification.bp,
    graph_budget.bp,
):
    app.register_functions(blueprint)
