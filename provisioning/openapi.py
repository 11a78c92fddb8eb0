"""OpenAPI descriptions of the HTTP API, generated from the pydantic models that validate requests.

One code path builds two documents from the same models and operation table:

* OpenAPI 3.0 (``openapi/openapi.json``, also served at ``GET /api/openapi.json``) for API clients and tools.
  3.0 rather than 3.1 because API Management and most generators import 3.0; pydantic's ``anyOf [X, null]``
  is folded into ``nullable``.
* Swagger 2.0 with the ``x-ms-*`` extensions of Power Platform custom connectors
  (``connector/apiDefinition.swagger.json``): custom connectors only take Swagger 2.0.

Schemas (descriptions, examples, enums, required fields) come from the models' JSON Schema, so a field added
to ``CommunityRequest`` appears in both documents. ``tests/connector`` fails when the committed files are
stale and checks every path, method, parameter and schema against what the app registers and validates.
The paths are written here, not imported from ``triggers`` (this package never imports azure.functions).

Regenerate the committed files: ``python -m provisioning.openapi --write`` (``--check`` only compares).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import functools
import io
import json
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from provisioning.batch_workflow import BATCH_ID_PREFIX, MIN_REQUESTS_PER_COMMUNITY, BatchStatus
from provisioning.batches import CSV_COLUMNS, MAX_BATCH_BODY_BYTES, MAX_BATCH_ITEMS, BatchFormat
from provisioning.idempotency import IDEMPOTENCY_KEY_HEADER, REQUEST_ID_PREFIX
from provisioning.models import (
    MAX_REQUEST_ID_LENGTH,
    CallbackState,
    CommunityRequest,
    CommunitySpec,
    CommunitySubscription,
    ErrorCode,
    FieldError,
    RequestStatus,
    StatusDocument,
    UnsubscribeRequest,
)
from provisioning.problems import PROBLEM_CONTENT_TYPE, ProblemCode

Dialect = Literal["openapi3", "swagger2"]

OPENAPI_VERSION = "3.0.3"
API_TITLE = "Viva Engage Community Provisioner"
# Power Platform limits a connector's title to 30 characters.
CONNECTOR_TITLE = "Viva Engage Communities"
API_VERSION = "1.0.0"
BASE_PATH = "/api"  # host.json extensions.http.routePrefix
# Only a placeholder: every call goes to the connection's host (the dynamichosturl policy of
# connector/apiProperties.json replaces host and basePath with https://<Host name>/api).
CONNECTOR_HOST = "your-function-app.azurewebsites.net"
FUNCTION_KEY_HEADER = "x-functions-key"
FUNCTION_KEY_QUERY = "code"
# The publisher's details in both documents (info.contact) and the connector's metadata. The .example names
# (RFC 2606) are placeholders: set the deploying organisation's here, regenerate, and set the same publisher
# in connector/apiProperties.json (a test checks that they agree).
CONNECTOR_PUBLISHER = "Viva Engage Community Provisioner maintainers"
CONTACT = {
    "name": CONNECTOR_PUBLISHER,
    "url": "https://viva-engage-provisioner.example/support",
    "email": "support@viva-engage-provisioner.example",
}
CONNECTOR_METADATA = (
    ("Website", "https://viva-engage-provisioner.example"),
    ("Privacy policy", "https://viva-engage-provisioner.example/privacy"),
    ("Categories", "Collaboration;IT Operations"),
)
JSON_CONTENT_TYPE = "application/json"
CSV_CONTENT_TYPE = "text/csv"

COMMUNITIES_PATH = "/communities"
REQUEST_PATH = "/communities/requests/{id}"
REQUESTS_PATH = "/communities/requests"
RETRY_PATH = "/communities/requests/{id}/retry"
STATUS_NOW_PATH = "/communities/requests/{id}/status"
BATCHES_PATH = "/communities/batches"
BATCH_PATH = "/communities/batches/{id}"
BATCH_RETRY_PATH = "/communities/batches/{id}/retry"
OPENAPI_PATH = "/openapi.json"
SUBSCRIPTIONS_PATH = "/communities/subscriptions"
UNSUBSCRIBE_PATH = "/communities/subscriptions/unsubscribe"
REQUEST_ID_PATTERN = f"^{REQUEST_ID_PREFIX}[0-9a-f]{{32}}$"
BATCH_ID_PATTERN = f"^{BATCH_ID_PREFIX}[0-9a-f]{{32}}$"
# Item pages of GET /api/communities/batches/{id} (triggers/batch_api.py; tests check they agree).
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

REPO_ROOT = Path(__file__).resolve().parents[1]
OPENAPI_FILE = "openapi/openapi.json"
CONNECTOR_FILE = "connector/apiDefinition.swagger.json"
WRITE_COMMAND = "python -m provisioning.openapi --write"

# How the connector's action card shows the body fields (of a request, a batch and a batch's items): the
# required ones up front, the rarely needed ones under "Show advanced options". callbackUrl is hidden: a
# connector action waits by following Location, and a maker has no listCallbackUrl() to put there (that is
# the HTTP Webhook action's recipe).
CONNECTOR_BODY_VISIBILITY = {
    "displayName": "important",
    "owners": "important",
    "items": "important",
    "onDuplicateName": "advanced",
    "callbackUrl": "internal",
}
_ACRONYMS = {"id": "ID", "url": "URL", "uri": "URI"}
# What the connector's drop-downs show for the values of the request's enums (x-ms-enum-values).
CONNECTOR_ENUM_DISPLAY_NAMES = {
    "privacy": {
        "private": "Private: members only",
        "public": "Public: anyone in the organization",
    },
    "onDuplicateName": {
        "fail": "Fail if the name is taken",
        "adopt": "Use the existing community",
        "create": "Create another one with the same name",
    },
}


# ----------------------------------------------------------------------------------------------------
# Answer bodies that are plain dicts in the triggers: described here, checked against real answers in tests.


class AcceptedAnswer(BaseModel):
    """The body of `202 Accepted` from `POST /api/communities`."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="Request id (`req-...`).", examples=["req-3f2a9c0d4b1e4f6a8b7c9d0e1f2a3b4c"])
    status: Literal["Running"] = Field(description="Always `Running` on this answer.")
    status_uri: str = Field(
        alias="statusUri",
        description="Absolute status URL, the same as the `Location` header.",
        examples=["https://your-function-app.azurewebsites.net/api/communities/requests/req-3f2a9c0d..."],
    )


