"""Direct tests of the client's pure rules: Retry-After, status mapping, error bodies, URLs, the version."""

from __future__ import annotations

import pickle
import tomllib
from pathlib import Path

import pytest
import requests

from provisioning.graph import (
    CreatedOperation,
    ErrorKind,
    GraphError,
    OperationState,
    map_status,
    parse_retry_after,
)
from provisioning.graph.client import _http_error, _polling_header
from provisioning.graph.errors import classify_status, parse_error_body
from provisioning.graph.operation import OperationStatus
from provisioning.graph.urls import GraphEndpoint, origin_of, path_for_log
from provisioning.graph.version import APP_VERSION, USER_AGENT
from provisioning.settings import SettingsError

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def fixed_now() -> float:
    return NOW


# ------------------------------------------------------------------------------------------------ Retry-After


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7", 7.0),
        ("0", 0.0),
        (" 41 ", 41.0),
        ("2.128", 2.128),
        ("0.5", 0.5),
        ("-3", 0.0),
        ("Tue, 14 Nov 2023 22:13:50 GMT", 30.0),
        ("Tue, 14 Nov 2023 22:13:20 GMT", 0.0),
        ("Tue, 14 Nov 2023 22:00:00 GMT", 0.0),  # in the past: retry now, never negative
        ("Tue, 14 Nov 2023 22:14:20 -0000", 60.0),
    ],
)
def test_retry_after_forms(value: str, expected: float) -> None:
    assert parse_retry_after(value, now=fixed_now) == pytest.approx(expected)


@pytest.mark.parametrize("value", [None, "", "   ", "soon", "nan", "inf", "Tuesday"])
def test_retry_after_absent_or_unreadable_is_none(value: str | None) -> None:
    assert parse_retry_after(value, now=fixed_now) is None


# --------------------------------------------------------------------------------------------- status mapping


@pytest.mark.parametrize(
    ("raw", "state"),
    [
        ("notStarted", OperationState.IN_PROGRESS),
        ("running", OperationState.IN_PROGRESS),
        ("inProgress", OperationState.IN_PROGRESS),
        ("inprogress", OperationState.IN_PROGRESS),
        ("NOTSTARTED", OperationState.IN_PROGRESS),
        ("succeeded", OperationState.SUCCEEDED),
        ("Succeeded", OperationState.SUCCEEDED),
        ("failed", OperationState.FAILED),
        ("FAILED", OperationState.FAILED),
        ("skipped", OperationState.FAILED),
        ("invalid", OperationState.FAILED),
    ],
)
def test_known_status_values(raw: str, state: OperationState) -> None:
    assert map_status(raw) == (state, False)


@pytest.mark.parametrize("raw", ["unknownFutureValue", "queued", "", "succeeded-ish"])
def test_unknown_status_stays_in_progress_but_is_flagged(raw: str) -> None:
    assert map_status(raw) == (OperationState.IN_PROGRESS, True)


def test_operation_status_keeps_details_and_tolerates_odd_types() -> None:
    status = OperationStatus.from_json(
        {
            "status": "failed",
            "statusDetail": "Display name is reserved",
            "resourceId": "eyJfdHlwZSI6Ikdyb3VwIn0",
            "resourceLocation": "https://graph.microsoft.com/v1.0/employeeExperience/communities('x')",
        },
        request_id="rid",
    )
    assert status.state is OperationState.FAILED
    assert status.status_detail == "Display name is reserved"
    assert status.resource_id == "eyJfdHlwZSI6Ikdyb3VwIn0"
    assert status.to_dict()["rawStatus"] == "failed"
    assert status.to_dict()["requestId"] == "rid"

    assert status.retry_after_seconds is None
    assert status.to_dict()["retryAfterSeconds"] is None

    odd = OperationStatus.from_json({"status": 3}, request_id=None)
    assert (odd.state, odd.is_unknown, odd.raw_status) == (OperationState.IN_PROGRESS, True, "3")
    missing = OperationStatus.from_json({}, request_id=None)
    assert (missing.state, missing.is_unknown, missing.raw_status) == (OperationState.IN_PROGRESS, True, "")


