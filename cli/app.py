"""The `vecp` commands: argument parsing, one function per command, exit codes (docs/cli.md)."""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote, urlsplit

import requests

from cli.api import (
    DEFAULT_URL,
    KEY_VARIABLE,
    URL_VARIABLE,
    Answer,
    ApiClient,
    CliError,
    ExitCode,
    api_base,
    batch_exit_code,
    request_exit_code,
    with_query,
)
from cli.body import add_body_options, positive_seconds, read_input, request_body
from cli.output import (
    JSON,
    OUTPUT_FORMATS,
    REQUEST_COLUMNS,
    TABLE,
    Console,
    batch_progress,
    request_progress,
)
from cli.waiting import Clock, RealClock, follow

REQUESTS_PATH = "communities/requests"
BATCHES_PATH = "communities/batches"
BATCH_ID_PREFIX = "batch-"
# A batch holds at most 1,000 items, and GET batches/{id} pages up to 1,000 rows: one read shows them all.
BATCH_PAGE_SIZE = 1000


@dataclass
class Context:
    console: Console
    environ: Mapping[str, str]
    clock: Clock
    url: str
    key: str | None
    session_factory: Callable[[], requests.Session] = requests.Session
    _client: ApiClient | None = field(default=None, init=False)

    @property
    def client(self) -> ApiClient:
        # Built on first use: queue-send needs no URL, so a bad VECP_URL must not stop it.
        if self._client is None:
            self._client = ApiClient(api_base(self.url), self.key, self.session_factory())
        return self._client

    def local_url(self, url: str, path: str) -> str:
        """``url`` (a Location or nextLink) when it is on the app's origin, else ``path`` under the API root
        with ``url``'s query: the key is only ever sent to the origin the user configured."""
        if self.client.same_origin(url):
            return url
        query = urlsplit(url).query
        return self.client.url(path) + (f"?{query}" if query else "")


def main(
    argv: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    clock: Clock | None = None,
    session_factory: Callable[[], requests.Session] = requests.Session,
) -> int:
    """Run one command; returns its exit code. Streams, environment and clock are parameters for tests."""
    environ = os.environ if environ is None else environ
    stdout = sys.stdout if stdout is None else stdout
    stderr = sys.stderr if stderr is None else stderr
    parser = build_parser()
    try:
        with redirect_stdout(stdout), redirect_stderr(stderr):
            args = parser.parse_args(argv)
    except SystemExit as exit_:  # usage errors (2) and --help (0)
        return exit_.code if isinstance(exit_.code, int) else ExitCode.USAGE
    key = environ.get(KEY_VARIABLE) or None
    secrets = [key] if key else []
    secrets += _storage_secrets(environ)
    console = Console(stdout, stderr, args.output, secrets)
    context = Context(
        console,
        environ,
        clock or RealClock(),
        args.url or environ.get(URL_VARIABLE) or DEFAULT_URL,
        key,
        session_factory,
    )
    try:
        return int(args.handler(args, context))
    except CliError as err:
        if console.output == JSON and err.body is not None:
            console.document(err.body)
        console.err(f"error: {err.message}")
        for line in err.lines:
            console.err(line)
        return int(err.exit_code)
    except KeyboardInterrupt:
        console.err("interrupted: what the app had accepted goes on (see `vecp status ID`)")
        return int(ExitCode.INTERRUPTED)
    except BrokenPipeError:  # `vecp list | head`: the reader has what it wanted
        if stdout is sys.stdout:
            # Python flushes stdout again at exit and would raise once more (Python docs: "Note on SIGPIPE").
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return int(ExitCode.OK)


def _storage_secrets(environ: Mapping[str, str]) -> list[str]:
    """The account key of the storage connection string (queue-send), masked like VECP_KEY."""
    from cli.queue_send import connection_string_secrets

    return connection_string_secrets(environ)


