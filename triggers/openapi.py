"""GET /api/openapi.json: the OpenAPI 3.0 description of this API (generated from the models)."""

from __future__ import annotations

import azure.functions as func

bp = func.Blueprint()

# provisioning.openapi.OPENAPI_PATH (a test keeps the two in step). The generator is imported on the first
# call, not at indexing: no other route needs it.
ROUTE = "openapi.json"


@bp.route(route=ROUTE, methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def get_openapi_document(req: func.HttpRequest) -> func.HttpResponse:
    """The document is built on the first call and kept for the life of the process."""
    from provisioning.openapi import served_document

    return func.HttpResponse(
        body=served_document(),
        status_code=200,
        mimetype="application/json",
        charset="utf-8",
        headers={"Cache-Control": "no-cache"},
    )