class Problem(BaseModel):
    """An error answer (RFC 9457 problem details, `application/problem+json`)."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(
        description="URI naming the problem type.",
        examples=["urn:community-provisioner:problem:ValidationFailed"],
    )
    title: str = Field(description="Short summary of the problem type.")
    status: int = Field(description="The HTTP status code.", examples=[400])
    detail: str = Field(description="What went wrong, naming every offending field.")
    code: ProblemCode = Field(description="Machine-readable problem code for flows to branch on.")
    instance: str | None = Field(
        default=None, description="Status URL of the request or batch concerned, if any."
    )
    errors: list[FieldError] | None = Field(default=None, description="Field errors (400, 413, 415).")
    request_status: RequestStatus | None = Field(
        default=None, alias="requestStatus", description="NotCancelable only: the finished request's status."
    )
    batch_status: BatchStatus | None = Field(
        default=None, alias="batchStatus", description="NotCancelable of a batch only: the batch's status."
    )


# ----------------------------------------------------------------------------------------------------
# Batches: the JSON body (parsed by provisioning.batches, described here) and the answers.

BATCH_ID_EXAMPLE = "batch-9d0c4e2a7b1f4c3d8e6a5b4c3d2e1f0a"


class CommunityBatchRequest(BaseModel):
    """The JSON body of `POST /api/communities/batches`; one invalid item rejects the whole batch."""

    model_config = ConfigDict(extra="forbid")

    items: list[CommunitySpec] = Field(
        min_length=1,
        max_length=MAX_BATCH_ITEMS,
        description=f"1 to {MAX_BATCH_ITEMS:,} communities, each with the fields and rules of a "
        "`POST /api/communities` body but no `callbackUrl`. Display names must differ (ignoring case) unless "
        "`onDuplicateName` is `create`.",
    )
    callback_url: str | None = Field(
        default=None,
        alias="callbackUrl",
        description="Optional https URL that receives the final batch document (without items) as a POST, "
        "once, when every item has settled. Its host must be on the app's allow-list.",
        examples=[
            "https://prod-01.westeurope.logic.azure.com/workflows/abc/runs/def/actions/wait/run?sig=..."
        ],
    )


class BatchAcceptedAnswer(BaseModel):
    """The body of `202 Accepted` from `POST /api/communities/batches`."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="Batch id (`batch-...`).", examples=[BATCH_ID_EXAMPLE])
    status: Literal["Running"] = Field(description="Always `Running` on this answer.")
    status_uri: str = Field(
        alias="statusUri",
        description="Absolute URL of the batch, the same as the `Location` header.",
        examples=["https://your-function-app.azurewebsites.net/api/communities/batches/batch-9d0c4e2a..."],
    )


class BatchValidationAnswer(BaseModel):
    """The body of `200 OK` from `POST /api/communities/batches?validateOnly=true`: nothing was started."""

    model_config = ConfigDict(extra="forbid")

    valid: Literal[True] = Field(description="Always `true`: an invalid batch is a 400 problem.")
    items: int = Field(ge=1, description="Number of items (JSON) or data rows (CSV).", examples=[2])
    format: BatchFormat = Field(description="How the body was read.", examples=["csv"])


class BatchCounts(BaseModel):
    """Items by status; they add up to `total`."""

    model_config = ConfigDict(extra="forbid")

    running: int = Field(default=0, ge=0, alias="Running", description="Started, not yet settled.")
    succeeded: int = Field(default=0, ge=0, alias="Succeeded")
    failed: int = Field(default=0, ge=0, alias="Failed")
    canceled: int = Field(
        default=0, ge=0, alias="Canceled", description="Canceled, or never started because of a cancel."
    )
    not_started: int = Field(
        default=0, ge=0, alias="NotStarted", description="Waiting for a place among the items in flight."
    )


BatchItemStatus = Literal["NotStarted", "Running", "Succeeded", "Failed", "Canceled"]


class BatchItem(BaseModel):
    """One item of a batch: an ordinary request, whose full status document is at `statusUri`."""

    model_config = ConfigDict(extra="forbid")

    index: int = Field(
        ge=0,
        description="0-based position: `items[index]` of a JSON batch, data row `index + 1` of a CSV batch.",
        examples=[0],
    )
    display_name: str = Field(alias="displayName", examples=["Contoso Engineering"])
    request_id: str = Field(
        alias="requestId",
        description="The item's request id (`req-...`).",
        examples=["req-3f2a9c0d4b1e4f6a8b7c9d0e1f2a3b4c"],
    )
    status_uri: str = Field(
        alias="statusUri",
        description="Absolute status URL of the item's request (404 until the item has started).",
        examples=["https://your-function-app.azurewebsites.net/api/communities/requests/req-3f2a9c0d..."],
    )
    status: BatchItemStatus = Field(examples=["Succeeded"])
    community_id: str | None = Field(
        default=None, alias="communityId", description="The Viva Engage community id, once confirmed."
    )
    error_code: ErrorCode | None = Field(
        default=None, alias="errorCode", description="Failed or Canceled: the item's `error.code`."
    )


class BatchDocument(BaseModel):
    """The state of a batch: GET answers it with a page of items; DELETE and the callback without items."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="Batch id (`batch-...`).", examples=[BATCH_ID_EXAMPLE])
    status: BatchStatus = Field(
        description="`Running` until every item has settled; then `Succeeded` (all items), "
        "`PartiallySucceeded` (some), `Failed` (none) or `Canceled` (after a cancel, unless all succeeded).",
        examples=["Running"],
    )
    created_at: str | None = Field(default=None, alias="createdAt", examples=["2026-01-01T10:00:00Z"])
    last_updated_at: str | None = Field(
        default=None, alias="lastUpdatedAt", examples=["2026-01-01T10:01:30Z"]
    )
    total: int = Field(ge=1, description="Number of items.", examples=[12])
    counts: BatchCounts
    progress: int | None = Field(
        default=None, ge=0, le=100, description="Percent of the items settled, rounded down.", examples=[25]
    )
    estimated_completion_at: str | None = Field(
        default=None,
        alias="estimatedCompletionAt",
        description="While running: when the batch should be done at the pace of the app's Viva Engage "
        f"budget (each item needs at least {MIN_REQUESTS_PER_COMMUNITY} requests).",
        examples=["2026-01-01T10:03:00Z"],
    )
    cancel_requested: bool | None = Field(
        default=None, alias="cancelRequested", description="Present (`true`) once the batch was canceled."
    )
    callback: CallbackState | None = Field(default=None, description="Delivery of the batch's callback.")
    request_id: str | None = Field(
        default=None, alias="requestId", description="The queue message's requestId (queue channel only)."
    )
    items: list[BatchItem] | None = Field(
        default=None, description="GET only: one page of the items, in index order (`skip`, `top`)."
    )
    next_link: str | None = Field(
        default=None, alias="nextLink", description="GET only: URL of the next page, while more items follow."
    )
    retry_of: str | None = Field(
        default=None, alias="retryOf", description="A retry batch: the batch whose items it starts again."
    )
    retried_by: str | None = Field(
        default=None,
        alias="retriedBy",
        description="GET of a settled batch that was retried: the id of its retry batch.",
    )


class BatchRetryAcceptedAnswer(BaseModel):
    """The body of `202 Accepted` from `POST /api/communities/batches/{id}/retry`."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="Id of the retry batch (the same for every retry of one batch).")
    status: BatchStatus = Field(description="The retry batch's status.")
    status_uri: str = Field(alias="statusUri", description="Absolute URL of the retry batch, as Location.")
    retry_of: str = Field(alias="retryOf", description="The retried batch.")
    total: int = Field(ge=1, description="Items started again: those that did not succeed.")


class BatchSummary(BatchDocument):
    """One row of `GET /api/communities/batches`: the batch document as its GET answers it, without items."""

    status_uri: str = Field(
        alias="statusUri",
        description="Absolute URL of the batch (its document with the items).",
        examples=["https://your-function-app.azurewebsites.net/api/communities/batches/batch-9d0c4e2a..."],
    )


class BatchList(BaseModel):
    """The answer of `GET /api/communities/batches`: one page of batches, newest first."""

    model_config = ConfigDict(extra="forbid")

    items: list[BatchSummary] = Field(description="The page's batches, newest first.")
    next_link: str | None = Field(
        default=None, alias="nextLink", description="URL of the next page (also in the Link header)."
    )


