"""Azure Storage queues the way the Functions host's queue extension uses them (against Azurite).

Trigger: poll each queue a `queueTrigger` names (exponential back-off up to `maxPollingInterval`), decode per
`extensions.queues.messageEncoding` (base64 by default), pass a `func.QueueMessage`, delete the message after
success; after a failure release it for `visibilityTimeout` (default 0: visible again at once) or, once its
dequeue count has reached `maxDequeueCount` (default 5), copy it to `<queue>-poison` and delete it.
Messages run concurrently as in the extension's `QueueListener`: each poll receives up to `batchSize` messages
and starts them all at once; the next poll waits until no more than `newBatchThreshold` are still running, so
at most `batchSize + newBatchThreshold` messages of one function run at a time.
Output: `func.Out` queue bindings write encoded messages, creating the queue when missing.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import azure.functions as func
from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import ExponentialRetry, QueueClient, QueueMessage, QueueServiceClient

from devhost import rpc
from devhost.indexing import FunctionInfo
from devhost.local_settings import (
    SettingsError,
    get_setting_ci,
    host_extension_section,
    parse_timespan,
    resolve_setting_expressions,
)
from devhost.worker import QUEUE_REASON

if TYPE_CHECKING:
    from devhost.host import FunctionHost

log = logging.getLogger("devhost")

# Azurite's well-known development account (public, documented; not a secret).
DEVELOPMENT_STORAGE = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
    "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"
    "TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;"
)
# The host holds a message invisible while the function runs (the queue extension's default, 10 minutes).
_PROCESSING_VISIBILITY_SECONDS = 600
# Storage returns at most 32 messages per receive; the extension refuses a larger batchSize.
_MAX_BATCH_SIZE = 32
# The shortest polling delay (QueuePollingIntervals.Minimum), where the back-off starts.
_MIN_POLLING_INTERVAL_SECONDS = 0.1
# Consumption plan instances report this SKU; the extension then counts one processor.
_DYNAMIC_SKU = "Dynamic"


@dataclass(frozen=True)
class QueueOptions:
    """`extensions.queues` of host.json with the host's defaults (polling capped at 2 s locally)."""

    message_encoding: str = "base64"
    max_dequeue_count: int = 5
    visibility_timeout_seconds: float = 0.0
    max_polling_interval_seconds: float = 2.0
    batch_size: int = 16
    # None: the extension's default, derived from batch_size and processor_count (see new_batch_threshold).
    configured_new_batch_threshold: int | None = None
    processor_count: int = 1

    @property
    def new_batch_threshold(self) -> int:
        """The listener fetches the next batch once no more than this many messages are still running."""
        if self.configured_new_batch_threshold is not None:
            return self.configured_new_batch_threshold
        return (self.batch_size // 2) * self.processor_count

    @classmethod
    def from_host_json(
        cls, host_json: Mapping[str, Any], environ: Mapping[str, str] | None = None
    ) -> QueueOptions:
        section = host_extension_section(host_json, "queues")
        encoding = str(get_setting_ci(section, "messageEncoding", "base64")).lower()
        if encoding not in ("base64", "none"):
            raise SettingsError(
                f"host.json extensions.queues.messageEncoding: '{encoding}' is not base64 or none"
            )
        batch_size = int(get_setting_ci(section, "batchSize", 16))
        if not 1 <= batch_size <= _MAX_BATCH_SIZE:
            raise SettingsError(
                f"host.json extensions.queues.batchSize: {batch_size} is not between 1 and {_MAX_BATCH_SIZE}"
            )
        threshold = get_setting_ci(section, "newBatchThreshold")
        if threshold is not None and int(threshold) < 0:
            raise SettingsError(f"host.json extensions.queues.newBatchThreshold: {threshold} is negative")
        max_polling_interval = parse_timespan(
            get_setting_ci(section, "maxPollingInterval", "00:00:02"),
            field="extensions.queues.maxPollingInterval",
        )
        if max_polling_interval < _MIN_POLLING_INTERVAL_SECONDS:
            raise SettingsError(
                "host.json extensions.queues.maxPollingInterval: must not be less than 00:00:00.1"
            )
        return cls(
            message_encoding=encoding,
            max_dequeue_count=int(get_setting_ci(section, "maxDequeueCount", 5)),
            visibility_timeout_seconds=parse_timespan(
                get_setting_ci(section, "visibilityTimeout", "00:00:00"),
                field="extensions.queues.visibilityTimeout",
            ),
            max_polling_interval_seconds=max_polling_interval,
            batch_size=batch_size,
            configured_new_batch_threshold=None if threshold is None else int(threshold),
            processor_count=host_processor_count(os.environ if environ is None else environ),
        )

    def encode(self, text: str) -> str:
        return (
            base64.b64encode(text.encode("utf-8")).decode("ascii")
            if self.message_encoding == "base64"
            else text
        )

    def decode(self, content: str) -> bytes:
        if self.message_encoding == "none":
            return content.encode("utf-8")
        return base64.b64decode(content, validate=True)


def host_processor_count(environ: Mapping[str, str]) -> int:
    """The processor count the extension multiplies the default newBatchThreshold by: 1 on the Consumption
    plan (`WEBSITE_SKU=Dynamic`), else the processors this process may use (Environment.ProcessorCount)."""
    if environ.get("WEBSITE_SKU", "").lower() == _DYNAMIC_SKU.lower():
        return 1
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def storage_connection_string(connection: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """The connection string a binding's `connection` setting names (default AzureWebJobsStorage), with
    `UseDevelopmentStorage=true` expanded to Azurite's default endpoints; None when the setting is not set."""
    settings = os.environ if environ is None else environ
    value = settings.get(connection or "AzureWebJobsStorage") or settings.get(f"AzureWebJobs{connection}")
    if not value:
        return None
    if value.strip().lower().rstrip(";") == "usedevelopmentstorage=true":
        return DEVELOPMENT_STORAGE
    return value


def next_polling_delay(
    current: float, exponent: int, found_messages: bool, maximum: float
) -> tuple[float, int]:
    """The wait after an empty poll and the next back-off exponent, as the extension's
    RandomizedExponentialBackoffStrategy.GetNextDelay computes them without its +-20 % jitter: the minimum
    after messages were found, else the minimum plus an increment that doubles each time, up to `maximum`."""
    if found_messages:
        return _MIN_POLLING_INTERVAL_SECONDS, 1
    if current >= maximum:
        return maximum, exponent
    increment = _MIN_POLLING_INTERVAL_SECONDS * 2 ** (exponent - 1) if exponent > 0 else 0.0
    candidate = _MIN_POLLING_INTERVAL_SECONDS + increment
    return (candidate, exponent + 1) if candidate < maximum else (maximum, exponent)


class StorageUnavailableError(RuntimeError):
    """The queue storage a binding names cannot be reached (Azurite not running?)."""


def _queue_client(connection_string: str, queue_name: str) -> QueueClient:
    # The SDK's default retries take about 85 s to give up on a refused connection; a few seconds is enough
    # against local storage, and a failed poll is simply tried again.
    retry = ExponentialRetry(initial_backoff=1, increment_base=2, retry_total=2, random_jitter_range=1)
    service = QueueServiceClient.from_connection_string(connection_string, retry_policy=retry)
    return service.get_queue_client(queue_name)


def _ensure_queue(client: QueueClient) -> None:
    with contextlib.suppress(ResourceExistsError):
        client.create_queue()


def _message_text(value: Any) -> str:
    """What the worker sends for a queue output value: str as is, bytes as UTF-8, anything else as JSON."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, str):
        return value
    if isinstance(value, func.QueueMessage):
        return value.get_body().decode("utf-8")
    return json.dumps(value)


def _trigger_metadata(message: QueueMessage, dequeue_count: int) -> dict[str, rpc.TypedData]:
    """The queue trigger's binding data as the host sends it: strings as strings, anything else (the count,
    the times) as JSON (GrpcMessageConversionExtensions.ToRpc falls back to ToRpcDefault)."""

    def when(moment: Any) -> rpc.TypedData:
        return rpc.TypedData(json=json.dumps(moment.isoformat() if moment is not None else None))

    return {
        "Id": rpc.TypedData(string=message.id),
        "DequeueCount": rpc.TypedData(json=json.dumps(dequeue_count)),
        "ExpirationTime": when(message.expires_on),
        "InsertionTime": when(message.inserted_on),
        "NextVisibleTime": when(message.next_visible_on),
        "PopReceipt": rpc.TypedData(string=message.pop_receipt),
    }


class QueueOutputSink:
    """OutputSink for `queue` output bindings (other binding types are refused clearly)."""

    def __init__(self, options: QueueOptions) -> None:
        self._options = options
        self._clients: dict[tuple[str, str], QueueClient] = {}
        self._lock = threading.Lock()

    def write(self, binding: dict[str, Any], value: Any) -> None:
        if binding.get("type") != "queue":
            raise RuntimeError(f"the dev host does not support '{binding.get('type')}' output bindings")
        queue_name = resolve_setting_expressions(str(binding["queueName"])).lower()
        connection_string = storage_connection_string(binding.get("connection"))
        if connection_string is None:
            raise RuntimeError(
                f"queue output '{binding['name']}': storage setting "
                f"'{binding.get('connection') or 'AzureWebJobsStorage'}' is not set"
            )
        # A list on an Out binding is several messages, as the worker sends a collection.
        messages = value if isinstance(value, list) else [value]
        client = self._client(connection_string, queue_name)
        for message in messages:
            client.send_message(self._options.encode(_message_text(message)))

    def _client(self, connection_string: str, queue_name: str) -> QueueClient:
        with self._lock:
            key = (connection_string, queue_name)
            if key not in self._clients:
                client = _queue_client(connection_string, queue_name)
                _ensure_queue(client)
                self._clients[key] = client
            return self._clients[key]


class QueueTriggerListener:
    """Polls one trigger function's queue on its own thread until stopped; every message runs on a thread of
    its own, at most `batchSize + newBatchThreshold` at a time."""

    def __init__(self, host: FunctionHost, fn: FunctionInfo, options: QueueOptions) -> None:
        self.fn = fn
        self._host = host
        self._options = options
        self.queue_name = resolve_setting_expressions(str(fn.trigger["queueName"])).lower()
        connection_string = storage_connection_string(fn.trigger.get("connection"))
        if connection_string is None:
            raise SettingsError(
                f"function '{fn.name}': queue trigger connection "
                f"'{fn.trigger.get('connection') or 'AzureWebJobsStorage'}' is not set"
            )
        self.client = _queue_client(connection_string, self.queue_name)
        self.poison_client = _queue_client(connection_string, f"{self.queue_name}-poison")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"devhost-queue-{fn.name}", daemon=True)
        # Messages started and not finished, and whether a receive is under way: both are work in progress.
        self._state = threading.Condition()
        self._running = 0
        self._receiving = False

    @property
    def busy(self) -> bool:
        with self._state:
            return self._receiving or self._running > 0

    def start(self) -> None:
        try:
            _ensure_queue(self.client)
        except AzureError as exc:
            raise StorageUnavailableError(
                f"function '{self.fn.name}': cannot reach queue storage at {self.client.primary_endpoint} "
                f"(is Azurite running?): {exc}"
            ) from exc
        self._thread.start()

    def request_stop(self) -> None:
        self._stop.set()

    def stop(self) -> None:
        """Stop polling and wait for the running messages to finish, as the host does (here at most 10 s)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        with self._state:
            if self._running:
                log.warning("%d message(s) of '%s' still running at stop", self._running, self.queue_name)

    def _run(self) -> None:
        delay, backoff_exponent = 0.0, 0
        found_since_delay = False
        while not self._stop.is_set():
            try:
                received = self._receive_batch()
            except Exception:
                log.exception("polling queue '%s' failed", self.queue_name)
                received = 0
            if received:
                # Poll again at once, but only when few enough messages are left running.
                found_since_delay = True
                self._wait_until_running_at_most(self._options.new_batch_threshold)
                continue
            delay, backoff_exponent = next_polling_delay(
                delay, backoff_exponent, found_since_delay, self._options.max_polling_interval_seconds
            )
            found_since_delay = False
            self._stop.wait(delay)
        self._wait_until_running_at_most(0)

    def _receive_batch(self) -> int:
        """One receive of up to batchSize messages, each started on its own thread; returns how many."""
        with self._state:
            self._receiving = True
        try:
            # The first page is exactly one Get Messages request (numofmessages=batchSize).
            pages = self.client.receive_messages(
                messages_per_page=self._options.batch_size,
                visibility_timeout=_PROCESSING_VISIBILITY_SECONDS,
            ).by_page()
            messages = list(next(pages, []))
            for message in messages:
                self._start(message)
            return len(messages)
        finally:
            with self._state:
                self._receiving = False

    def _start(self, message: QueueMessage) -> None:
        with self._state:
            self._running += 1
        threading.Thread(
            target=self._run_message, args=(message,), name=f"devhost-queue-{self.fn.name}-msg", daemon=True
        ).start()

    def _run_message(self, message: QueueMessage) -> None:
        try:
            self._process(message)
        except Exception:
            log.exception("processing message %s on '%s' failed", message.id, self.queue_name)
        finally:
            with self._state:
                self._running -= 1
                self._state.notify_all()

    def _wait_until_running_at_most(self, count: int) -> None:
        with self._state:
            self._state.wait_for(lambda: self._running <= count)

    def _process(self, message: QueueMessage) -> None:
        max_dequeue = self._options.max_dequeue_count
        dequeue_count = message.dequeue_count or 1
        if dequeue_count > max_dequeue:
            # Delivered more often than allowed (the host crashed mid-run): poison it without running it.
            self._to_poison(message, f"dequeue count {dequeue_count} > maxDequeueCount {max_dequeue}")
            return
        try:
            body = self._options.decode(message.content)
        except (binascii.Error, ValueError):
            self._to_poison(
                message, "message is not valid base64 (extensions.queues.messageEncoding is base64)"
            )
            return
        try:
            self._host.invoke(
                self.fn,
                rpc.TypedData(bytes=body),
                trigger_metadata=_trigger_metadata(message, dequeue_count),
                reason=QUEUE_REASON.format(queue=self.queue_name),
                detail=f"queue={self.queue_name} dequeueCount={dequeue_count}",
            )
        except Exception:
            if dequeue_count >= max_dequeue:
                self._to_poison(message, f"failed {dequeue_count} times (maxDequeueCount {max_dequeue})")
            else:
                self._release(message)
            return
        self._delete(message)

    def _release(self, message: QueueMessage) -> None:
        try:
            self.client.update_message(
                message, visibility_timeout=int(self._options.visibility_timeout_seconds)
            )
        except ResourceNotFoundError:
            log.warning(
                "message %s on '%s' vanished before it could be released", message.id, self.queue_name
            )

    def _delete(self, message: QueueMessage) -> None:
        try:
            self.client.delete_message(message)
        except ResourceNotFoundError:
            log.warning("message %s on '%s' vanished before it could be deleted", message.id, self.queue_name)

    def _to_poison(self, message: QueueMessage, reason: str) -> None:
        _ensure_queue(self.poison_client)
        self.poison_client.send_message(message.content)
        self._delete(message)
        log.warning(
            "Message %s has reached MaxDequeueCount or could not be processed (%s). Moving it to queue '%s'.",
            message.id,
            reason,
            f"{self.queue_name}-poison",
        )


class QueueTriggers:
    """All queue-trigger listeners of a host."""

    def __init__(self, host: FunctionHost, options: QueueOptions) -> None:
        self.listeners = [
            QueueTriggerListener(host, fn, options) for fn in host.index.of_type("queueTrigger")
        ]

    def start(self) -> None:
        for listener in self.listeners:
            listener.start()

    def stop(self) -> None:
        for listener in self.listeners:
            listener.request_stop()
        for listener in self.listeners:
            listener.stop()

    def idle(self) -> bool:
        """No listener is processing and every trigger queue is empty (invisible messages count as work)."""
        for listener in self.listeners:
            if listener.busy:
                return False
            properties = listener.client.get_queue_properties()
            if properties.approximate_message_count:
                return False
        return not any(listener.busy for listener in self.listeners)
