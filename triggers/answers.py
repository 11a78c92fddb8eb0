"""HTTP answers shared by the HTTP blueprints: ``HttpAnswer`` to ``func.HttpResponse``, problems, 503s, and
the connector gateway's URL prefix that the URLs of an answer (``Location``, ``statusUri``, ``nextLink``) are
built on when the request came through a Power Platform connector."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import azure.functions as func

from provisioning.callbacks import redact_url
from provisioning.logs import get_logger
from provisioning.problems import PROBLEM_CONTENT_TYPE, ProblemCode, problem
from provisioning.status import HttpAnswer

logger = get_logger(__name__)

# Retry-After of a 503 (start or cancel not delivered); short because that is usually a storage hiccup.
UNAVAILABLE_RETRY_AFTER_SECONDS = 5

# The Power Platform connector gateway (API Hub) sends each call of a connection with the connection's URL
# prefix, https://<runtime host>/apim/<api name>/<connection id>; the gateway URL of an operation is that
# prefix followed by the operation's path without the basePath (docs/api.md, "Status URLs through a custom
# connector"). A poll of such a URL goes through the connection again, which adds its credentials; a poll of
# the backend URL carries none. Any client can send the header, so it is taken only when it has exactly that
# shape on a gateway host: otherwise a caller could point the Location of its own answers anywhere.
GATEWAY_PREFIX_HEADER = "X-MS-APIM-Referrer-Prefix"
# Runtime hosts of connections: azure-apihub.net (connection runtime URLs, and the header as captured from
# the gateway), azure-apim.net (older runtime URLs), azure-apihub.us (US Government clouds).
GATEWAY_HOST_SUFFIXES = (".azure-apihub.net", ".azure-apim.net", ".azure-apihub.us")
MAX_GATEWAY_PREFIX_LENGTH = 512
_GATEWAY_HOST = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]+")
_GATEWAY_PATH = re.compile(r"/apim/[A-Za-z0-9][A-Za-z0-9._-]{0,127}/[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def respond(answer: HttpAnswer) -> func.HttpResponse:
    return func.HttpResponse(
        body=answer.body_bytes(),
        status_code=answer.status_code,
        headers=answer.headers,
        mimetype=answer.content_type,
        charset="utf-8",
    )


def problem_answer(body: dict[str, Any]) -> HttpAnswer:
    return HttpAnswer(body["status"], body, {"Cache-Control": "no-store"}, PROBLEM_CONTENT_TYPE)


def retry_later(detail: str) -> HttpAnswer:
    answer = problem_answer(problem(ProblemCode.SERVICE_UNAVAILABLE, detail))
    answer.headers["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER_SECONDS)
    return answer


def gateway_prefix(headers: Mapping[str, str]) -> str | None:
    """The connection's gateway URL prefix from ``X-MS-APIM-Referrer-Prefix``, or None when the header is
    absent or not exactly ``https://<host under a gateway suffix>/apim/<api>/<connection>`` (one trailing
    slash allowed; no port, user info, query, fragment, escapes or dot segments)."""
    raw = headers.get(GATEWAY_PREFIX_HEADER)
    return None if raw is None else _checked_gateway_prefix(raw.strip())


@functools.lru_cache(maxsize=256)
def _checked_gateway_prefix(value: str) -> str | None:
    # Cached: every URL of an answer asks (a batch page builds 1,000), and a refused value is logged once.
    prefix = _valid_gateway_prefix(value) if len(value) <= MAX_GATEWAY_PREFIX_LENGTH else None
    if prefix is None:
        # Caller-controlled text: only its redacted form is logged (no user info, query or fragment).
        logger.warning(
            "ignored a %s header that is not a connector gateway prefix: %r",
            GATEWAY_PREFIX_HEADER,
            redact_url(value[:200]),
        )
    return prefix


def _valid_gateway_prefix(value: str) -> str | None:
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    if not value.isprintable() or any(char in value for char in " ?#\\"):
        return None  # urlsplit would quietly drop tabs and line breaks
    host = parts.netloc.lower()  # a port or user info makes netloc differ from a plain host name
    if parts.scheme != "https" or not _GATEWAY_HOST.fullmatch(host):
        return None
    if not any(host.endswith(suffix) for suffix in GATEWAY_HOST_SUFFIXES):
        return None
    path = parts.path.removesuffix("/")
    return f"https://{host}{path}" if _GATEWAY_PATH.fullmatch(path) else None