class RequestSummary(BaseModel):
    """One row of `GET /api/communities/requests`: the summary of a request's status document."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="Request id (`req-...`).")
    display_name: str | None = Field(default=None, alias="displayName")
    status: RequestStatus = Field(description="Running, Succeeded, Failed or Canceled.")
    phase: str | None = Field(default=None, description="The request's last phase.")
    created_at: str | None = Field(default=None, alias="createdAt")
    last_updated_at: str | None = Field(default=None, alias="lastUpdatedAt")
    error_code: str | None = Field(default=None, alias="errorCode", description="`error.code`, if any.")
    community_id: str | None = Field(default=None, alias="communityId")
    status_uri: str = Field(alias="statusUri", description="Absolute status URL of the request.")
    retry_of: str | None = Field(default=None, alias="retryOf", description="The request this one retries.")
    retried_by: str | None = Field(default=None, alias="retriedBy", description="The retry of this request.")


class RequestList(BaseModel):
    """The answer of `GET /api/communities/requests`: one page of requests, newest first."""

    model_config = ConfigDict(extra="forbid")

    items: list[RequestSummary] = Field(description="The page's requests, newest first.")
    next_link: str | None = Field(
        default=None, alias="nextLink", description="URL of the next page (also in the Link header)."
    )


class RetryAcceptedAnswer(BaseModel):
    """The body of `202 Accepted` from `POST /api/communities/requests/{id}/retry`."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="Id of the new request (the same for every retry of one request).")
    status: RequestStatus = Field(description="The new request's status.")
    status_uri: str = Field(alias="statusUri", description="Absolute status URL, the same as Location.")
    retry_of: str = Field(alias="retryOf", description="The retried request.")


class RetryConflict(BaseModel):
    """409 of a retry: the request is Running or Succeeded (problem details)."""

    model_config = ConfigDict(extra="forbid")

    type: str
    title: str
    status: int
    detail: str
    code: Literal["NotRetryable"]
    instance: str | None = None
    request_status: RequestStatus = Field(alias="requestStatus")


# ----------------------------------------------------------------------------------------------------
# The operation table: every HTTP function of the app, with what it answers.


@dataclass(frozen=True)
class Content:
    schema: str | None  # component name; None = free-form JSON object
    content_type: str = JSON_CONTENT_TYPE


@dataclass(frozen=True)
class Response:
    description: str
    # OpenAPI 3 lists each content type (a oneOf where one type has two schemas); Swagger 2.0 has one schema
    # per answer, so an answer with two schemas gets a definition whose properties are those of both.
    contents: tuple[Content, ...] = ()
    headers: tuple[str, ...] = ()  # names from HEADERS
    # The connector's answer when it differs: what the action ends with after following Location.
    connector: Response | None = None
    # Only in the connector: an action's outputs after following Location (the call itself never answers it).
    connector_only: bool = False


@dataclass(frozen=True)
class Parameter:
    name: str
    location: Literal["path", "header", "query"]
    summary: str
    description: str
    required: bool
    schema: dict[str, Any]
    visibility: str | None = None
    in_connector: bool = True


@dataclass(frozen=True)
class Body:
    schema: str  # component name of the JSON body; its examples come from ``body_examples``
    summary: str  # the connector's label of the body parameter
    description: str
    csv: bool = False  # text/csv too: OpenAPI 3 only, a connector operation takes JSON


@dataclass(frozen=True)
class Operation:
    function_name: str  # the Functions function serving it (checked against the app's registrations)
    method: str
    path: str
    operation_id: str
    summary: str
    description: str
    responses: dict[str, Response]
    parameters: tuple[Parameter, ...] = ()
    body: Body | None = None
    visibility: str | None = None
    in_connector: bool = True


# Answer headers: (description, OpenAPI 3.0 schema); Swagger 2.0 takes the schema's type.
HEADERS: dict[str, tuple[str, dict[str, Any]]] = {
    "Location": (
        "Absolute status URL to poll with GET: on the connection's gateway when the call came through the "
        "connector, else on the API (carrying `?code=` when the call used it).",
        {"type": "string", "format": "uri"},
    ),
    "Retry-After": ("Seconds to wait before calling again.", {"type": "integer", "minimum": 1}),
}
POLLING_HEADERS = ("Location", "Retry-After")


def _problem(description: str) -> Response:
    return Response(description, (Content("Problem", PROBLEM_CONTENT_TYPE),))


def _unavailable(description: str) -> Response:
    """503 with a problem and Retry-After: nothing was done, the client sends the same request again."""
    return Response(description, (Content("Problem", PROBLEM_CONTENT_TYPE),), ("Retry-After",))