def test_retry_after_of_successful_answers_is_in_the_plain_json() -> None:
    status = OperationStatus.from_json({"status": "running"}, request_id="rid", retry_after_seconds=2.128)
    created = CreatedOperation("https://graph.microsoft.com/v1.0/x", "rid", "cid", retry_after_seconds=75.0)
    assert status.to_dict()["retryAfterSeconds"] == 2.128
    assert created.to_dict() == {
        "operationUrl": "https://graph.microsoft.com/v1.0/x",
        "requestId": "rid",
        "clientRequestId": "cid",
        "retryAfterSeconds": 75.0,
    }
    assert CreatedOperation("u", None, "cid").to_dict()["retryAfterSeconds"] is None


# ---------------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("status", "non_idempotent", "kind"),
    [
        (429, False, ErrorKind.THROTTLED),
        (429, True, ErrorKind.THROTTLED),
        (500, False, ErrorKind.TRANSIENT),
        (500, True, ErrorKind.TRANSIENT),
        (503, True, ErrorKind.TRANSIENT),
        (502, False, ErrorKind.TRANSIENT),
        (504, False, ErrorKind.TRANSIENT),
        (502, True, ErrorKind.AMBIGUOUS),
        (504, True, ErrorKind.AMBIGUOUS),
        (408, False, ErrorKind.TRANSIENT),
        (400, True, ErrorKind.PERMANENT),
        (401, False, ErrorKind.PERMANENT),
        (403, False, ErrorKind.PERMANENT),
        (404, False, ErrorKind.PERMANENT),
        (409, True, ErrorKind.PERMANENT),
        (302, False, ErrorKind.PERMANENT),
    ],
)
def test_status_classification(status: int, non_idempotent: bool, kind: ErrorKind) -> None:
    assert classify_status(status, non_idempotent=non_idempotent) is kind


def test_error_body_inner_error_camel_case() -> None:
    body = parse_error_body(
        '{"error": {"code": "BadRequest", "message": "nope", "innerError": '
        '{"date": "2021-07-02T01:40:19", "request-id": "r-1", "client-request-id": "c-1"}}}'
    )
    assert (body.code, body.message, body.request_id, body.client_request_id) == (
        "BadRequest",
        "nope",
        "r-1",
        "c-1",
    )


def test_error_body_innererror_lower_case_nested_and_old_request_id_key() -> None:
    body = parse_error_body(
        '{"error": {"code": "badRequest", "message": "m", "innererror": {"code": "invalidRange", '
        '"innererror": {"requestId": "r-deep"}}}}'
    )
    assert (body.code, body.request_id, body.client_request_id) == ("badRequest", "r-deep", None)


@pytest.mark.parametrize("text", ["", "<html>Bad gateway</html>", "[1, 2]", '{"error": "flat"}', '{"err'])
def test_error_body_not_graph_json_is_empty(text: str) -> None:
    assert parse_error_body(text) == parse_error_body("")
    assert parse_error_body(text).code is None


def test_graph_error_round_trips_through_dict_and_pickle() -> None:
    error = GraphError(
        ErrorKind.THROTTLED,
        "Please retry again later.",
        http_status=429,
        code="TooManyRequests",
        request_id="r",
        client_request_id="c",
        retry_after_seconds=2.128,
    )
    data = error.to_dict()
    assert data == {
        "kind": "throttled",
        "httpStatus": 429,
        "code": "TooManyRequests",
        "message": "Please retry again later.",
        "requestId": "r",
        "clientRequestId": "c",
        "retryAfterSeconds": 2.128,
    }
    for copy in (GraphError.from_dict(data), pickle.loads(pickle.dumps(error))):
        assert copy.to_dict() == data
        assert copy.kind is ErrorKind.THROTTLED
    assert not error.is_not_found
    assert GraphError(ErrorKind.PERMANENT, "gone", http_status=404).is_not_found
    assert "TooManyRequests" in str(error)
    assert "request-id r" in str(error)


# ------------------------------------------------------------------------------------------------------ URLs

V1 = GraphEndpoint.parse("https://graph.microsoft.com/v1.0/")
SIM = GraphEndpoint.parse("http://127.0.0.1:8123/beta")
OP_KEY = "engagementAsyncOperations('eyJfdHlwZSI6IkxvbmdSdW5uaW5nT3BlcmF0aW9uIn0')"


