"""Functions at every auth level, for the key tests (test_keys.py)."""

from __future__ import annotations

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.route(route="first", methods=["GET"])
def first(req: func.HttpRequest) -> str:
    return "first"


@app.route(route="second", methods=["GET"])
def second(req: func.HttpRequest) -> str:
    return "second"


@app.route(route="admin", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
def admin(req: func.HttpRequest) -> str:
    return "admin"


@app.route(route="open", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def open_to_all(req: func.HttpRequest) -> str:
    return "open"