def _paging_parameters(rows: str) -> tuple[Parameter, Parameter]:
    """``top`` and ``continuationToken`` of a list (``rows``: what the page holds)."""
    return (
        Parameter(
            name="top",
            location="query",
            summary="Top",
            description=f"{rows} on the page, 1 to 500 (default 50).",
            required=False,
            schema={"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
            visibility="advanced",
        ),
        Parameter(
            name="continuationToken",
            location="query",
            summary="Continuation Token",
            description="From nextLink: the page after it.",
            required=False,
            schema={"type": "string"},
            visibility="advanced",
        ),
    )


def _document(description: str, *, polling: bool = False, schema: str = "StatusDocument") -> Response:
    return Response(description, (Content(schema),), POLLING_HEADERS if polling else ())


_UNAUTHORIZED = Response(
    "The key is missing, wrong, or a key of another function (answered by the Functions host, no body)."
)
_REQUEST_ID = Parameter(
    name="id",
    location="path",
    summary="Request ID",
    description="The request id (`req-...`) from the start answer or its `Location` URL.",
    required=True,
    schema={"type": "string", "pattern": REQUEST_ID_PATTERN},
)
_IDEMPOTENCY_KEY = Parameter(
    name=IDEMPOTENCY_KEY_HEADER,
    location="header",
    summary="Idempotency Key",
    description="Makes a retried action safe: enter the flow run's name, the expression "
    "workflow()?['run']?['name'] (in a loop, add the item's ID). A retry with the same key and community "
    "creates nothing new and answers with the first request; the same key with other details fails (409 "
    "IdempotencyConflict). Empty: every run creates a community. Up to 256 characters.",
    required=False,
    schema={"type": "string", "minLength": 1, "maxLength": MAX_REQUEST_ID_LENGTH},
    visibility="important",
)
_BATCH_ID = Parameter(
    name="id",
    location="path",
    summary="Batch ID",
    description="The batch id (`batch-...`) from the start answer or its `Location` URL.",
    required=True,
    schema={"type": "string", "pattern": BATCH_ID_PATTERN},
)
_BATCH_IDEMPOTENCY_KEY = dataclasses.replace(
    _IDEMPOTENCY_KEY,
    description="Makes a retried action safe: enter the flow run's name, the expression "
    "workflow()?['run']?['name']. A retry with the same key and items starts nothing new and answers with "
    "the first batch; the same key with other items fails (409 IdempotencyConflict). Empty: every run "
    "starts a batch. Up to 256 characters.",
)
_VALIDATE_ONLY = Parameter(
    name="validateOnly",
    location="query",
    summary="Validate Only",
    description="`true`: validate the batch and answer 200 with the item count; nothing is started.",
    required=False,
    schema={"type": "boolean", "default": False},
    in_connector=False,  # the connector's 200 is the final batch document
)
_SKIP = Parameter(
    name="skip",
    location="query",
    summary="Skip",
    description="Items to skip before the page (0-based index of its first item).",
    required=False,
    schema={"type": "integer", "minimum": 0, "default": 0},
    visibility="advanced",
)
_TOP = Parameter(
    name="top",
    location="query",
    summary="Top",
    description=f"Items on the page, 1 to {MAX_PAGE_SIZE:,} (default {DEFAULT_PAGE_SIZE}).",
    required=False,
    schema={"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": DEFAULT_PAGE_SIZE},
    visibility="advanced",
)
_BATCH_DOCUMENT = "BatchDocument"
# HTTP functions of the app that are not part of the API, so in neither document: the operators' page
# (HTML, anonymous because it holds no data; triggers/dashboard.py).
UNDESCRIBED_FUNCTIONS = frozenset({"get_dashboard"})

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        function_name="start_community_request",
        method="post",
        path=COMMUNITIES_PATH,
        operation_id="StartCommunityRequest",
        summary="Create a Viva Engage community",
        description="Validates the request and starts creating the community. Answers 202 with the status "
        "URL in Location and Retry-After; Power Automate follows it until the request has finished, so the "
        "action's outputs are the final status document (200), or the action fails (422 Failed, 409 "
        "Canceled). A retried POST with the same Idempotency-Key answers from the existing request.",
        parameters=(_IDEMPOTENCY_KEY,),
        body=Body("CommunityRequest", "Community", "The community to create."),
        visibility="important",
        responses={
            "200": _document(
                "Succeeded: the final status document (after following Location; also the direct answer "
                "when the Idempotency-Key belongs to a request that has finished)."
            ),
            "202": Response(
                "Accepted and running: poll Location.", (Content("AcceptedAnswer"),), POLLING_HEADERS
            ),
            "400": _problem("ValidationFailed: the body or the Idempotency-Key is invalid; nothing started."),
            "401": _UNAUTHORIZED,
            "409": Response(
                "IdempotencyConflict (a problem, application/problem+json): the key was used with a "
                "different body; or, for a key whose request was canceled, the Canceled status document "
                "(application/json).",
                (Content("Problem", PROBLEM_CONTENT_TYPE), Content("StatusDocument")),
            ),
            "413": _problem("PayloadTooLarge: the body exceeds 64 KiB."),
            "415": _problem("UnsupportedMediaType: Content-Type is not application/json (UTF-8)."),
            "422": _document("Failed: the request with this Idempotency-Key has finished and failed."),
            "503": _unavailable(
                "ServiceUnavailable: not started (storage fault); send it again after Retry-After."
            ),
        },
    ),
    Operation(
        function_name="get_community_request",
        method="get",
        path=REQUEST_PATH,
        operation_id="GetCommunityRequest",
        summary="Get the status of a community request",
        description="The request's status document: 202 while running (with Location and Retry-After, so "
        "Power Automate waits for the outcome), 200 when it succeeded, 422 when it failed, 409 when it was "
        "canceled.",
        parameters=(_REQUEST_ID,),
        visibility="advanced",
        responses={
            "200": _document("Succeeded: the community exists (see community and members)."),
            "202": _document("Running: poll Location again after Retry-After seconds.", polling=True),
            "401": _UNAUTHORIZED,
            "404": _problem("NotFound: no request with this id."),
            "409": _document("Canceled: the request was canceled (error.code Canceled)."),
            "422": _document("Failed: see error.code and error.message."),
        },
    ),
    Operation(
        function_name="get_community_request_now",
        method="get",
        path=STATUS_NOW_PATH,
        operation_id="GetRequestStatusNow",
        summary="Get the current status of a community request",
        description="The request's status document at once: always 200 for a known request, also while "
        "it runs and when it failed or was canceled, and never waits. Use it to show progress (phase, "
        "operation) or to branch on status; Get the status of a community request waits for the outcome.",
        parameters=(_REQUEST_ID,),
        visibility="advanced",
        responses={
            "200": _document("The status document as it is now: Running, Succeeded, Failed or Canceled."),
            "401": _UNAUTHORIZED,
            "404": _problem("NotFound: no request with this id."),
        },
    ),
    Operation(
        function_name="cancel_community_request",
        method="delete",
        path=REQUEST_PATH,
        operation_id="CancelCommunityRequest",
        summary="Cancel a community request",
        description="Stops a running request at its current wait or next step; the request ends as Canceled "
        "and its callback (and queue result) carries the Canceled status document, once. A creation Graph "
        "has already accepted is not undone: the community may still appear.",
        parameters=(_REQUEST_ID,),
        visibility="advanced",
        responses={
            "200": _document("Canceled: the Canceled status document."),
            "202": _document(
                "Cancel requested but not yet processed: Location shows Canceled (409) once it is.",
                polling=True,
            ),
            "401": _UNAUTHORIZED,
            "404": _problem("NotFound: no request with this id."),
            "409": _problem("NotCancelable: the request's outcome is already settled (see requestStatus)."),
            "503": _unavailable(
                "ServiceUnavailable: the cancel could not be delivered (storage fault); send it again after "
                "Retry-After."
            ),
        },
    ),
    Operation(
        function_name="start_batch",
        method="post",
        path=BATCHES_PATH,
        operation_id="StartCommunityBatch",
        summary="Create Viva Engage communities in a batch",
        description="Validates every item (all or nothing: one invalid item rejects the batch, listing "
        "every error) and starts each as an ordinary request. Answers 202 with the batch URL in Location and "
        "Retry-After; Power Automate follows it until every item has settled, so the action's outputs are "
        "the final batch document with the first page of items (200 also when items failed: check status "
        "and counts). Over plain HTTP the body may also be text/csv and validateOnly=true only validates; "
        "the connector sends JSON. A retried POST with the same Idempotency-Key and items answers from the "
        "existing batch.",
        parameters=(_BATCH_IDEMPOTENCY_KEY, _VALIDATE_ONLY),
        body=Body("CommunityBatchRequest", "Batch", "The communities to create.", csv=True),
        visibility="important",
        responses={
            "200": Response(
                "validateOnly=true: the batch is valid and nothing was started (BatchValidationAnswer); or "
                "the settled batch of this Idempotency-Key and items, without items (BatchDocument).",
                (Content("BatchValidationAnswer"), Content(_BATCH_DOCUMENT)),
                connector=_document(
                    "Settled: the final batch document (after following Location).", schema=_BATCH_DOCUMENT
                ),
            ),
            "202": Response(
                "Accepted (or the running batch of this Idempotency-Key and items): poll Location.",
                (Content("BatchAcceptedAnswer"),),
                POLLING_HEADERS,
            ),
            "400": _problem(
                "ValidationFailed: an item (located by JSON path, or CSV row and column), the batch or the "
                "Idempotency-Key is invalid; nothing started."
            ),
            "401": _UNAUTHORIZED,
            "409": _problem("IdempotencyConflict: the key was used for a batch with other items."),
            "413": _problem(f"PayloadTooLarge: the body exceeds {MAX_BATCH_BODY_BYTES // 2**20} MiB."),
            "415": _problem(
                "UnsupportedMediaType: Content-Type is neither application/json nor text/csv (UTF-8)."
            ),
            "503": _unavailable(
                "ServiceUnavailable: not started (storage fault); send it again after Retry-After."
            ),
        },
    ),
    Operation(
        function_name="get_batch",
        method="get",
        path=BATCH_PATH,
        operation_id="GetCommunityBatch",
        summary="Get the status of a community batch",
        description="The batch document with one page of items (skip, top; nextLink while more follow): 202 "
        "while running (with Location and Retry-After, so Power Automate waits), 200 once every item has "
        "settled, whatever the outcome. Each item's statusUri holds its full status document.",
        parameters=(_BATCH_ID, _SKIP, _TOP),
        visibility="advanced",
        responses={
            "200": _document(
                "Settled: Succeeded, PartiallySucceeded, Failed or Canceled.", schema=_BATCH_DOCUMENT
            ),
            "202": _document(
                "Running: poll Location again after Retry-After seconds.",
                polling=True,
                schema=_BATCH_DOCUMENT,
            ),
            "400": _problem("ValidationFailed: skip or top is out of range."),
            "401": _UNAUTHORIZED,
            "404": _problem("NotFound: no batch with this id."),
        },
    ),
    Operation(
        function_name="cancel_batch",
        method="delete",
        path=BATCH_PATH,
        operation_id="CancelCommunityBatch",
        summary="Cancel a community batch",
        description="Starts no more items and cancels every item in flight; items never started end as "
        "Canceled. The batch ends as Canceled (Succeeded if every item had already succeeded) and sends its "
        "callback once. Creations Graph has already accepted are not undone.",
        parameters=(_BATCH_ID,),
        visibility="advanced",
        responses={
            "202": _document(
                "Cancel requested: the batch document with cancelRequested (no items); Location shows the "
                "batch until it has settled.",
                polling=True,
                schema=_BATCH_DOCUMENT,
            ),
            "401": _UNAUTHORIZED,
            "404": _problem("NotFound: no batch with this id."),
            "409": _problem("NotCancelable: the batch has already settled (see batchStatus)."),
            "503": _unavailable(
                "ServiceUnavailable: the cancel could not be delivered (storage fault); send it again after "
                "Retry-After."
            ),
        },
    ),
    Operation(
        function_name="retry_batch",
        method="post",
        path=BATCH_RETRY_PATH,
        operation_id="RetryCommunityBatch",
        summary="Retry the items of a community batch that did not succeed",
        description="Starts the failed, canceled and never started items of a settled batch again, as a "
        "new batch (retryOf names the old one; its items' retryOf name the requests they retry). A repeated "
        "retry answers the same new batch. Answers 202 with its URL in Location.",
        parameters=(_BATCH_ID,),
        visibility="advanced",
        responses={
            "200": dataclasses.replace(
                _document(
                    "Settled: the retry batch's final document (after following Location).",
                    schema=_BATCH_DOCUMENT,
                ),
                connector_only=True,
            ),
            "202": Response(
                "The retry batch: poll Location.", (Content("BatchRetryAcceptedAnswer"),), POLLING_HEADERS
            ),
            "401": _UNAUTHORIZED,
            "404": _problem("NotFound: no batch with this id."),
            "409": _problem(
                "NotRetryable: the batch is still running, or every item succeeded (see batchStatus)."
            ),
            "503": _unavailable("ServiceUnavailable: the retry was not started; send it again."),
        },
    ),
    Operation(
        function_name="list_community_requests",
        method="get",
        path=REQUESTS_PATH,
        operation_id="ListCommunityRequests",
        summary="List community requests",
        description="Requests newest first, filtered by status, display name and creation time, one page at "
        "a time: while more follow, nextLink (and a Link rel=next header) holds the URL of the next page.",
        parameters=(
            Parameter(
                name="status",
                location="query",
                summary="Status",
                description="Comma-separated: Running, Succeeded, Failed, Canceled.",
                required=False,
                schema={"type": "string"},
                visibility="advanced",
            ),
            Parameter(
                name="displayName",
                location="query",
                summary="Display Name",
                description="Part of the display name (case-insensitive).",
                required=False,
                schema={"type": "string"},
                visibility="advanced",
            ),
            Parameter(
                name="createdFrom",
                location="query",
                summary="Created From",
                description="Created at or after (ISO-8601).",
                required=False,
                schema={"type": "string", "format": "date-time"},
                visibility="advanced",
            ),
            Parameter(
                name="createdTo",
                location="query",
                summary="Created To",
                description="Created at or before (ISO-8601).",
                required=False,
                schema={"type": "string", "format": "date-time"},
                visibility="advanced",
            ),
            Parameter(
                name="batchId",
                location="query",
                summary="Batch ID",
                description="Only the items of this batch (`batch-...`).",
                required=False,
                schema={"type": "string", "pattern": BATCH_ID_PATTERN},
                visibility="advanced",
            ),
            *_paging_parameters("Requests"),
        ),
        visibility="advanced",
        responses={
            "200": _document("One page of requests.", schema="RequestList"),
            "400": _problem("ValidationFailed: a filter, top or the continuation token is invalid."),
            "401": _UNAUTHORIZED,
            "503": _unavailable("ServiceUnavailable: the requests could not be listed; try again."),
        },
    ),
    Operation(
        function_name="list_community_batches",
        method="get",
        path=BATCHES_PATH,
        operation_id="ListCommunityBatches",
        summary="List community batches",
        description="Batches newest first, filtered by status, one page at a time: each row is the batch's "
        "document (counts, progress, estimated completion) without items, with its URL; while more follow, "
        "nextLink (and a Link rel=next header) holds the URL of the next page.",
        parameters=(
            Parameter(
                name="status",
                location="query",
                summary="Status",
                description="Comma-separated: Running, Succeeded, PartiallySucceeded, Failed, Canceled.",
                required=False,
                schema={"type": "string"},
                visibility="advanced",
            ),
            *_paging_parameters("Batches"),
        ),
        visibility="advanced",
        responses={
            "200": _document("One page of batches.", schema="BatchList"),
            "400": _problem("ValidationFailed: status, top or the continuation token is invalid."),
            "401": _UNAUTHORIZED,
            "503": _unavailable("ServiceUnavailable: the batches could not be listed; try again."),
        },
    ),
    Operation(
        function_name="retry_community_request",
        method="post",
        path=RETRY_PATH,
        operation_id="RetryCommunityRequest",
        summary="Retry a failed or canceled community request",
        description="Starts the request again with the same input as a new request (retryOf names the old "
        "one). A repeated retry answers the same new request. Answers 202 with its status URL in Location.",
        parameters=(_REQUEST_ID,),
        visibility="advanced",
        responses={
            "200": dataclasses.replace(
                _document("Succeeded: the new request's final status document (after following Location)."),
                connector_only=True,
            ),
            "202": Response(
                "The new request: poll Location.", (Content("RetryAcceptedAnswer"),), POLLING_HEADERS
            ),
            "401": _UNAUTHORIZED,
            "404": _problem("NotFound: no request with this id."),
            "409": Response(
                "NotRetryable: the request is Running or Succeeded.",
                (Content("RetryConflict", PROBLEM_CONTENT_TYPE),),
            ),
            "503": _unavailable("ServiceUnavailable: the retry was not started; send it again."),
        },
    ),
    # The HTTP Webhook action's subscribe and unsubscribe calls (docs/power-automate.md, recipe 2). Not in the
    # connector: a connector action has no listCallbackUrl() to send.
    Operation(
        function_name="subscribe_community_request",
        method="post",
        path=SUBSCRIPTIONS_PATH,
        operation_id="SubscribeCommunityRequest",
        summary="Create a Viva Engage community and report to a callback URL",
        description="The subscribe call of an HTTP Webhook action: the body of POST /communities with a "
        "required callbackUrl (listCallbackUrl()), which receives the final status document once. The "
        "callback URL is the idempotency key: a retried subscribe starts nothing new. Answers 202 without "
        "Location or Retry-After, so that the action waits for the callback instead of polling.",
        body=Body("CommunitySubscription", "Community", "The community to create and the callback URL."),
        responses={
            "200": _document("Succeeded: the request of this callback URL has already finished."),
            "202": Response("Accepted and running: the callback follows.", (Content("AcceptedAnswer"),)),
            "400": _problem("ValidationFailed: the body is invalid or has no callbackUrl; nothing started."),
            "401": _UNAUTHORIZED,
            "409": Response(
                "IdempotencyConflict (problem): the callback URL was used with a different body; or the "
                "Canceled status document of its request.",
                (Content("Problem", PROBLEM_CONTENT_TYPE), Content("StatusDocument")),
            ),
            "413": _problem("PayloadTooLarge: the body exceeds 64 KiB."),
            "415": _problem("UnsupportedMediaType: Content-Type is not application/json (UTF-8)."),
            "422": _document("Failed: the request of this callback URL has already finished and failed."),
            "503": _unavailable("ServiceUnavailable: not started (storage fault); send it again."),
        },
        in_connector=False,
    ),
    Operation(
        function_name="unsubscribe_community_request",
        method="post",
        path=UNSUBSCRIBE_PATH,
        operation_id="UnsubscribeCommunityRequest",
        summary="Cancel the community request of a callback URL",
        description="The unsubscribe call of an HTTP Webhook action (flow run canceled, action timed out, "
        "or after the callback): cancels the request that this callbackUrl subscribed, and no other, like "
        "DELETE on its status URL. A request that has finished is left as it is (200).",
        body=Body("UnsubscribeRequest", "Subscription", "The callback URL the subscribe call sent."),
        responses={
            "200": _document("The request's outcome is settled: Canceled now, or as it had finished."),
            "202": _document("Cancel requested but not yet processed: the Canceled callback follows."),
            "400": _problem("ValidationFailed: the body has no callbackUrl."),
            "401": _UNAUTHORIZED,
            "404": _problem("NotFound: no request was subscribed with this callback URL."),
            "413": _problem("PayloadTooLarge: the body exceeds 64 KiB."),
            "415": _problem("UnsupportedMediaType: Content-Type is not application/json (UTF-8)."),
            "503": _unavailable("ServiceUnavailable: the cancel could not be delivered; send it again."),
        },
        in_connector=False,
    ),
    Operation(
        function_name="get_openapi_document",
        method="get",
        path=OPENAPI_PATH,
        operation_id="GetOpenApiDocument",
        summary="Get this OpenAPI description",
        description="This document (OpenAPI 3.0).",
        responses={"200": Response("The OpenAPI document.", (Content(None),)), "401": _UNAUTHORIZED},
        in_connector=False,
    ),
)


