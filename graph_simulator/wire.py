"""Request/response values passed between the HTTP plumbing and the API handlers."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

# What Graph sends on entity responses.
GRAPH_JSON = (
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
)


@dataclass
class Request:
    method: str
    path: str  # percent-decoded
    query: dict[str, str]
    headers: Message
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # named groups of the matched route

    @property
    def version(self) -> str:
        return self.params.get("ver", "v1.0")

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object, or Graph's 400 for anything else."""
        try:
            payload = json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise GraphApiError(
                400,
                "BadRequest",
                "Unable to read JSON request payload. Please ensure Content-Type header is set and "
                "payload is of valid JSON format.",
            ) from None
        if not isinstance(payload, dict):
            raise GraphApiError(400, "BadRequest", "The request body must be a JSON object.")
        return payload


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(
        cls,
        status: int,
        payload: Any,
        headers: Mapping[str, str] | None = None,
        content_type: str = GRAPH_JSON,
    ) -> Response:
        return cls(status, json.dumps(payload).encode(), {"Content-Type": content_type, **(headers or {})})

    @classmethod
    def empty(cls, status: int, headers: Mapping[str, str] | None = None) -> Response:
        return cls(status, b"", dict(headers or {}))


class GraphApiError(Exception):
    """A Graph error answer; rendered as ``{"error": {code, message, innerError}}`` with request ids."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        inner: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.inner = dict(inner or {})
