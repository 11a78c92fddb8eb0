"""Properties of the request models over generated input: valid requests survive a round trip, and anything
else is refused with a RequestValidationError whose every error names a real place in the input."""

from __future__ import annotations

import json
import uuid
from typing import Any, Literal

from hypothesis import given, settings
from hypothesis import strategies as st

from provisioning.callbacks import CallbackPolicy
from provisioning.models import (
    MAX_REPORTED_ERRORS,
    CommunityRequest,
    QueueCommunityRequest,
    RequestValidationError,
    validate_request,
)
from tests.fuzz.conftest import FUZZ
from tests.fuzz.strategies import (
    ANY_VALUES,
    BODIES,
    USER_LIST_FIELDS,
    VALID_MESSAGES,
    VALID_REQUESTS,
    as_text,
    encode,
    path_exists,
    users_of,
)

POLICY = CallbackPolicy(("*.logic.azure.com",))
KNOWN_FIELDS = {field.alias for field in QueueCommunityRequest.model_fields.values() if field.alias}
EXAMPLES = 400
Source = Literal["http", "queue"]


def outcome(payload: Any, source: Source) -> CommunityRequest | list[dict[str, str]]:
    """The validated request, or the errors; any other exception fails the test."""
    try:
        return validate_request(payload, source=source, callback_policy=POLICY)
    except RequestValidationError as err:
        return err.errors


def assert_named(errors: list[dict[str, str]], data: Any) -> None:
    assert 0 < len(errors) <= MAX_REPORTED_ERRORS + 1
    for error in errors:
        assert set(error) == {"field", "message"}
        assert error["message"]
        assert path_exists(data, error["field"], KNOWN_FIELDS), error
    # Problem bodies and Rejected documents are UTF-8: no error may carry what UTF-8 cannot encode.
    json.dumps(errors, ensure_ascii=False).encode()


def _user(value: str) -> str:
    value = value.strip()
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return value


@settings(FUZZ, max_examples=EXAMPLES)
@given(body=VALID_REQUESTS | VALID_MESSAGES, ascii_only=st.booleans())
def test_valid_requests_round_trip(body: dict[str, Any], ascii_only: bool) -> None:
    source: Source = "queue" if "requestId" in body else "http"
    request = outcome(encode(body, ascii_only), source)
    assert isinstance(request, CommunityRequest)
    assert request.display_name == body["displayName"].strip()
    assert request.privacy == (body.get("privacy") or "private").strip().lower()
    assert request.on_duplicate_name == (body.get("onDuplicateName") or "fail").lower()
    owners = users_of(body["owners"])
    assert {owner.casefold() for owner in request.owners} == {_user(o).casefold() for o in owners}
    assert len(request.owners) == len({owner.casefold() for owner in request.owners})
    members = users_of(body.get("members") or [])
    assert {member.casefold() for member in request.members} == {_user(m).casefold() for m in members}
    assert request.callback_url == (body.get("callbackUrl") or None)
    if isinstance(request, QueueCommunityRequest):
        assert request.request_id == body["requestId"].strip()
    # What was accepted is accepted again unchanged: normalising is idempotent.
    again = outcome(request.model_dump(by_alias=True), source)
    assert again == request


@settings(FUZZ, max_examples=EXAMPLES)
@given(body=VALID_REQUESTS, data=st.data())
def test_users_as_one_string_are_the_same_request_as_the_list(
    body: dict[str, Any], data: st.DataObject
) -> None:
    lists = {**body, **{key: users_of(body[key]) for key in USER_LIST_FIELDS if body.get(key) is not None}}
    texts = {key: data.draw(as_text(lists[key])) for key in USER_LIST_FIELDS if lists.get(key) is not None}
    from_lists = outcome(lists, "http")
    assert isinstance(from_lists, CommunityRequest)
    assert outcome({**lists, **texts}, "http") == from_lists
    # A list with an invalid user and the same list as one string: the same error, at the same position.
    broken = [*lists["owners"], "not a user", *lists["owners"]]
    errors = outcome({**lists, "owners": broken}, "http")
    assert isinstance(errors, list)
    assert outcome({**lists, "owners": data.draw(as_text(broken))}, "http") == errors
    assert [error["field"] for error in errors] == [f"owners[{len(lists['owners'])}]"]


@settings(FUZZ, max_examples=EXAMPLES)
@given(value=ANY_VALUES, source=st.sampled_from(["http", "queue"]))
def test_any_json_value_is_accepted_or_refused_naming_real_fields(value: Any, source: Source) -> None:
    result = outcome(encode(value), source)
    if isinstance(value, dict):
        # A caller's mapping is judged exactly as the same JSON text.
        assert outcome(value, source) == result
    if isinstance(result, list):
        assert_named(result, value)
    else:
        assert isinstance(value, dict)
        assert result.display_name == value["displayName"].strip()
    # A str payload holding lone surrogates cannot be UTF-8: it is refused as a whole.
    text = json.dumps(value, ensure_ascii=False)
    text_result = outcome(text, source)
    if any(0xD800 <= ord(char) <= 0xDFFF for char in text):
        assert isinstance(text_result, list)
        assert [error["field"] for error in text_result] == ["body"]


@settings(FUZZ, max_examples=EXAMPLES)
@given(body=BODIES, source=st.sampled_from(["http", "queue"]))
def test_any_bytes_are_accepted_or_refused_naming_real_fields(body: bytes, source: Source) -> None:
    result = outcome(body, source)
    if isinstance(result, list):
        try:
            data = json.loads(body.decode("utf-8-sig"))
        except (ValueError, RecursionError):
            data = None
        if data is None:  # refused before there was anything to name but the body
            assert [error["field"] for error in result] == ["body"]
        assert_named(result, data)