# ----------------------------------------------------------------------------------------------------
# Schemas


def _summary(name: str) -> str:
    """Title-case label of a camelCase JSON name: ``groupId`` → ``Group ID`` (x-ms-summary)."""
    words = re.sub(r"(?<!^)(?=[A-Z])", " ", name).split()
    return " ".join(_ACRONYMS.get(word.lower(), word[:1].upper() + word[1:]) for word in words)


def _markdown(text: str) -> str:
    return text.replace("``", "`")


@dataclass
class _SchemaConverter:
    """pydantic's JSON Schema (2020-12) → the OpenAPI 3.0 / Swagger 2.0 schema subset.

    ``anyOf [X, null]`` becomes X: ``nullable`` where a request may send null, dropped in answers (status
    documents omit empty fields rather than sending null). Enums are inlined so that each property lists its
    values; ``examples`` becomes ``example``; generated titles are dropped (Swagger gets ``x-ms-summary``).
    """

    dialect: Dialect
    definitions: Mapping[str, Any]
    nullable: bool

    def convert(self, node: Mapping[str, Any]) -> dict[str, Any]:
        schema = {key: value for key, value in node.items() if key not in ("title", "$defs")}
        if "anyOf" in schema:
            variants = [variant for variant in schema.pop("anyOf") if variant.get("type") != "null"]
            was_nullable = len(variants) < len(node["anyOf"])
            if [variant.get("type") for variant in variants] == ["array", "string"]:
                # A user list sent as an array or as one separated string (owners, members). Swagger 2.0 has
                # no unions: the connector describes the array, which is what a maker's action card shows.
                if self.dialect == "openapi3":
                    return {**self.convert(schema), "anyOf": [self.convert(variant) for variant in variants]}
                variants = variants[:1]
            if len(variants) != 1:
                raise ValueError(f"unions other than X | None cannot be described: {node}")
            schema = {**variants[0], **schema}
            if was_nullable and self.nullable:
                schema["nullable" if self.dialect == "openapi3" else "x-nullable"] = True
        if "default" in schema and schema["default"] is None:
            del schema["default"]
        if "$ref" in schema:
            schema = self._resolve_ref(schema)
        if "const" in schema:
            schema["enum"] = [schema.pop("const")]
        if "examples" in schema:
            schema["example"] = schema.pop("examples")[0]
        if "description" in schema:
            schema["description"] = _markdown(schema["description"])
        if "properties" in schema:
            schema["properties"] = {
                name: self._property(name, prop) for name, prop in schema["properties"].items()
            }
        if isinstance(schema.get("items"), Mapping):
            schema["items"] = self.convert(schema["items"])
        if "allOf" in schema:
            schema["allOf"] = [self.convert(part) for part in schema["allOf"]]
        return schema

    def _property(self, name: str, node: Mapping[str, Any]) -> dict[str, Any]:
        schema = self.convert(node)
        if self.dialect == "swagger2":
            schema["x-ms-summary"] = _summary(name)
            display_names = CONNECTOR_ENUM_DISPLAY_NAMES.get(name)
            if display_names is not None and "enum" in schema:
                schema["x-ms-enum-values"] = [
                    {"value": value, "displayName": display_names[value]} for value in schema["enum"]
                ]
        return schema

    def _resolve_ref(self, schema: dict[str, Any]) -> dict[str, Any]:
        ref = schema.pop("$ref")
        name = ref.rsplit("/", 1)[-1]
        target = self.definitions[name]
        if "enum" in target:
            return {**self.convert(target), **schema}
        reference = {"$ref": _ref_template(self.dialect).format(model=name)}
        # Siblings of $ref are ignored by OpenAPI 3.0 and Swagger 2.0: keep them through allOf.
        return {"allOf": [reference], **schema} if schema else reference


