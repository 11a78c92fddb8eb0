"""Threaded HTTP server: HTTP triggers under the route prefix, the durable management API under
`/runtime/webhooks/durabletask/` (public URLs) and `/durabletask/` (the client's rpcBaseUrl)."""

from __future__ import annotations

import json
import logging
import math
import re
import threading
from collections.abc import Collection, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from devhost import rpc
from devhost.management import ApiResponse, ManagementApi
from devhost.ports import PortInUseError, address_in_use
from devhost.worker import HTTP_REASON

if TYPE_CHECKING:
    from devhost.host import FunctionHost

log = logging.getLogger("devhost")

_WEBHOOK_PREFIX = "/runtime/webhooks/durabletask/"
_RPC_PREFIX = "/durabletask/"


class DevHostHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    # Durable clients and test suites open many short connections at once.
    request_queue_size = 128

    def __init__(self, host: FunctionHost, management: ManagementApi, address: tuple[str, int]) -> None:
        self.function_host = host
        self.management = management
        try:
            super().__init__(address, _Handler)
        except OSError as exc:
            if address_in_use(exc):
                raise PortInUseError(address[1], what="the app's HTTP port", flag="--port") from None
            raise
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start_background(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, name="devhost-http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    server: DevHostHttpServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, a kept-alive client (Power Automate, the durable
    # client's aiohttp session) waits ~40 ms for a delayed ACK on every request.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_OPTIONS(self) -> None:
        self._dispatch()

    def log_message(self, format: str, *args: Any) -> None:
        # Invocations are logged by the host; an access log would repeat them (with query strings).
        return

    def _dispatch(self) -> None:
        host = self.server.function_host
        split = urlsplit(self.path)
        query = parse_qs(split.query, keep_blank_values=True)
        try:
            body = self._read_body()
        except ValueError:
            self.close_connection = True
            self._send(ApiResponse(400))
            return
        headers = dict(self.headers.items())
        request_url = f"http://{self.headers.get('Host') or f'127.0.0.1:{self.server.port}'}{self.path}"
        path = split.path
        try:
            for prefix in (_WEBHOOK_PREFIX, _RPC_PREFIX):
                if path.lower().startswith(prefix):
                    # The public webhook needs the system key under --enforce-keys; the RPC path never does.
                    if prefix == _WEBHOOK_PREFIX and not host.key_accepted(
                        "ADMIN", _presented_key(headers, query)
                    ):
                        self._send(ApiResponse(401))
                        return
                    self._send(
                        self.server.management.handle(
                            self.command, path[len(prefix) :], query, headers, body, request_url
                        )
                    )
                    return
            self._send(self._http_trigger(path, query, headers, body, request_url))
        except Exception:
            log.exception("request %s %s failed in the dev host", self.command, path)
            self._send(ApiResponse(500))

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    # Trailer headers end with an empty line.
                    while self.rfile.readline().strip():
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        return self.rfile.read(length) if length else b""

    def _http_trigger(
        self, path: str, query: dict[str, list[str]], headers: dict[str, str], body: bytes, request_url: str
    ) -> ApiResponse:
        host = self.server.function_host
        prefix = f"/{host.route_prefix}" if host.route_prefix else ""
        if prefix and not (path.lower() == prefix.lower() or path.lower().startswith(prefix.lower() + "/")):
            return ApiResponse(404)
        matched = host.match_http(self.command, path[len(prefix) :])
        if matched is None:
            return ApiResponse(404)
        if not isinstance(matched, tuple):
            return method_not_allowed(self.command, path, matched.allowed)
        fn, route_params = matched
        if not host.key_accepted(fn.auth_level, _presented_key(headers, query), fn.info.name):
            return ApiResponse(401)
        # As the host builds it (GrpcMessageConversionExtensions.ToRpcHttp): header names lower-cased, and the
        # body as bytes, because the Python worker asks for raw body bytes.
        request = rpc.RpcHttp(
            method=self.command,
            url=request_url,
            headers={name.lower(): value for name, value in headers.items()},
            body=rpc.TypedData(bytes=body),
            params=route_params,
            # ASP.NET's query collection joins repeated keys with ','.
            query={k: ",".join(v) for k, v in query.items()},
        )
        try:
            result = host.invoke(
                fn.info, rpc.TypedData(http=request), reason=HTTP_REASON, detail=f"{self.command} {path}"
            )
        except Exception:
            return ApiResponse(500)
        response = _to_response(result)
        if host.retry_after_speed != 1:
            response.headers = scale_retry_after(response.headers, host.retry_after_speed)
        return response

    def _send(self, response: ApiResponse) -> None:
        self.send_response(
            response.status,
            HTTPStatus(response.status).phrase if response.status in HTTPStatus._value2member_map_ else "",
        )
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)


def _presented_key(headers: Mapping[str, str], query: Mapping[str, list[str]]) -> str | None:
    # As the host's AuthenticationLevelHandler: the header, when present (even empty), hides `code`.
    for name, value in headers.items():
        if name.lower() == "x-functions-key":
            return value
    codes = query.get("code")
    return codes[0] if codes else None


def method_not_allowed(method: str, path: str, allowed: Collection[str]) -> ApiResponse:
    """The dev host's answer when routes match the path but none takes the method: 405, `Allow`, and an RFC
    9457 problem listing the methods. The Functions host answers an empty 404 there (the method is a route
    constraint: no route matches), so this is a local convenience the app cannot rely on (docs/devhost.md)."""
    methods = sorted(allowed)
    body = {
        "type": "about:blank",
        "title": "Method Not Allowed",
        "status": 405,
        "detail": f"{path} does not take {method}; it takes {', '.join(methods)}.",
        "code": "MethodNotAllowed",
        "allowedMethods": methods,
    }
    headers = {
        "Allow": ", ".join(methods),
        "Content-Type": "application/problem+json; charset=utf-8",
        "Cache-Control": "no-store",
    }
    return ApiResponse(405, json.dumps(body).encode(), headers)


def scale_retry_after(headers: Mapping[str, str], speed: float) -> dict[str, str]:
    """`Retry-After` in caller seconds under a clock `speed` times faster than real time: delay-seconds
    divided by `speed`, rounded up, at least 1 unless the app said 0 (the header takes whole seconds only,
    RFC 9110 section 10.2.3). An HTTP-date, or anything that is not delay-seconds, is left as it is."""
    scaled = dict(headers)
    for name, value in headers.items():
        if name.lower() != "retry-after" or not re.fullmatch(r"[0-9]+", value.strip()):
            continue
        seconds = int(value.strip())
        scaled[name] = str(max(1, math.ceil(seconds / speed)) if seconds else 0)
    return scaled


def _to_response(result: rpc.TypedData | None) -> ApiResponse:
    """What the host answers for the worker's return value (encoded by `HttpResponseConverter`): an RpcHttp
    as it is, a string as a text body, nothing as 204 (azure-functions-python-worker issue #74)."""
    kind = result.WhichOneof("data") if result is not None else None
    if kind is None:
        return ApiResponse(204)
    assert result is not None
    if kind == "http":
        response = result.http
        body = response.body.bytes if response.body.WhichOneof("data") == "bytes" else b""
        return ApiResponse(int(response.status_code), body or b"", dict(response.headers))
    if kind == "string":
        return ApiResponse(200, result.string.encode("utf-8"), {"Content-Type": "text/plain; charset=utf-8"})
    raise TypeError(f"an HTTP function answered {kind}; expected func.HttpResponse or str")