# ---------------------------------------------------------------------------------------------- parsing


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vecp",
        description="Client of the Viva Engage Community Provisioner. The API key is read from "
        f"{KEY_VARIABLE} (sent as x-functions-key), the app's address from {URL_VARIABLE} "
        f"(default {DEFAULT_URL}). See docs/cli.md.",
        epilog="exit codes: 0 success, 1 request Failed/Canceled, 2 usage or validation error, 3 not found, "
        "4 unauthorized, 5 conflict, 6 server or connection error, 7 --wait timed out",
    )
    _add_common(parser, top_level=True)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # Accepted after the command too (`vecp list -o json`): SUPPRESS keeps the top-level value when not given.
    common = argparse.ArgumentParser(add_help=False)
    _add_common(common, top_level=False)
    waiting = argparse.ArgumentParser(add_help=False)
    waiting.add_argument(
        "--wait", action="store_true", help="follow the request until it settles, with progress on stderr"
    )
    waiting.add_argument(
        "--timeout",
        type=positive_seconds,
        default=None,
        metavar="SECONDS",
        help="with --wait: give up after this long (exit 7; the request goes on). Default: no limit",
    )

    create = commands.add_parser(
        "create",
        parents=[common, waiting],
        help="start a community request",
        description="POST /api/communities. Flags override the fields of --file.",
    )
    add_body_options(create)
    create.add_argument(
        "--idempotency-key",
        metavar="KEY",
        help="Idempotency-Key header (default: a fresh UUID, so each run is a new request; pass the same key "
        "to retry a run whose outcome you did not see)",
    )
    create.set_defaults(handler=command_create)

    batch = commands.add_parser(
        "batch",
        parents=[common, waiting],
        help="start a batch from a CSV or JSON file",
        description="POST /api/communities/batches with a CSV (text/csv) or JSON file of up to 1,000 items.",
    )
    batch.add_argument("file", metavar="FILE", help="the batch: .csv or .json (- reads stdin)")
    batch.add_argument("--format", choices=("csv", "json"), help="the file's format (default: its suffix)")
    batch.add_argument(
        "--idempotency-key", metavar="KEY", help="Idempotency-Key header (default: a fresh UUID)"
    )
    batch.add_argument(
        "--validate-only", action="store_true", help="check the batch and start nothing (validateOnly=true)"
    )
    batch.set_defaults(handler=command_batch)

    status = commands.add_parser(
        "status",
        parents=[common, waiting],
        help="show a request or a batch",
        description="GET a request (req-…) or a batch (batch-…).",
    )
    status.add_argument("id", metavar="ID", help="request id (req-…) or batch id (batch-…)")
    status.set_defaults(handler=command_status)

    listing = commands.add_parser(
        "list",
        parents=[common],
        help="list requests, newest first",
        description="GET /api/communities/requests with filters (all of them apply together).",
    )
    listing.add_argument(
        "--status",
        action="append",
        metavar="STATUS",
        help="Running, Succeeded, Failed or Canceled (repeat or comma-separate for several)",
    )
    listing.add_argument("--name", metavar="TEXT", help="part of the display name (case-insensitive)")
    listing.add_argument(
        "--created-from", metavar="ISO8601", help="created at or after, e.g. 2026-01-01T00:00:00Z"
    )
    listing.add_argument("--created-to", metavar="ISO8601", help="created at or before")
    listing.add_argument(
        "--top", type=int, metavar="N", help="rows per page, 1 to 500 (the API's default: 50)"
    )
    listing.add_argument("--all", action="store_true", help="follow nextLink to the last page")
    listing.add_argument("--batch-id", metavar="ID", help="only the items of this batch")
    listing.set_defaults(handler=command_list)

    retry = commands.add_parser(
        "retry",
        parents=[common, waiting],
        help="start a Failed or Canceled request (or a batch's unsucceeded items) again",
        description="POST /api/communities/requests/{id}/retry, or batches/{id}/retry for a batch (its items "
        "that did not succeed, as a new batch). A repeated retry answers the same new request or batch.",
    )
    retry.add_argument("id", metavar="ID", help="request id (req-…) or batch id (batch-…)")
    retry.set_defaults(handler=command_retry)

    cancel = commands.add_parser(
        "cancel",
        parents=[common],
        help="cancel a running request or batch",
        description="DELETE a request (req-…) or a batch (batch-…). Cancel stops the workflow, not Graph.",
    )
    cancel.add_argument("id", metavar="ID", help="request id (req-…) or batch id (batch-…)")
    cancel.set_defaults(handler=command_cancel)

    from cli.queue_send import add_queue_send_parser

    add_queue_send_parser(commands, [common, waiting])
    return parser