def _ref_template(dialect: Dialect) -> str:
    return ("#/components/schemas/" if dialect == "openapi3" else "#/definitions/") + "{model}"


def _raw_request_schema() -> dict[str, Any]:
    return CommunityRequest.model_json_schema(by_alias=True, mode="validation", ref_template="{model}")


REQUEST_MODELS: tuple[type[BaseModel], ...] = (CommunityRequest, CommunityBatchRequest)
# Bodies of operations kept out of the connector (OpenAPI 3 only).
WEBHOOK_REQUEST_MODELS: tuple[type[BaseModel], ...] = (CommunitySubscription, UnsubscribeRequest)
ANSWER_MODELS: tuple[type[BaseModel], ...] = (
    StatusDocument,
    AcceptedAnswer,
    Problem,
    BatchAcceptedAnswer,
    BatchValidationAnswer,
    BatchDocument,
    RequestList,
    RetryAcceptedAnswer,
    RetryConflict,
    BatchRetryAcceptedAnswer,
    BatchList,
)


def _definitions(models: Sequence[type[BaseModel]], mode: JsonSchemaMode, dialect: Dialect) -> dict[str, Any]:
    _, schema = models_json_schema(
        [(model, mode) for model in models], by_alias=True, ref_template=_ref_template(dialect)
    )
    definitions: dict[str, Any] = schema["$defs"]
    return definitions


