"""The ``provision_community`` orchestrator: create a Viva Engage community and follow it to the end.

Deterministic by construction: time comes from ``context.current_utc_datetime``, waits are durable timers,
every Graph call is an activity, settings are read by an activity once and carried in the state, and logs are
written only when not replaying. Decisions (what to wait, which error code) live in ``provisioning.workflow``.

Cancel (``DELETE``) is the external event ``cancel``: every wait of a running request races its timer
against it, and every step checks it before calling Graph, so a canceled request ends here as ``Canceled``
and runs the normal notify step (one callback, one result message). An activity already running finishes
first. Once the outcome is settled the event is ignored: whichever the history records first wins.
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import azure.durable_functions as df

from orchestrators import notify
from provisioning import steps, workflow
from provisioning.budget import CallKind
from provisioning.graph import Community, ErrorKind, GraphError, OperationState
from provisioning.logs import get_logger
from provisioning.models import Phase, RequestStatus
from provisioning.steps import GraphStep, StepOutcome
from provisioning.workflow import WorkflowError, WorkflowSettings

logger = get_logger(__name__)

bp = df.Blueprint()

# Activity names are strings: given a decorated function, the SDK would send its Python name and ignore an
# `activity=` rename (azure-functions-durable, DurableOrchestrationContext._get_function_name).
LOAD_SETTINGS = "load_workflow_settings"

# Activities answer every Graph failure as data; this retries only what raised (a bug or a host fault).
UNEXPECTED_FAILURE_RETRY = df.RetryOptions(
    workflow.UNEXPECTED_RETRY_FIRST_INTERVAL_SECONDS * 1000, workflow.UNEXPECTED_RETRY_MAX_ATTEMPTS
)
# Graph answers that ask for a later retry (a lost answer of a create is handled by the create itself).
RETRYABLE = frozenset({ErrorKind.THROTTLED, ErrorKind.TRANSIENT})
READ_RETRYABLE = RETRYABLE | {ErrorKind.AMBIGUOUS}  # a read whose answer was lost is simply read again

# The one app-wide budget of Viva Engage requests (entities/graph_budget.py).
BUDGET_ENTITY = df.EntityId("graph_budget", "viva-engage")

Steps = Generator[Any, Any, Any]
T = TypeVar("T")


@bp.orchestration_trigger(context_name="context", orchestration=steps.CREATE_ATTEMPT_MARKER)
def create_attempt_marker(context: df.DurableOrchestrationContext) -> None:
    """Exists only as a record that a create attempt may have reached Graph (steps.claim_create_try)."""


@bp.orchestration_trigger(context_name="context")
def provision_community(
    context: df.DurableOrchestrationContext,
) -> Generator[Any, Any, dict[str, Any] | None]:
    return (yield from _Provisioning(context).run())


class _Provisioning:
    def __init__(self, context: df.DurableOrchestrationContext) -> None:
        self.context = context
        self.input, self.state = workflow.split_input(context.get_input())
        # One wait per execution, shared by every cancelable wait: a fresh wait per timer would leave earlier
        # ones pending, and an event answers only the newest pending wait of its name (a stack in both the
        # extension's DurableOrchestrationContext.cs and the SDK's TaskOrchestrationExecutor.py).
        self.cancel_requested = context.wait_for_external_event(workflow.CANCEL_EVENT)

    # -- helpers -------------------------------------------------------------------------------------------

    @property
    def now(self) -> datetime:
        return self.context.current_utc_datetime

    @property
    def settings(self) -> WorkflowSettings:
        return self.state.settings or WorkflowSettings()

    def log(self, level: int, message: str, *args: Any) -> None:
        if not self.context.is_replaying:
            logger.log(
                level,
                "%s: " + message,
                self.input.request_id,
                *args,
                extra={"requestId": self.input.request_id},
            )

    def publish(self) -> dict[str, Any]:
        self.state.note_phase(self.now)
        document = self.state.document(self.input, self.now)
        self.context.set_custom_status(workflow.fit_custom_status(document))
        return document

    @property
    def cancelable(self) -> bool:
        """Until the outcome is settled; notifying is never interrupted."""
        return self.state.status is RequestStatus.RUNNING

    def check_canceled(self) -> None:
        """Raise ``CanceledError`` if a cancel has arrived (known once a wait has listened for it)."""
        if self.cancelable and self.cancel_requested.is_completed:
            raise workflow.CanceledError()

    def wait(self, seconds: float) -> Steps:
        yield from self.wait_until(self.now + timedelta(seconds=seconds))

    def wait_until(self, fire_at: datetime) -> Steps:
        if not self.cancelable:
            yield self.context.create_timer(fire_at)
            return
        self.check_canceled()
        timer = self.context.create_timer(fire_at)
        winner = yield self.context.task_any([timer, self.cancel_requested])
        if winner is not timer:
            # A pending timer would keep the instance Running until it fires (DTFx counts open tasks).
            timer.cancel()
            raise workflow.CanceledError()

    def call_graph(
        self,
        step: GraphStep[T],
        payload: Any,
        what: str,
        *,
        retry_on: frozenset[ErrorKind] = RETRYABLE,
        until: datetime | None = None,
        minimum_wait_seconds: float = 0.0,
        tagged: bool = False,
        kind: CallKind = CallKind.START,
    ) -> Generator[Any, Any, StepOutcome[T]]:
        """Run a Graph step and return its outcome. Answers that ask for a retry (``retry_on``) are waited out
        on durable timers (``workflow.retry_delay``) up to the step limits, or as long as the next try comes
        before ``until``; past that the step fails as GraphUnavailable with Graph's last request id.
        ``tagged`` gives every try of the step its own replay-safe ``tryId`` in the payload. A Viva Engage
        step first takes a slot of the app-wide budget (``kind``: new work or a follow-up), and a 429 moves
        the budget for everyone."""
        attempts = {ErrorKind.THROTTLED: 0, ErrorKind.TRANSIENT: 0, ErrorKind.AMBIGUOUS: 0}
        while True:
            self.check_canceled()
            if step.viva_engage:
                yield from self.wait_for_budget(kind)
            sent = {**payload, "tryId": str(self.context.new_uuid())} if tagged else payload
            answer = yield self.context.call_activity_with_retry(step.name, UNEXPECTED_FAILURE_RETRY, sent)
            outcome = step.read(answer)
            error = outcome.error
            if error is None or error.kind not in retry_on:
                return outcome
            made = sum(attempts.values())
            delay = workflow.retry_delay(error, made, minimum_wait_seconds, self.input.request_id)
            if step.viva_engage and error.kind is ErrorKind.THROTTLED:
                self.budget_throttled(error)
            if until is not None:
                if self.now + timedelta(seconds=delay) > until:
                    raise workflow.gave_up(error, what, made + 1)
            elif attempts[error.kind] >= self.retry_limit(error.kind):
                raise workflow.gave_up(error, what, made + 1)
            attempts[error.kind] += 1
            self.state.note_graph_error(self.now, "retry", error)
            self.log(
                logging.INFO, "Graph asked to retry %s (%s); waiting %.3f s", what, error.kind.value, delay
            )
            yield from self.wait(delay)

    def wait_for_budget(self, kind: CallKind) -> Steps:
        """Take a slot of the app-wide Viva Engage budget and wait for it (see provisioning/budget.py)."""
        settings = self.settings
        slot = yield self.context.call_entity(
            BUDGET_ENTITY,
            "reserve",
            {
                "now": self.now.timestamp(),
                "kind": kind.value,
                "limit": settings.budget_requests,
                "windowSeconds": settings.budget_window_seconds,
            },
        )
        fire_at = datetime.fromtimestamp(float(slot), UTC)
        if fire_at > self.now:
            yield from self.wait_until(fire_at)

    def budget_throttled(self, error: GraphError) -> None:
        """Graph answered 429: nobody of the app sends before its Retry-After (or the backoff)."""
        seconds = error.retry_after_seconds
        if seconds is None or seconds < 0:
            seconds = workflow.RETRY_BACKOFF_BASE_SECONDS
        until = self.now + timedelta(seconds=min(seconds, workflow.RETRY_AFTER_CAP_SECONDS))
        self.context.signal_entity(BUDGET_ENTITY, "throttled", {"until": until.timestamp()})

    @staticmethod
    def retry_limit(kind: ErrorKind) -> int:
        return workflow.MAX_THROTTLE_WAITS if kind is ErrorKind.THROTTLED else workflow.MAX_TRANSIENT_RETRIES

    def call_graph_or_fail(
        self, step: GraphStep[T], payload: Any, what: str, kind: CallKind = CallKind.START
    ) -> Generator[Any, Any, T]:
        outcome = yield from self.call_graph(step, payload, what, retry_on=READ_RETRYABLE, kind=kind)
        if outcome.error is not None:
            raise workflow.rejected(outcome.error, what)
        return outcome.unwrap()

    # -- the workflow --------------------------------------------------------------------------------------

    def run(self) -> Generator[Any, Any, dict[str, Any] | None]:
        state = self.state
        try:
            if state.settings is None:
                loading = self.context.call_activity(LOAD_SETTINGS, None)
                # Also starts listening for a cancel from the first step (a continued execution starts
                # listening at its first wait, which is its first step).
                yield self.context.task_any([loading, self.cancel_requested])
                state.settings = WorkflowSettings.from_dict((yield loading))
            self.publish()
            if state.phase in (Phase.RESOLVING_USERS, Phase.CHECKING_NAME, Phase.CREATING):
                yield from self.resolve_users()
                yield from self.check_name()
                if state.community is None:
                    yield from self.create()
            if state.community is None:
                continued = yield from self.wait_for_graph()
                if continued:
                    return None
                yield from self.confirm()
            yield from self.note_possible_duplicates()
            yield from self.add_members()
            state.status = RequestStatus.SUCCEEDED
            self.log(logging.INFO, "community %s is ready", (state.community or {}).get("id"))
        except workflow.CanceledError as canceled:
            self.log(logging.INFO, "canceled by the caller in phase %s", state.phase.value)
            state.fail(canceled, self.now)
        except WorkflowError as failure:
            self.log(logging.WARNING, "failed with %s: %s", failure.code.value, failure.message)
            state.fail(failure, self.now)
        except Exception as exc:
            self.log(logging.ERROR, "unexpected %s: %s", type(exc).__name__, exc)
            state.fail(workflow.internal_error(exc), self.now)
        yield from self.notify()
        state.phase = Phase.DONE
        document = self.publish()
        if self.input.source == "queue":
            yield from notify.publish_result(self.context, document, self.log)
        return document

    def resolve_users(self) -> Steps:
        state, spec = self.state, self.input.request
        state.phase = Phase.RESOLVING_USERS
        self.publish()
        references = list(dict.fromkeys([*spec.owners, *spec.members]))
        users = yield from self.call_graph_or_fail(steps.RESOLVE_USERS, references, "resolving users")
        resolved, not_found = users.resolved, users.not_found
        for position, owner in enumerate(spec.owners):
            if owner in not_found:
                raise workflow.owner_not_found(position, not_found[owner])
        state.owner_ids = list(dict.fromkeys(resolved[owner] for owner in spec.owners))
        for position, member in enumerate(spec.members):
            if member in resolved:
                state.member_ids[member] = resolved[member]
            else:
                state.members_failed.append(
                    {"index": position, "error": workflow.member_error_text(not_found[member])}
                )

    def check_name(self) -> Steps:
        state, spec = self.state, self.input.request
        state.phase = Phase.CHECKING_NAME
        self.publish()
        found = yield from self.call_graph_or_fail(
            steps.FIND_COMMUNITIES, spec.display_name, "looking for communities with the same name"
        )
        state.existing_community_ids = [community.id for community in found]
        if not found or spec.on_duplicate_name == "create":
            return
        if spec.on_duplicate_name == "fail":
            raise workflow.duplicate_name(spec.display_name, state.existing_community_ids)
        state.community = found[0].to_dict()
        self.log(logging.INFO, "adopting existing community %s", found[0].id)

    def create(self) -> Steps:
        state, spec = self.state, self.input.request
        state.phase = Phase.CREATING
        self.publish()
        what = "creating the community"
        while True:
            state.create_attempts += 1
            payload = {
                "displayName": spec.display_name,
                "description": spec.description,
                "privacy": spec.privacy,
                "ownerIds": state.owner_ids,
                "requestId": self.input.request_id,
            }
            # Each try records itself before it is sent (steps.claim_create_try): a try run twice sends once.
            outcome = yield from self.call_graph(steps.CREATE_COMMUNITY, payload, what, tagged=True)
            if outcome.error is None:
                created = outcome.unwrap()
                state.operation_url = created.operation_url
                state.operation_request_id = created.request_id
                # A Retry-After on the 202 delays the first check (never below the poll interval).
                state.retry_after_seconds = created.retry_after_seconds
                return
            error = outcome.error
            if error.kind is not ErrorKind.AMBIGUOUS:
                raise workflow.rejected(error, what)
            # Graph may have created it (the answer was lost, or the step ran twice): look before creating
            # again, so that a lost answer never becomes a second community.
            state.create_uncertain = True
            self.log(
                logging.WARNING, "create attempt %s may have reached Graph (%s)", state.create_attempts, error
            )
            adopted = yield from self.look_for_lost_create()
            if adopted is not None:
                state.community = adopted.to_dict()
                self.log(logging.INFO, "found the community %s created by the lost request", adopted.id)
                return
            if state.create_attempts >= workflow.MAX_CREATE_ATTEMPTS:
                raise WorkflowError(
                    workflow.ErrorCode.GRAPH_UNAVAILABLE,
                    f"{what}: Graph's answer was lost {state.create_attempts} times and no community "
                    f"appeared ({workflow.describe_graph_error(error)})",
                    error.request_id,
                )

    def look_for_lost_create(self) -> Generator[Any, Any, Community | None]:
        """The community a lost create made, looked for on the poll cadence for a bounded time: Graph lists a
        community only once its operation has finished."""
        state, spec = self.state, self.input.request
        interval = self.settings.poll_interval_seconds
        looks = workflow.lost_create_looks(interval, self.settings.timeout_minutes)
        for _ in range(looks):
            yield from self.wait(interval)
            found = yield from self.call_graph_or_fail(
                steps.FIND_COMMUNITIES,
                spec.display_name,
                "looking for the community after a lost create answer",
                CallKind.FOLLOW_UP,
            )
            adopted = workflow.pick_new_community(found, state.existing_community_ids)
            if adopted is not None:
                return adopted
        return None

    def note_possible_duplicates(self) -> Steps:
        """After a create that may have reached Graph twice: other new communities with the name, if any."""
        state = self.state
        if not state.create_uncertain or state.community is None:
            return
        try:
            found = yield from self.call_graph_or_fail(
                steps.FIND_COMMUNITIES,
                self.input.request.display_name,
                "looking for duplicate communities",
                CallKind.FOLLOW_UP,
            )
        except workflow.CanceledError:
            raise
        except WorkflowError as failure:
            # The request has its community: a check that cannot be made must not fail it.
            self.log(logging.WARNING, "could not look for duplicate communities: %s", failure.message)
            return
        ours = state.community["id"]
        state.possible_duplicates = [
            community.id
            for community in found
            if community.id != ours and community.id not in state.existing_community_ids
        ]
        if state.possible_duplicates:
            self.log(
                logging.WARNING,
                "possible duplicate communities with the same name: %s",
                ", ".join(state.possible_duplicates),
            )

    def wait_for_graph(self) -> Generator[Any, Any, bool]:
        """Poll the operation until it ends; True when this execution continued as new instead.

        Graph accepted the create, so only a permanent error or the deadline ends the wait: throttled,
        transient and lost answers just move the next check (never closer than the interval, never before
        Graph's Retry-After)."""
        state, settings = self.state, self.settings
        state.phase = Phase.WAITING_FOR_GRAPH
        if state.polling_started_at is None:
            state.polling_started_at = workflow.to_iso(self.now)
        deadline = self.deadline
        checks_here = 0
        while True:
            if self.now >= deadline:
                raise workflow.timed_out(settings.timeout_minutes, state.operation_status, state.checks)
            delay = workflow.status_check_delay(
                settings.poll_interval_seconds,
                state.retry_after_seconds,
                (deadline - self.now).total_seconds(),
            )
            fire_at = self.now + timedelta(seconds=delay)
            state.next_check_at = workflow.to_iso(fire_at)
            self.publish()
            yield from self.wait_until(fire_at)
            state.next_check_at = None
            state.retry_after_seconds = None
            outcome = yield from self.call_graph(
                steps.GET_OPERATION_STATUS,
                state.operation_url,
                "checking the creation status",
                retry_on=frozenset(),
                kind=CallKind.FOLLOW_UP,
            )
            state.checks += 1
            checks_here += 1
            error = outcome.error
            if error is not None and error.kind in READ_RETRYABLE:
                state.note_graph_error(self.now, "check", error)
                self.log(logging.WARNING, "status check %s: %s; checking again later", state.checks, error)
                state.retry_after_seconds = self.jittered_retry_after(error, state.checks)
            elif error is not None:
                raise workflow.rejected(error, "checking the creation status")
            else:
                status = outcome.unwrap()
                # Graph's long-running-operation pattern may send Retry-After on a successful poll too.
                state.retry_after_seconds = status.retry_after_seconds
                state.operation_status = status.raw_status
                state.note(self.now, "check", graphStatus=status.raw_status)
                if status.state is OperationState.SUCCEEDED:
                    state.resource_id = status.resource_id
                    self.log(logging.INFO, "Graph finished the creation after %s checks", state.checks)
                    return False
                if status.state is OperationState.FAILED:
                    raise workflow.operation_failed(
                        status.raw_status, status.status_detail, status.request_id
                    )
            if checks_here >= workflow.CHECKS_PER_EXECUTION and self.now < deadline:
                # A cancel seen in this execution would not reach the next one.
                self.check_canceled()
                next_input = workflow.continue_as_new_input(self.input, state)
                self.publish()
                self.context.continue_as_new(next_input)
                return True

    @property
    def deadline(self) -> datetime:
        started = self.state.polling_started_at or workflow.to_iso(self.now)
        return workflow.polling_deadline(started, self.settings.timeout_minutes)

    def jittered_retry_after(self, error: GraphError, attempt: int) -> float | None:
        """Graph's Retry-After with the jitter that keeps throttled requests from returning together."""
        if error.retry_after_seconds is None:
            return None
        return workflow.retry_delay(error, attempt, 0.0, self.input.request_id)

    def confirm(self) -> Steps:
        state, spec = self.state, self.input.request
        state.phase = Phase.CONFIRMING
        self.publish()
        what = "reading the created community"
        for attempt in range(workflow.CONFIRM_RECHECKS + 1):
            if attempt:
                yield from self.wait(self.settings.poll_interval_seconds)
            community: Community | None
            if state.resource_id:
                # The community exists in Graph: keep reading on the poll cadence until the deadline.
                outcome = yield from self.call_graph(
                    steps.GET_COMMUNITY,
                    state.resource_id,
                    what,
                    retry_on=READ_RETRYABLE,
                    until=self.deadline,
                    minimum_wait_seconds=self.settings.poll_interval_seconds,
                    kind=CallKind.FOLLOW_UP,
                )
                error = outcome.error
                if error is not None and error.http_status != 404:
                    raise workflow.rejected(error, what)
                community = outcome.value
            else:
                found = yield from self.call_graph_or_fail(
                    steps.FIND_COMMUNITIES,
                    spec.display_name,
                    "looking for the created community",
                    CallKind.FOLLOW_UP,
                )
                community = workflow.pick_new_community(found, state.existing_community_ids)
            if community is not None:
                state.community = community.to_dict()
                return
            self.log(
                logging.WARNING,
                "Graph reported success but the community is not there (check %s)",
                attempt + 1,
            )
        raise workflow.community_not_found(state.resource_id, workflow.CONFIRM_RECHECKS + 1)

    def add_members(self) -> Steps:
        state = self.state
        if not state.member_ids:
            return
        state.phase = Phase.ADDING_MEMBERS
        self.publish()
        group_id = (state.community or {}).get("groupId")
        # Documents name members by position and object id, never by the UPN the caller gave.
        positions = {reference: position for position, reference in enumerate(self.input.request.members)}
        index_of = {user_id: positions[reference] for reference, user_id in state.member_ids.items()}

        def failed(user_id: str, error: str) -> dict[str, Any]:
            return {"index": index_of[user_id], "id": user_id, "error": error}

        if not group_id:
            state.members_failed.extend(
                failed(user_id, "the community has no Microsoft 365 group") for user_id in index_of
            )
            return
        for batch in workflow.member_batches(list(index_of)):
            try:
                outcome = yield from self.call_graph(
                    steps.ADD_MEMBERS, {"groupId": group_id, "userIds": batch}, "adding members"
                )
                failure = None if outcome.error is None else workflow.describe_graph_error(outcome.error)
            except workflow.CanceledError:
                raise
            except WorkflowError as gave_up:  # one batch failing is not fatal for the request
                failure = gave_up.message
            if failure is not None:
                state.members_failed.extend(failed(user_id, failure) for user_id in batch)
            else:
                result = outcome.unwrap()
                # Already a member counts as added; keep the request's order.
                added = {*result.added, *result.already_members}
                state.members_added.extend(user_id for user_id in batch if user_id in added)
                state.members_failed.extend(
                    failed(user_id, workflow.member_error_text(error)) for user_id, error in result.failed
                )
            self.publish()

    def notify(self) -> Steps:
        state = self.state
        callback_url = self.input.callback_url
        if not callback_url:
            return
        state.phase = Phase.NOTIFYING
        self.publish()
        body = state.document(self.input, self.now)
        body["phase"] = Phase.DONE.value  # the receiver gets the final document
        state.callback = yield from notify.deliver_callback(self.context, callback_url, body, self.log)
