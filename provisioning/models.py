"""Request and status models shared by the triggers, the orchestrator and the OpenAPI description.

Pydantic models are the single source of the JSON shapes: the triggers validate with them, the orchestrator
reads its input and writes its status with them, and their JSON Schema (field descriptions and examples)
feeds the OpenAPI document. JSON names are camelCase (aliases); Python attributes are snake_case.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
import uuid
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import ErrorDetails

from provisioning.callbacks import MAX_CALLBACK_URL_LENGTH, CallbackPolicy, CallbackUrlError

ORCHESTRATOR_NAME = "provision_community"

MAX_BODY_BYTES = 64 * 1024
MAX_DISPLAY_NAME_LENGTH = 255  # Graph's limit for a community's displayName
MAX_DESCRIPTION_LENGTH = 1024  # Graph's limit for a community's description
MAX_OWNERS = 100  # Graph: owners are "limited to 100 users"
# Members are added after creation, 20 per Graph call; 1,000 keeps a request to 50 calls and its durable
# history small, and still fits a 64 KiB body. Larger audiences belong to group-based membership.
MAX_MEMBERS = 1000
MAX_USER_REFERENCE_LENGTH = 256
MAX_REQUEST_ID_LENGTH = 256
# A body with a thousand bad members must not produce a huge problem body or a Rejected document that no
# longer fits in a 64 KiB queue message.
MAX_REPORTED_ERRORS = 50

Source = Literal["http", "queue"]
Privacy = Literal["public", "private"]
OnDuplicateName = Literal["fail", "adopt", "create"]


class RequestStatus(StrEnum):
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELED = "Canceled"
    REJECTED = "Rejected"  # queue channel only: the message was invalid, nothing was started


TERMINAL_STATUSES = frozenset(
    {RequestStatus.SUCCEEDED, RequestStatus.FAILED, RequestStatus.CANCELED, RequestStatus.REJECTED}
)


class Phase(StrEnum):
    RESOLVING_USERS = "resolving-users"
    CHECKING_NAME = "checking-name"
    CREATING = "creating"
    WAITING_FOR_GRAPH = "waiting-for-graph"
    CONFIRMING = "confirming"
    ADDING_MEMBERS = "adding-members"
    NOTIFYING = "notifying"
    DONE = "done"


class ErrorCode(StrEnum):
    VALIDATION_FAILED = "ValidationFailed"
    IDEMPOTENCY_CONFLICT = "IdempotencyConflict"
    DUPLICATE_NAME = "DuplicateName"
    USER_NOT_FOUND = "UserNotFound"
    GRAPH_REJECTED = "GraphRejected"  # permanent Graph 4xx
    GRAPH_UNAVAILABLE = "GraphUnavailable"  # transient retries exhausted
    OPERATION_FAILED = "OperationFailed"  # Graph operation ended failed / skipped / invalid
    TIMEOUT = "Timeout"
    COMMUNITY_NOT_FOUND = "CommunityNotFound"  # operation succeeded but the community cannot be found
    CANCELED = "Canceled"
    INTERNAL_ERROR = "InternalError"  # the orchestration itself crashed


CANCELED_MESSAGE = "The request was canceled. A creation Graph had already accepted is not undone."


class CallbackState(StrEnum):
    NONE = "none"
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


# ----------------------------------------------------------------------------------------------------
# Validation helpers


_GUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
# A UPN is local@domain: no spaces, exactly one @, a dotted domain. Graph decides whether the user exists.
_DNS_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_UPN = re.compile(rf"^[^@\s]{{1,64}}@{_DNS_LABEL}(?:\.{_DNS_LABEL})+$")


def _has_control_characters(text: str, allowed: str = "") -> bool:
    return any(unicodedata.category(char) == "Cc" and char not in allowed for char in text)


def _single_line_text(value: str, max_length: int) -> str:
    """``value`` trimmed; ValueError when empty, longer than ``max_length`` or holding control characters."""
    value = value.strip()
    if not value:
        raise ValueError("must not be empty")
    if len(value) > max_length:
        raise ValueError(f"must be at most {max_length} characters, got {len(value)}")
    if _has_control_characters(value):
        raise ValueError("must not contain control characters (such as line breaks or tabs)")
    return value


def normalize_user_reference(value: str) -> str:
    """An Entra object id (lower-case canonical GUID) or a UPN (as given); ValueError otherwise."""
    value = value.strip()
    if _GUID.match(value):
        return str(uuid.UUID(value))
    if len(value) <= MAX_USER_REFERENCE_LENGTH and _UPN.match(value):
        return value
    shown = value if len(value) <= 64 else value[:61] + "..."
    raise ValueError(
        f"must be an Entra object id (GUID) or a user principal name (name@domain), got {shown!r}"
    )


UserReference = Annotated[
    str,
    AfterValidator(normalize_user_reference),
    Field(description="An Entra user object id (GUID) or user principal name."),
]


# Separators of owners and members given as one string (what Forms, SharePoint and Excel hand a flow, and what
# a CSV cell holds). None occurs in an object id or a UPN; line breaks separate too (Alt+Enter in Excel).
USER_SEPARATORS = re.compile(r"[;,\r\n]")
USER_LIST_MESSAGE = "must be an array of strings or one string of users separated by ; or ,"


def split_users(text: str) -> list[tuple[int, str]]:
    """The entries of a ``;``- or ``,``-separated list of users, trimmed, empty ones dropped; each with its
    1-based position among all entries, empty ones counted (how a spreadsheet user counts them)."""
    entries = []
    for position, entry in enumerate(USER_SEPARATORS.split(text), start=1):
        entry = entry.strip()
        if entry:
            entries.append((position, entry))
    return entries


def _user_list_schema(schema: dict[str, Any]) -> None:
    """JSON Schema of owners and members: the array, or one separated string (an ``anyOf`` of the two)."""
    array = {"type": schema.pop("type"), "items": schema.pop("items")}
    text = {"type": "string", "description": "The users separated by `;` or `,`; empty entries are ignored."}
    schema["anyOf"] = [array, text]


def _dedupe_case_insensitive(values: list[str]) -> list[str]:
    seen: set[str] = set()
    unique = []
    for value in values:
        key = value.casefold()
        if key not in seen:
            seen.add(key)
            unique.append(value)
    return unique


class _RequestModel(BaseModel):
    # strict: "5" is not a list and 5 is not a string; only the JSON names are accepted.
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=False, frozen=True)


class CommunitySpec(_RequestModel):
    """What to create: the validated request without delivery details (callback, request id)."""

    display_name: str = Field(
        alias="displayName",
        description="Name of the community. Leading and trailing spaces are removed; 1 to 255 characters, "
        "no control characters.",
        examples=["Contoso Engineering"],
    )
    description: str | None = Field(
        default=None,
        alias="description",
        description="Description of the community, up to 1,024 characters (line breaks allowed).",
        examples=["Where Contoso engineers share news and ask questions."],
    )
    privacy: Privacy = Field(
        default="private",
        alias="privacy",
        description="Who can see and join the community: `public` or `private` (default). Case-insensitive.",
        examples=["private"],
    )
    owners: list[UserReference] = Field(
        alias="owners",
        description="Community owners (admins): 1 to 100 Entra user object ids or user principal names, as "
        "an array or as one string separated by `;` or `,`. Duplicates (case-insensitive) are removed.",
        examples=[["6f1b6c0e-2b1d-4c7e-9a43-6c0f4c3d2a11", "adele.vance@contoso.com"]],
        json_schema_extra=_user_list_schema,
    )
    members: list[UserReference] = Field(
        default_factory=list,
        alias="members",
        description=f"Members added after the community exists: up to {MAX_MEMBERS} Entra user object ids or "
        "user principal names, as an array or as one string separated by `;` or `,`. Duplicates "
        "(case-insensitive) are removed.",
        examples=[["alex.wilber@contoso.com"]],
        json_schema_extra=_user_list_schema,
    )
    on_duplicate_name: OnDuplicateName = Field(
        default="fail",
        alias="onDuplicateName",
        description="What to do when a community with the same name exists: `fail` (default) with "
        "DuplicateName, `adopt` the existing one, or `create` another one anyway.",
        examples=["fail"],
    )

    @field_validator("display_name", mode="after")
    @classmethod
    def _check_display_name(cls, value: str) -> str:
        return _single_line_text(value, MAX_DISPLAY_NAME_LENGTH)

    @field_validator("description", mode="after")
    @classmethod
    def _check_description(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if len(value) > MAX_DESCRIPTION_LENGTH:
            raise ValueError(f"must be at most {MAX_DESCRIPTION_LENGTH} characters, got {len(value)}")
        if _has_control_characters(value, allowed="\n\r\t"):
            raise ValueError("must not contain control characters other than line breaks and tabs")
        return value or None

    @field_validator("privacy", "on_duplicate_name", mode="before")
    @classmethod
    def _lower_case_choice(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:  # Power Automate sends null for an optional field left empty
            return "private" if info.field_name == "privacy" else "fail"
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("owners", "members", mode="before")
    @classmethod
    def _user_list(cls, value: Any, info: ValidationInfo) -> Any:
        """One string becomes the list of its entries (``owners[1]`` is then its second non-empty entry)."""
        if value is None and info.field_name == "members":
            return []
        if isinstance(value, str):
            return [entry for _, entry in split_users(value)]
        return value

    @field_validator("owners", "members", mode="after")
    @classmethod
    def _check_users(cls, values: list[str], info: ValidationInfo) -> list[str]:
        field = "owners" if info.field_name == "owners" else "members"
        unique = _dedupe_case_insensitive(values)
        limit = MAX_OWNERS if field == "owners" else MAX_MEMBERS
        if field == "owners" and not unique:
            raise ValueError("must name at least one owner (Graph requires owners for app-only creation)")
        if len(unique) > limit:
            raise ValueError(f"must hold at most {limit} distinct users, got {len(unique)}")
        return unique


class CommunityRequest(CommunitySpec):
    """The body of ``POST /api/communities``."""

    callback_url: str | None = Field(
        default=None,
        alias="callbackUrl",
        description="Optional https URL that receives the final status document as a POST (for example an "
        "HTTP Webhook action's listCallbackUrl()). Its host must be on the app's allow-list.",
        examples=[
            "https://prod-01.westeurope.logic.azure.com/workflows/abc/runs/def/actions/wait/run?sig=..."
        ],
    )

    @field_validator("callback_url", mode="after")
    @classmethod
    def _check_callback_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        return _checked_callback_url(value, info)

    def spec(self) -> CommunitySpec:
        return CommunitySpec.model_validate(self.model_dump(by_alias=True, include=_SPEC_FIELDS))


_SPEC_FIELDS = set(CommunitySpec.model_fields)


def _checked_callback_url(value: str | None, info: ValidationInfo) -> str | None:
    """The trimmed callback URL if the callback policy of the validation context accepts it; None if blank."""
    if value is None or not value.strip():
        return None
    context = info.context if isinstance(info.context, Mapping) else {}
    policy = context.get("callback_policy")
    if not isinstance(policy, CallbackPolicy):
        policy = CallbackPolicy.from_settings()
    try:
        return policy.check_url(value.strip())
    except CallbackUrlError as err:
        raise ValueError(str(err)) from None


class CommunitySubscription(CommunityRequest):
    """The body of ``POST /api/communities/subscriptions`` (an HTTP Webhook action's subscribe call): a
    request whose ``callbackUrl`` is required, since it also names the subscription for the unsubscribe."""

    callback_url: str = Field(
        alias="callbackUrl",
        description="The HTTP Webhook action's listCallbackUrl(): receives the final status document as a "
        "POST, and names this subscription in the unsubscribe call. Its host must be on the app's "
        "allow-list.",
        examples=[
            "https://prod-01.westeurope.logic.azure.com/workflows/abc/runs/def/actions/wait/run?sig=..."
        ],
    )

    @field_validator("callback_url", mode="after")
    @classmethod
    def _check_callback_url(cls, value: str | None, info: ValidationInfo) -> str:
        checked = _checked_callback_url(value, info)
        if checked is None:
            raise ValueError("must not be empty: send the HTTP Webhook action's listCallbackUrl()")
        return checked


class UnsubscribeRequest(_RequestModel):
    """The body of ``POST /api/communities/subscriptions/unsubscribe`` (the action's unsubscribe call)."""

    callback_url: str = Field(
        alias="callbackUrl",
        description="The callback URL the subscribe call sent (the HTTP Webhook action's listCallbackUrl()).",
        examples=[
            "https://prod-01.westeurope.logic.azure.com/workflows/abc/runs/def/actions/wait/run?sig=..."
        ],
    )

    @field_validator("callback_url", mode="after")
    @classmethod
    def _check_callback_url(cls, value: str) -> str:
        # Not held to the callback policy: a subscription must stay cancelable after the allow-list changed.
        value = value.strip()
        if not value:
            raise ValueError("must not be empty")
        if len(value) > MAX_CALLBACK_URL_LENGTH:
            raise ValueError(f"must be at most {MAX_CALLBACK_URL_LENGTH} characters")
        return value


class QueueCommunityRequest(CommunityRequest):
    """A message on the provisioning queue: the HTTP body plus a required ``requestId``."""

    request_id: str = Field(
        alias="requestId",
        description="The sender's id for this request; also the idempotency key: a second message with "
        "the same requestId starts nothing.",
        examples=["sharepoint-item-4711"],
    )

    @field_validator("request_id", mode="after")
    @classmethod
    def _check_request_id(cls, value: str) -> str:
        return _single_line_text(value, MAX_REQUEST_ID_LENGTH)


# ----------------------------------------------------------------------------------------------------
# Validation entry point


class FieldError(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: str = Field(
        description="Path of the offending field, e.g. `owners[3]`; `body` for the whole body."
    )
    message: str = Field(description="What is wrong with it.")


class RequestValidationError(ValueError):
    """The request is invalid; ``errors`` lists ``{"field": ..., "message": ...}`` entries."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{error['field']}: {error['message']}" for error in errors))


class BodyTooLargeError(RequestValidationError):
    """The body exceeds ``MAX_BODY_BYTES`` (HTTP answers 413)."""


_TYPE_MESSAGES = {
    "string_type": "must be a string",
    "list_type": "must be an array",
    "model_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
    "missing": "is required",
    "extra_forbidden": "is not a known field",
}


# A name that reads unambiguously after a dot; any other name is shown quoted: ["colour red"], [""].
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Names are shortened in error paths: an unknown field with a 40 KB name must not make the answer, or a
# Rejected queue document (limited to 64 KiB), several times larger than the body.
MAX_SHOWN_NAME_LENGTH = 64


def _shortened(text: str, limit: int = MAX_SHOWN_NAME_LENGTH) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif _PLAIN_NAME.fullmatch(part) and len(part) <= MAX_SHOWN_NAME_LENGTH:
            path += f".{part}" if path else part
        else:
            path += "[" + json.dumps(_shortened(part), ensure_ascii=False) + "]"
    return path or "body"


def _translate(error: ErrorDetails) -> list[dict[str, str]]:
    field = _field_path(tuple(error["loc"]))
    kind = error["type"]
    if kind == "value_error":
        message = str(error.get("ctx", {}).get("error", error["msg"]))
        return [{"field": field, "message": message}]
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        return [{"field": field, "message": f"must be one of {expected}"}]
    if kind == "too_short" and field == "owners":
        return [{"field": field, "message": "must name at least one owner"}]
    if kind == "list_type" and error["loc"] in (("owners",), ("members",)):
        return [{"field": field, "message": USER_LIST_MESSAGE}]
    message = _TYPE_MESSAGES.get(kind) or error["msg"]
    return [{"field": field, "message": message}]


def _bounded(errors: list[dict[str, str]]) -> list[dict[str, str]]:
    if len(errors) <= MAX_REPORTED_ERRORS:
        return errors
    hidden = len(errors) - MAX_REPORTED_ERRORS
    return [*errors[:MAX_REPORTED_ERRORS], {"field": "body", "message": f"{hidden} more errors not shown"}]


# A request is two levels deep. Python's json module recurses once per level and raises RecursionError near a
# thousand; this limit keeps parsing, validation and the echo in a Rejected document far from that.
MAX_JSON_DEPTH = 32
# One string (escapes included; an unterminated one runs to the end and the parser fails on it anyway) or one
# bracket: brackets inside strings do not nest.
_NESTING_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]', re.DOTALL)
# JSON's \ud800-\udfff escapes decode to lone surrogates: not Unicode, so no UTF-8 answer, status document or
# Graph call could carry them.
_SURROGATE = re.compile("[\ud800-\udfff]")
_LONE_SURROGATE = "got a lone surrogate (an escape from \\ud800 to \\udfff without its pair)"


class _BodyError(ValueError):
    """A problem found while parsing the body; its message is shown as is."""


def _too_deep(text: str) -> bool:
    depth = 0
    for token in _NESTING_TOKEN.findall(text):
        if token in ("[", "{"):
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return True
        elif token in ("]", "}"):
            depth -= 1
    return False


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _BodyError(f"has the field {_shortened(key)!r} more than once")
        result[key] = value
    return result


def _check_number(text: str) -> None:
    # Python reads 1e999 as infinity and refuses integers of over 4,300 digits with a ValueError of its own;
    # no request field is a number, and callers' JSON readers handle doubles at best.
    if not math.isfinite(float(text)):
        raise _BodyError(f"holds a number out of range ({_shortened(text, 24)}); numbers must fit a double")


def _parse_int(text: str) -> int:
    _check_number(text)
    return int(text)


def _parse_float(text: str) -> float:
    _check_number(text)
    return float(text)


def _refuse_constant(name: str) -> Any:
    raise _BodyError(f"is not valid JSON: {name} is not a JSON value")


def _unicode_errors(data: Any) -> list[dict[str, str]]:
    """Field errors for the strings and field names of ``data`` that hold lone surrogates."""
    errors: list[dict[str, str]] = []
    pending: list[tuple[tuple[int | str, ...], Any]] = [((), data)]
    while pending:
        loc, value = pending.pop()
        if isinstance(value, str) and _SURROGATE.search(value):
            errors.append({"field": _field_path(loc), "message": f"must be valid Unicode, {_LONE_SURROGATE}"})
        elif isinstance(value, Mapping):
            for key, item in reversed(list(value.items())):
                if isinstance(key, str) and _SURROGATE.search(key):
                    message = f"must have field names of valid Unicode, {_LONE_SURROGATE}"
                    errors.append({"field": _field_path(loc), "message": message})
                else:
                    pending.append(((*loc, key), item))
        elif isinstance(value, list):
            pending.extend(((*loc, index), item) for index, item in reversed(list(enumerate(value))))
    return errors


def _body_error(message: str) -> RequestValidationError:
    return RequestValidationError([{"field": "body", "message": message}])


def parse_json_body(payload: bytes | str) -> Any:
    """Decode a UTF-8 JSON body of at most ``MAX_BODY_BYTES`` and ``MAX_JSON_DEPTH`` levels.

    ``RequestValidationError`` names ``body``, or the path of a string that is not valid Unicode.
    """
    # surrogatepass: a str holding lone surrogates becomes bytes that fail as non-UTF-8 below.
    raw = payload.encode("utf-8", "surrogatepass") if isinstance(payload, str) else payload
    if len(raw) > MAX_BODY_BYTES:
        raise BodyTooLargeError(
            [{"field": "body", "message": f"must be at most {MAX_BODY_BYTES} bytes, got {len(raw)}"}]
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _body_error("must be UTF-8 encoded JSON") from None
    if text.startswith("\ufeff"):
        raise _body_error("is not valid JSON: it starts with more than one byte order mark")
    if not text.strip():
        raise _body_error("must not be empty")
    if _too_deep(text):
        raise _body_error(f"is nested too deeply: at most {MAX_JSON_DEPTH} levels of arrays and objects")
    try:
        data = json.loads(
            text,
            object_pairs_hook=_reject_duplicate_keys,
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_refuse_constant,
        )
    except _BodyError as err:
        raise _body_error(str(err)) from None
    except ValueError as err:
        raise _body_error(f"is not valid JSON: {err}") from None
    unicode_errors = _unicode_errors(data)
    if unicode_errors:
        raise RequestValidationError(_bounded(unicode_errors))
    return data


def validate_request(
    payload: bytes | str | Mapping[str, Any],
    *,
    source: Source = "http",
    callback_policy: CallbackPolicy | None = None,
    model: type[CommunityRequest] | None = None,
) -> CommunityRequest:
    """Validate a request body (HTTP) or message (queue; returns a ``QueueCommunityRequest``).

    Raises ``RequestValidationError`` listing every problem with a human-readable field path (``owners[3]``).
    ``callback_policy`` defaults to the one built from the app settings; ``model`` (default: by ``source``)
    is the body's model, e.g. ``CommunitySubscription``.
    """
    data = _json_object(payload)
    if model is None:
        model = QueueCommunityRequest if source == "queue" else CommunityRequest
    context = {"callback_policy": callback_policy or CallbackPolicy.from_settings()}
    return _validated(model, data, context)


def validate_unsubscribe(payload: bytes | str | Mapping[str, Any]) -> str:
    """The callback URL of an unsubscribe body (``UnsubscribeRequest``); ``RequestValidationError`` else."""
    return _validated(UnsubscribeRequest, _json_object(payload)).callback_url


_ModelT = TypeVar("_ModelT", bound=BaseModel)


def _validated(model: type[_ModelT], data: Mapping[str, Any], context: Any = None) -> _ModelT:
    try:
        return model.model_validate(dict(data), context=context)
    except ValidationError as err:
        errors: list[dict[str, str]] = []
        for detail in err.errors(include_url=False, include_input=False):
            errors.extend(_translate(detail))
        raise RequestValidationError(_bounded(errors)) from None


def _json_object(payload: bytes | str | Mapping[str, Any]) -> Mapping[str, Any]:
    """The body as a JSON object, held to the body limits; ``RequestValidationError`` naming ``body`` else."""
    if isinstance(payload, Mapping):
        # A mapping is held to the limit of the same request sent as (ASCII-escaped) JSON text, and in the
        # same order: the size first, as parse_json_body measures the text before it reads it.
        size = len(json.dumps(payload).encode())
        if size > MAX_BODY_BYTES:
            raise BodyTooLargeError(
                [{"field": "body", "message": f"must be at most {MAX_BODY_BYTES} bytes, got {size}"}]
            )
        unicode_errors = _unicode_errors(payload)
        if unicode_errors:
            raise RequestValidationError(_bounded(unicode_errors))
        data: Any = payload
    else:
        data = parse_json_body(payload)
    if not isinstance(data, Mapping):
        raise _body_error("must be a JSON object")
    return data


# ----------------------------------------------------------------------------------------------------
# Orchestrator input


class ProvisioningInput(BaseModel):
    """The orchestrator's input (plain JSON). The callback URL lives here only; it is never rendered."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    request_id: str = Field(alias="requestId", description="The durable instance id (`req-...`).")
    source: Source = Field(alias="source", description="Which channel started the request.")
    request: CommunitySpec = Field(alias="request", description="What to create.")
    callback_url: str | None = Field(default=None, alias="callbackUrl")
    created_at: str = Field(
        alias="createdAt", description="When the request was accepted (ISO-8601, UTC, Z)."
    )
    body_hash: str = Field(
        alias="bodyHash", description="Hash of the request for idempotency conflict checks."
    )
    idempotency_key: str | None = Field(
        default=None, alias="idempotencyKey", description="The caller's Idempotency-Key or queue requestId."
    )
    retry_of: str | None = Field(
        default=None, alias="retryOf", description="The Failed or Canceled request this one retries, if any."
    )

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, mode="json")


# ----------------------------------------------------------------------------------------------------
# Status document: one shape for HTTP, callback and result message


class _DocumentModel(BaseModel):
    # Documents are read back from durable state written by another version of the code: ignore extra fields
    # rather than fail a status request.
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class StatusRequest(_DocumentModel):
    display_name: str = Field(alias="displayName", examples=["Contoso Engineering"])
    description: str | None = Field(default=None, alias="description")
    privacy: Privacy = Field(default="private", alias="privacy")
    # Counts, not the users: user principal names are personal data and never leave the app in a document.
    owner_count: int = Field(default=0, alias="ownerCount", description="How many owners the request named.")
    member_count: int = Field(
        default=0, alias="memberCount", description="How many members the request named."
    )

    @classmethod
    def from_spec(cls, spec: CommunitySpec) -> StatusRequest:
        return cls(
            display_name=spec.display_name,
            description=spec.description,
            privacy=spec.privacy,
            owner_count=len(spec.owners),
            member_count=len(spec.members),
        )


class OperationProgress(_DocumentModel):
    status: str | None = Field(
        default=None,
        alias="status",
        description="Last status Graph reported for the creation (notStarted, running, succeeded, ...).",
        examples=["running"],
    )
    checks: int = Field(default=0, alias="checks", description="Status checks made so far.", examples=[3])
    next_check_at: str | None = Field(
        default=None, alias="nextCheckAt", description="When the next status check is due (ISO-8601, UTC)."
    )


class CommunityInfo(_DocumentModel):
    id: str = Field(alias="id", description="Viva Engage community id.")
    display_name: str | None = Field(default=None, alias="displayName")
    description: str | None = Field(default=None, alias="description")
    privacy: str | None = Field(default=None, alias="privacy")
    group_id: str | None = Field(default=None, alias="groupId", description="Id of the Microsoft 365 group.")


class MemberFailure(_DocumentModel):
    index: int = Field(alias="index", description="The user's position in the request's `members` (from 0).")
    id: str | None = Field(
        default=None, alias="id", description="The user's Entra object id, when the user was found."
    )
    error: str = Field(alias="error", description="Why the user could not be added.")


class MemberResults(_DocumentModel):
    added: list[str] = Field(
        default_factory=list, alias="added", description="Entra object ids of the members added."
    )
    failed: list[MemberFailure] = Field(default_factory=list, alias="failed")


class ErrorInfo(_DocumentModel):
    code: ErrorCode = Field(alias="code", examples=["OperationFailed"])
    message: str = Field(alias="message")
    graph_request_id: str | None = Field(
        default=None, alias="graphRequestId", description="Graph's request-id of the failing call, if any."
    )
    errors: list[FieldError] | None = Field(
        default=None, alias="errors", description="Field errors (ValidationFailed only)."
    )


TimelineEvent = Literal["phase", "check", "retry", "error"]


class TimelineEntry(_DocumentModel):
    """One step of a request's history, for operators: a phase entered, a status check, a wait Graph asked
    for, the final error. Written by the orchestrator from its own (replay-safe) clock."""

    at: str = Field(alias="at", description="When (ISO-8601, UTC).", examples=["2026-01-01T10:00:30Z"])
    event: TimelineEvent = Field(
        alias="event",
        description="`phase`: the request entered `phase`; `check`: a status check of Graph's creation "
        "operation; `retry`: Graph asked to try a call again later (throttled or unavailable); `error`: the "
        "request ended with `code`.",
        examples=["check"],
    )
    phase: Phase | None = Field(default=None, alias="phase", examples=["waiting-for-graph"])
    graph_status: str | None = Field(
        default=None,
        alias="graphStatus",
        description="`check`: the operation status Graph reported (notStarted, running, succeeded, ...).",
        examples=["running"],
    )
    http_status: int | None = Field(
        default=None, alias="httpStatus", description="Graph's HTTP status of a failed call.", examples=[429]
    )
    code: str | None = Field(
        default=None,
        alias="code",
        description="`error`: the request's error code; `retry` or `check`: Graph's error code, if any.",
    )
    graph_request_id: str | None = Field(
        default=None, alias="graphRequestId", description="Graph's request-id of the call, if any."
    )


class StatusDocument(_DocumentModel):
    """The state of one request: what GET returns, the callback receives and the results queue carries."""

    id: str = Field(alias="id", description="Request id (`req-...`).", examples=["req-3f2a9c..."])
    status: RequestStatus = Field(alias="status", examples=["Running"])
    phase: Phase | None = Field(default=None, alias="phase", examples=["waiting-for-graph"])
    created_at: str | None = Field(default=None, alias="createdAt", examples=["2026-01-01T10:00:00Z"])
    last_updated_at: str | None = Field(
        default=None, alias="lastUpdatedAt", examples=["2026-01-01T10:01:30Z"]
    )
    request: StatusRequest | None = Field(default=None, alias="request")
    operation: OperationProgress | None = Field(default=None, alias="operation")
    community: CommunityInfo | None = Field(default=None, alias="community")
    retry_of: str | None = Field(
        default=None, alias="retryOf", description="The request this one retries (POST .../retry)."
    )
    possible_duplicates: list[str] | None = Field(
        default=None,
        alias="possibleDuplicates",
        description="Ids of other communities with the same display name that appeared while this request "
        "ran after one of its creates may have reached Graph twice (its answer was lost, or the host ran the "
        "step again). Only present when there are some: check them and delete the extra ones.",
    )
    members: MemberResults | None = Field(default=None, alias="members")
    error: ErrorInfo | None = Field(default=None, alias="error")
    timeline: list[TimelineEntry] | None = Field(
        default=None,
        alias="timeline",
        description="The request's recent history, oldest first: phases, status checks, Graph's requests to "
        "wait, the final error. Bounded: the oldest checks and waits give way to newer ones.",
    )
    callback: CallbackState | None = Field(default=None, alias="callback")
    request_id: str | None = Field(
        default=None, alias="requestId", description="The queue message's requestId (queue channel only)."
    )
    original_message: Any | None = Field(
        default=None,
        alias="originalMessage",
        description="Rejected only: the message as received (JSON when it parsed, else text); a "
        "callbackUrl in it is shown without its query string.",
    )

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict by alias, None fields dropped (the custom status / output / HTTP body shape)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")