def component_schemas(dialect: Dialect) -> dict[str, Any]:
    """Named schemas: the request bodies (validation), the answers (serialization); enums are inlined."""
    webhook = WEBHOOK_REQUEST_MODELS if dialect == "openapi3" else ()
    requests = _definitions((*REQUEST_MODELS, *webhook), "validation", dialect)
    answers = _definitions(ANSWER_MODELS, "serialization", dialect)
    if set(requests) & set(answers):
        raise ValueError(f"a model is both a request body and an answer: {set(requests) & set(answers)}")
    schemas = {}
    for definitions, nullable in ((requests, True), (answers, False)):
        converter = _SchemaConverter(dialect, definitions, nullable=nullable)
        for name, schema in sorted(definitions.items()):
            if "enum" not in schema:
                schemas[name] = converter.convert(schema)
    if dialect == "swagger2":
        for name in requests:
            properties = schemas[name]["properties"]
            for field, visibility in CONNECTOR_BODY_VISIBILITY.items():
                if field in properties:
                    properties[field]["x-ms-visibility"] = visibility
    return schemas


def request_examples() -> dict[str, dict[str, Any]]:
    """Example bodies built from the field examples: without and with a callback URL."""
    properties = _raw_request_schema()["properties"]
    polling = {name: prop["examples"][0] for name, prop in properties.items() if name != "callbackUrl"}
    return {
        "polling": polling,
        "webhook": {**polling, "callbackUrl": properties["callbackUrl"]["examples"][0]},
    }


def batch_examples() -> dict[str, dict[str, Any]]:
    """Example batches: the request example and a minimal item, without and with a callback URL."""
    examples = request_examples()
    polling = examples["polling"]
    minimal = {"displayName": "Contoso Sales", "owners": polling["owners"][:1], "privacy": "public"}
    items = [polling, minimal]
    return {
        "polling": {"items": items},
        "webhook": {"items": items, "callbackUrl": examples["webhook"]["callbackUrl"]},
    }


