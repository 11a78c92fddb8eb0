"""Over real HTTP in the dev host: the document is served with function auth, and the app answers as it says.

Every answer below is checked against the documented answer for its operation and status code: the status
code must be documented, the content type must be one the document lists, the body must validate against
that schema, and documented polling headers must be present.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import azure.functions as func
import requests
from openapi_schema_validator import OAS30Validator

from devhost.testing import DevHost
from provisioning import openapi
from provisioning.batches import MAX_BATCH_BODY_BYTES
from tests.connector.test_documents import resolve
from tests.e2e.workflow_env import OWNER, WorkflowEnv, request_body
from triggers import openapi as openapi_trigger

OAS3 = openapi.openapi_document()
CONNECTOR = openapi.connector_definition()


def assert_documented(response: requests.Response, method: str, path: str, *, connector: bool = True) -> Any:
    """The answer's body, once checked against the document (and the connector's, unless ``connector`` is
    False: an answer to a parameter the connector does not offer)."""
    operation = OAS3["paths"][path][method]
    status = str(response.status_code)
    assert status in operation["responses"], f"{method.upper()} {path} answered undocumented {status}"
    documented = operation["responses"][status]
    for header in documented.get("headers", {}):
        assert response.headers.get(header), f"{status} lacks documented header {header}"
    if "Retry-After" in documented.get("headers", {}):
        assert int(response.headers["Retry-After"]) >= 1
    content_type = response.headers["Content-Type"].split(";")[0].strip()
    assert content_type in documented["content"], f"{status} answered {content_type}"
    body = response.json()
    schema = resolve(documented["content"][content_type]["schema"], OAS3)
    errors = list(OAS30Validator(schema).iter_errors(body))
    assert not errors, f"{method.upper()} {path} {status}: {errors[0].message} in {body}"
    connector_operation = CONNECTOR["paths"].get(path, {}).get(method)
    if connector and connector_operation is not None:
        # Swagger 2.0 has one schema per answer: it must admit every body the answer can have.
        connector_answer = connector_operation["responses"][status]
        assert set(connector_answer.get("headers", {})) == set(documented.get("headers", {}))
        connector_schema = resolve(connector_answer["schema"], CONNECTOR)
        errors = list(OAS30Validator(connector_schema).iter_errors(body))
        assert not errors, f"connector {method.upper()} {path} {status}: {errors[0].message}"
    return body


def test_document_needs_a_function_key_and_is_the_generated_one(
    devhost_factory: Callable[..., DevHost],
) -> None:
    app = func.FunctionApp()
    app.register_functions(openapi_trigger.bp)
    host = devhost_factory(app=app, enforce_keys=True)
    url = f"{host.base_url}/api/openapi.json"
    assert requests.get(url, timeout=10).status_code == 401
    assert requests.get(url, headers={"x-functions-key": "wrong"}, timeout=10).status_code == 401
    by_header = requests.get(url, headers={"x-functions-key": host.system_key}, timeout=10)
    by_query = requests.get(url, params={"code": host.system_key}, timeout=10)
    for response in (by_header, by_query):
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("application/json")
        assert response.json() == OAS3
    assert by_header.content == (openapi.REPO_ROOT / openapi.OPENAPI_FILE).read_bytes()


def test_the_app_answers_as_its_document_says(env: WorkflowEnv) -> None:
    served = requests.get(f"{env.api}/openapi.json", timeout=10)
    assert served.status_code == 200
    assert served.json() == OAS3

    communities, request_path = openapi.COMMUNITIES_PATH, openapi.REQUEST_PATH
    started = env.post(request_body(members=[OWNER["id"]]))
    body = assert_documented(started, "post", communities)
    assert started.status_code == 202
    openapi.AcceptedAnswer.model_validate(body)
    assert started.headers["Location"] == body["statusUri"]
    # The connector follows Location through its connection: it must stay on the API's host and base path.
    assert started.headers["Location"].startswith(f"{env.api}/communities/requests/")

    running = requests.get(started.headers["Location"], timeout=10)
    assert running.status_code == 202
    assert_documented(running, "get", request_path)

    final, _ = env.follow(started)
    assert final.status_code == 200
    assert assert_documented(final, "get", request_path)["status"] == "Succeeded"
    not_cancelable = requests.delete(started.headers["Location"], timeout=10)
    assert not_cancelable.status_code == 409
    openapi.Problem.model_validate(assert_documented(not_cancelable, "delete", request_path))

    invalid = env.post({"displayName": "", "owners": "nobody", "colour": "red"})
    assert invalid.status_code == 400
    openapi.Problem.model_validate(assert_documented(invalid, "post", communities))
    not_json = requests.post(
        f"{env.api}/communities", data=b"x", headers={"Content-Type": "text/plain"}, timeout=10
    )
    assert not_json.status_code == 415
    openapi.Problem.model_validate(assert_documented(not_json, "post", communities))
    too_large = env.post(request_body(description="x" * 70_000))
    assert too_large.status_code == 413
    openapi.Problem.model_validate(assert_documented(too_large, "post", communities))

    unknown = f"{env.api}/communities/requests/req-{'0' * 32}"
    for method in ("get", "delete"):
        missing = requests.request(method, unknown, timeout=10)
        assert missing.status_code == 404
        openapi.Problem.model_validate(assert_documented(missing, method, request_path))
    missing_now = requests.get(f"{unknown}/status", timeout=10)
    assert missing_now.status_code == 404
    openapi.Problem.model_validate(assert_documented(missing_now, "get", openapi.STATUS_NOW_PATH))


def status_now(env: WorkflowEnv, location: str) -> dict[str, Any]:
    """GET <status URL>/status: asserted 200, documented and without Location; the document."""
    response = requests.get(f"{location}/status", timeout=10)
    assert response.status_code == 200, response.text
    assert "Location" not in response.headers
    assert response.headers["Cache-Control"] == "no-store"
    document: dict[str, Any] = assert_documented(response, "get", openapi.STATUS_NOW_PATH)
    return document


def test_status_now_answers_200_with_the_document_in_every_status(env: WorkflowEnv) -> None:
    started = env.post(request_body("Status Now Community"))
    assert started.status_code == 202
    location = started.headers["Location"]
    assert status_now(env, location)["status"] == "Running"
    env.host.run_until_idle()  # now waiting for Graph on a durable timer: the document holds still
    waiting = requests.get(location, timeout=10)
    now = status_now(env, location)
    assert (waiting.status_code, now["status"], now["phase"]) == (202, "Running", "waiting-for-graph")
    assert now == waiting.json()  # the same document, answered 200 instead of 202

    final, _ = env.follow(started)
    assert final.status_code == 200
    assert status_now(env, location) == final.json()

    failed, _ = env.provision(request_body("Nobody's Community", owners=["nobody@contoso.onmicrosoft.com"]))
    assert failed.status_code == 422, failed.text
    failed_now = status_now(env, f"{env.api}/communities/requests/{failed.json()['id']}")
    assert (failed_now["status"], failed_now["error"]["code"]) == ("Failed", "UserNotFound")

    running = env.post(request_body("Canceled Now Community"))
    env.host.run_until_idle()
    requests.delete(running.headers["Location"], timeout=10)
    env.host.run_until_idle()
    assert status_now(env, running.headers["Location"])["status"] == "Canceled"


def test_cancel_and_idempotency_answers_are_documented(env: WorkflowEnv) -> None:
    communities, request_path = openapi.COMMUNITIES_PATH, openapi.REQUEST_PATH
    first = env.post(request_body(), {"Idempotency-Key": "run-doc"})
    assert first.status_code == 202
    conflict = env.post(request_body(privacy="public"), {"Idempotency-Key": "run-doc"})
    assert conflict.status_code == 409
    openapi.Problem.model_validate(assert_documented(conflict, "post", communities))

    env.host.run_until_idle()
    canceled = requests.delete(first.headers["Location"], timeout=10)
    assert canceled.status_code in (200, 202)
    assert_documented(canceled, "delete", request_path)
    env.host.run_until_idle()
    after = requests.get(first.headers["Location"], timeout=10)
    assert after.status_code == 409
    assert assert_documented(after, "get", request_path)["status"] == "Canceled"
    # The same key again: the finished (canceled) request's document, as POST documents for 409; the
    # connector's one 409 schema admits it as well as the conflict's problem (assert_documented checks both).
    again = env.post(request_body(), {"Idempotency-Key": "run-doc"})
    assert again.status_code == 409
    assert again.headers["Content-Type"].startswith("application/json")
    assert json.loads(again.content)["status"] == "Canceled"
    assert_documented(again, "post", communities)


def post_batch(
    env: WorkflowEnv,
    body: Any,
    content_type: str = "application/json",
    *,
    query: str = "",
    headers: Mapping[str, str] | None = None,
) -> requests.Response:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return requests.post(
        f"{env.api}/communities/batches{query}",
        data=data,
        headers={"Content-Type": content_type, **(headers or {})},
        timeout=30,
    )


def batch_body(*names: str) -> dict[str, Any]:
    return {"items": [request_body(name) for name in names]}


def test_batch_answers_are_documented(env: WorkflowEnv) -> None:
    batches_path, batch_path = openapi.BATCHES_PATH, openapi.BATCH_PATH
    csv = f"displayName,owners\nBatch doc A,{OWNER['userPrincipalName']}\n".encode()
    for data, content_type in ((csv, "text/csv"), (batch_body("Batch doc A"), "application/json")):
        valid = post_batch(env, data, content_type, query="?validateOnly=true")
        assert valid.status_code == 200, valid.text
        answer = assert_documented(valid, "post", batches_path, connector=False)
        openapi.BatchValidationAnswer.model_validate(answer)

    started = post_batch(env, batch_body("Batch doc 0", "Batch doc 1", "Batch doc 2"))
    assert started.status_code == 202, started.text
    body = openapi.BatchAcceptedAnswer.model_validate(assert_documented(started, "post", batches_path))
    assert started.headers["Location"] == body.status_uri
    assert body.status_uri.startswith(f"{env.api}/communities/batches/")
    running = requests.get(started.headers["Location"], timeout=10)
    assert running.status_code == 202
    openapi.BatchDocument.model_validate(assert_documented(running, "get", batch_path))

    final, _ = env.follow(started)
    assert final.status_code == 200, final.text
    document = openapi.BatchDocument.model_validate(assert_documented(final, "get", batch_path))
    assert document.status == "Succeeded"
    # What the connector's batch action ends with: its 200 schema.
    outputs = resolve(CONNECTOR["paths"][batches_path]["post"]["responses"]["200"]["schema"], CONNECTOR)
    assert not list(OAS30Validator(outputs).iter_errors(final.json()))
    assert document.items is not None
    item = requests.get(document.items[0].status_uri, timeout=10)
    assert item.status_code == 200
    assert (
        assert_documented(item, "get", openapi.REQUEST_PATH)["community"]["id"]
        == document.items[0].community_id
    )

    page = requests.get(started.headers["Location"], params={"skip": 1, "top": 1}, timeout=10)
    paged = openapi.BatchDocument.model_validate(assert_documented(page, "get", batch_path))
    assert [row.index for row in paged.items or []] == [1]
    assert paged.next_link is not None
    last = openapi.BatchDocument.model_validate(
        assert_documented(requests.get(paged.next_link, timeout=10), "get", batch_path)
    )
    assert ([row.index for row in last.items or []], last.next_link) == ([2], None)
    out_of_range = requests.get(started.headers["Location"], params={"top": 0}, timeout=10)
    assert out_of_range.status_code == 400
    openapi.Problem.model_validate(assert_documented(out_of_range, "get", batch_path))

    settled = requests.delete(started.headers["Location"], timeout=10)
    assert settled.status_code == 409
    problem = openapi.Problem.model_validate(assert_documented(settled, "delete", batch_path))
    assert (problem.code, problem.batch_status) == ("NotCancelable", "Succeeded")

    errors = (
        (post_batch(env, {"items": [{"displayName": ""}]}), 400),
        (post_batch(env, b"x", "text/plain"), 415),
        (post_batch(env, b"x" * (MAX_BATCH_BODY_BYTES + 1), "text/csv"), 413),
    )
    for answer, status in errors:
        assert answer.status_code == status, answer.text
        openapi.Problem.model_validate(assert_documented(answer, "post", batches_path))
    unknown = f"{env.api}/communities/batches/batch-{'0' * 32}"
    for method in ("get", "delete"):
        missing = requests.request(method, unknown, timeout=10)
        assert missing.status_code == 404
        openapi.Problem.model_validate(assert_documented(missing, method, batch_path))


def test_batch_cancel_and_idempotency_answers_are_documented(env: WorkflowEnv) -> None:
    batches_path, batch_path = openapi.BATCHES_PATH, openapi.BATCH_PATH
    key = {"Idempotency-Key": "batch-doc"}
    started = post_batch(env, batch_body("Batch cancel 0", "Batch cancel 1"), headers=key)
    assert started.status_code == 202, started.text
    conflict = post_batch(env, batch_body("Batch cancel 0"), headers=key)
    assert conflict.status_code == 409
    openapi.Problem.model_validate(assert_documented(conflict, "post", batches_path))

    canceled = requests.delete(started.headers["Location"], timeout=10)
    assert canceled.status_code == 202, canceled.text
    document = openapi.BatchDocument.model_validate(assert_documented(canceled, "delete", batch_path))
    assert document.cancel_requested is True
    final, _ = env.follow(canceled)
    assert final.status_code == 200, final.text
    assert assert_documented(final, "get", batch_path)["status"] == "Canceled"
    again = requests.delete(started.headers["Location"], timeout=10)
    assert again.status_code == 409
    assert (
        openapi.Problem.model_validate(assert_documented(again, "delete", batch_path)).batch_status
        == "Canceled"
    )
    # The same key and items once the batch has settled: its document (without items), answered 200.
    repeated = post_batch(env, batch_body("Batch cancel 0", "Batch cancel 1"), headers=key)
    assert repeated.status_code == 200, repeated.text
    settled = openapi.BatchDocument.model_validate(assert_documented(repeated, "post", batches_path))
    assert (settled.id, settled.status, settled.items) == (document.id, "Canceled", None)


def test_batch_retry_answers_are_documented(env: WorkflowEnv) -> None:
    batch_path, retry_path = openapi.BATCH_PATH, openapi.BATCH_RETRY_PATH
    env.sim.set_scenario("http-error", status=403, code="accessDenied", route="create", times=1)
    started = post_batch(env, batch_body("Batch retry 0", "Batch retry 1"))
    assert started.status_code == 202, started.text
    retry_url = f"{started.headers['Location']}/retry"
    running = requests.post(retry_url, timeout=10)
    assert running.status_code == 409, running.text
    problem = openapi.Problem.model_validate(assert_documented(running, "post", retry_path))
    assert (problem.code, problem.batch_status) == ("NotRetryable", "Running")

    final, _ = env.follow(started)
    assert assert_documented(final, "get", batch_path)["status"] == "PartiallySucceeded"
    retried = requests.post(retry_url, timeout=10)
    assert retried.status_code == 202, retried.text
    accepted_retry = openapi.BatchRetryAcceptedAnswer.model_validate(
        assert_documented(retried, "post", retry_path)
    )
    assert accepted_retry.status_uri == retried.headers["Location"]
    done, _ = env.follow(retried)
    # What the connector's retry action ends with: its 200 schema (the settled retry batch).
    retry_document = openapi.BatchDocument.model_validate(assert_documented(done, "get", batch_path))
    outputs = resolve(CONNECTOR["paths"][retry_path]["post"]["responses"]["200"]["schema"], CONNECTOR)
    assert not list(OAS30Validator(outputs).iter_errors(done.json()))
    assert (retry_document.status, retry_document.retry_of) == ("Succeeded", started.json()["id"])
    original = requests.get(started.headers["Location"], timeout=10)
    retried_by = openapi.BatchDocument.model_validate(assert_documented(original, "get", batch_path))
    assert retried_by.retried_by == accepted_retry.id
    missing = requests.post(f"{env.api}/communities/batches/batch-{'0' * 32}/retry", timeout=10)
    assert missing.status_code == 404
    openapi.Problem.model_validate(assert_documented(missing, "post", retry_path))


def test_list_and_retry_answer_as_documented(env: WorkflowEnv) -> None:
    started = env.post(request_body("Documented List"))
    assert started.status_code == 202
    listed = requests.get(f"{env.api}/communities/requests", params={"top": "1"}, timeout=30)
    assert assert_documented(listed, "get", openapi.REQUESTS_PATH)["items"]
    bad = requests.get(f"{env.api}/communities/requests", params={"status": "Nope"}, timeout=30)
    assert_documented(bad, "get", openapi.REQUESTS_PATH)
    retry_url = f"{env.api}/communities/requests/{started.json()['id']}/retry"
    assert_documented(requests.post(retry_url, timeout=30), "post", openapi.RETRY_PATH)
    unknown = requests.post(f"{env.api}/communities/requests/req-{'0' * 32}/retry", timeout=30)
    assert_documented(unknown, "post", openapi.RETRY_PATH)