def _add_common(parser: argparse.ArgumentParser, *, top_level: bool) -> None:
    parser.add_argument(
        "-o",
        "--output",
        choices=OUTPUT_FORMATS,
        default=TABLE if top_level else argparse.SUPPRESS,
        help="json: the API's documents as they are; table: aligned plain text (default)",
    )
    parser.add_argument(
        "--url",
        default=None if top_level else argparse.SUPPRESS,
        help=f"the app's address, with or without /api (default: ${URL_VARIABLE}, else {DEFAULT_URL})",
    )


# ----------------------------------------------------------------------------------------- outcomes


def _document(answer: Answer, expected: Sequence[int]) -> dict[str, Any]:
    """The answer's JSON document when its status is one of ``expected``; anything else ends the command."""
    if answer.status not in expected or answer.is_problem or not isinstance(answer.body, dict):
        raise answer.problem_error()
    return answer.body


def request_outcome(context: Context, answer: Answer) -> int:
    """Print a request's document (status answers: 202 running, 200, 422 Failed, 409 Canceled)."""
    return show_request(context.console, _document(answer, (200, 202, 409, 422)))


def show_request(console: Console, document: dict[str, Any]) -> ExitCode:
    """Print a request's status document; its exit code, with the error on stderr unless it succeeded."""
    console.document(document)
    code = request_exit_code(document)
    if code is not ExitCode.OK:
        error = document.get("error") or {}
        field_errors = error.get("errors") or []
        # A Rejected message's text repeats its field errors: those are shown instead, one a line.
        message = "" if field_errors else f": {error.get('message', '')}"
        ended = f"{document.get('id', 'request')} ended {document.get('status')}"
        console.err(f"{ended}: {error.get('code', '?')}{message}")
        for field_error in field_errors:
            console.err(f"  {field_error.get('field', '?')}: {field_error.get('message', '')}")
    return code


def follow_request(context: Context, answer: Answer, timeout: float | None) -> Answer:
    final, timed_out = follow(
        context.client,
        answer,
        next_url=lambda current: follow_location(context, current),
        describe=request_progress,
        console=context.console,
        clock=context.clock,
        timeout=timeout,
    )
    if timed_out:
        _timed_out(context, final, timeout)
    return final


def _timed_out(context: Context, answer: Answer, timeout: float | None) -> None:
    identifier = "?"
    if isinstance(answer.body, dict):
        identifier = answer.body.get("id", "?")
        context.console.document(answer.body)
    raise CliError(
        ExitCode.TIMEOUT,
        f"{identifier} is still running after {timeout:g} s; it goes on: `vecp status {identifier} --wait`",
    )


def batch_url(context: Context, batch_id: str) -> str:
    return context.client.url(f"{BATCHES_PATH}/{quote(batch_id, safe='')}")


def read_batch(context: Context, batch_id: str) -> Answer:
    """The batch document with every item (a page of up to 1,000 rows, then nextLink if there is one)."""
    answer = context.client.request("GET", with_query(batch_url(context, batch_id), top=str(BATCH_PAGE_SIZE)))
    document = _document(answer, (200, 202))  # answer.body itself: the pages below are added to it
    while isinstance(document.get("nextLink"), str):
        path = f"{BATCHES_PATH}/{quote(batch_id, safe='')}"
        more = _document(
            context.client.request("GET", context.local_url(document["nextLink"], path)), (200, 202)
        )
        document["items"] = [*(document.get("items") or []), *(more.get("items") or [])]
        if more.get("nextLink"):
            document["nextLink"] = more["nextLink"]
        else:
            document.pop("nextLink", None)
    return answer


