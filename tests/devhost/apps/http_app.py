"""HTTP triggers exercising the dev host's request/response mapping."""

from __future__ import annotations

import json
import os

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="items/{id:int}", methods=["GET"])
def get_item(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps({"id": req.route_params["id"], "query": dict(req.params)}),
        mimetype="application/json",
        headers={"X-Item": req.route_params["id"]},
    )


@app.route(route="items/special", methods=["GET"])
def special_item(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("special")


@app.route(route="echo/{*rest}", methods=["POST", "PUT"])
async def echo(req: func.HttpRequest) -> func.HttpResponse:
    body = {
        "method": req.method,
        "url": req.url,
        "rest": req.route_params.get("rest"),
        "contentType": req.headers.get("content-type"),
        "custom": req.headers.get("x-custom"),
        "json": req.get_json(),
    }
    return func.HttpResponse(json.dumps(body), status_code=201, mimetype="application/json")


@app.route(route="files/{name?}", methods=["GET"])
def optional_name(req: func.HttpRequest) -> str:
    return f"name={req.route_params.get('name')}"


@app.route(route="raw", methods=["POST"])
def raw_bytes(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(req.get_body()[::-1], mimetype="application/octet-stream")


@app.route(route="boom")
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("boom")


@app.route(route="setting/{name}", methods=["GET"])
def setting(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(os.environ.get(req.route_params["name"], "<unset>"))


@app.route(route="secure", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def secure(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("secret ok")


@app.route(route="admin-only", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
def admin_only(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("admin ok")


@app.route(route="nothing", methods=["DELETE"])
def nothing(req: func.HttpRequest):
    # No return annotation: the worker refuses `-> None` on an HTTP function at load time; returning None
    # fails the invocation instead.
    return None
