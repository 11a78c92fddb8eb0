"""The OpenAPI 3.0 document and the custom connector definition: current, valid, and true to the app.

"True to the app" is checked against the app itself: its registered HTTP functions (routes, methods, auth
level) and its request validation (every documented property, value and example is accepted; anything else
is rejected), not against a second hand-written list.
"""

from __future__ import annotations

import json
import re
import struct
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import OpenAPIV2SpecValidator, OpenAPIV30SpecValidator, validate

import function_app
from devhost.indexing import index_app
from provisioning import batch_workflow, openapi
from provisioning.batches import MAX_BATCH_ITEMS, BatchRequest, BatchValidationError, parse_batch
from provisioning.callbacks import CallbackPolicy
from provisioning.idempotency import instance_id_for_key, is_request_id, new_instance_id
from provisioning.models import CallbackState, CommunityRequest, RequestValidationError, validate_request
from provisioning.problems import ProblemCode, problem_status
from provisioning.settings import DEFAULT_CALLBACK_ALLOWED_HOSTS
from triggers import batch_api

OAS3 = openapi.openapi_document()
CONNECTOR = openapi.connector_definition()
API_PROPERTIES_FILE = openapi.REPO_ROOT / "connector" / "apiProperties.json"
DEFAULT_POLICY = CallbackPolicy(DEFAULT_CALLBACK_ALLOWED_HOSTS)
MINIMAL_BODY = {"displayName": "Contoso Engineering", "owners": ["adele.vance@contoso.com"]}
VISIBILITIES = {"important", "advanced", "internal", "none"}


def http_functions() -> dict[str, dict[str, Any]]:
    """Function name → its httpTrigger binding, as the Functions host indexes the app."""
    return {
        function.name: function.trigger for function in index_app(function_app.app).of_type("httpTrigger")
    }


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, path_item in document["paths"].items():
        for method, operation in path_item.items():
            yield path, method, operation


