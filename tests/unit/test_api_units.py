"""Pieces of the API that need no host: ids, body hashes, status URLs, content types, Rejected documents."""

from __future__ import annotations

import base64
import json
from typing import Any

import azure.functions as func
import pytest

from provisioning.idempotency import (
    body_hash,
    instance_id_for_key,
    is_request_id,
    new_instance_id,
    validate_idempotency_key,
)
from provisioning.models import RequestValidationError, validate_request
from provisioning.problems import ProblemCode, problem, validation_problem
from provisioning.settings import Settings
from triggers.http_api import _check_content_type, status_url_for
from triggers.queue_intake import MAX_ECHOED_MESSAGE_CHARS, _original_message, _rejected

OWNER = "6f1b6c0e-2b1d-4c7e-9a43-6c0f4c3d2a11"


def test_instance_ids_are_stable_per_key_and_channel() -> None:
    first = instance_id_for_key("run-42")
    assert first == instance_id_for_key("run-42", "http")
    assert first != instance_id_for_key("run-43")
    assert first != instance_id_for_key("run-42", "queue")
    assert is_request_id(first)
    assert len(first) == 36
    # Any key becomes a valid durable instance id (no '/', '#', '?', control characters).
    assert is_request_id(instance_id_for_key("a/b#c?d\\e " + "x" * 300))


def test_new_ids_are_unique_and_well_formed() -> None:
    ids = {new_instance_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(is_request_id(value) for value in ids)


@pytest.mark.parametrize(
    "value", ["", "req-", "req-XYZ", "req-" + "a" * 31, "other", "req-" + "a" * 32 + "/x"]
)
def test_foreign_ids_are_not_request_ids(value: str) -> None:
    assert not is_request_id(value)


def test_idempotency_key_validation_names_the_header() -> None:
    assert validate_idempotency_key("  key-1 ") == "key-1"
    for bad in ("", "   ", "x" * 257, "a\tb"):
        with pytest.raises(RequestValidationError) as caught:
            validate_idempotency_key(bad)
        assert caught.value.errors[0]["field"] == "Idempotency-Key"


def test_body_hash_ignores_formatting_and_is_sensitive_to_content() -> None:
    a = validate_request({"displayName": " Team ", "owners": [OWNER, OWNER.upper()]})
    b = validate_request(json.dumps({"owners": [OWNER], "displayName": "Team"}, indent=2))
    c = validate_request({"displayName": "Team", "owners": [OWNER], "privacy": "public"})
    assert body_hash(a) == body_hash(b)
    assert body_hash(a) != body_hash(c)
    assert body_hash(a).startswith("sha256:")


def test_body_hash_of_a_queue_message_ignores_the_request_id() -> None:
    body = {"displayName": "Team", "owners": [OWNER]}
    first = validate_request({**body, "requestId": "1"}, source="queue")
    second = validate_request({**body, "requestId": "2"}, source="queue")
    assert body_hash(first) == body_hash(second) == body_hash(validate_request(body))


def http_request(
    url: str, params: dict[str, str] | None = None, headers: dict[str, str] | None = None
) -> Any:
    return func.HttpRequest("POST", url, headers=headers or {}, params=params or {}, body=b"")


def test_status_url_is_absolute_on_the_request_origin_and_route_prefix() -> None:
    req = http_request("https://app.azurewebsites.net/api/communities")
    assert (
        status_url_for(req, "req-1", Settings())
        == "https://app.azurewebsites.net/api/communities/requests/req-1"
    )
    req = http_request("http://127.0.0.1:7071/custom/communities/requests/req-1")
    assert (
        status_url_for(req, "req-1", Settings()) == "http://127.0.0.1:7071/custom/communities/requests/req-1"
    )


def test_status_url_carries_the_code_parameter_but_never_a_header_key() -> None:
    req = http_request(
        "https://app.azurewebsites.net/api/communities?code=abc%2B%3D%3D",
        params={"code": "abc+=="},
        headers={"x-functions-key": "HEADERKEY"},
    )
    url = status_url_for(req, "req-1", Settings())
    assert url == "https://app.azurewebsites.net/api/communities/requests/req-1?code=abc%2B%3D%3D"
    assert "HEADERKEY" not in url


def test_status_url_ignores_forwarded_headers_and_honours_public_base_url() -> None:
    req = http_request(
        "https://app.azurewebsites.net/api/communities",
        headers={"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "http"},
    )
    assert status_url_for(req, "req-1", Settings()).startswith("https://app.azurewebsites.net/api/")
    settings = Settings(public_base_url="https://api.contoso.com/engage")
    assert (
        status_url_for(req, "req-1", settings) == "https://api.contoso.com/engage/communities/requests/req-1"
    )


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON;charset=UTF-8",
        "application/x+json",
    ],
)
def test_json_content_types_are_accepted(content_type: str) -> None:
    assert _check_content_type(content_type) is None


