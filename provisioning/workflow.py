"""The provisioning orchestrator's decisions, as plain Python (no Durable Functions, no I/O).

The orchestrator (``orchestrators/provision.py``) is a thin generator around this module: it asks how long to
wait, which error code a Graph answer maps to, when to give up and when to continue as new, and renders its
progress with ``WorkflowState.document``. Everything here is deterministic, so it is safe to run during replay
and is unit tested without a host.

State travels across ``continue_as_new`` inside the orchestrator input (``ProvisioningInput`` plus
``workflowState``), so the status document (``createdAt``, checks made, timeout) survives a new execution.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from provisioning.budget import DEFAULT_LIMIT as DEFAULT_BUDGET_LIMIT
from provisioning.budget import DEFAULT_WINDOW_SECONDS as DEFAULT_BUDGET_WINDOW_SECONDS
from provisioning.graph import MEMBERS_PER_REQUEST, Community, GraphError
from provisioning.models import (
    CANCELED_MESSAGE,
    CallbackState,
    ErrorCode,
    Phase,
    ProvisioningInput,
    RequestStatus,
    StatusDocument,
)
from provisioning.settings import MIN_STATUS_POLL_INTERVAL_SECONDS, Settings
from provisioning.steps import is_user_not_found

# Status checks per orchestration execution before ``continue_as_new``: each check adds about 13 history
# events (a timer created and fired, the budget entity's request and answer, the activity scheduled and
# completed, episode markers), so history stays around 100 events however long Graph takes.
CHECKS_PER_EXECUTION = 8
# An ambiguous create (answer lost, or the step ran twice) is followed by look-ups by name, one poll interval
# apart for up to this long (Graph lists a community only once its operation has finished; operations take
# seconds to a few minutes); only then is the community created again, at most this many times in all.
LOST_CREATE_LOOKUP_MINUTES = 10
MAX_CREATE_ATTEMPTS = 3
# "Succeeded but no community" (Graph eventual consistency): look again this many times, one interval apart.
CONFIRM_RECHECKS = 3
# Graph answers that ask for a later retry (429, 5xx, a lost answer of a read), waited out on durable timers
# by one-shot steps (name check, create, member batches) before the step reports GraphUnavailable. Status
# checks and the confirming read instead keep trying until the provisioning deadline.
MAX_THROTTLE_WAITS = 20
MAX_TRANSIENT_RETRIES = 4
# Without Retry-After, Graph asks for exponential backoff.
RETRY_BACKOFF_BASE_SECONDS = 5.0
RETRY_BACKOFF_MAX_SECONDS = 300.0
# A Retry-After beyond an hour is taken as an hour: the deadline still bounds the whole request.
RETRY_AFTER_CAP_SECONDS = 3600.0
# Requests waiting out the same throttling would all retry at the same instant; each adds up to this share of
# its wait, chosen per request and attempt (deterministic, so replays agree).
RETRY_JITTER_FRACTION = 0.2
# Unexpected activity failures (a bug or a host fault, never a Graph answer): Durable's fixed-interval retry.
UNEXPECTED_RETRY_FIRST_INTERVAL_SECONDS = 5
UNEXPECTED_RETRY_MAX_ATTEMPTS = 3
# Callback delivery: first attempt at once, then after these backoff delays (seconds).
CALLBACK_RETRY_DELAYS_SECONDS = (10, 30, 90, 270)
# Result queue writes are retried by the Durable retry policy.
PUBLISH_RETRY_FIRST_INTERVAL_SECONDS = 5
PUBLISH_RETRY_MAX_ATTEMPTS = 5

# Timeline entries kept in the state and the document: a request waiting an hour on Graph makes over a hundred
# checks; the oldest checks and retries give way first, so phases and the error stay. Bounded so the custom
# status (16 KB) keeps room for the rest of the document.
MAX_TIMELINE_ENTRIES = 25
_DROPPABLE_EVENTS = ("check", "retry")
# Graph's error codes are short; a long one must not grow the timeline.
MAX_TIMELINE_CODE_LENGTH = 64

# The external event that cancels a request (raised by DELETE, waited for by the orchestrator).
CANCEL_EVENT = "cancel"

# The Graph client's code for a URL it refused to send the bearer token to (provisioning/graph/urls.py).
UNTRUSTED_GRAPH_URL = "UntrustedGraphUrl"


class WorkflowError(Exception):
    """The request failed for good: the status document's ``error``."""

    def __init__(self, code: ErrorCode, message: str, graph_request_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.graph_request_id = graph_request_id

    def to_dict(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code.value, "message": self.message}
        if self.graph_request_id:
            error["graphRequestId"] = self.graph_request_id
        return error


class CanceledError(WorkflowError):
    """The caller canceled the request (``DELETE``); raised at the workflow's next step or wait."""

    def __init__(self) -> None:
        super().__init__(ErrorCode.CANCELED, CANCELED_MESSAGE)


# ------------------------------------------------------------------------------------------------------------
# Time


def to_iso(moment: datetime) -> str:
    """ISO-8601 UTC with a ``Z``: whole seconds, or milliseconds when there is a fraction (Retry-After)."""
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    milliseconds = moment.microsecond // 1000
    if milliseconds:
        text += f".{milliseconds:03d}"
    return text + "Z"


def from_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class WorkflowSettings:
    """The settings an orchestration runs with; read once by an activity and carried in its state."""

    poll_interval_seconds: int = MIN_STATUS_POLL_INTERVAL_SECONDS
    timeout_minutes: int = 60
    budget_requests: int = DEFAULT_BUDGET_LIMIT
    budget_window_seconds: int = int(DEFAULT_BUDGET_WINDOW_SECONDS)

    def __post_init__(self) -> None:
        # Settings raise a lower value to the floor where they are read; saved state was made from them.
        if self.poll_interval_seconds < MIN_STATUS_POLL_INTERVAL_SECONDS:
            raise ValueError(
                f"poll interval {self.poll_interval_seconds} s is below Graph's minimum of "
                f"{MIN_STATUS_POLL_INTERVAL_SECONDS} s"
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> WorkflowSettings:
        return cls(
            poll_interval_seconds=settings.status_poll_interval_seconds,
            timeout_minutes=settings.provisioning_timeout_minutes,
            budget_requests=settings.graph_budget_requests,
            budget_window_seconds=settings.graph_budget_window_seconds,
        )

    def to_dict(self) -> dict[str, int]:
        return {
            "pollIntervalSeconds": self.poll_interval_seconds,
            "timeoutMinutes": self.timeout_minutes,
            "budgetRequests": self.budget_requests,
            "budgetWindowSeconds": self.budget_window_seconds,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WorkflowSettings:
        return cls(
            poll_interval_seconds=int(data["pollIntervalSeconds"]),
            timeout_minutes=int(data["timeoutMinutes"]),
            budget_requests=int(data.get("budgetRequests", DEFAULT_BUDGET_LIMIT)),
            budget_window_seconds=int(data.get("budgetWindowSeconds", DEFAULT_BUDGET_WINDOW_SECONDS)),
        )


def status_check_delay(
    poll_interval_seconds: int,
    retry_after_seconds: float | None,
    seconds_until_deadline: float | None = None,
) -> float:
    """Seconds until the next status check: the poll interval or Graph's Retry-After, whichever is longer.

    A Retry-After reaching past the polling deadline is cut to the deadline (never below the interval), so
    the last check still comes at most one interval after the timeout instead of hours later.
    """
    if retry_after_seconds is None or not math.isfinite(retry_after_seconds):
        return float(poll_interval_seconds)
    wait = retry_after_seconds
    if seconds_until_deadline is not None:
        wait = min(wait, seconds_until_deadline)
    return max(float(poll_interval_seconds), wait)


def retry_delay(error: GraphError, attempt: int, minimum_seconds: float, jitter_key: str) -> float:
    """Seconds to wait before retrying after ``error``: one rule for every answer that asks for a retry.

    max(Graph's Retry-After, else exponential backoff; the step's own minimum), plus jitter so that requests
    waiting out the same throttling do not all come back at once. Never less than Retry-After.
    """
    advice = error.retry_after_seconds
    if advice is not None and math.isfinite(advice) and advice >= 0:
        wait = min(advice, RETRY_AFTER_CAP_SECONDS)
    else:
        wait = min(RETRY_BACKOFF_BASE_SECONDS * 2**attempt, RETRY_BACKOFF_MAX_SECONDS)
    wait = max(wait, minimum_seconds, 1.0)
    return wait * (1 + RETRY_JITTER_FRACTION * jitter_fraction(jitter_key, attempt))


def jitter_fraction(key: str, attempt: int) -> float:
    """A fraction in [0, 1) fixed by ``key`` and ``attempt``: random-looking across requests, replay-safe."""
    digest = hashlib.sha256(f"{key}/{attempt}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32


def lost_create_looks(poll_interval_seconds: int, timeout_minutes: int) -> int:
    """How many look-ups, one interval apart, follow a create whose answer was lost (at least one)."""
    bound_seconds = 60 * min(LOST_CREATE_LOOKUP_MINUTES, timeout_minutes)
    return max(1, bound_seconds // poll_interval_seconds)


def polling_deadline(polling_started_at: str, timeout_minutes: int) -> datetime:
    return from_iso(polling_started_at) + timedelta(minutes=timeout_minutes)


def member_batches(user_ids: Sequence[str], size: int = MEMBERS_PER_REQUEST) -> list[list[str]]:
    return [list(user_ids[start : start + size]) for start in range(0, len(user_ids), size)]


# ------------------------------------------------------------------------------------------------------------
# Graph errors as the orchestrator sees them


def gave_up(error: GraphError, step: str, attempts: int) -> WorkflowError:
    """Graph kept asking for a retry: ``GraphUnavailable`` with the last request id Graph gave."""
    return WorkflowError(
        ErrorCode.GRAPH_UNAVAILABLE,
        f"{step}: Graph was still unavailable after {attempts} attempts ({describe_graph_error(error)})",
        error.request_id,
    )


def describe_graph_error(error: GraphError) -> str:
    parts = []
    if error.http_status is not None:
        parts.append(f"HTTP {error.http_status}")
    if error.code:
        parts.append(error.code)
    head = " ".join(parts)
    message = (error.message or "").strip()
    return f"{head}: {message}" if head and message else head or message or "Graph call failed"


def rejected(error: GraphError, step: str) -> WorkflowError:
    """A permanent Graph error: ``GraphRejected`` with Graph's code and request id.

    The client's token-host guard (``UntrustedGraphUrl``: Graph's answer pointed to another host) is permanent
    too and maps here, but Graph did not reject anything, so the message says what happened.
    """
    what = (
        "Graph's answer pointed to a host the token is never sent to"
        if error.code == UNTRUSTED_GRAPH_URL
        else "Graph rejected the request"
    )
    return WorkflowError(
        ErrorCode.GRAPH_REJECTED, f"{step}: {what} ({describe_graph_error(error)})", error.request_id
    )


def owner_not_found(position: int, error: GraphError) -> WorkflowError:
    """Names the owner by position: a user principal name is personal data and stays out of documents."""
    return WorkflowError(
        ErrorCode.USER_NOT_FOUND,
        f"owners[{position}] was not found in Entra ID",
        error.request_id,
    )


def member_error_text(error: GraphError) -> str:
    if is_user_not_found(error):
        return "user not found"
    return describe_graph_error(error)


def operation_failed(raw_status: str, status_detail: str | None, request_id: str | None) -> WorkflowError:
    detail = f": {status_detail}" if status_detail else ""
    return WorkflowError(
        ErrorCode.OPERATION_FAILED, f"Graph reported the creation as {raw_status!r}{detail}", request_id
    )


def timed_out(timeout_minutes: int, last_status: str | None, checks: int) -> WorkflowError:
    shown = last_status if last_status is not None else "no status yet"
    return WorkflowError(
        ErrorCode.TIMEOUT,
        f"Graph did not finish the creation within {timeout_minutes} minutes "
        f"({checks} status checks; last status: {shown})",
    )


def community_not_found(community_id: str | None, checks: int) -> WorkflowError:
    which = f"community {community_id!r}" if community_id else "a community with the requested name"
    return WorkflowError(
        ErrorCode.COMMUNITY_NOT_FOUND,
        f"Graph reported the creation as succeeded, but {which} could not be found after {checks} checks",
    )


def duplicate_name(display_name: str, existing_ids: Sequence[str]) -> WorkflowError:
    return WorkflowError(
        ErrorCode.DUPLICATE_NAME,
        f"a community named {display_name!r} already exists ({', '.join(existing_ids)}); "
        "send onDuplicateName 'adopt' or 'create' to proceed",
    )


def internal_error(exc: BaseException) -> WorkflowError:
    # The exception text may quote Graph or settings details: the caller gets its type, the logs get more.
    return WorkflowError(
        ErrorCode.INTERNAL_ERROR, f"the workflow stopped unexpectedly ({type(exc).__name__})"
    )


def pick_new_community(found: Sequence[Community], existing_ids: Sequence[str]) -> Community | None:
    """The community an ambiguous create made: one with the name that did not exist before we created."""
    return next((community for community in found if community.id not in existing_ids), None)


# ------------------------------------------------------------------------------------------------------------
# State carried through the orchestration (and across continue-as-new)


@dataclass
class WorkflowState:
    settings: WorkflowSettings | None = None
    phase: Phase = Phase.RESOLVING_USERS
    status: RequestStatus = RequestStatus.RUNNING
    owner_ids: list[str] = field(default_factory=list)
    member_ids: dict[str, str] = field(default_factory=dict)  # as given -> object id (never rendered)
    existing_community_ids: list[str] = field(default_factory=list)
    create_attempts: int = 0
    create_uncertain: bool = False  # a create may have reached Graph without its answer: check for duplicates
    possible_duplicates: list[str] = field(default_factory=list)
    operation_url: str | None = None  # never rendered: may carry a query string
    operation_status: str | None = None
    operation_request_id: str | None = None
    checks: int = 0
    polling_started_at: str | None = None
    next_check_at: str | None = None
    retry_after_seconds: float | None = None  # last Retry-After (create, check, 429): sets the next wait
    resource_id: str | None = None
    community: dict[str, Any] | None = None
    members_added: list[str] = field(default_factory=list)  # object ids
    members_failed: list[dict[str, Any]] = field(default_factory=list)  # index in the request, object id?
    error: dict[str, Any] | None = None
    callback: CallbackState = CallbackState.NONE
    executions: int = 1
    timeline: list[dict[str, Any]] = field(default_factory=list)  # bounded: MAX_TIMELINE_ENTRIES

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["settings"] = self.settings.to_dict() if self.settings else None
        data["phase"] = self.phase.value
        data["status"] = self.status.value
        data["callback"] = self.callback.value
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WorkflowState:
        values = dict(data)
        settings = values.pop("settings", None)
        state = cls(**{key: value for key, value in values.items() if key in _STATE_FIELDS})
        state.settings = WorkflowSettings.from_dict(settings) if settings else None
        state.phase = Phase(state.phase)
        state.status = RequestStatus(state.status)
        state.callback = CallbackState(state.callback)
        return state

    def fail(self, failure: WorkflowError, at: datetime | None = None) -> None:
        self.status = RequestStatus.CANCELED if isinstance(failure, CanceledError) else RequestStatus.FAILED
        self.error = failure.to_dict()
        if at is not None:
            self.note(at, "error", code=failure.code.value, graphRequestId=failure.graph_request_id)

    def note(self, at: datetime, event: str, **details: Any) -> None:
        """Add a timeline entry at ``at`` (the orchestration's clock) in the current phase; None details are
        left out. Past ``MAX_TIMELINE_ENTRIES`` the oldest check or retry goes (else the oldest entry)."""
        entry: dict[str, Any] = {"at": to_iso(at), "event": event, "phase": self.phase.value}
        entry.update((key, value) for key, value in details.items() if value is not None)
        if isinstance(entry.get("code"), str):
            entry["code"] = entry["code"][:MAX_TIMELINE_CODE_LENGTH]
        self.timeline.append(entry)
        if len(self.timeline) > MAX_TIMELINE_ENTRIES:
            droppable = (i for i, old in enumerate(self.timeline) if old["event"] in _DROPPABLE_EVENTS)
            del self.timeline[next(droppable, 0)]

    def note_phase(self, at: datetime) -> None:
        """A ``phase`` entry when the phase differs from the last one noted (publishing repeats phases)."""
        noted = next((old["phase"] for old in reversed(self.timeline) if old["event"] == "phase"), None)
        if noted != self.phase.value:
            self.note(at, "phase")

    def note_graph_error(self, at: datetime, event: str, error: GraphError) -> None:
        self.note(at, event, httpStatus=error.http_status, code=error.code, graphRequestId=error.request_id)

    def document(self, provisioning_input: ProvisioningInput, now: datetime) -> dict[str, Any]:
        """The status document as custom status, output, callback body and result message."""
        spec = provisioning_input.request
        document: dict[str, Any] = {
            "id": provisioning_input.request_id,
            "status": self.status.value,
            "phase": self.phase.value,
            "createdAt": provisioning_input.created_at,
            "lastUpdatedAt": to_iso(now),
            "request": {
                "displayName": spec.display_name,
                "description": spec.description,
                "privacy": spec.privacy,
                "ownerCount": len(spec.owners),
                "memberCount": len(spec.members),
            },
            "callback": self.callback.value,
        }
        if self.operation_url is not None or self.checks:
            document["operation"] = {
                "status": self.operation_status,
                "checks": self.checks,
                "nextCheckAt": self.next_check_at,
            }
        if self.community is not None:
            document["community"] = self.community
        if self.possible_duplicates:
            document["possibleDuplicates"] = list(self.possible_duplicates)
        if self.phase in (Phase.ADDING_MEMBERS, Phase.NOTIFYING, Phase.DONE) and (
            spec.members or self.members_added or self.members_failed
        ):
            document["members"] = {"added": self.members_added, "failed": self.members_failed}
        if self.error is not None:
            document["error"] = self.error
        if self.timeline:
            document["timeline"] = [dict(entry) for entry in self.timeline]
        if provisioning_input.retry_of:
            document["retryOf"] = provisioning_input.retry_of
        if provisioning_input.source == "queue" and provisioning_input.idempotency_key:
            document["requestId"] = provisioning_input.idempotency_key
        # One shape for every channel: the shared model validates and drops empty fields.
        return StatusDocument.model_validate(document).to_json()


_STATE_FIELDS = set(WorkflowState.__dataclass_fields__)

WORKFLOW_STATE_KEY = "workflowState"


def split_input(raw: Mapping[str, Any]) -> tuple[ProvisioningInput, WorkflowState]:
    """The request and the state to resume from (a fresh state on the first execution)."""
    data = dict(raw)
    state_data = data.pop(WORKFLOW_STATE_KEY, None)
    provisioning_input = ProvisioningInput.model_validate(data)
    state = WorkflowState.from_dict(state_data) if state_data else WorkflowState()
    if provisioning_input.callback_url and state_data is None:
        state.callback = CallbackState.PENDING
    return provisioning_input, state


def continue_as_new_input(provisioning_input: ProvisioningInput, state: WorkflowState) -> dict[str, Any]:
    """The next execution's input: the unchanged request plus the state so far."""
    state.executions += 1
    return {**provisioning_input.to_json(), WORKFLOW_STATE_KEY: state.to_dict()}


# The Durable extension refuses a custom status over 16 KB of UTF-16 JSON (MessagePayloadDataConverter), which
# fails the orchestration; keep a margin for the host re-serializing it.
CUSTOM_STATUS_BUDGET_BYTES = 15 * 1024


def _utf16_size(document: Mapping[str, Any]) -> int:
    return len(json.dumps(document, ensure_ascii=False).encode("utf-16-le"))


# A queue message is at most 64 KB after base64 encoding (4/3 larger).
RESULT_MESSAGE_BUDGET_BYTES = 48 * 1024


def _fit(document: Mapping[str, Any], fits: Callable[[Mapping[str, Any]], bool]) -> dict[str, Any]:
    """Leave out the timeline, the echo of the request, then the member lists, until ``document`` fits."""
    fitted = dict(document)
    for key in ("timeline", "request", "members"):
        if fits(fitted):
            break
        fitted.pop(key, None)
    return fitted


def fit_custom_status(document: Mapping[str, Any]) -> dict[str, Any]:
    """``document`` as the custom status (the final output keeps everything)."""
    return _fit(document, lambda fitted: _utf16_size(fitted) <= CUSTOM_STATUS_BUDGET_BYTES)


def fit_result_message(document: Mapping[str, Any]) -> dict[str, Any]:
    """``document`` as a results-queue message."""
    return _fit(document, lambda fitted: len(json.dumps(fitted).encode()) <= RESULT_MESSAGE_BUDGET_BYTES)
