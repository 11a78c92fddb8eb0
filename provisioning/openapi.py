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
import functools
import json
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from provisioning.idempotency import IDEMPOTENCY_KEY_HEADER, REQUEST_ID_PREFIX
from provisioning.models import (
    MAX_REQUEST_ID_LENGTH,
    CommunityRequest,
    FieldError,
    RequestStatus,
    StatusDocument,
)
from provisioning.problems import PROBLEM_CONTENT_TYPE, ProblemCode

Dialect = Literal["openapi3", "swagger2"]

OPENAPI_VERSION = "3.0.3"
API_TITLE = "Viva Engage Community Provisioner"
# Power Platform limits a connector's title to 30 characters.
CONNECTOR_TITLE = "Viva Engage Communities"
API_VERSION = "1.0.0"
BASE_PATH = "/api"  # host.json extensions.http.routePrefix
CONNECTOR_HOST = "your-function-app.azurewebsites.net"  # replaced on import (General tab → Host)
FUNCTION_KEY_HEADER = "x-functions-key"
FUNCTION_KEY_QUERY = "code"
# apiProperties.json names its connection parameter after this security definition.
CONNECTOR_SECURITY_NAME = "api_key"
JSON_CONTENT_TYPE = "application/json"

COMMUNITIES_PATH = "/communities"
REQUEST_PATH = "/communities/requests/{id}"
OPENAPI_PATH = "/openapi.json"
REQUEST_ID_PATTERN = f"^{REQUEST_ID_PREFIX}[0-9a-f]{{32}}$"

REPO_ROOT = Path(__file__).resolve().parents[1]
OPENAPI_FILE = "openapi/openapi.json"
CONNECTOR_FILE = "connector/apiDefinition.swagger.json"
WRITE_COMMAND = "python -m provisioning.openapi --write"

# How the connector's action card shows the body fields: the two required ones up front, the rarely needed
# ones under "Show advanced options". callbackUrl is hidden: a connector action waits by following Location,
# and a maker has no listCallbackUrl() to put there (that is the HTTP Webhook action's recipe).
CONNECTOR_BODY_VISIBILITY = {
    "displayName": "important",
    "owners": "important",
    "onDuplicateName": "advanced",
    "callbackUrl": "internal",
}
_ACRONYMS = {"id": "ID", "url": "URL", "uri": "URI"}


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
    instance: str | None = Field(default=None, description="Status URL of the request concerned, if any.")
    errors: list[FieldError] | None = Field(default=None, description="Field errors (400, 413, 415).")
    request_status: RequestStatus | None = Field(
        default=None, alias="requestStatus", description="NotCancelable only: the finished request's status."
    )


# ----------------------------------------------------------------------------------------------------
# The operation table: every HTTP function of the app, with what it answers.


@dataclass(frozen=True)
class Content:
    schema: str | None  # component name; None = free-form JSON object
    content_type: str = JSON_CONTENT_TYPE


@dataclass(frozen=True)
class Response:
    description: str
    contents: tuple[Content, ...] = ()  # Swagger 2.0 has one schema per answer: it takes the first
    headers: tuple[str, ...] = ()  # names from HEADERS


@dataclass(frozen=True)
class Parameter:
    name: str
    location: Literal["path", "header", "query"]
    summary: str
    description: str
    required: bool
    schema: dict[str, Any]
    visibility: str | None = None


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
    body: str | None = None
    visibility: str | None = None
    in_connector: bool = True