def test_endpoint_scope_origin_and_bind_urls() -> None:
    assert V1.base_url == "https://graph.microsoft.com/v1.0"
    assert V1.token_scope == "https://graph.microsoft.com/.default"
    assert SIM.token_scope == "http://127.0.0.1:8123/.default"
    assert V1.entity_url("users", "26be1845-4119-4801-a799-aea79d09f1a2") == (
        "https://graph.microsoft.com/v1.0/users/26be1845-4119-4801-a799-aea79d09f1a2"
    )
    assert SIM.entity_url("directoryObjects", "abc") == "http://127.0.0.1:8123/beta/directoryObjects/abc"
    assert V1.url("users", "o#EXT#@contoso.onmicrosoft.com") == (
        "https://graph.microsoft.com/v1.0/users/o%23EXT%23@contoso.onmicrosoft.com"
    )
    assert V1.url("groups", "g", "members", "$ref").endswith("/groups/g/members/$ref")


def test_base_url_validation_is_the_settings_rule() -> None:
    with pytest.raises(SettingsError, match="GRAPH_BASE_URL"):
        GraphEndpoint.parse("http://graph.microsoft.com/v1.0")


G = "https://graph.microsoft.com"


@pytest.mark.parametrize(
    ("endpoint", "given", "expected"),
    [
        # Absolute, either key form, used exactly as given (even /beta/ from a v1.0 base).
        (V1, f"{G}/v1.0/employeeExperience/{OP_KEY}", f"{G}/v1.0/employeeExperience/{OP_KEY}"),
        (
            V1,
            f"{G}/beta/employeeExperience/engagementAsyncOperations/ab",
            f"{G}/beta/employeeExperience/engagementAsyncOperations/ab",
        ),
        (
            V1,
            "HTTPS://Graph.Microsoft.com:443/v1.0/x/ab?q=1",
            "HTTPS://Graph.Microsoft.com:443/v1.0/x/ab?q=1",
        ),
        # Origin-relative: starts with a version segment or with the base path.
        (V1, f"/beta/employeeExperience/{OP_KEY}", f"{G}/beta/employeeExperience/{OP_KEY}"),
        (V1, "/v1.0/employeeExperience/x/ab", f"{G}/v1.0/employeeExperience/x/ab"),
        (SIM, "/beta/employeeExperience/x/ab", "http://127.0.0.1:8123/beta/employeeExperience/x/ab"),
        # Service-root-relative: Graph writes relative URLs without the version.
        (V1, f"/employeeExperience/{OP_KEY}", f"{G}/v1.0/employeeExperience/{OP_KEY}"),
        (V1, f"employeeExperience/{OP_KEY}", f"{G}/v1.0/employeeExperience/{OP_KEY}"),
        (SIM, " employeeExperience/x/ab ", "http://127.0.0.1:8123/beta/employeeExperience/x/ab"),
        # Scheme-relative on the same host.
        (V1, "//graph.microsoft.com/v1.0/x/ab", f"{G}/v1.0/x/ab"),
    ],
)
def test_resolve_accepted_forms(endpoint: GraphEndpoint, given: str, expected: str) -> None:
    assert endpoint.resolve(given, what="operation URL") == expected


@pytest.mark.parametrize(
    ("endpoint", "given"),
    [
        (V1, "https://evil.example.com/v1.0/employeeExperience/engagementAsyncOperations/abc"),
        (V1, "http://graph.microsoft.com/v1.0/employeeExperience/engagementAsyncOperations/abc"),
        (V1, "https://graph.microsoft.com:8443/v1.0/employeeExperience/engagementAsyncOperations/abc"),
        (V1, "https://graph.microsoft.com.evil.example/v1.0/x"),
        (V1, "//evil.example.com/v1.0/x"),
        (V1, "ftp://graph.microsoft.com/v1.0/x"),
        (SIM, "http://127.0.0.1:9999/beta/x"),
        (SIM, "http://localhost:8123/beta/x"),
    ],
)
def test_resolve_refuses_other_origins(endpoint: GraphEndpoint, given: str) -> None:
    with pytest.raises(GraphError) as caught:
        endpoint.resolve(given, what="operation URL")
    assert caught.value.kind is ErrorKind.PERMANENT
    assert caught.value.code == "UntrustedGraphUrl"
    assert "bearer token" in caught.value.message


