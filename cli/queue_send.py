"""`vecp queue-send`: the queue path tried as easily as curl.

Puts one request (or a batch: a body with ``items``) on the provisioning queue the way a queue sender does,
JSON with a ``requestId``, base64 text as host.json's ``messageEncoding`` says, and with ``--wait`` reads the
one result message carrying that ``requestId`` from the results queue (docs/api.md, Queue intake).

The results queue is shared with every other sender, so nothing else is taken from it: the queue is peeked
first, messages are only received once ours is among them (or when more are queued than one peek shows), only
ours is deleted, and every other message received on the way is made visible again at once.

azure-storage-queue (requirements-dev.txt) is imported only by this command.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from cli.api import CliError, ExitCode
from cli.body import add_body_options, positive_seconds, request_body

if TYPE_CHECKING:
    from azure.storage.queue import QueueClient

    from cli.app import Context

STORAGE_VARIABLE = "AzureWebJobsStorage"
QUEUE_VARIABLE = "PROVISIONING_QUEUE"
RESULTS_VARIABLE = "RESULTS_QUEUE"
DEFAULT_QUEUE = "community-requests"
DEFAULT_RESULTS_QUEUE = "community-results"
DEVELOPMENT_STORAGE_SHORTCUT = "UseDevelopmentStorage=true"
# What UseDevelopmentStorage=true stands for: Azurite's well-known account on its default ports. The key is
# public (https://learn.microsoft.com/azure/storage/common/storage-use-azurite#http-connection-strings), and
# azure-storage-queue does not expand the shortcut itself.
DEVELOPMENT_STORAGE = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
    "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"
    "TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;"
)
DEFAULT_POLL_SECONDS = 2.0  # the host's maxPollingInterval in host.json
# Storage hands out at most 32 messages per peek or receive.
PAGE_SIZE = 32
# Messages received while looking for ours stay invisible this long if this process dies before it makes them
# visible again (it does so at once otherwise).
HOLD_SECONDS = 30
# A results queue nobody reads can grow long; each poll looks at most this many pages past the front.
MAX_SCANNED_PAGES = 32
# Connection string parts that are secrets (masked in anything printed).
_SECRET_PARTS = ("accountkey", "sharedaccesssignature")


def add_queue_send_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], parents: Sequence[argparse.ArgumentParser]
) -> None:
    parser = commands.add_parser(
        "queue-send",
        parents=list(parents),
        help="put a request on the provisioning queue; --wait reads its result message",
        description=f"Send one request (or a batch: a --file with items) to the provisioning queue, base64 "
        f"encoded. The connection string is ${STORAGE_VARIABLE} (default {DEVELOPMENT_STORAGE_SHORTCUT}: "
        "Azurite on its default ports, as `make run` starts it). Needs azure-storage-queue.",
    )
    add_body_options(parser)
    parser.add_argument(
        "--request-id",
        metavar="ID",
        help="the message's requestId, its idempotency key (default: the file's, else vecp-<new UUID>)",
    )
    parser.add_argument("--queue", metavar="NAME", help=f"default: ${QUEUE_VARIABLE}, else {DEFAULT_QUEUE}")
    parser.add_argument(
        "--results-queue", metavar="NAME", help=f"default: ${RESULTS_VARIABLE}, else {DEFAULT_RESULTS_QUEUE}"
    )
    parser.add_argument(
        "--poll-interval",
        type=positive_seconds,
        default=DEFAULT_POLL_SECONDS,
        metavar="SECONDS",
        help=f"with --wait: seconds between looks at the results queue (default {DEFAULT_POLL_SECONDS:g})",
    )
    parser.set_defaults(handler=command_queue_send)


def connection_string(environ: Mapping[str, str]) -> str:
    value = (environ.get(STORAGE_VARIABLE) or "").strip() or DEVELOPMENT_STORAGE_SHORTCUT
    if value.rstrip(";").lower() == DEVELOPMENT_STORAGE_SHORTCUT.lower():
        return DEVELOPMENT_STORAGE
    return value


def connection_string_secrets(environ: Mapping[str, str]) -> list[str]:
    """The account key or SAS of ``AzureWebJobsStorage``, never to be printed."""
    secrets = []
    for part in (environ.get(STORAGE_VARIABLE) or "").split(";"):
        name, _, value = part.partition("=")
        if name.strip().lower() in _SECRET_PARTS and value.strip():
            secrets.append(value.strip())
    return secrets


def request_id_of(request_id: str, *, batch: bool) -> str:
    """The id the app gives a queue request or batch (provisioning.idempotency.instance_id_for_key and
    batch_workflow.batch_id_for_key with source ``queue``; a test keeps them equal), for `vecp status`."""
    if batch:
        return "batch-" + hashlib.sha256(f"batch\nqueue\n{request_id}".encode()).hexdigest()[:32]
    return "req-" + hashlib.sha256(f"queue\n{request_id}".encode()).hexdigest()[:32]


def encode(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def result_for(content: Any, request_id: str) -> dict[str, Any] | None:
    """The result document in a message's content when it carries ``request_id``, else None (whatever else it
    holds, even text that is not base64 or JSON)."""
    if not isinstance(content, str):
        return None
    try:
        text = base64.b64decode(content, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        text = content  # a sender with messageEncoding none
    try:
        document = json.loads(text)
    except ValueError:
        return None
    if isinstance(document, dict) and document.get("requestId") == request_id:
        return document
    return None


def take_result(client: QueueClient, request_id: str) -> dict[str, Any] | None:
    """Delete and return the result message of ``request_id`` if it is on the queue; leave every other one."""
    from azure.core.exceptions import AzureError, ResourceNotFoundError

    try:
        peeked = client.peek_messages(max_messages=PAGE_SIZE)
    except ResourceNotFoundError:  # the app creates the results queue with its first result
        return None
    position = next(
        (index for index, message in enumerate(peeked) if result_for(message.content, request_id)), None
    )
    if position is None and len(peeked) < PAGE_SIZE:
        return None  # not there: nothing was received, no other message was touched
    # Receiving is the only way to delete; take as few others along as the peek allows (each receive counts
    # toward their dequeue count).
    page_size = PAGE_SIZE if position is None else position + 1
    held = []
    found = None
    try:
        for _ in range(MAX_SCANNED_PAGES):
            page = list(
                client.receive_messages(
                    messages_per_page=page_size, max_messages=page_size, visibility_timeout=HOLD_SECONDS
                )
            )
            for message in page:
                document = result_for(message.content, request_id)
                if document is not None and found is None:
                    client.delete_message(message)
                    found = document
                else:
                    held.append(message)
            if found is not None or not page:
                break
            page_size = PAGE_SIZE
    finally:
        for message in held:
            # Without content only the visibility changes (the SDK re-sends a message's content otherwise).
            with contextlib.suppress(AzureError):
                client.update_message(message.id, pop_receipt=message.pop_receipt, visibility_timeout=0)
    return found


def command_queue_send(args: argparse.Namespace, context: Context) -> int:
    try:
        from azure.core.exceptions import AzureError, ResourceNotFoundError
        from azure.storage.queue import QueueClient
    except ImportError:  # a dev dependency: not there where only requirements.txt was installed
        raise CliError(
            ExitCode.USAGE,
            "queue-send needs azure-storage-queue: pip install azure-storage-queue "
            "(it is in requirements-dev.txt)",
        ) from None
    from cli.app import show_batch, show_request  # cli.app imports this module to build its parser

    body = request_body(args)
    request_id = args.request_id or body.get("requestId") or f"vecp-{uuid.uuid4()}"
    body["requestId"] = request_id
    queue_name = args.queue or context.environ.get(QUEUE_VARIABLE) or DEFAULT_QUEUE
    results_name = args.results_queue or context.environ.get(RESULTS_VARIABLE) or DEFAULT_RESULTS_QUEUE
    connection = connection_string(context.environ)
    is_batch = "items" in body
    app_id = request_id_of(str(request_id), batch=is_batch)
    try:
        requests_queue = QueueClient.from_connection_string(connection, queue_name)
        results_queue = QueueClient.from_connection_string(connection, results_name)
        message = encode(json.dumps(body, ensure_ascii=False))
        try:
            sent = requests_queue.send_message(message)
        except ResourceNotFoundError:  # the trigger's queue is created by the app's first poll, or by us
            requests_queue.create_queue()
            sent = requests_queue.send_message(message)
        context.console.err(f"sent requestId {request_id} to queue {queue_name} ({app_id})")
        if not args.wait:
            context.console.document(
                {"requestId": request_id, "id": app_id, "queue": queue_name, "messageId": sent.id}
            )
            return ExitCode.OK
        result = _wait_for_result(context, results_queue, str(request_id), results_name, args)
    except AzureError as err:
        raise CliError(ExitCode.SERVER, f"storage: {type(err).__name__}: {_first_line(err)}") from None
    if result is None:
        raise CliError(
            ExitCode.TIMEOUT,
            f"no result for requestId {request_id} on {results_name} after {args.timeout:g} s; the request "
            f"goes on (`vecp status {app_id}`)",
        )
    if is_batch:
        return show_batch(context.console, result)
    return show_request(context.console, result)


def _wait_for_result(
    context: Context, client: QueueClient, request_id: str, queue_name: str, args: argparse.Namespace
) -> dict[str, Any] | None:
    clock = context.clock
    deadline = None if args.timeout is None else clock.now() + args.timeout
    try:
        while True:
            result = take_result(client, request_id)
            if result is not None:
                return result
            context.console.progress(
                f"waiting for the result of requestId {request_id} on queue {queue_name}"
            )
            delay = args.poll_interval
            if deadline is not None:
                remaining = deadline - clock.now()
                if remaining <= 0:
                    return None
                delay = min(delay, remaining)
            clock.sleep(delay)
    finally:
        context.console.end_progress()


def _first_line(err: Exception) -> str:
    return (str(err).strip().splitlines() or [""])[0][:300]
