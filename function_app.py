"""The Functions app: composition only. Every function lives in a blueprint; settings are read lazily."""

import azure.durable_functions as df
import azure.functions as func

from activities import graph_calls, notification
from orchestrators import provision
from triggers import http_api, openapi, queue_intake

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
for blueprint in (http_api.bp, queue_intake.bp, openapi.bp, provision.bp, graph_calls.bp, notification.bp):
    app.register_functions(blueprint)