def follow_batch(context: Context, answer: Answer, timeout: float | None) -> Answer:
    """Follow a running batch with a progress bar; then read it once more with all its items."""
    batch_id = str(answer.body.get("id", "")) if isinstance(answer.body, dict) else ""
    path = f"{BATCHES_PATH}/{quote(batch_id, safe='')}"

    def next_url(current: Answer) -> str:
        location = current.headers.get("Location") or context.client.url(path)
        # While waiting only the counts matter, and every row listed costs the app one status read.
        return with_query(context.local_url(location, path), top="1")

    final, timed_out = follow(
        context.client,
        answer,
        next_url=next_url,
        describe=batch_progress,
        console=context.console,
        clock=context.clock,
        timeout=timeout,
    )
    if timed_out:
        _timed_out(context, final, timeout)
    if final.status != 200 or final.is_problem:
        return final
    return read_batch(context, batch_id)


def batch_outcome(context: Context, answer: Answer) -> int:
    return show_batch(context.console, _document(answer, (200, 202)))


def show_batch(console: Console, document: dict[str, Any]) -> ExitCode:
    """Print a batch document; its exit code, with the counts on stderr unless every item succeeded."""
    if "total" not in document:  # a queue batch Rejected before it started
        return show_request(console, document)
    console.document(document)
    code = batch_exit_code(document)
    if code is not ExitCode.OK:
        counts = document.get("counts") or {}
        shown = ", ".join(f"{status} {count}" for status, count in counts.items() if count)
        console.err(f"{document.get('id', 'batch')} ended {document.get('status')} ({shown})")
    return code


# ----------------------------------------------------------------------------------------- commands


@contextmanager
def _same_key_hint(key: str, what: str) -> Iterator[None]:
    """On a server or transport error, tell how to send the same thing again without starting it twice."""
    try:
        yield
    except CliError as err:
        if err.exit_code is ExitCode.SERVER:
            hint = f"  run it again with --idempotency-key {key}: the app then answers the same {what}"
            err.lines.append(hint)
        raise


def command_create(args: argparse.Namespace, context: Context) -> int:
    body = request_body(args)
    key = args.idempotency_key or str(uuid.uuid4())
    with _same_key_hint(key, "request"):
        answer = context.client.request(
            "POST", "communities", json_body=body, headers={"Idempotency-Key": key}
        )
        if answer.status == 202 and args.wait:
            answer = follow_request(context, answer, args.timeout)
    if answer.status == 202 and not args.wait:
        context.console.document(_document(answer, (202,)))
        return ExitCode.OK
    return request_outcome(context, answer)


def command_batch(args: argparse.Namespace, context: Context) -> int:
    data = read_input(args.file)
    batch_format = args.format or {".csv": "csv", ".json": "json"}.get(Path(args.file).suffix.lower())
    if batch_format is None:
        raise CliError(ExitCode.USAGE, f"cannot tell the format of {args.file}: pass --format csv or json")
    content_type = "text/csv; charset=utf-8" if batch_format == "csv" else "application/json"
    key = args.idempotency_key or str(uuid.uuid4())
    params = {"validateOnly": "true"} if args.validate_only else None
    headers = {"Content-Type": content_type, "Idempotency-Key": key}
    with _same_key_hint(key, "batch"):
        answer = context.client.request("POST", BATCHES_PATH, data=data, headers=headers, params=params)
        if args.validate_only:
            context.console.document(_document(answer, (200,)))
            return ExitCode.OK
        if answer.status == 202 and args.wait:
            answer = follow_batch(context, answer, args.timeout)
    if answer.status == 202 and not args.wait:
        context.console.document(_document(answer, (202,)))
        return ExitCode.OK
    return batch_outcome(context, answer)


