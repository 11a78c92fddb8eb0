"""GET /api/openapi.json: the OpenAPI 3.0 description of this API (generated from the models)."""

from __future__ import annotations

import azure.functions as func

from provisioning.openapi import OPENAPI_PATH, served_document

bp = func.Blueprint()


@bp.route(route=OPENAPI_PATH.lstrip("/"), methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def get_openapi_document(req: func.HttpRequest) -> func.HttpResponse:
    """The document is built on the first call and kept for the life of the process."""
    return func.HttpResponse(
        body=served_document(),
        status_code=200,
        mimetype="application/json",
        charset="utf-8",
        headers={"Cache-Control": "no-cache"},
    )