def test_resolve_refuses_an_empty_url() -> None:
    with pytest.raises(GraphError) as caught:
        V1.resolve("  ", what="operation URL")
    assert caught.value.kind is ErrorKind.PERMANENT


def test_refusal_names_only_scheme_and_host_never_the_query() -> None:
    with pytest.raises(GraphError) as caught:
        V1.resolve("https://evil.example.com/v1.0/x?sig=SECRET", what="operation URL")
    assert "SECRET" not in str(caught.value)
    assert "https://evil.example.com" in caught.value.message


def test_origin_and_log_path_helpers() -> None:
    assert origin_of("https://Graph.Microsoft.com/v1.0") == ("https", "graph.microsoft.com", 443)
    assert origin_of("http://127.0.0.1:81/x") == ("http", "127.0.0.1", 81)
    assert origin_of("/relative") is None
    assert origin_of("http://127.0.0.1:notaport/") is None
    assert path_for_log("https://h/v1.0/employeeExperience/communities?$filter=x&sig=s") == (
        "/v1.0/employeeExperience/communities"
    )


def test_user_agent_version_is_pyprojects() -> None:
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    assert pyproject["project"]["version"] == APP_VERSION
    assert f"viva-engage-community-provisioner/{APP_VERSION}" == USER_AGENT


# ------------------------------------------------------------------------- error from a response (values)


def response(status: int, body: str, headers: dict[str, str]) -> requests.Response:
    """A plain ``requests.Response`` value as the session would return it."""
    built = requests.Response()
    built.status_code = status
    built.reason = "Reason"
    built._content = body.encode()
    built.headers.update(headers)
    return built


def test_request_ids_fall_back_to_the_response_headers() -> None:
    error = _http_error(
        response(502, "<html>Bad gateway</html>", {"request-id": "hdr-r", "client-request-id": "hdr-c"}),
        non_idempotent=False,
        client_request_id="sent-c",
    )
    assert (error.kind, error.http_status, error.code) == (ErrorKind.TRANSIENT, 502, None)
    assert (error.request_id, error.client_request_id) == ("hdr-r", "hdr-c")
    assert "502" in error.message


def test_request_ids_from_the_body_win_and_the_sent_id_is_the_last_resort() -> None:
    body = '{"error": {"code": "accessDenied", "message": "No", "innererror": {"request-id": "body-r"}}}'
    error = _http_error(
        response(403, body, {"request-id": "hdr-r"}), non_idempotent=True, client_request_id="sent"
    )
    assert (error.kind, error.code, error.message) == (ErrorKind.PERMANENT, "accessDenied", "No")
    assert (error.request_id, error.client_request_id) == ("body-r", "sent")


def test_retry_after_is_read_from_any_error_answer() -> None:
    throttled = _http_error(
        response(429, "", {"Retry-After": "2.128"}), non_idempotent=False, client_request_id="c"
    )
    assert (throttled.kind, throttled.retry_after_seconds) == (ErrorKind.THROTTLED, 2.128)
    gateway = _http_error(response(504, "", {"retry-after": "5"}), non_idempotent=True, client_request_id="c")
    assert (gateway.kind, gateway.retry_after_seconds) == (ErrorKind.AMBIGUOUS, 5.0)
    assert "may exist" in gateway.message


def test_a_redirect_is_not_followed_and_is_permanent() -> None:
    error = _http_error(
        response(302, "", {"Location": "https://elsewhere.example/x"}),
        non_idempotent=False,
        client_request_id="c",
    )
    assert (error.kind, error.http_status) == (ErrorKind.PERMANENT, 302)
    assert "redirect" in error.message
    assert "elsewhere" not in error.message


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Location": "L"}, "L"),
        ({"location": " L "}, "L"),
        ({"Operation-Location": "O"}, "O"),
        ({"OPERATION-LOCATION": "O", "LOCATION": "L"}, "O"),  # the documented header wins
        ({"operation-location": "", "Location": "L"}, "L"),
        ({"Content-Type": "application/json"}, ""),
    ],
)
def test_polling_header_names_in_any_case(headers: dict[str, str], expected: str) -> None:
    assert _polling_header(response(202, "", headers).headers) == expected