def command_status(args: argparse.Namespace, context: Context) -> int:
    if args.id.startswith(BATCH_ID_PREFIX):
        answer = read_batch(context, args.id)
        if answer.status == 202 and args.wait:
            answer = follow_batch(context, answer, args.timeout)
        return batch_outcome(context, answer)
    answer = context.client.request("GET", f"{REQUESTS_PATH}/{quote(args.id, safe='')}")
    if answer.status == 202 and args.wait:
        answer = follow_request(context, answer, args.timeout)
    return request_outcome(context, answer)


def command_retry(args: argparse.Namespace, context: Context) -> int:
    is_batch = args.id.startswith(BATCH_ID_PREFIX)
    path = BATCHES_PATH if is_batch else REQUESTS_PATH
    answer = context.client.request("POST", f"{path}/{quote(args.id, safe='')}/retry")
    started = _document(answer, (202,))
    if not args.wait:
        context.console.document(started)
        return batch_exit_code(started) if is_batch else request_exit_code(started)
    if is_batch:
        if started.get("status") != "Running":  # a retry that had already run: its outcome at once
            return batch_outcome(context, read_batch(context, str(started.get("id", ""))))
        return batch_outcome(context, follow_batch(context, answer, args.timeout))
    if started.get("status") != "Running":
        answer = context.client.request("GET", follow_location(context, answer))
    return request_outcome(context, follow_request(context, answer, args.timeout))


def follow_location(context: Context, answer: Answer) -> str:
    """Where a request's 202 answer says to ask next: its Location (statusUri), on the configured origin."""
    body = answer.body if isinstance(answer.body, dict) else {}
    path = f"{REQUESTS_PATH}/{quote(str(body.get('id', '')), safe='')}"
    location = answer.headers.get("Location") or body.get("statusUri")
    return context.local_url(location, path) if location else context.client.url(path)


def command_cancel(args: argparse.Namespace, context: Context) -> int:
    if args.id.startswith(BATCH_ID_PREFIX):
        answer = context.client.request("DELETE", batch_url(context, args.id))
        context.console.document(_document(answer, (202,)))
        context.console.err(f"{args.id}: cancel requested; items in flight get their own cancel")
        return ExitCode.OK
    answer = context.client.request("DELETE", f"{REQUESTS_PATH}/{quote(args.id, safe='')}")
    document = _document(answer, (200, 202))
    context.console.document(document)
    if answer.status == 202:
        context.console.err(f"{args.id}: cancel requested, not taken yet; `vecp status {args.id}` shows when")
    return ExitCode.OK


def command_list(args: argparse.Namespace, context: Context) -> int:
    statuses = [part.strip() for value in args.status or [] for part in value.split(",") if part.strip()]
    params = {
        "status": ",".join(statuses),
        "displayName": args.name or "",
        "createdFrom": args.created_from or "",
        "createdTo": args.created_to or "",
        "batchId": args.batch_id or "",
        "top": "" if args.top is None else str(args.top),
    }
    answer = context.client.request("GET", REQUESTS_PATH, params={k: v for k, v in params.items() if v})
    page = _document(answer, (200,))
    rows = list(page.get("items") or [])
    next_link = page.get("nextLink")
    while args.all and isinstance(next_link, str):
        page = _document(context.client.request("GET", context.local_url(next_link, REQUESTS_PATH)), (200,))
        rows += page.get("items") or []
        next_link = page.get("nextLink")
    _print_rows(context, rows, REQUEST_COLUMNS, next_link if isinstance(next_link, str) else None)
    return ExitCode.OK


def _print_rows(
    context: Context, rows: list[dict[str, Any]], columns: Sequence[tuple[str, str]], next_link: str | None
) -> None:
    if context.console.output == JSON:
        body: dict[str, Any] = {"items": rows}
        if next_link:
            body["nextLink"] = next_link
        context.console.document(body)
    else:
        context.console.rows(rows, columns)
    if next_link:
        context.console.err("more rows follow: add --all, or a larger --top (at most 500)")
