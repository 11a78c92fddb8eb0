"""The durable engine: plays the Durable extension + DTFx around the real Python SDK.

A dispatcher thread sleeps on the clock until the next message is due (or new work arrives), then runs an
episode per instance with due messages, or an operation batch per entity (never two at once for one instance
or entity), on a small pool, and runs activity work items on a bounded pool (`max_concurrent_activities`,
like `maxConcurrentActivityFunctions`). All state lives in SQLite (see `store.py`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from devhost.clock import Clock
from devhost.durable.entities import (
    REQUEST_EVENT_NAME,
    BatchResult,
    EntityId,
    InvalidEntityIdError,
    OperationRequest,
    entity_context_json,
    is_entity_instance,
    request_json,
    response_json,
)
from devhost.durable.history import (
    EVENT_TYPE_NAMES,
    Event,
    EventType,
    execution_started,
    format_status_time,
    format_timestamp,
    new_event,
    orchestration_context_json,
)
from devhost.durable.replay import ORCHESTRATOR_FAILED, Decisions, OrchestrationFailedError, replay_actions
from devhost.durable.store import ActivityWorkItem, EntityRow, InstanceRow, Message, Store, Transaction
from devhost.indexing import ENTITY_TRIGGER, AppIndex, FunctionInfo, IndexingError
from devhost.rpc import TypedData
from devhost.sanitizer import sanitize
from devhost.worker import (
    DURABLE_REASON,
    ActivityFailed,
    OutputSink,
    call_function,
    invocation_log,
    invoke_activity,
    invoke_orchestrator,
)

logger = logging.getLogger("devhost.durable")

PENDING = "Pending"
RUNNING = "Running"
COMPLETED = "Completed"
FAILED = "Failed"
TERMINATED = "Terminated"
CONTINUED_AS_NEW = "ContinuedAsNew"
# overridableExistingInstanceStates = NonRunningStates (the default): these block a start with the same id.
RUNNING_STATES = frozenset({PENDING, RUNNING, CONTINUED_AS_NEW})
TERMINAL_STATES = frozenset({COMPLETED, FAILED, TERMINATED})

_OUT_OF_PROC_DATA_MARKER = "\n\n$OutOfProcData$:"
# DurableClient.IsInvalidCharacter, for instance ids and entity keys.
_INVALID_INSTANCE_ID = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f]")
# A failed entity batch is abandoned; its messages come back after 2^n s, at most 10 minutes
# (DurableTask.AzureStorage `TaskHubQueue.AbandonMessageAsync`).
_MAX_ENTITY_RETRY_SECONDS = 600
_ORCHESTRATION_WORKERS = 4
_MAX_CUSTOM_STATUS_KB = 16  # DurableOrchestrationContext.SetCustomStatus
# How often (real seconds) the clock's time is saved, so that a killed scaled clock resumes close to it.
_CLOCK_RECORD_INTERVAL_SECONDS = 1.0


class DurableEngineError(Exception):
    pass


class InstanceExistsError(DurableEngineError):
    pass


class UnknownFunctionError(DurableEngineError):
    pass


class InstanceNotFoundError(DurableEngineError):
    pass


class InstanceNotRunningError(DurableEngineError):
    pass


class InvalidInstanceIdError(DurableEngineError, ValueError):
    pass


class DurableEngine:
    def __init__(
        self,
        index: AppIndex,
        *,
        store_path: str | Path,
        clock: Clock,
        sink: OutputSink | None = None,
        max_concurrent_activities: int = 10,
        task_hub: str = "TestHubName",
        episode_observer: Callable[[str, str], None] | None = None,
        atomic_starts: bool = False,
        binding_inputs: Callable[[FunctionInfo], dict[str, TypedData]] | None = None,
        rerun_activities: Collection[str] = (),
        max_entity_operation_batch_size: int = 5000,
        entity_observer: Callable[[str, str], None] | None = None,
    ) -> None:
        """`episode_observer(context_json, state_json)` sees every orchestrator invocation: the trigger JSON
        sent and the OrchestratorState JSON received (for an uncaught error, the `$OutOfProcData$` part).
        `atomic_starts` makes `start_new`'s duplicate check and instance write one transaction, so that of
        concurrent starts of one id only the first succeeds; the default is Azure's non-atomic start.
        `binding_inputs(fn)` gives an activity's other input bindings (a durable client), as the host does.
        `rerun_activities` is a fault mode: each work item of these activities runs twice and the first run's
        result is lost, as when the host dies after the activity ran and before its result was recorded.
        `max_entity_operation_batch_size` is `maxEntityOperationBatchSize` (the extension's default is 5000,
        50 on a Consumption plan); `entity_observer(context_json, result_json)` sees every entity batch."""
        if max_concurrent_activities < 1:
            raise ValueError("max_concurrent_activities must be at least 1")
        if max_entity_operation_batch_size < 1:
            raise ValueError("max_entity_operation_batch_size must be at least 1")
        self.index = index
        self.clock = clock
        self.sink = sink
        self.task_hub = task_hub
        self.episode_observer = episode_observer
        self.atomic_starts = atomic_starts
        self.binding_inputs = binding_inputs
        self.rerun_activities = frozenset(rerun_activities)
        self.entities = _entity_functions(index)
        self.max_entity_operation_batch_size = max_entity_operation_batch_size
        self.entity_observer = entity_observer
        # For tests: `start_new` calls it with the instance id after its duplicate check and before it writes
        # the instance (before both when `atomic_starts`). Blocking in it holds a start inside that window.
        self.start_hook: Callable[[str], None] | None = None
        self.max_concurrent_activities = max_concurrent_activities
        self.store = Store(store_path)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        # Lock order: store lock, then _state_lock. _progress is never held while touching either.
        self._state_lock = threading.Lock()
        self._progress = threading.Condition()
        self._progress_generation = 0
        self._busy_instances: set[str] = set()
        self._running_activities = 0
        self._dispatcher: threading.Thread | None = None
        self._clock_recorder: threading.Thread | None = None
        self._orchestration_pool = ThreadPoolExecutor(
            _ORCHESTRATION_WORKERS, thread_name_prefix="devhost-episode"
        )
        self._activity_pool = ThreadPoolExecutor(
            max_concurrent_activities, thread_name_prefix="devhost-activity"
        )

    # -- lifecycle -----------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._dispatcher is not None:
            raise RuntimeError("the durable engine is already started")
        with self.store.transaction() as tx:
            requeued = tx.requeue_running_activities()
        if requeued:
            logger.info("re-running %d activity invocation(s) interrupted by the last stop", requeued)
        self._dispatcher = threading.Thread(
            target=self._dispatch_loop, name="devhost-dispatcher", daemon=True
        )
        self._dispatcher.start()
        self._clock_recorder = threading.Thread(
            target=self._record_clock_loop, name="devhost-clock-recorder", daemon=True
        )
        self._clock_recorder.start()

    def stop(self) -> None:
        """Stop dispatching, wait for running episodes and activities, release the SQLite file."""
        if self._stopping.is_set():
            return  # already stopped: the store is closed
        self._stopping.set()
        self._signal_work()
        for thread in (self._dispatcher, self._clock_recorder):
            if thread is not None:
                thread.join()
        self._orchestration_pool.shutdown(wait=True)
        self._activity_pool.shutdown(wait=True)
        self._record_clock()
        self.store.close()

    def _record_clock_loop(self) -> None:
        while not self._stopping.wait(_CLOCK_RECORD_INTERVAL_SECONDS):
            try:
                self._record_clock()
            except Exception:
                logger.exception("could not record the clock time")

    def _record_clock(self) -> None:
        with self.store.transaction() as tx:
            tx.record_time(self.clock.time())

    # -- client operations (what the extension's management API does) --------------------------------------

    def start_new(self, name: str, instance_id: str | None, input_json: str | None) -> str:
        """Start an orchestration. `input_json` is the JSON text of the input as the extension stores it in
        `ExecutionStarted.Input` (the body the client POSTs; the Python client sends
        `json.dumps(df_dumps(x))`).

        As in the Azure Storage provider (`CreateTaskOrchestrationAsync`), the duplicate check and the
        instance write are separate steps: starts of one id whose checks all come before the first write all
        succeed. The first write wins; a later one finds the instance changed since its check and is dropped
        without an error (`SetNewExecutionAsync` ignores its 409/412), and the ExecutionStarted it queued is
        never run (its execution id is not the instance's), as the provider discards it.
        """
        if name not in self.index.orchestrators:
            raise UnknownFunctionError(
                f"The function '{name}' doesn't exist, is disabled, or is not an orchestrator function. "
                "Additional info: no orchestrator function of that name is indexed by the dev host."
            )
        instance_id = instance_id or uuid.uuid4().hex
        _validate_instance_id(instance_id)
        if input_json is not None:
            json.loads(input_json)  # reject malformed JSON before anything is stored
        if self.atomic_starts:
            self._run_start_hook(instance_id)
            with self.store.transaction() as tx:
                _refuse_running_instance(tx.get_instance(instance_id))
                self._create_instance(tx, instance_id, name, input_json, parent=None)
        else:
            with self.store.transaction() as tx:
                checked = tx.get_instance(instance_id)
            _refuse_running_instance(checked)
            self._run_start_hook(instance_id)
            with self.store.transaction() as tx:
                # Row equality stands in for the ETag the provider's insert/replace is conditional on.
                if tx.get_instance(instance_id) == checked:
                    self._create_instance(tx, instance_id, name, input_json, parent=None)
                else:
                    logger.info(
                        "a concurrent start of %s wrote the instance first; this one is dropped", instance_id
                    )
                    now = self.clock.now()
                    execution_id = uuid.uuid4().hex
                    started = execution_started(
                        now,
                        instance_id=instance_id,
                        execution_id=execution_id,
                        name=name,
                        input_json=input_json,
                        parent=None,
                    )
                    tx.add_message(instance_id, execution_id, now.timestamp(), started)
        self._signal_work()
        return instance_id

    def _run_start_hook(self, instance_id: str) -> None:
        if self.start_hook is not None:
            self.start_hook(instance_id)

    def raise_event(self, instance_id: str, event_name: str, data_json: str | None) -> None:
        """Deliver an external event; `data_json` is the JSON text stored as `EventRaised.Input`."""
        with self.store.transaction() as tx:
            self._require_running(tx, instance_id)
            event = new_event(EventType.EVENT_RAISED, self.clock.now(), Name=event_name, Input=data_json)
            tx.add_message(instance_id, None, self.clock.time(), event)
        self._signal_work()

    def terminate(self, instance_id: str, reason: str) -> None:
        with self.store.transaction() as tx:
            self._require_running(tx, instance_id)
            event = new_event(EventType.EXECUTION_TERMINATED, self.clock.now(), Input=reason)
            tx.add_message(instance_id, None, self.clock.time(), event)
        self._signal_work()

    def signal_entity(self, name: str, key: str, operation: str, input_json: str | None) -> None:
        """`SignalEntityAsync` of the client: a one-way "op" message; `input_json` is the operation input's
        JSON text as the extension stores it in `RequestMessage.Input` (None: no input)."""
        entity = EntityId.of(name, key)
        if _INVALID_INSTANCE_ID.search(key):
            raise InvalidEntityIdError("Entity keys must not contain /, \\, #, ?, or control characters.")
        if entity.name not in self.entities:
            raise UnknownFunctionError(
                f"The function '{entity.name}' doesn't exist, is disabled, or is not an entity function."
            )
        message = request_json(
            operation=operation, input_json=input_json, request_guid=str(uuid.uuid4()), signal=True
        )
        with self.store.transaction() as tx:
            event = new_event(
                EventType.EVENT_RAISED, self.clock.now(), Name=REQUEST_EVENT_NAME, Input=message
            )
            tx.add_message(entity.scheduler_id, None, self.clock.time(), event)
        self._signal_work()

    def read_entity_state(self, name: str, key: str) -> str | None:
        """`ReadEntityStateAsync`: the JSON text of the entity's state; None when it does not exist."""
        with self.store.transaction() as tx:
            row = tx.get_entity(EntityId.of(name, key).scheduler_id)
        return row.state if row is not None and row.exists else None

    def purge(self, instance_id: str) -> bool:
        with self.store.transaction() as tx:
            return tx.delete_instance(instance_id)

    def purge_where(
        self,
        *,
        runtime_status: Collection[str] | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
    ) -> int:
        with self.store.transaction() as tx:
            rows = tx.query_instances(
                runtime_status=list(runtime_status) if runtime_status else None,
                created_from=created_from.timestamp() if created_from else None,
                created_to=created_to.timestamp() if created_to else None,
            )
            return sum(tx.delete_instance(row.instance_id) for row in rows)

    def get_status(
        self,
        instance_id: str,
        *,
        show_history: bool = False,
        show_history_output: bool = False,
        show_input: bool = True,
    ) -> dict[str, Any] | None:
        with self.store.transaction() as tx:
            row = tx.get_instance(instance_id)
            history = tx.load_history(instance_id) if row is not None and show_history else []
        if row is None:
            return None
        status = _status_payload(row, show_input=show_input)
        if show_history:
            status["historyEvents"] = _history_for_status(history, show_history_output)
        return status

    def query(
        self,
        *,
        runtime_status: Collection[str] | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        top: int | None = None,
        show_input: bool = False,
    ) -> list[dict[str, Any]]:
        with self.store.transaction() as tx:
            rows = tx.query_instances(
                runtime_status=list(runtime_status) if runtime_status else None,
                created_from=created_from.timestamp() if created_from else None,
                created_to=created_to.timestamp() if created_to else None,
                top=top,
            )
        return [_status_payload(row, show_input=show_input) for row in rows]

    def query_page(
        self,
        *,
        id_prefix: str | None,
        after_id: str | None,
        top: int | None,
        runtime_status: Collection[str] | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        show_input: bool = False,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of the management API's instance query, ordered by instance id as an Azure Table query
        returns rows (PartitionKey order): the statuses after ``after_id`` and the id to continue after, if
        more may follow."""
        with self.store.transaction() as tx:
            rows = tx.query_instances(
                runtime_status=list(runtime_status) if runtime_status else None,
                created_from=created_from.timestamp() if created_from else None,
                created_to=created_to.timestamp() if created_to else None,
                top=top + 1 if top else None,
                id_prefix=id_prefix,
                after_id=after_id,
                by_id=True,
            )
        more = bool(top) and len(rows) > (top or 0)
        page = rows[:top] if top else rows
        next_id = page[-1].instance_id if more and page else None
        return [_status_payload(row, show_input=show_input) for row in page], next_id

    def history(self, instance_id: str) -> list[Event]:
        """The current execution's DTFx history, as persisted (no IsPlayed rewrite)."""
        with self.store.transaction() as tx:
            return tx.load_history(instance_id)

    # -- test support --------------------------------------------------------------------------------------

    def run_until_idle(self, timeout: float = 10.0) -> None:
        """Block until nothing is due at `clock.now()`: no due message, no activity, no running episode."""
        if self._dispatcher is None:
            raise RuntimeError("start() the durable engine before run_until_idle()")
        self._signal_work()
        if not self._wait_for(self._is_idle, timeout):
            raise TimeoutError(f"the durable engine did not become idle within {timeout} s")

    def next_due_time(self) -> datetime | None:
        """The earliest time a queued message (timer, event, result) is due, or None."""
        with self.store.transaction() as tx:
            due = tx.next_due()
        return None if due is None else _from_epoch(due)

    def wait_for_status(
        self, instance_id: str, statuses: Collection[str], timeout: float = 10.0
    ) -> dict[str, Any]:
        last: list[dict[str, Any] | None] = [None]

        def reached() -> bool:
            last[0] = self.get_status(instance_id)
            return last[0] is not None and last[0]["runtimeStatus"] in statuses

        if not self._wait_for(reached, timeout):
            current = last[0]["runtimeStatus"] if last[0] else "not found"
            raise TimeoutError(
                f"instance {instance_id!r} did not reach {sorted(statuses)} within {timeout} s "
                f"(it is {current})"
            )
        assert last[0] is not None
        return last[0]

    def _wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Re-check `predicate` after every unit of progress. The predicate runs without `_progress` held
        (it reads the store, whose lock the dispatcher holds while it takes `_state_lock`)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._progress:
                generation = self._progress_generation
            if predicate():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self._progress:
                if generation == self._progress_generation:
                    self._progress.wait(min(remaining, 0.5))

    # -- dispatching ---------------------------------------------------------------------------------------

    def _signal_work(self) -> None:
        self._wake.set()
        self.clock.interrupt()

    def _notify_progress(self) -> None:
        with self._progress:
            self._progress_generation += 1
            self._progress.notify_all()

    def _is_idle(self) -> bool:
        with self._state_lock:
            if self._busy_instances or self._running_activities:
                return False
        with self.store.transaction() as tx:
            return not tx.instances_with_due_messages(self.clock.time()) and tx.count_activities() == 0

    def _dispatch_loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                next_due = self._dispatch_ready_work()
            except Exception:
                logger.exception("durable dispatcher error")
                next_due = None
            self._notify_progress()
            wake_at = next_due or self.clock.now() + timedelta(days=1)
            self.clock.sleep_until(wake_at, self._wake)

    def _dispatch_ready_work(self) -> datetime | None:
        """Start episodes and activities that are due; return when the next idle instance's message is due."""
        with self.store.transaction() as tx:
            due_instances = tx.instances_with_due_messages(self.clock.time())
            free_slots = self.max_concurrent_activities - self._running_activities
            claimed = tx.claim_activities(free_slots) if free_slots > 0 else []
            with self._state_lock:
                ready = [i for i in due_instances if i not in self._busy_instances]
                self._busy_instances.update(ready)
                self._running_activities += len(claimed)
                busy = set(self._busy_instances)
            next_due = tx.next_due_excluding(busy)
        for instance_id in ready:
            run = self._run_entity_batch if is_entity_instance(instance_id) else self._run_episode
            self._orchestration_pool.submit(run, instance_id)
        for item in claimed:
            self._activity_pool.submit(self._run_activity, item)
        return None if next_due is None else _from_epoch(next_due)

    # -- episodes ------------------------------------------------------------------------------------------

    def _run_episode(self, instance_id: str) -> None:
        try:
            self._episode(instance_id)
        except Exception as exc:
            logger.exception("durable episode of instance %s failed inside the dev host", instance_id)
            self._fail_after_host_error(instance_id, exc)
        finally:
            self._release(instance_id)

    def _release(self, instance_id: str) -> None:
        with self._state_lock:
            self._busy_instances.discard(instance_id)
        self._signal_work()
        self._notify_progress()

    def _episode(self, instance_id: str) -> None:
        now = self.clock.now()
        with self.store.transaction() as tx:
            instance = tx.get_instance(instance_id)
            messages = tx.due_messages(instance_id, now.timestamp())
            current = [m for m in messages if instance and m.execution_id in (None, instance.execution_id)]
            if instance is None or instance.runtime_status in TERMINAL_STATES or not current:
                # Messages for finished, purged or superseded executions are discarded, as DTFx does.
                tx.delete_messages([m.id for m in messages])
                return
            history = tx.load_history(instance_id)
        batch = _first_batch(current)
        episode = _Episode(self, instance, history, batch, now)
        episode.run()
        with self.store.transaction() as tx:
            latest = tx.get_instance(instance_id)
            if latest is None or latest.execution_id != instance.execution_id:
                return  # purged or replaced while the orchestrator ran
            later = {m.id for m in current[len(batch) :]}
            tx.delete_messages([m.id for m in messages if m.id not in later])
            episode.commit(tx)

    def _fail_after_host_error(self, instance_id: str, error: Exception) -> None:
        """A bug or storage error in the dev host itself: fail the instance visibly instead of retrying the
        same episode forever."""
        try:
            with self.store.transaction() as tx:
                instance = tx.get_instance(instance_id)
                if instance is None or instance.runtime_status in TERMINAL_STATES:
                    return
                tx.delete_instance_messages(instance_id)
                tx.delete_pending_activities(instance_id)
                instance.runtime_status = FAILED
                instance.output = json.dumps(f"Dev host error while running an episode: {error!r}")
                instance.last_updated_time = self.clock.time()
                tx.put_instance(instance)
        except Exception:
            logger.exception("could not mark instance %s as failed", instance_id)

    # -- entities ------------------------------------------------------------------------------------------

    def _run_entity_batch(self, instance_id: str) -> None:
        try:
            self._entity_batch(instance_id)
        except Exception:
            logger.exception("the batch of entity %s could not be retried", instance_id)
        finally:
            self._release(instance_id)

    def _entity_batch(self, instance_id: str) -> None:
        """One work item of the entity: the due operations, at most `maxEntityOperationBatchSize`, in one
        invocation of the entity function; the rest wait for the next batch (the extension's `continue`)."""
        now = self.clock.now()
        entity = EntityId.from_scheduler_id(instance_id)
        with self.store.transaction() as tx:
            messages = tx.due_messages(instance_id, now.timestamp())[: self.max_entity_operation_batch_size]
            row = tx.get_entity(instance_id) or EntityRow(instance_id, False, None, 0)
        if not messages:
            return
        function = self.entities.get(entity.name)
        if function is None:
            # Only possible with a state file from an app that had this entity.
            logger.warning(
                "discarding %d operation(s) for %s: no such entity function", len(messages), instance_id
            )
            with self.store.transaction() as tx:
                tx.delete_messages([m.id for m in messages])
            return
        try:
            batch = [OperationRequest.parse(m.event["Input"]) for m in messages]
            outcome = self._invoke_entity(function, entity, row, batch)
            with self.store.transaction() as tx:
                tx.delete_messages([m.id for m in messages])
                tx.put_entity(EntityRow(instance_id, outcome.exists, outcome.state, 0))
                self._answer_calls(tx, batch, outcome)
        except Exception:
            # The extension aborts the work item (SessionAbortedException); the queue hands the messages
            # back after its back-off and the batch runs again. A caller's call_entity waits meanwhile.
            row.failed_batches += 1
            delay = min(2**row.failed_batches, _MAX_ENTITY_RETRY_SECONDS)
            logger.exception("the batch of entity %s failed; it runs again in %d s", instance_id, delay)
            with self.store.transaction() as tx:
                tx.postpone_messages([m.id for m in messages], now.timestamp() + delay)
                tx.put_entity(row)

    def _answer_calls(self, tx: Transaction, batch: list[OperationRequest], outcome: BatchResult) -> None:
        """A ResponseMessage for every call, to the execution that sent it."""
        answered_at = self.clock.now()
        for request, result in zip(batch, outcome.results, strict=True):
            if request.signal or request.parent_instance_id is None:
                continue
            response = new_event(
                EventType.EVENT_RAISED,
                answered_at,
                Name=request.id,
                Input=response_json(result.result, is_error=result.is_error),
            )
            tx.add_message(
                request.parent_instance_id, request.parent_execution_id, answered_at.timestamp(), response
            )

    def _invoke_entity(
        self, function: FunctionInfo, entity: EntityId, row: EntityRow, batch: list[OperationRequest]
    ) -> BatchResult:
        """Run the batch in one invocation (`TaskEntityShim.ExecuteOutOfProcBatch`). The whole batch's state
        is kept, failed operations included: the extension rolls back per operation only for in-process
        entities, and the Python SDK keeps what a failed operation set."""
        context_json = entity_context_json(entity, row.exists, row.state, batch)
        outcome: BatchResult | None = None
        with contextlib.suppress(_OperationsFailed), invocation_log(function.name, DURABLE_REASON):
            returned = call_function(function, {function.trigger_parameter: TypedData(string=context_json)})
            if returned is None or returned.WhichOneof("data") != "json":
                raise TypeError(f"entity function {function.name!r} answered {returned!r}, not JSON")
            result_json = str(returned.json)
            if self.entity_observer is not None:
                self.entity_observer(context_json, result_json)
            outcome = BatchResult.parse(result_json, len(batch))
            if any(result.is_error for result in outcome.results):
                # The extension rethrows the operations' errors, so the host logs the invocation as failed.
                raise _OperationsFailed
        assert outcome is not None
        return outcome

    # -- activities ----------------------------------------------------------------------------------------

    def _run_activity(self, item: ActivityWorkItem) -> None:
        try:
            event = self._execute_activity(item)
            with self.store.transaction() as tx:
                if tx.finish_activity(item.id):
                    tx.add_message(item.instance_id, item.execution_id, self.clock.time(), event)
        except Exception:
            logger.exception(
                "activity %s of instance %s failed inside the dev host", item.name, item.instance_id
            )
        finally:
            with self._state_lock:
                self._running_activities -= 1
            self._signal_work()
            self._notify_progress()

    def _execute_activity(self, item: ActivityWorkItem) -> Event:
        function = self.index.activities.get(item.name)
        try:
            if function is None:
                raise ActivityFailed(
                    "ArgumentException", f"The activity function '{item.name}' is not indexed."
                )
            inputs = self.binding_inputs(function) if self.binding_inputs is not None else {}
            if item.name in self.rerun_activities:
                with contextlib.suppress(ActivityFailed):
                    invoke_activity(function, item.input, self.sink, inputs)
                logger.warning("fault mode: the result of %s for %s was lost", item.name, item.instance_id)
            result = invoke_activity(function, item.input, self.sink, inputs)
        except ActivityFailed as failure:
            # The host scrubs credential-like text from the worker's message before anything else sees it.
            message = sanitize(failure.worker_message)
            return new_event(
                EventType.TASK_FAILED,
                self.clock.now(),
                TaskScheduledId=item.task_id,
                # TaskActivityShim: "Activity function '<name>' failed: " + the RPC exception's friendly
                # message, the text after "\nException:" (which starts with a space: hence two spaces).
                Reason=f"Activity function '{item.name}' failed:  {message}",
                Details=_exception_details(message, failure.stack),
                FailureDetails=None,
            )
        return new_event(
            EventType.TASK_COMPLETED, self.clock.now(), TaskScheduledId=item.task_id, Result=result
        )

    # -- helpers -------------------------------------------------------------------------------------------

    def _require_running(self, tx: Transaction, instance_id: str) -> InstanceRow:
        row = tx.get_instance(instance_id)
        if row is None:
            raise InstanceNotFoundError(f"No instance with ID '{instance_id}' found.")
        if row.runtime_status in TERMINAL_STATES:
            raise InstanceNotRunningError(
                f"Instance with ID {instance_id} is gone: either completed or failed (it is "
                f"{row.runtime_status})."
            )
        return row

    def _create_instance(
        self,
        tx: Transaction,
        instance_id: str,
        name: str,
        input_json: str | None,
        *,
        parent: tuple[InstanceRow, int] | None,
    ) -> None:
        """Create or replace an instance: a new execution with a queued ExecutionStarted."""
        now = self.clock.now()
        execution_id = uuid.uuid4().hex
        tx.reset_instance_state(instance_id)
        parent_row, parent_task_id = parent if parent else (None, None)
        tx.put_instance(
            InstanceRow(
                instance_id=instance_id,
                name=name,
                execution_id=execution_id,
                runtime_status=PENDING,
                input=input_json,
                output=None,
                custom_status=None,
                created_time=now.timestamp(),
                last_updated_time=now.timestamp(),
                parent_instance_id=parent_row.instance_id if parent_row else None,
                parent_execution_id=parent_row.execution_id if parent_row else None,
                parent_task_id=parent_task_id,
            )
        )
        parent_info = (
            {
                "Name": parent_row.name,
                "Version": "",
                "TaskScheduleId": parent_task_id,
                "OrchestrationInstance": {
                    "InstanceId": parent_row.instance_id,
                    "ExecutionId": parent_row.execution_id,
                },
            }
            if parent_row
            else None
        )
        started = execution_started(
            now,
            instance_id=instance_id,
            execution_id=execution_id,
            name=name,
            input_json=input_json,
            parent=parent_info,
        )
        tx.add_message(instance_id, execution_id, now.timestamp(), started)


class _OperationsFailed(Exception):  # noqa: N818 - a signal to the invocation log, not an error
    pass


class _Episode:
    """One orchestrator invocation: build the trigger JSON, call the SDK, replay its actions, then commit."""

    def __init__(
        self,
        engine: DurableEngine,
        instance: InstanceRow,
        history: list[Event],
        messages: list[Message],
        now: datetime,
    ) -> None:
        self.engine = engine
        self.instance = instance
        self.now = now
        self.past = [{**event, "IsPlayed": True} for event in history]
        self.delivered = [message.event for message in messages]
        self.started = new_event(EventType.ORCHESTRATOR_STARTED, now)
        self.decisions = Decisions()
        self.state: dict[str, Any] = {}
        self.failure: str | None = None
        self.custom_status_json: str | None = None
        self.terminate_reason: str | None = next(
            (
                e.get("Input") or ""
                for e in self.delivered
                if e["EventType"] == EventType.EXECUTION_TERMINATED
            ),
            None,
        )

    def run(self) -> None:
        if self.terminate_reason is not None:
            return
        name = self.instance.name
        try:
            function = self.engine.index.orchestrators.get(name)
            if function is None:
                raise OrchestrationFailedError(
                    f"The function '{name}' doesn't exist, is disabled, or is not an orchestrator function."
                )
            history = self.history_for_invocation()
            context_json = orchestration_context_json(
                instance_id=self.instance.instance_id,
                history=history,
                input_json=self.instance.input,
                parent_instance_id=self.instance.parent_instance_id,
            )
            self.state = _call_orchestrator(function, context_json, name)
            if self.engine.episode_observer is not None:
                self.engine.episode_observer(context_json, json.dumps(self.state))
            # The shim sets the custom status before it replays any action: too large fails the episode.
            if self.state.get("customStatus") is not None:
                self.custom_status_json = _serialize_custom_status(
                    self.state["customStatus"], name, uncaught=bool(self.state.get("error"))
                )
            self.decisions = replay_actions(
                self.state,
                history,
                now=self.now,
                known_activities=set(self.engine.index.activities),
                known_entities=set(self.engine.entities),
                instance_id=self.instance.instance_id,
            )
            if self.state.get("error"):
                self.failure = ORCHESTRATOR_FAILED.format(name=name, error=self.state["error"])
        except OrchestrationFailedError as failure:
            self.failure = str(failure)

    def history_for_invocation(self) -> list[Event]:
        return [*self.past, self.started, *self.delivered]

    def commit(self, tx: Transaction) -> None:
        instance = self.instance
        appended = [self.started, *self.delivered]
        if self.terminate_reason is not None:
            appended.append(self._execution_completed(TERMINATED, self.terminate_reason))
            self._finish(tx, appended, TERMINATED, json.dumps(self.terminate_reason))
            return
        if self.custom_status_json is not None:
            instance.custom_status = self.custom_status_json
        appended.extend(self.decisions.new_events)
        # DTFx sends the SendEvent messages of every episode, the one that completes or fails included.
        for message in self.decisions.entity_messages:
            event = new_event(
                EventType.EVENT_RAISED, self.now, Name=REQUEST_EVENT_NAME, Input=message.request_json
            )
            tx.add_message(message.instance_id, None, self.now.timestamp(), event)
        done = bool(self.state.get("isDone")) and not self.decisions.has_open_tasks
        if self.failure is not None:
            appended.append(self._execution_completed(FAILED, self.failure))
            self._finish(tx, appended, FAILED, json.dumps(self.failure))
        elif done and self.decisions.continued_as_new:
            self._continue_as_new(tx)
        elif done:
            output_json = json.dumps(self.state.get("output"))
            appended.append(self._execution_completed(COMPLETED, output_json))
            self._finish(tx, appended, COMPLETED, output_json)
        else:
            # DTFx adds it unless the history already ends with one (a continued execution's first batch).
            if appended[-1]["EventType"] != EventType.ORCHESTRATOR_COMPLETED:
                appended.append(new_event(EventType.ORCHESTRATOR_COMPLETED, self.now))
            tx.append_history(instance.instance_id, appended)
            self._schedule(tx)
            self._update(tx, RUNNING)

    def _execution_completed(self, status: str, result: str) -> Event:
        return new_event(EventType.EXECUTION_COMPLETED, self.now, OrchestrationStatus=status, Result=result)

    def _schedule(self, tx: Transaction) -> None:
        instance = self.instance
        now_epoch = self.now.timestamp()
        for activity in self.decisions.activities:
            tx.add_activity(
                instance.instance_id,
                instance.execution_id,
                activity.task_id,
                activity.name,
                activity.input_json,
            )
        for timer in self.decisions.timers:
            fired = new_event(
                EventType.TIMER_FIRED,
                timer.fire_at,
                TimerId=timer.timer_id,
                FireAt=format_timestamp(timer.fire_at),
            )
            tx.add_message(
                instance.instance_id,
                instance.execution_id,
                timer.fire_at.timestamp(),
                fired,
                timer_id=timer.timer_id,
            )
        for child in self.decisions.sub_orchestrations:
            existing = tx.get_instance(child.instance_id)
            if existing is not None and existing.runtime_status in RUNNING_STATES:
                failed = new_event(
                    EventType.SUB_ORCHESTRATION_INSTANCE_FAILED,
                    self.now,
                    TaskScheduledId=child.task_id,
                    Reason=f"An Orchestration instance with the status {existing.runtime_status} "
                    "already exists.",
                    Details=None,
                )
                tx.add_message(instance.instance_id, instance.execution_id, now_epoch, failed)
            else:
                self.engine._create_instance(
                    tx, child.instance_id, child.name, child.input_json, parent=(instance, child.task_id)
                )

    def _continue_as_new(self, tx: Transaction) -> None:
        """DTFx ends the execution and runs the next one in the same work item, on the fresh history
        [OrchestratorStarted, ExecutionStarted, the carried-over EventRaised (played), OrchestratorCompleted]
        (`TaskOrchestrationDispatcher.OnProcessWorkItemAsync`); the status stays Running. Queued as the new
        execution's first messages, those events make its next episode exactly that (`_first_batch`)."""
        instance = self.instance
        previous_start = next(
            e for e in self.history_for_invocation() if e["EventType"] == EventType.EXECUTION_STARTED
        )
        # Timers and results of the old execution are dropped, as DTFx drops messages for another
        # ExecutionId; raised events carry none (the client clears it), so those queued meanwhile stay.
        tx.end_execution(instance.instance_id)
        instance.execution_id = uuid.uuid4().hex
        instance.input = self.decisions.continue_as_new_input
        instance.output = None
        # The Azure Storage provider sets the instance's CreatedTime from every ExecutionStarted, so a
        # continued instance reads as created now (AzureTableTrackingStore.UpdateStateAsync).
        instance.created_time = self.now.timestamp()
        started = execution_started(
            self.now,
            instance_id=instance.instance_id,
            execution_id=instance.execution_id,
            name=instance.name,
            input_json=instance.input,
            parent=previous_start.get("ParentInstance"),
        )
        # DTFx marks every event it processed as played, the carried-over ones included.
        carried = [{**event, "IsPlayed": True} for event in self.decisions.carried_over]
        for event in (started, *carried, new_event(EventType.ORCHESTRATOR_COMPLETED, self.now)):
            tx.add_message(instance.instance_id, instance.execution_id, self.now.timestamp(), event)
        tx.requeue_unbound_messages(instance.instance_id)
        self._update(tx, RUNNING)

    def _finish(self, tx: Transaction, appended: list[Event], status: str, output_json: str) -> None:
        instance = self.instance
        appended.append(new_event(EventType.ORCHESTRATOR_COMPLETED, self.now))
        tx.append_history(instance.instance_id, appended)
        # Timers and results still queued for a finished instance would be discarded on arrival anyway.
        tx.delete_instance_messages(instance.instance_id)
        tx.delete_pending_activities(instance.instance_id)
        instance.output = output_json
        self._update(tx, status)
        if instance.parent_instance_id is None or instance.parent_execution_id is None:
            return
        # DTFx tells the parent: Completed -> SubOrchestrationInstanceCompleted, Failed or Terminated ->
        # SubOrchestrationInstanceFailed with the failure message / termination reason as Reason.
        if status == COMPLETED:
            event = new_event(
                EventType.SUB_ORCHESTRATION_INSTANCE_COMPLETED,
                self.now,
                TaskScheduledId=instance.parent_task_id,
                Result=output_json,
            )
        else:
            event = new_event(
                EventType.SUB_ORCHESTRATION_INSTANCE_FAILED,
                self.now,
                TaskScheduledId=instance.parent_task_id,
                Reason=json.loads(output_json),
                Details=None,
            )
        tx.add_message(instance.parent_instance_id, instance.parent_execution_id, self.now.timestamp(), event)

    def _update(self, tx: Transaction, status: str) -> None:
        self.instance.runtime_status = status
        self.instance.last_updated_time = self.now.timestamp()
        tx.put_instance(self.instance)


def _entity_functions(index: AppIndex) -> dict[str, FunctionInfo]:
    """Entity functions by entity name (the trigger's `entityName` or the function name), lower-cased as
    `EntityId` does."""
    entities: dict[str, FunctionInfo] = {}
    for function in index.of_type(ENTITY_TRIGGER):
        name = str(function.trigger.get("entityName") or function.name).lower()
        if name in entities:
            raise IndexingError(
                f"two entity functions are named {name!r}: {entities[name].name!r} and {function.name!r}"
            )
        entities[name] = function
    return entities


def _first_batch(messages: list[Message]) -> list[Message]:
    """The messages of one episode: all of them, except that a continued execution's first episode ends
    with the OrchestratorCompleted queued by `_continue_as_new` (later messages wait for the next one)."""
    for position, message in enumerate(messages):
        if message.event["EventType"] == EventType.ORCHESTRATOR_COMPLETED:
            return messages[: position + 1]
    return messages


def _call_orchestrator(function: Any, context_json: str, name: str) -> dict[str, Any]:
    """Invoke the orchestrator; an exception carrying `$OutOfProcData$` is a returned state with `error`
    (OutOfProcExceptionHelpers.TryExtractOutOfProcStateJson)."""
    try:
        result = invoke_orchestrator(function, context_json)
    except Exception as exc:
        message = str(exc)
        marker_at = message.find(_OUT_OF_PROC_DATA_MARKER)
        if marker_at < 0:
            raise OrchestrationFailedError(
                ORCHESTRATOR_FAILED.format(name=name, error=f"{type(exc).__name__}: {exc}")
            ) from exc
        state: dict[str, Any] = json.loads(message[marker_at + len(_OUT_OF_PROC_DATA_MARKER) :])
        state["error"] = state.get("error") or message[:marker_at]
        return state
    try:
        parsed = json.loads(result)
    except json.JSONDecodeError as exc:
        raise OrchestrationFailedError("Out of proc orchestrators must return a valid JSON schema") from exc
    if not isinstance(parsed, dict):
        raise OrchestrationFailedError(
            "The data returned by the out-of-process function execution was not valid json."
        )
    return parsed


def _serialize_custom_status(value: Any, name: str, *, uncaught: bool) -> str:
    """`SetCustomStatus`: compact JSON whose UTF-16 size (whole KB, rounded down) must not exceed 16 KB
    (MessagePayloadDataConverter.Serialize). The extension's ArgumentException fails the orchestration; with
    an uncaught orchestrator error (`$OutOfProcData$`) it escapes unwrapped, so DTFx records its bare
    message."""
    serialized = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    size_kb = len(serialized.encode("utf-16-le", errors="surrogatepass")) // 1024
    if size_kb <= _MAX_CUSTOM_STATUS_KB:
        return serialized
    message = (
        f"The UTF-16 size of the JSON-serialized payload must not exceed {_MAX_CUSTOM_STATUS_KB:,} KB. "
        f"The current payload size is {size_kb:,} KB."
    )
    raise OrchestrationFailedError(
        message if uncaught else ORCHESTRATOR_FAILED.format(name=name, error=message)
    )


def _status_payload(row: InstanceRow, *, show_input: bool) -> dict[str, Any]:
    """StatusResponsePayload: JSON values for input/output/customStatus, times as yyyy-MM-ddTHH:mm:ssZ."""
    return {
        "name": row.name,
        "instanceId": row.instance_id,
        "runtimeStatus": row.runtime_status,
        "input": _json_value(row.input) if show_input else None,
        "customStatus": _json_value(row.custom_status),
        "output": _json_value(row.output),
        "createdTime": format_status_time(row.created),
        "lastUpdatedTime": format_status_time(row.last_updated),
    }


def _history_for_status(history: list[Event], show_output: bool) -> list[dict[str, Any]]:
    """The extension's `historyEvents` shape: no episode markers, EventType names, FunctionName instead
    of Name, completions named after their scheduling event; inputs/results only with showHistoryOutput."""
    scheduled_by_id = {
        e["EventId"]: e
        for e in history
        if e["EventType"] in (EventType.TASK_SCHEDULED, EventType.SUB_ORCHESTRATION_INSTANCE_CREATED)
    }
    rendered: list[dict[str, Any]] = []
    for event in history:
        if event["EventType"] in (EventType.ORCHESTRATOR_STARTED, EventType.ORCHESTRATOR_COMPLETED):
            continue
        item: dict[str, Any] = {
            "EventType": EVENT_TYPE_NAMES[event["EventType"]],
            "Timestamp": event["Timestamp"],
        }
        for key, value in event.items():
            if key in ("EventType", "EventId", "IsPlayed", "Timestamp", "OrchestrationInstance", "Tags"):
                continue
            if key in ("Input", "Result") and not show_output:
                continue
            item["FunctionName" if key == "Name" else key] = value
        scheduled = scheduled_by_id.get(event.get("TaskScheduledId", -2))
        if scheduled is not None:
            item["FunctionName"] = scheduled.get("Name")
            item["ScheduledTime"] = scheduled["Timestamp"]
        rendered.append(item)
    return rendered


def _exception_details(message: str, stack: str) -> str:
    """TaskFailed.Details: the .NET exception JSON (Utils.SerializeCause); single-line JSON with a Message."""
    return json.dumps(
        {
            "$type": "System.Exception, System.Private.CoreLib",
            "ClassName": "System.Exception",
            "Message": message,
            "Data": None,
            "InnerException": None,
            "HelpURL": None,
            "StackTraceString": stack,
            "RemoteStackTraceString": None,
            "RemoteStackIndex": 0,
            "ExceptionMethod": None,
            "HResult": -2146233088,
            "Source": None,
            "WatsonBuckets": None,
        }
    )


def _json_value(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _from_epoch(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _refuse_running_instance(existing: InstanceRow | None) -> None:
    """The default `overridableExistingInstanceStates` (NonRunningStates): a live instance blocks a start."""
    if existing is not None and existing.runtime_status in RUNNING_STATES:
        raise InstanceExistsError(
            f"An Orchestration instance with the status {existing.runtime_status} already exists."
        )


def _validate_instance_id(instance_id: str) -> None:
    if instance_id.startswith("@") or len(instance_id) > 256 or _INVALID_INSTANCE_ID.search(instance_id):
        raise InvalidInstanceIdError(
            f"Instance ID '{instance_id}' is invalid: it must not start with '@', contain '/', '\\', '#', "
            "'?' or control characters, or be longer than 256 characters."
        )
