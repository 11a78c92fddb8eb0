"""HTTP access to the provisioner: base URL, key header, answers, problems and the exit codes they map to."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests

DEFAULT_URL = "http://localhost:7071"
URL_VARIABLE = "VECP_URL"
KEY_VARIABLE = "VECP_KEY"
KEY_HEADER = "x-functions-key"
PROBLEM_CONTENT_TYPE = "application/problem+json"
# Long enough for DELETE of a request, which waits up to ~3 s for the cancel to be taken, and for a batch page
# of 1,000 rows (one status read each).
HTTP_TIMEOUT_SECONDS = 60.0


class ExitCode(IntEnum):
    """What scripts can test; docs/cli.md lists them."""

    OK = 0
    REQUEST_FAILED = 1  # the request (or batch) ended Failed, Canceled or PartiallySucceeded
    USAGE = 2  # bad arguments or input file, or the API refused the input (400, 413, 415)
    NOT_FOUND = 3
    AUTH = 4  # 401/403: no key, or a key the route does not accept
    CONFLICT = 5  # 409: idempotency conflict, not cancelable, not retryable
    SERVER = 6  # 5xx, no answer, or an answer the client does not understand
    TIMEOUT = 7  # --wait gave up before the request settled; the request goes on
    INTERRUPTED = 130  # Ctrl+C (128 + SIGINT, as shells report it)


class CliError(Exception):
    """Ends the command with ``exit_code`` after printing ``message`` (and ``lines``) on stderr."""

    def __init__(
        self, exit_code: ExitCode, message: str, lines: list[str] | None = None, body: Any = None
    ) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.message = message
        self.lines = lines or []
        self.body = body  # a problem body, printed on stdout with --output json


def exit_code_for_status(status: int) -> ExitCode:
    if status in (400, 413, 415, 422):
        return ExitCode.USAGE
    if status in (401, 403):
        return ExitCode.AUTH
    if status == 404:
        return ExitCode.NOT_FOUND
    if status == 409:
        return ExitCode.CONFLICT
    return ExitCode.SERVER


def request_exit_code(document: Mapping[str, Any]) -> ExitCode:
    """0 while running or once Succeeded, 1 for Failed and Canceled; a queue Rejected as the HTTP refusal."""
    status = document.get("status")
    if status in ("Running", "Succeeded"):
        return ExitCode.OK
    if status == "Rejected":
        code = (document.get("error") or {}).get("code")
        return ExitCode.CONFLICT if code == "IdempotencyConflict" else ExitCode.USAGE
    return ExitCode.REQUEST_FAILED


def batch_exit_code(document: Mapping[str, Any]) -> ExitCode:
    """0 while running or once every item Succeeded; 1 for PartiallySucceeded, Failed and Canceled."""
    if document.get("status") in ("Running", "Succeeded"):
        return ExitCode.OK
    if document.get("status") == "Rejected":  # a queue batch
        return request_exit_code(document)
    return ExitCode.REQUEST_FAILED


@dataclass
class Answer:
    status: int
    headers: Mapping[str, str]
    body: Any
    url: str
    content_type: str = ""

    @property
    def is_problem(self) -> bool:
        return self.content_type.split(";")[0].strip().lower() == PROBLEM_CONTENT_TYPE

    def problem_error(self) -> CliError:
        """The error to end with for an answer other than the expected outcome (a problem, a bare 4xx/5xx)."""
        body = self.body if isinstance(self.body, dict) else None
        code = exit_code_for_status(self.status)
        if body is None:
            reason = {401: "unauthorized", 403: "forbidden", 404: "not found"}.get(
                self.status, "unexpected answer"
            )
            hint = f" (set {KEY_VARIABLE} to a host key of the app)" if code is ExitCode.AUTH else ""
            return CliError(code, f"HTTP {self.status} {reason}{hint}")
        title = body.get("title") or "error"
        problem_code = body.get("code")
        head = (
            f"HTTP {self.status} {problem_code}: {title}" if problem_code else f"HTTP {self.status}: {title}"
        )
        lines = [
            f"  {error.get('field', '?')}: {error.get('message', '')}"
            for error in body.get("errors") or []
            if isinstance(error, dict)
        ]
        if not lines and body.get("detail"):
            lines = [f"  {body['detail']}"]
        for state in ("requestStatus", "batchStatus"):
            if state in body:
                lines.append(f"  {state}: {body[state]}")
        return CliError(code, head, lines, body)


def api_base(url: str) -> str:
    """The API root from ``VECP_URL``/``--url``: the app's address with or without the ``/api`` prefix."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CliError(ExitCode.USAGE, f"the URL must be http(s)://host[:port][/path], got {url!r}")
    if parts.query or parts.fragment:
        raise CliError(ExitCode.USAGE, "the URL must not carry a query (pass the key in VECP_KEY)")
    path = parts.path.rstrip("/")
    if not path.endswith("/api"):
        path += "/api"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def with_query(url: str, **params: str) -> str:
    """``url`` with ``params`` set in its query (others kept, e.g. a ``code`` the app put there)."""
    parts = urlsplit(url)
    kept = [pair for pair in parse_qsl(parts.query, keep_blank_values=True) if pair[0] not in params]
    query = urlencode([*kept, *params.items()])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


@dataclass
class ApiClient:
    base: str  # from api_base()
    key: str | None = None
    session: requests.Session = field(default_factory=requests.Session)
    timeout: float = HTTP_TIMEOUT_SECONDS

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}"

    def same_origin(self, url: str) -> bool:
        ours, theirs = urlsplit(self.base), urlsplit(url)
        return (ours.scheme, ours.netloc.lower()) == (theirs.scheme, theirs.netloc.lower())

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """Send ``method`` to ``url`` (absolute, or a path under the API root); no answer ends with 6."""
        target = url if "://" in url else self.url(url)
        sent = dict(headers or {})
        # The key goes in a header (never into a URL, which ends up in logs), and only to the app's own
        # origin: a Location elsewhere (PUBLIC_BASE_URL behind a gateway) is not handed the app's key.
        if self.key and self.same_origin(target):
            sent[KEY_HEADER] = self.key
        if json_body is not None:
            data = json.dumps(json_body, ensure_ascii=False).encode()
            sent.setdefault("Content-Type", "application/json")
        try:
            response = self.session.request(
                method, target, params=params, data=data, headers=sent, timeout=self.timeout
            )
        except requests.RequestException as exc:
            shown = urlunsplit(urlsplit(target)._replace(query="", fragment=""))
            raise CliError(ExitCode.SERVER, f"no answer from {shown}: {_reason(exc)}") from None
        content_type = response.headers.get("Content-Type", "")
        body: Any = None
        if response.content:
            try:
                body = response.json()
            except ValueError:
                body = response.text
        return Answer(response.status_code, response.headers, body, response.url, content_type)


def _reason(exc: requests.RequestException, limit: int = 300) -> str:
    """The cause without the wrapping of urllib3 ("HTTPConnectionPool(...): Max retries exceeded ...")."""
    cause: object = exc.args[0] if exc.args else exc
    cause = getattr(cause, "reason", cause)
    text = f"{type(exc).__name__}: {str(cause).rsplit('): ', 1)[-1]}"
    return text if len(text) <= limit else text[: limit - 3] + "..."