# Answer headers: (description, OpenAPI 3.0 schema); Swagger 2.0 takes the schema's type.
HEADERS: dict[str, tuple[str, dict[str, Any]]] = {
    "Location": (
        "Absolute status URL to poll with GET (carries `?code=` when the call used it).",
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


def _document(description: str, *, polling: bool = False) -> Response:
    return Response(description, (Content("StatusDocument"),), POLLING_HEADERS if polling else ())


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
    description="Any string up to 256 characters, e.g. the flow run name. A retried POST with the same key "
    "and body starts nothing new and answers with the existing request; the same key with another body is "
    "409 IdempotencyConflict.",
    required=False,
    schema={"type": "string", "minLength": 1, "maxLength": MAX_REQUEST_ID_LENGTH},
    visibility="advanced",
)

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
        body="CommunityRequest",
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
                "IdempotencyConflict (problem): the key was used with a different body; or, for a key whose "
                "request was canceled, the Canceled status document.",
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
            if len(variants) != 1:
                raise ValueError(f"unions other than X | None cannot be described: {node}")
            was_nullable = len(variants) < len(node["anyOf"])
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


def component_schemas(dialect: Dialect) -> dict[str, Any]:
    """Named schemas: the request body (validation), the answers (serialization); enums are inlined."""
    _, answers = models_json_schema(
        [(StatusDocument, "serialization"), (AcceptedAnswer, "serialization"), (Problem, "serialization")],
        by_alias=True,
        ref_template=_ref_template(dialect),
    )
    definitions: dict[str, Any] = answers["$defs"]
    request = _raw_request_schema()
    if "$defs" in request:
        raise ValueError("CommunityRequest gained nested models: describe them here")
    schemas = {
        "CommunityRequest": _SchemaConverter(dialect, definitions, nullable=True).convert(request),
    }
    answer_converter = _SchemaConverter(dialect, definitions, nullable=False)
    for name, schema in sorted(definitions.items()):
        if "enum" not in schema:
            schemas[name] = answer_converter.convert(schema)
    if dialect == "swagger2":
        for name, visibility in CONNECTOR_BODY_VISIBILITY.items():
            schemas["CommunityRequest"]["properties"][name]["x-ms-visibility"] = visibility
    return schemas


def request_examples() -> dict[str, dict[str, Any]]:
    """Example bodies built from the field examples: without and with a callback URL."""
    properties = _raw_request_schema()["properties"]
    polling = {name: prop["examples"][0] for name, prop in properties.items() if name != "callbackUrl"}
    return {
        "polling": polling,
        "webhook": {**polling, "callbackUrl": properties["callbackUrl"]["examples"][0]},
    }


# ----------------------------------------------------------------------------------------------------
# Documents

_DESCRIPTION = (
    "Creates Viva Engage communities through Microsoft Graph. POST starts a request and answers 202 with an "
    "absolute Location and Retry-After; GET on that URL answers 202 while running, then 200 (Succeeded), 422 "
    "(Failed) or 409 (Canceled). Errors are application/problem+json. Authenticate with a host key in the "
    "x-functions-key header or the code query parameter (a function key opens only its own function, and the "
    "status URL belongs to another function than the start)."
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
    if response.contents:
        rendered["content"] = {
            content.content_type: {"schema": _schema_ref(content.schema, "openapi3")}
            for content in response.contents
        }
    return rendered


def _swagger2_response(response: Response) -> dict[str, Any]:
    rendered: dict[str, Any] = {"description": response.description}
    if response.headers:
        rendered["headers"] = {
            name: {"type": HEADERS[name][1]["type"], "description": HEADERS[name][0]}
            for name in response.headers
        }
    if response.contents:
        rendered["schema"] = _schema_ref(response.contents[0].schema, "swagger2")
    return rendered


def _openapi3_operation(operation: Operation) -> dict[str, Any]:
    rendered: dict[str, Any] = {
        "operationId": operation.operation_id,
        "summary": operation.summary,
        "description": operation.description,
    }
    if operation.parameters:
        rendered["parameters"] = [_parameter(parameter, "openapi3") for parameter in operation.parameters]
    if operation.body:
        rendered["requestBody"] = {
            "required": True,
            "content": {
                JSON_CONTENT_TYPE: {
                    "schema": _schema_ref(operation.body, "openapi3"),
                    "examples": {name: {"value": value} for name, value in request_examples().items()},
                }
            },
        }
    rendered["responses"] = {
        code: _openapi3_response(response) for code, response in operation.responses.items()
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
    parameters = [_parameter(parameter, "swagger2") for parameter in operation.parameters]
    if operation.body:
        parameters.append(
            {
                "name": "body",
                "in": "body",
                "required": True,
                "description": "The community to create.",
                "x-ms-summary": "Community",
                "schema": _schema_ref(operation.body, "swagger2"),
            }
        )
    if parameters:
        rendered["parameters"] = parameters
    rendered["responses"] = {
        code: _swagger2_response(response) for code, response in operation.responses.items()
    }
    return rendered


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
        "info": {"title": API_TITLE, "version": API_VERSION, "description": _DESCRIPTION},
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
    """The Swagger 2.0 definition of the Power Platform custom connector."""
    return {
        "swagger": "2.0",
        "info": {"title": CONNECTOR_TITLE, "version": API_VERSION, "description": _DESCRIPTION},
        "host": CONNECTOR_HOST,
        "basePath": BASE_PATH,
        "schemes": ["https"],
        "consumes": [JSON_CONTENT_TYPE],
        "produces": [JSON_CONTENT_TYPE, PROBLEM_CONTENT_TYPE],
        "securityDefinitions": {
            CONNECTOR_SECURITY_NAME: {"type": "apiKey", "in": "header", "name": FUNCTION_KEY_HEADER}
        },
        "security": [{CONNECTOR_SECURITY_NAME: []}],
        "paths": _paths("swagger2"),
        "definitions": component_schemas("swagger2"),
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