def resolve(schema: Any, document: dict[str, Any]) -> Any:
    """The schema with every local $ref replaced by its target (our schemas have no cycles)."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            target: Any = document
            for part in schema["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            return resolve(target, document)
        return {key: resolve(value, document) for key, value in schema.items()}
    if isinstance(schema, list):
        return [resolve(item, document) for item in schema]
    return schema


def request_schema(document: dict[str, Any], name: str = "CommunityRequest") -> dict[str, Any]:
    schemas = document["components"]["schemas"] if "openapi" in document else document["definitions"]
    result: dict[str, Any] = schemas[name]
    return result


def accepted(body: dict[str, Any]) -> CommunityRequest:
    return validate_request(body, callback_policy=DEFAULT_POLICY)


def rejected_fields(body: dict[str, Any]) -> set[str]:
    with pytest.raises(RequestValidationError) as caught:
        accepted(body)
    return {error["field"] for error in caught.value.errors}


def batch_accepted(body: Any, content_type: str = "application/json") -> BatchRequest:
    data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    return parse_batch(data, content_type, callback_policy=DEFAULT_POLICY)


def batch_rejected_fields(body: dict[str, Any]) -> set[str]:
    with pytest.raises(BatchValidationError) as caught:
        batch_accepted(body)
    return {error["field"] for error in caught.value.errors}


# ---------------------------------------------------------------------------------------------- freshness


def test_committed_files_match_the_generator() -> None:
    for path, content in openapi.generated_files().items():
        committed = openapi.REPO_ROOT / path
        assert committed.is_file(), f"{path} is missing: run `{openapi.WRITE_COMMAND}`"
        assert committed.read_text(encoding="utf-8") == content, (
            f"{path} is stale (the models or provisioning/openapi.py changed): run `{openapi.WRITE_COMMAND}` "
            "and commit the result"
        )


def test_check_command_reports_a_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for path, content in openapi.generated_files().items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(content, encoding="utf-8")
    assert openapi.stale_files(tmp_path) == []
    (tmp_path / openapi.CONNECTOR_FILE).write_text("{}\n", encoding="utf-8")
    assert openapi.stale_files(tmp_path) == [openapi.CONNECTOR_FILE]


def test_served_document_is_the_openapi_document() -> None:
    assert json.loads(openapi.served_document()) == OAS3


# ---------------------------------------------------------------------------------------------- validity


def test_openapi_document_is_valid_openapi_3_0() -> None:
    validate(OAS3, cls=OpenAPIV30SpecValidator)
    assert OAS3["openapi"].startswith("3.0.")


def test_connector_definition_is_valid_swagger_2_0() -> None:
    validate(CONNECTOR, cls=OpenAPIV2SpecValidator)
    assert CONNECTOR["swagger"] == "2.0"


def test_every_example_in_both_documents_fits_its_schema() -> None:
    found = 0
    for document in (OAS3, CONNECTOR):
        schemas = document["components"]["schemas"] if document is OAS3 else document["definitions"]
        for name, schema in schemas.items():
            for prop_name, prop in schema.get("properties", {}).items():
                if "example" in prop:
                    found += 1
                    plain = {key: value for key, value in prop.items() if not key.startswith("x-")}
                    errors = list(OAS30Validator(resolve(plain, document)).iter_errors(prop["example"]))
                    assert not errors, f"{name}.{prop_name}: {errors[0].message}"
    assert found > 10


# ---------------------------------------------------------------------------------- routes, methods, auth


def test_openapi_document_describes_exactly_the_registered_http_functions() -> None:
    registered = {
        name: binding
        for name, binding in http_functions().items()
        if name not in openapi.UNDESCRIBED_FUNCTIONS
    }
    described = {}
    for path, method, operation in operations(OAS3):
        matches = [op for op in openapi.OPERATIONS if op.operation_id == operation["operationId"]]
        assert len(matches) == 1
        described[matches[0].function_name] = (path, method)
    assert set(described) == set(registered), "an HTTP function is missing from, or extra in, the document"
    for name, binding in registered.items():
        path, method = described[name]
        assert "/" + binding["route"] == path, name
        assert [str(m.value if hasattr(m, "value") else m).lower() for m in binding["methods"]] == [method], (
            name
        )
        level = binding.get("authLevel")
        assert str(getattr(level, "value", level)).lower() == "function", f"{name} is not function-level"


def test_connector_operations_are_the_documented_ones_except_the_document_itself() -> None:
    oas3 = {(path, method): op["operationId"] for path, method, op in operations(OAS3)}
    connector = {(path, method): op["operationId"] for path, method, op in operations(CONNECTOR)}
    kept_out = {(op.path, op.method) for op in openapi.OPERATIONS if not op.in_connector}
    assert (openapi.OPENAPI_PATH, "get") in kept_out
    assert connector == {key: value for key, value in oas3.items() if key not in kept_out}
    assert CONNECTOR["basePath"] == OAS3["servers"][0]["url"] == "/api"


def test_path_parameters_match_the_route_templates() -> None:
    for document in (OAS3, CONNECTOR):
        for path, _, operation in operations(document):
            template_names = set(re.findall(r"{(\w+)}", path))
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == template_names, path
            assert all(p["required"] for p in operation.get("parameters", []) if p["in"] == "path")


def test_batch_id_pattern_accepts_exactly_the_ids_the_app_answers_for() -> None:
    pattern = re.compile(openapi.BATCH_ID_PATTERN)
    for issued in (batch_workflow.new_batch_id(), batch_workflow.batch_id_for_key("run-1", "http")):
        assert pattern.match(issued), issued
        assert batch_workflow.is_batch_id(issued), issued
    for foreign in ("batch-", "batch-XYZ", new_instance_id(), "batch-" + "0" * 31, "batch-" + "0" * 33):
        assert bool(pattern.match(foreign)) == batch_workflow.is_batch_id(foreign) is False, foreign


def test_batch_page_parameters_are_the_ones_the_trigger_applies() -> None:
    parameters = {p["name"]: p for p in OAS3["paths"][openapi.BATCH_PATH]["get"]["parameters"]}
    assert parameters["top"]["schema"]["default"] == batch_api.DEFAULT_PAGE_SIZE
    assert parameters["top"]["schema"]["maximum"] == batch_api.MAX_PAGE_SIZE
    assert parameters["skip"]["schema"]["minimum"] == 0


def test_request_id_pattern_accepts_exactly_the_ids_the_app_answers_for() -> None:
    pattern = re.compile(openapi.REQUEST_ID_PATTERN)
    for issued in (new_instance_id(), instance_id_for_key("run-1"), instance_id_for_key("x", "queue")):
        assert pattern.match(issued), issued
        assert is_request_id(issued), issued
    for foreign in ("req-", "req-XYZ", "abc", "req-" + "0" * 31, "req-" + "A" * 32, "req-" + "0" * 33):
        assert bool(pattern.match(foreign)) == is_request_id(foreign) is False, foreign


def test_function_key_is_documented_as_header_and_query() -> None:
    schemes = OAS3["components"]["securitySchemes"]
    assert {(s["in"], s["name"]) for s in schemes.values()} == {
        ("header", "x-functions-key"),
        ("query", "code"),
    }
    assert all(s["type"] == "apiKey" for s in schemes.values())
    assert [set(requirement) for requirement in OAS3["security"]] == [{name} for name in schemes]


def test_every_problem_code_is_a_documented_problem_answer() -> None:
    problem_statuses = {
        status
        for _, _, operation in operations(OAS3)
        for status, response in operation["responses"].items()
        if "application/problem+json" in response.get("content", {})
    }
    for code in ProblemCode:
        assert str(problem_status(code)) in problem_statuses, code
    problem_schema = OAS3["components"]["schemas"]["Problem"]
    assert problem_schema["properties"]["code"]["enum"] == [code.value for code in ProblemCode]


def test_polling_answers_document_location_and_retry_after() -> None:
    start = OAS3["paths"][openapi.COMMUNITIES_PATH]["post"]["responses"]["202"]
    assert set(start["headers"]) == {"Location", "Retry-After"}
    connector_start = CONNECTOR["paths"][openapi.COMMUNITIES_PATH]["post"]["responses"]["202"]
    assert connector_start["headers"]["Location"]["type"] == "string"
    assert connector_start["headers"]["Retry-After"]["type"] == "integer"
    # The connector's outputs come from the 200 schema: the final status document after following Location.
    assert CONNECTOR["paths"][openapi.COMMUNITIES_PATH]["post"]["responses"]["200"]["schema"] == {
        "$ref": "#/definitions/StatusDocument"
    }
    # A batch action likewise ends with the settled batch document; POST's own 200 is validateOnly's answer,
    # a parameter the connector does not offer.
    batch_start = CONNECTOR["paths"][openapi.BATCHES_PATH]["post"]
    assert batch_start["responses"]["200"]["schema"] == {"$ref": "#/definitions/BatchDocument"}
    assert batch_start["responses"]["202"]["headers"].keys() == {"Location", "Retry-After"}
    assert "validateOnly" not in {p["name"] for p in batch_start["parameters"]}
    for method in ("get", "delete"):
        assert set(OAS3["paths"][openapi.BATCH_PATH][method]["responses"]["202"]["headers"]) == {
            "Location",
            "Retry-After",
        }


# ------------------------------------------------------------------------- request schema vs. validation


@pytest.mark.parametrize("document", [OAS3, CONNECTOR], ids=["openapi3", "connector"])
def test_request_schema_has_exactly_the_fields_validation_accepts(document: dict[str, Any]) -> None:
    schema = request_schema(document)
    properties = schema["properties"]
    assert schema["additionalProperties"] is False
    for name, prop in properties.items():
        accepted({**MINIMAL_BODY, name: prop["example"]})
    assert rejected_fields({**MINIMAL_BODY, "colour": "red"}) == {"colour"}
    assert rejected_fields({**MINIMAL_BODY, "DisplayName": "x"}) == {"DisplayName"}
    # Required = the fields whose absence validation reports.
    for name in properties:
        body = {key: value for key, value in MINIMAL_BODY.items() if key != name}
        if name in schema["required"]:
            assert name in rejected_fields(body)
        else:
            accepted(body)


@pytest.mark.parametrize("document", [OAS3, CONNECTOR], ids=["openapi3", "connector"])
def test_request_enums_and_nullability_agree_with_validation(document: dict[str, Any]) -> None:
    properties = request_schema(document)["properties"]
    nullable_key = "nullable" if document is OAS3 else "x-nullable"
    enums = {name: prop["enum"] for name, prop in properties.items() if "enum" in prop}
    assert set(enums) == {"privacy", "onDuplicateName"}
    for name, values in enums.items():
        for value in values:
            accepted({**MINIMAL_BODY, name: value})
        assert rejected_fields({**MINIMAL_BODY, name: "something-else"}) == {name}
    for name, prop in properties.items():
        if prop.get(nullable_key):
            accepted({**MINIMAL_BODY, name: None})
        # A user list is an array or one separated string: OpenAPI 3 says both (anyOf), the connector
        # offers the array (Swagger 2.0 has no unions), so the accepted types are OpenAPI 3's.
        full = request_schema(OAS3)["properties"][name]
        types = {variant["type"] for variant in full.get("anyOf", [full])}
        assert types <= {"string", "array"}, name
        assert prop.get("type", "array") in types, name
        wrong_values: list[Any] = [5, {"a": 1}]
        if "string" not in types:
            wrong_values.append("not-an-array")
        for wrong in wrong_values:
            assert rejected_fields({**MINIMAL_BODY, name: wrong}) == {name}, (name, wrong)


def test_request_body_examples_validate_against_the_model_and_the_schema() -> None:
    content = OAS3["paths"][openapi.COMMUNITIES_PATH]["post"]["requestBody"]["content"]["application/json"]
    schema = resolve(content["schema"], OAS3)
    assert set(content["examples"]) == {"polling", "webhook"}
    for name, example in content["examples"].items():
        accepted(example["value"])
        errors = list(OAS30Validator(schema).iter_errors(example["value"]))
        assert not errors, f"{name}: {errors[0].message}"
    assert "callbackUrl" not in content["examples"]["polling"]["value"]


@pytest.mark.parametrize("document", [OAS3, CONNECTOR], ids=["openapi3", "connector"])
def test_batch_schema_has_exactly_the_fields_batch_parsing_accepts(document: dict[str, Any]) -> None:
    schema = request_schema(document, "CommunityBatchRequest")
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["items"]
    for name, prop in schema["properties"].items():
        if "example" in prop:
            batch_accepted({"items": [MINIMAL_BODY], name: prop["example"]})
    assert batch_rejected_fields({"items": [MINIMAL_BODY], "colour": "red"}) == {"colour"}
    assert batch_rejected_fields({}) == {"items"}
    items = schema["properties"]["items"]
    assert (items["minItems"], items["maxItems"]) == (1, MAX_BATCH_ITEMS)
    assert batch_rejected_fields({"items": []}) == {"items"}
    assert batch_rejected_fields({"items": [MINIMAL_BODY] * (MAX_BATCH_ITEMS + 1)}) == {"items"}
    # An item is a request body without callbackUrl: the batch has the one callback.
    item = resolve(items["items"], document)
    assert item["additionalProperties"] is False
    assert set(item["properties"]) == set(request_schema(document)["properties"]) - {"callbackUrl"}
    assert item["required"] == request_schema(document)["required"]
    for name, prop in item["properties"].items():
        batch_accepted({"items": [{**MINIMAL_BODY, name: prop["example"]}]})
    callback = {"callbackUrl": "https://prod-01.westeurope.logic.azure.com/x"}
    assert batch_rejected_fields({"items": [{**MINIMAL_BODY, **callback}]}) == {"items[0].callbackUrl"}


def test_batch_body_examples_are_accepted_as_json_and_csv() -> None:
    content = OAS3["paths"][openapi.BATCHES_PATH]["post"]["requestBody"]["content"]
    assert list(content) == ["application/json", "text/csv"]
    schema = resolve(content["application/json"]["schema"], OAS3)
    for name, example in content["application/json"]["examples"].items():
        batch = batch_accepted(example["value"])
        errors = list(OAS30Validator(schema).iter_errors(example["value"]))
        assert not errors, f"{name}: {errors[0].message}"
    as_csv = batch_accepted(content["text/csv"]["example"], "text/csv")
    assert as_csv.items == batch.items
    assert content["text/csv"]["schema"]["type"] == "string"
    # The connector takes JSON only.
    [body] = [p for p in CONNECTOR["paths"][openapi.BATCHES_PATH]["post"]["parameters"] if p["in"] == "body"]
    assert body["schema"] == {"$ref": "#/definitions/CommunityBatchRequest"}
    assert CONNECTOR["consumes"] == ["application/json"]


@pytest.mark.parametrize("document", [OAS3, CONNECTOR], ids=["openapi3", "connector"])
def test_batch_documents_the_workflow_writes_fit_the_schema(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"] if document is OAS3 else document["definitions"]
    validator = OAS30Validator(resolve(schemas["BatchDocument"], document))
    now = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
    states = (
        batch_workflow.BatchState(),
        batch_workflow.BatchState(next_index=3, in_flight=[1, 2], counts={"Succeeded": 1}, checks=2),
        batch_workflow.BatchState(next_index=3, counts={"Succeeded": 1, "Failed": 2}),
        batch_workflow.BatchState(
            next_index=3, counts={"Canceled": 3}, cancel_requested=True, callback=CallbackState.DELIVERED
        ),
    )
    for state in states:
        for source in ("http", "queue"):
            written = batch_workflow.batch_document(
                batch_id=batch_workflow.new_batch_id(),
                created_at="2026-01-01T09:00:00Z",
                total=3,
                state=state,
                now=now,
                budget_requests=10,
                budget_window_seconds=30,
                source=source,
                request_id="sheet-row-7",
            )
            errors = list(validator.iter_errors(written))
            assert not errors, f"{errors[0].message} in {written}"
            assert set(written["counts"]) == set(schemas["BatchCounts"]["properties"])


def test_request_schema_rejects_what_validation_rejects() -> None:
    validator = OAS30Validator(resolve(request_schema(OAS3), OAS3))
    for body in (
        {"displayName": "x"},
        {**MINIMAL_BODY, "colour": "red"},
        {**MINIMAL_BODY, "owners": 5},
        {**MINIMAL_BODY, "privacy": "secret"},
    ):
        assert list(validator.iter_errors(body)), body
        with pytest.raises(RequestValidationError):
            accepted(body)


# ------------------------------------------------------------------------------------ connector specifics


def test_connector_operations_have_what_makers_need() -> None:
    for path, method, operation in operations(CONNECTOR):
        where = f"{method.upper()} {path}"
        assert re.fullmatch(r"[A-Z][A-Za-z]+", operation["operationId"]), where
        summary = operation["summary"]
        assert summary[:1].isupper(), where
        assert not summary.endswith("."), where
        assert operation["description"], where
        assert operation["x-ms-visibility"] in VISIBILITIES, where
        for parameter in operation.get("parameters", []):
            assert parameter.get("x-ms-summary"), f"{where} {parameter['name']}"
            assert parameter.get("description"), f"{where} {parameter['name']}"
            if parameter.get("x-ms-visibility") == "internal":
                assert not parameter["required"] or "default" in parameter
    assert CONNECTOR["paths"][openapi.COMMUNITIES_PATH]["post"]["x-ms-visibility"] == "important"


def test_every_connector_property_has_a_title_case_summary() -> None:
    for name, schema in CONNECTOR["definitions"].items():
        for prop_name, prop in schema.get("properties", {}).items():
            summary = prop.get("x-ms-summary", "")
            assert summary, f"{name}.{prop_name}"
            assert all(word[0].isupper() for word in summary.split()), f"{name}.{prop_name}"
    properties = CONNECTOR["definitions"]["CommunityRequest"]["properties"]
    assert properties["callbackUrl"]["x-ms-summary"] == "Callback URL"
    assert CONNECTOR["definitions"]["CommunityInfo"]["properties"]["groupId"]["x-ms-summary"] == "Group ID"


@pytest.mark.parametrize("schema_name", ["CommunityRequest", "CommunityBatchRequest", "CommunitySpec"])
def test_connector_body_visibility_names_real_fields(schema_name: str) -> None:
    aliases = {
        field.alias or name for model in openapi.REQUEST_MODELS for name, field in model.model_fields.items()
    }
    assert set(openapi.CONNECTOR_BODY_VISIBILITY) <= aliases
    schema = CONNECTOR["definitions"][schema_name]
    required = set(schema["required"])
    for name, prop in schema["properties"].items():
        visibility = prop.get("x-ms-visibility", "none")
        assert visibility in VISIBILITIES
        if name in required:
            assert visibility == "important", f"required field {name} must be up front"
        if visibility == "internal":
            assert name not in required


def api_properties() -> dict[str, Any]:
    document = json.loads(API_PROPERTIES_FILE.read_text(encoding="utf-8"))
    assert set(document) == {"properties"}
    result: dict[str, Any] = document["properties"]
    return result


def parameter_sets() -> dict[str, dict[str, Any]]:
    return {
        value["name"]: value["parameters"] for value in api_properties()["connectionParameterSets"]["values"]
    }


def policies(template: str) -> list[dict[str, Any]]:
    return [
        policy["parameters"]
        for policy in api_properties()["policyTemplateInstances"]
        if policy["templateId"].lower() == template.lower()
    ]


def test_api_properties_use_only_the_keys_power_platform_knows() -> None:
    properties = api_properties()
    # The keys of paconn's apiProperties schema (microsoft/PowerPlatformConnectors schemas/), plus
    # connectionParameterSets, which certified connectors with several sign-in types use.
    assert set(properties) <= {
        "iconBrandColor",
        "capabilities",
        "connectionParameters",
        "connectionParameterSets",
        "policyTemplateInstances",
        "publisher",
        "stackOwner",
    }
    assert re.fullmatch(r"#[0-9a-fA-F]{6}", properties["iconBrandColor"])
    assert properties["publisher"] == properties["stackOwner"] == openapi.CONNECTOR_PUBLISHER
    assert "connectionParameters" not in properties, "one place for the parameters: the sets"


def test_a_connection_is_made_with_a_function_key_or_entra_id_and_names_its_host() -> None:
    # No security in the definition: the connection's parameter set says how it signs in.
    assert CONNECTOR["securityDefinitions"] == {}
    assert CONNECTOR["security"] == []
    sets = parameter_sets()
    assert set(sets) == {"functionKey", "entraId"}
    for parameters in sets.values():
        host = parameters["hostName"]
        assert host["type"] == "string"
        assert host["uiDefinition"]["constraints"]["required"] == "true"
        # Also with Entra ID: the routes have auth level function, and the Functions host checks keys after
        # App Service authentication (docs/deploy.md, "Function keys and Entra ID together").
        key = parameters["functionKey"]
        assert key["type"] == "securestring"
        assert key["uiDefinition"]["constraints"]["clearText"] is False
        assert key["uiDefinition"]["constraints"]["required"] == "true"
    oauth = sets["entraId"]["token"]
    assert oauth["type"] == "oauthSetting"
    settings = oauth["oAuthSettings"]
    assert settings["identityProvider"] == "aad"
    custom = {name: value["value"] for name, value in settings["customParameters"].items()}
    assert custom["loginUri"] == "https://login.microsoftonline.com"
    assert custom["resourceUri"] == settings["properties"]["AzureActiveDirectoryResourceId"]
    assert settings["redirectMode"] == "GlobalPerConnector"


def test_policies_send_calls_to_the_connection_host_with_its_key() -> None:
    [host] = policies("dynamichosturl")
    # The template replaces scheme, host and basePath.
    assert host["x-ms-apimTemplateParameter.urlTemplate"] == (
        f"https://@connectionParameters('hostName'){openapi.BASE_PATH}"
    )
    [key] = policies("setheader")
    assert key["x-ms-apimTemplateParameter.name"] == openapi.FUNCTION_KEY_HEADER
    assert key["x-ms-apimTemplateParameter.value"] == "@connectionParameters('functionKey','')"
    assert key["x-ms-apimTemplateParameter.existsAction"] == "override"
    assert key["x-ms-apimTemplate-policySection"] == "Request"
    # Every parameter a policy reads exists in every set, or the policy gives a default.
    for policy in api_properties()["policyTemplateInstances"]:
        for value in policy["parameters"].values():
            for name, default in re.findall(r"@connectionParameters\('([^']+)'(,'[^']*')?\)", str(value)):
                if not default:
                    assert all(name in parameters for parameters in parameter_sets().values()), name


def test_the_connector_is_ready_to_share() -> None:
    info = CONNECTOR["info"]
    assert len(info["title"]) <= 30
    assert not re.search(r"\b(API|Connector|Power Automate|Power Apps)\b", info["title"], re.IGNORECASE)
    assert 30 <= len(info["description"]) <= 500
    assert info["contact"] == OAS3["info"]["contact"] == openapi.CONTACT
    assert set(info["contact"]) == {"name", "url", "email"}
    assert re.fullmatch(r"[^@\s]+@[^@\s]+\.[a-z]+", info["contact"]["email"])
    metadata = {
        entry["propertyName"]: entry["propertyValue"] for entry in CONNECTOR["x-ms-connector-metadata"]
    }
    assert set(metadata) == {"Website", "Privacy policy", "Categories"}
    assert metadata["Website"].startswith("https://")
    assert metadata["Privacy policy"].startswith("https://")
    # Values certified connectors use (microsoft/PowerPlatformConnectors).
    known = {
        "AI",
        "Business Management",
        "Business Intelligence",
        "Collaboration",
        "Commerce",
        "Communication",
        "Content and Files",
        "Data",
        "Finance",
        "Human Resources",
        "Internet of Things",
        "IT Operations",
        "Lifestyle and Entertainment",
        "Marketing",
        "Productivity",
        "Sales and CRM",
        "Security",
        "Social Media",
        "Website",
    }
    assert set(metadata["Categories"].split(";")) <= known


def decode_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and RGB rows of an 8-bit truecolour PNG, all five row filters undone."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset, chunks = 8, []
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind, body = data[offset + 4 : offset + 8], data[offset + 8 : offset + 8 + length]
        assert (
            zlib.crc32(kind + body)
            == struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])[0]
        )
        chunks.append((kind, body))
        offset += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (chunks[0][0], depth, colour, interlace) == (b"IHDR", 8, 2, 0)
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    stride, rows, previous = width * 3, [], bytes(width * 3)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for x in range(stride):
            left = line[x - 3] if x >= 3 else 0
            up, corner = previous[x], previous[x - 3] if x >= 3 else 0
            guess = left + up - corner
            paeth = min((abs(guess - left), left), (abs(guess - up), up), (abs(guess - corner), corner))[1]
            line[x] = (line[x] + (0, left, up, (left + up) // 2, paeth)[kind]) % 256
        rows.append(bytes(line))
        previous = bytes(line)
    return width, height, rows


def test_the_icon_is_230_pixels_square_on_the_brand_colour() -> None:
    width, height, rows = decode_png((API_PROPERTIES_FILE.parent / "icon.png").read_bytes())
    assert (width, height) == (230, 230)
    brand = bytes.fromhex(api_properties()["iconBrandColor"][1:])
    for x, y in ((0, 0), (229, 0), (0, 229), (229, 229), (115, 2)):
        assert rows[y][3 * x : 3 * x + 3] == brand, (x, y)
    pixels = {row[i : i + 3] for row in rows for i in range(0, len(row), 3)}
    assert b"\xff\xff\xff" in pixels, "the glyph is missing"


def test_enum_values_have_display_names_in_the_connector() -> None:
    seen = set()
    for name in ("CommunityRequest", "CommunitySpec"):
        for prop_name, prop in CONNECTOR["definitions"][name]["properties"].items():
            if "enum" not in prop:
                continue
            seen.add(prop_name)
            entries = prop["x-ms-enum-values"]
            assert [entry["value"] for entry in entries] == prop["enum"], prop_name
            labels = [entry["displayName"] for entry in entries]
            assert all(labels), prop_name
            assert len(set(labels)) == len(labels), prop_name
    assert seen == set(openapi.CONNECTOR_ENUM_DISPLAY_NAMES)
    assert "x-ms-enum-values" not in json.dumps(OAS3)


def test_the_idempotency_key_tells_the_maker_what_to_enter() -> None:
    for path in (openapi.COMMUNITIES_PATH, openapi.BATCHES_PATH):
        [key] = [p for p in CONNECTOR["paths"][path]["post"]["parameters"] if p["name"] == "Idempotency-Key"]
        assert key["x-ms-summary"] == "Idempotency Key"
        assert key["x-ms-visibility"] == "important"
        assert "workflow()?['run']?['name']" in key["description"]
        assert not key["required"]


def test_an_answer_with_two_schemas_has_one_that_admits_both_in_the_connector() -> None:
    merged_answers = []
    for path, method, operation in operations(OAS3):
        connector_operation = CONNECTOR["paths"].get(path, {}).get(method)
        if connector_operation is None:
            continue
        for status, response in operation["responses"].items():
            schemas = [
                ref["$ref"].rsplit("/", 1)[-1]
                for content in response.get("content", {}).values()
                for ref in content["schema"].get("oneOf", [content["schema"]])
                if "$ref" in ref
            ]
            connector_schema = connector_operation["responses"][status].get("schema", {})
            if len(set(schemas)) < 2 or connector_schema.get("$ref", "").rsplit("/", 1)[-1] in schemas:
                continue  # one schema, or the connector's own answer (what the action ends with)
            merged_answers.append((method, path, status))
            merged = resolve(connector_schema, CONNECTOR)
            parts = [CONNECTOR["definitions"][name] for name in schemas]
            assert set(merged["properties"]) == {key for part in parts for key in part["properties"]}
            assert "additionalProperties" not in merged
            for part in parts:
                assert set(merged.get("required", [])) <= set(part["required"])
    # POST /communities 409: a problem, or the Canceled status document of the key's request.
    assert ("post", openapi.COMMUNITIES_PATH, "409") in merged_answers


def test_the_connector_readme_has_the_certified_layout_and_every_operation() -> None:
    readme = (API_PROPERTIES_FILE.parent / "README.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## (.+)$", readme, re.MULTILINE)
    # The sections of microsoft/PowerPlatformConnectors templates/certified-connectors/readme.md, in order.
    required = [
        "Publisher: " + openapi.CONNECTOR_PUBLISHER,
        "Prerequisites",
        "Supported Operations",
        "Obtaining Credentials",
        "Known Issues and Limitations",
        "Deployment Instructions",
    ]
    assert [heading for heading in headings if heading in required] == required
    operations_section = readme.split("## Supported Operations", 1)[1].split("\n## ", 1)[0]
    for _, _, operation in operations(CONNECTOR):
        assert f"### {operation['summary']}\n`{operation['operationId']}`" in operations_section, operation[
            "operationId"
        ]


def test_the_openapi_route_is_the_documented_path() -> None:
    from triggers import openapi as openapi_trigger

    assert "/" + openapi_trigger.ROUTE == openapi.OPENAPI_PATH
