"""App Service managed identity endpoint (the protocol azure-identity/MSAL speak) and bearer-token checks.

Token lifetimes use real time, not the simulator clock: MSAL computes ``expires_in`` from ``expires_on`` and
the real ``time.time()``: a virtual clock set in the past would make every token look expired to the client.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Callable
from urllib.parse import urlsplit

from graph_simulator.state import IssuedToken, Store
from graph_simulator.wire import GraphApiError, Request, Response

# Environment variables that make DefaultAzureCredential pick another credential than the managed identity
# endpoint the simulator serves (a developer's shell may have them): clear them before using the simulator.
FOREIGN_CREDENTIAL_VARIABLES = (
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_USERNAME",
    "AZURE_FEDERATED_TOKEN_FILE",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "IMDS_ENDPOINT",
)
API_VERSION = "2019-08-01"
GRAPH_RESOURCE = "https://graph.microsoft.com"
TENANT_ID = "72f988bf-0000-4000-8000-00000000c0de"
SYSTEM_ASSIGNED_CLIENT_ID = "5ad1f0c2-6f6b-4d1e-9b0a-5157e3a551ed"
APP_ROLES = ["Community.ReadWrite.All", "User.Read.All", "GroupMember.ReadWrite.All"]
_WWW_AUTHENTICATE = (
    'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
    'client_id="00000003-0000-0000-c000-000000000000"'
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _identity_error(status: int, message: str) -> Response:
    # App Service's endpoint answers errors as {"statusCode", "message"} (what MSAL reads).
    return Response.json(status, {"statusCode": status, "message": message}, content_type="application/json")


class TokenService:
    def __init__(
        self, store: Store, identity_header: str, origin: Callable[[], str], lifetime_seconds: int = 24 * 3600
    ) -> None:
        self._store = store
        self.identity_header = identity_header
        self._origin = origin
        self._lifetime = lifetime_seconds
        self._signing_key = secrets.token_bytes(32)

    def accepted_resources(self) -> set[str]:
        parts = urlsplit(self._origin())
        return {GRAPH_RESOURCE, self._origin(), f"{parts.scheme}://localhost:{parts.port}"}

    def token_endpoint(self, request: Request) -> Response:
        """``GET /msi/token?api-version=2019-08-01&resource=...`` with ``X-IDENTITY-HEADER``."""
        supplied = request.header("X-IDENTITY-HEADER")
        if supplied is None or not hmac.compare_digest(supplied, self.identity_header):
            return _identity_error(
                401, "The X-IDENTITY-HEADER header is missing or does not match IDENTITY_HEADER."
            )
        if request.query.get("api-version") != API_VERSION:
            return _identity_error(400, f"api-version must be {API_VERSION}.")
        resource = (request.query.get("resource") or "").rstrip("/")
        if resource not in self.accepted_resources():
            return _identity_error(
                400, f"Unsupported resource {resource!r}: use {GRAPH_RESOURCE} or the simulator's own origin."
            )
        client_id = (
            request.query.get("client_id") or request.query.get("object_id") or request.query.get("mi_res_id")
        )
        issued = self._issue(resource, client_id)
        return Response.json(
            200,
            {
                "access_token": issued.token,
                "expires_on": str(issued.expires_on),
                "resource": request.query["resource"],
                "token_type": "Bearer",
                "client_id": client_id or SYSTEM_ASSIGNED_CLIENT_ID,
            },
            content_type="application/json",
        )

    def _issue(self, resource: str, client_id: str | None) -> IssuedToken:
        now = int(time.time())
        claims = {
            "aud": resource,
            "iss": f"https://sts.windows.net/{TENANT_ID}/",
            "iat": now,
            "nbf": now,
            "exp": now + self._lifetime,
            "appid": client_id or SYSTEM_ASSIGNED_CLIENT_ID,
            "idtyp": "app",
            "oid": str(uuid.uuid4()),
            "roles": APP_ROLES,
            "tid": TENANT_ID,
        }
        header = _b64(json.dumps({"typ": "JWT", "alg": "HS256"}).encode())
        payload = _b64(json.dumps(claims).encode())
        signature = _b64(hmac.new(self._signing_key, f"{header}.{payload}".encode(), hashlib.sha256).digest())
        issued = IssuedToken(f"{header}.{payload}.{signature}", resource, client_id, now + self._lifetime)
        with self._store.lock:
            self._store.tokens[issued.token] = issued
        return issued

    def authenticate(self, request: Request) -> IssuedToken:
        """The token of a Graph request, or Graph's 401 ``InvalidAuthenticationToken``."""
        authorization = request.header("Authorization") or ""
        scheme, _, token = authorization.partition(" ")
        if not token.strip() or scheme.lower() != "bearer":
            raise self._unauthorized("Access token is empty.")
        with self._store.lock:
            issued = self._store.tokens.get(token.strip())
        if issued is None:
            raise self._unauthorized("Access token validation failure. Invalid audience.")
        if issued.expires_on <= time.time():
            raise self._unauthorized("Lifetime validation failed, the token is expired.")
        return issued

    @staticmethod
    def _unauthorized(message: str) -> GraphApiError:
        return GraphApiError(
            401, "InvalidAuthenticationToken", message, headers={"WWW-Authenticate": _WWW_AUTHENTICATE}
        )