@pytest.mark.parametrize(
    "content_type",
    [None, "", "text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1"],
)
def test_other_content_types_are_415(content_type: str | None) -> None:
    answer = _check_content_type(content_type)
    assert answer is not None
    assert answer.status_code == 415
    assert answer.content_type == "application/problem+json"
    assert answer.body["errors"][0]["field"] == "Content-Type"


def test_problem_bodies_follow_rfc_9457() -> None:
    body = validation_problem([{"field": "owners[3]", "message": "must be a GUID or UPN"}])
    assert body["type"].endswith("ValidationFailed")
    assert body["title"]
    assert body["status"] == 400
    assert body["detail"] == "owners[3]: must be a GUID or UPN"
    assert body["errors"] == [{"field": "owners[3]", "message": "must be a GUID or UPN"}]
    assert problem(ProblemCode.NOT_FOUND, "x")["status"] == 404
    assert "errors" not in problem(ProblemCode.NOT_FOUND, "x")


def test_rejected_document_for_an_invalid_queue_message() -> None:
    message = {
        "displayName": "",
        "owners": [OWNER],
        "requestId": "item-7",
        "callbackUrl": "https://h.example/x?sig=S",
    }
    errors = [{"field": "displayName", "message": "must not be empty"}]
    document = _rejected(json.dumps(message).encode(), "2026-01-01T00:00:00Z", errors).to_json()
    assert document["status"] == "Rejected"
    assert document["id"] == instance_id_for_key("item-7", "queue")
    assert document["requestId"] == "item-7"
    assert document["error"]["code"] == "ValidationFailed"
    assert document["error"]["errors"] == errors
    assert document["originalMessage"]["callbackUrl"] == "https://h.example/x"
    assert document["originalMessage"]["displayName"] == ""
    assert "sig=S" not in json.dumps(document)


def test_rejected_document_for_a_message_that_is_not_json() -> None:
    body = b'{"callbackUrl": "https://h.example/x?sig=SECRET", broken'
    document = _rejected(body, "2026-01-01T00:00:00Z", [{"field": "body", "message": "is not valid JSON"}])
    assert document.request_id is None
    assert is_request_id(document.id)
    assert isinstance(document.original_message, str)
    assert "SECRET" not in document.original_message
    assert "https://h.example/x" in document.original_message


def test_echoed_message_is_bounded() -> None:
    echoed = _original_message(("x" * (MAX_ECHOED_MESSAGE_CHARS + 10)).encode())
    assert isinstance(echoed, str)
    assert echoed.endswith("(truncated)")
    assert len(echoed) < MAX_ECHOED_MESSAGE_CHARS + 20


def test_rejected_document_for_a_worst_case_message_fits_a_queue_message() -> None:
    message = {
        "requestId": "r" * 256,
        "displayName": "x",
        "owners": ["y" * 60 + str(index) for index in range(900)],
    }
    body = json.dumps(message).encode()
    assert len(body) < 64 * 1024
    with pytest.raises(RequestValidationError) as caught:
        validate_request(body, source="queue")
    document = _rejected(body, "2026-01-01T00:00:00Z", caught.value.errors)
    encoded = base64.b64encode(document.model_dump_json(by_alias=True, exclude_none=True).encode())
    assert len(encoded) <= 64 * 1024