def csv_example() -> str:
    """The example batch's items as CSV (users separated by `;`, empty cells for absent fields)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for item in batch_examples()["polling"]["items"]:
        values = (item.get(column, "") for column in CSV_COLUMNS)
        writer.writerow(";".join(value) if isinstance(value, list) else value for value in values)
    return buffer.getvalue()


def subscription_examples() -> dict[str, dict[str, Any]]:
    """The subscribe call's body (the request with its callback URL) and the unsubscribe call's."""
    webhook = request_examples()["webhook"]
    return {"webhook": webhook, "unsubscribe": {"callbackUrl": webhook["callbackUrl"]}}


def body_examples(schema: str) -> dict[str, dict[str, Any]]:
    if schema in ("CommunitySubscription", "UnsubscribeRequest"):
        key = "webhook" if schema == "CommunitySubscription" else "unsubscribe"
        return {key: subscription_examples()[key]}
    return {"CommunityRequest": request_examples, "CommunityBatchRequest": batch_examples}[schema]()


_CSV_BODY_DESCRIPTION = (
    f"CSV, UTF-8: a header naming the columns ({', '.join(CSV_COLUMNS)}; displayName required), then one "
    "row per community; owners and members separated by `;`, an empty cell is an absent field. Not available "
    "in the connector."
)


# ----------------------------------------------------------------------------------------------------
# Documents

_DESCRIPTION = (
    "Creates Viva Engage communities through Microsoft Graph. POST starts a request and answers 202 with an "
    "absolute Location and Retry-After; GET on that URL answers 202 while running, then 200 (Succeeded), 422 "
    "(Failed) or 409 (Canceled). Errors are application/problem+json. Authenticate with a host key in the "
    "x-functions-key header or the code query parameter (a function key opens only its own function, and the "
    "status URL belongs to another function than the start). POST /api/communities/batches starts up to "
    f"{MAX_BATCH_ITEMS:,} requests at once (JSON or CSV); its URL is polled the same way. "
    "GET /api/communities/requests/{id}/status answers the status document at once (200), without waiting."
)
# The connector's description (Power Platform asks for 30 to 500 characters).
CONNECTOR_DESCRIPTION = (
    "Creates Viva Engage communities, one at a time or in batches, and waits until each is ready: owners "
    "and members added, or a clear error such as a name already taken. Retried actions are safe with an "
    "idempotency key. Runs on your organization's Viva Engage Community Provisioner (an Azure function app); "
    "sign in with a function key or Microsoft Entra ID."
)


def _parameter(parameter: Parameter, dialect: Dialect) -> dict[str, Any]:
    common = {"name": parameter.name, "in": parameter.location, "required": parameter.required}
    if dialect == "openapi3":
        return {**common, "description": parameter.description, "schema": dict(parameter.schema)}
    rendered = {**common, **parameter.schema, "description": parameter.description}
    rendered["x-ms-summary"] = parameter.summary
    if parameter.visibility:
        rendered["x-ms-visibility"] = parameter.visibility
    return rendered


def _schema_ref(name: str | None, dialect: Dialect) -> dict[str, Any]:
    if name is None:
        return {"type": "object"}
    return {"$ref": _ref_template(dialect).format(model=name)}


def _openapi3_response(response: Response) -> dict[str, Any]:
    rendered: dict[str, Any] = {"description": response.description}
    if response.headers:
        rendered["headers"] = {name: {"$ref": f"#/components/headers/{name}"} for name in response.headers}
    by_type: dict[str, list[str | None]] = {}
    for content in response.contents:
        by_type.setdefault(content.content_type, []).append(content.schema)
    if by_type:
        rendered["content"] = {
            content_type: {"schema": _one_of(names)} for content_type, names in by_type.items()
        }
    return rendered


def _one_of(names: Sequence[str | None]) -> dict[str, Any]:
    refs = [_schema_ref(name, "openapi3") for name in names]
    return refs[0] if len(refs) == 1 else {"oneOf": refs}


def _distinct_schemas(response: Response) -> list[str | None]:
    return list(dict.fromkeys(content.schema for content in response.contents))


def _merged_name(names: Sequence[str | None]) -> str:
    return "Or".join(name or "Object" for name in names)


def _swagger2_response(response: Response) -> dict[str, Any]:
    rendered: dict[str, Any] = {"description": response.description}
    if response.headers:
        rendered["headers"] = {
            name: {"type": HEADERS[name][1]["type"], "description": HEADERS[name][0]}
            for name in response.headers
        }
    names = _distinct_schemas(response)
    if names:
        rendered["schema"] = _schema_ref(names[0] if len(names) == 1 else _merged_name(names), "swagger2")
    return rendered


def _meaning(prop: Mapping[str, Any]) -> str:
    """What a property holds, in words: its description, else its values; and its type."""
    text = str(prop.get("description") or "").rstrip(".")
    if not text and "enum" in prop:
        text = "one of " + ", ".join(str(value) for value in prop["enum"])
    return f"{text} ({prop['type']})" if "type" in prop else text


def _merged_definition(names: Sequence[str], definitions: Mapping[str, Any]) -> dict[str, Any]:
    """A Swagger 2.0 schema that admits each of the named definitions (Swagger 2.0 has no oneOf): the
    properties of all of them, a property they define differently left untyped, and only the fields all of
    them require."""
    parts = [definitions[name] for name in names]
    properties: dict[str, Any] = {}
    for part in parts:
        for key, prop in part.get("properties", {}).items():
            properties.setdefault(key, prop)
    for key in properties:
        meanings = {
            name: part["properties"][key]
            for name, part in zip(names, parts, strict=True)
            if key in part["properties"]
        }
        if len({json.dumps(prop, sort_keys=True) for prop in meanings.values()}) > 1:
            described = " ".join(f"{name}: {_meaning(prop)}." for name, prop in meanings.items())
            properties[key] = {"description": described, "x-ms-summary": _summary(key)}
    merged: dict[str, Any] = {
        "type": "object",
        "description": "One of: " + ", ".join(names) + ".",
        "properties": properties,
    }
    required = set.intersection(*(set(part.get("required", [])) for part in parts))
    if required:
        merged["required"] = sorted(required)
    return merged


def _openapi3_operation(operation: Operation) -> dict[str, Any]:
    rendered: dict[str, Any] = {
        "operationId": operation.operation_id,
        "summary": operation.summary,
        "description": operation.description,
    }
    if operation.parameters:
        rendered["parameters"] = [_parameter(parameter, "openapi3") for parameter in operation.parameters]
    if operation.body:
        body = operation.body
        content: dict[str, Any] = {
            JSON_CONTENT_TYPE: {
                "schema": _schema_ref(body.schema, "openapi3"),
                "examples": {name: {"value": value} for name, value in body_examples(body.schema).items()},
            }
        }
        if body.csv:
            content[CSV_CONTENT_TYPE] = {
                "schema": {"type": "string", "description": _CSV_BODY_DESCRIPTION},
                "example": csv_example(),
            }
        rendered["requestBody"] = {"description": body.description, "required": True, "content": content}
    rendered["responses"] = {
        code: _openapi3_response(response)
        for code, response in operation.responses.items()
        if not response.connector_only
    }
    return rendered


def _swagger2_operation(operation: Operation) -> dict[str, Any]:
    rendered: dict[str, Any] = {
        "operationId": operation.operation_id,
        "summary": operation.summary,
        "description": operation.description,
    }
    if operation.visibility:
        rendered["x-ms-visibility"] = operation.visibility
    parameters = [
        _parameter(parameter, "swagger2") for parameter in operation.parameters if parameter.in_connector
    ]
    if operation.body:
        parameters.append(
            {
                "name": "body",
                "in": "body",
                "required": True,
                "description": operation.body.description,
                "x-ms-summary": operation.body.summary,
                "schema": _schema_ref(operation.body.schema, "swagger2"),
            }
        )
    if parameters:
        rendered["parameters"] = parameters
    rendered["responses"] = {
        code: _swagger2_response(response.connector or response)
        for code, response in operation.responses.items()
    }
    return rendered


def _connector_definitions() -> dict[str, Any]:
    """The Swagger 2.0 schemas, with one merged definition for each answer that has two schemas."""
    definitions = component_schemas("swagger2")
    for operation in OPERATIONS:
        for response in operation.responses.values():
            names = _distinct_schemas(response.connector or response)
            if operation.in_connector and len(names) > 1:
                definitions[_merged_name(names)] = _merged_definition([str(n) for n in names], definitions)
    return dict(sorted(definitions.items()))


def _paths(dialect: Dialect) -> dict[str, dict[str, Any]]:
    paths: dict[str, dict[str, Any]] = {}
    for operation in OPERATIONS:
        if dialect == "swagger2" and not operation.in_connector:
            continue
        render = _openapi3_operation if dialect == "openapi3" else _swagger2_operation
        paths.setdefault(operation.path, {})[operation.method] = render(operation)
    return paths


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.0 description of every HTTP route (servers relative: the document's own host)."""
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": API_TITLE, "version": API_VERSION, "description": _DESCRIPTION, "contact": CONTACT},
        "servers": [{"url": BASE_PATH}],
        "security": [{"functionKey": []}, {"functionKeyQuery": []}],
        "paths": _paths("openapi3"),
        "components": {
            "schemas": component_schemas("openapi3"),
            "headers": {
                name: {"description": description, "schema": schema}
                for name, (description, schema) in HEADERS.items()
            },
            "securitySchemes": {
                "functionKey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": FUNCTION_KEY_HEADER,
                    "description": "A function or host key. Takes precedence over `code`.",
                },
                "functionKeyQuery": {
                    "type": "apiKey",
                    "in": "query",
                    "name": FUNCTION_KEY_QUERY,
                    "description": "A function or host key in the URL. The status URL (Location) carries it "
                    "on, so a client that follows Location as-is stays authorised.",
                },
            },
        },
    }


def connector_definition() -> dict[str, Any]:
    """The Swagger 2.0 definition of the Power Platform custom connector.

    It declares no security: a connection is made with one of the parameter sets of
    ``connector/apiProperties.json`` (function key, sent as ``x-functions-key`` by a setheader policy, or
    Microsoft Entra ID), and its host name replaces ``host`` (dynamichosturl policy).
    """
    return {
        "swagger": "2.0",
        "info": {
            "title": CONNECTOR_TITLE,
            "version": API_VERSION,
            "description": CONNECTOR_DESCRIPTION,
            "contact": CONTACT,
        },
        "x-ms-connector-metadata": [
            {"propertyName": name, "propertyValue": value} for name, value in CONNECTOR_METADATA
        ],
        "host": CONNECTOR_HOST,
        "basePath": BASE_PATH,
        "schemes": ["https"],
        "consumes": [JSON_CONTENT_TYPE],
        "produces": [JSON_CONTENT_TYPE, PROBLEM_CONTENT_TYPE],
        "securityDefinitions": {},
        "security": [],
        "paths": _paths("swagger2"),
        "definitions": _connector_definitions(),
    }


def render(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def generated_files() -> dict[str, str]:
    """Repository-relative path → content of every generated file."""
    return {OPENAPI_FILE: render(openapi_document()), CONNECTOR_FILE: render(connector_definition())}


@functools.cache
def served_document() -> bytes:
    """The body of ``GET /api/openapi.json``: built on first use, then kept for the process."""
    return render(openapi_document()).encode("utf-8")


def stale_files(root: Path = REPO_ROOT) -> list[str]:
    return [
        path
        for path, content in generated_files().items()
        if not (root / path).is_file() or (root / path).read_text(encoding="utf-8") != content
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m provisioning.openapi", description="Write or check the generated API descriptions."
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help="write the generated files into the repository")
    action.add_argument("--check", action="store_true", help="exit 1 if a committed file is stale")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        for path in stale:
            print(f"{path} is stale: run `{WRITE_COMMAND}`", file=sys.stderr)
        return 1 if stale else 0
    for path, content in generated_files().items():
        target = REPO_ROOT / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
