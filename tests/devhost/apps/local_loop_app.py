"""HTTP triggers for the local-loop tests: a caller-chosen `Retry-After`, and one route served by two
functions with different methods (the `Allow` of a 405 lists both)."""

from __future__ import annotations

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="wait", methods=["GET"])
def wait(req: func.HttpRequest) -> func.HttpResponse:
    """202 with the `Retry-After` given in `?after=` (sent as it is), under the header name `?name=`."""
    return func.HttpResponse(
        "running", status_code=202, headers={req.params.get("name", "Retry-After"): req.params["after"]}
    )


@app.route(route="things/{id}", methods=["GET"])
def read_thing(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(f"thing {req.route_params['id']}")


@app.route(route="things/{id}", methods=["DELETE"])
def delete_thing(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(status_code=204)


@app.route(route="open/{*rest}")
def any_method(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(req.method)
