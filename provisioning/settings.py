"""Every app setting the code reads, parsed in one typed place.

Settings are read lazily (``get_settings()``), never at import time, so indexing the function app does not
fail on a bad value and tests can change the environment between cases (``get_settings.cache_clear()``).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from provisioning.logs import get_logger

logger = get_logger(__name__)

DEFAULT_GRAPH_BASE_URL = "https://graph.microsoft.com/v1.0"
MIN_STATUS_POLL_INTERVAL_SECONDS = 30
# Hosts Power Automate, Logic Apps and Power Platform use for callback (webhook) URLs. A leading "*." matches
# any subdomain (and only subdomains).
DEFAULT_CALLBACK_ALLOWED_HOSTS: tuple[str, ...] = (
    "*.logic.azure.com",
    "*.azure-apim.net",
    "*.powerplatform.com",
    "*.api.powerplatform.com",
    "*.flow.microsoft.com",
    "*.powerautomate.com",
)


class SettingsError(ValueError):
    """An app setting has a value the app cannot use; the message names the setting."""


@dataclass(frozen=True)
class Settings:
    graph_base_url: str = DEFAULT_GRAPH_BASE_URL
    # Client id of the user-assigned managed identity; None selects the system-assigned one (or dev
    # credentials).
    azure_client_id: str | None = None
    graph_connect_timeout_seconds: float = 5.0
    graph_read_timeout_seconds: float = 30.0
    status_poll_interval_seconds: int = 30
    provisioning_timeout_minutes: int = 60
    # The app-wide budget of Viva Engage requests (provisioning/budget.py): Graph's limit per app and window.
    graph_budget_requests: int = 10
    graph_budget_window_seconds: int = 30
    provisioning_queue: str = "community-requests"
    results_queue: str = "community-results"
    callback_allowed_hosts: tuple[str, ...] = DEFAULT_CALLBACK_ALLOWED_HOSTS
    callback_allow_loopback: bool = False
    # The API's public base URL (e.g. behind API Management or Front Door), used for status URLs; None uses
    # the scheme and host of each incoming request.
    public_base_url: str | None = None

    @classmethod
    def from_mapping(cls, env: Mapping[str, str]) -> Settings:
        """Parse settings from an environment-like mapping; unset or empty values take the defaults."""

        def raw(name: str) -> str | None:
            value = env.get(name)
            if value is None or not value.strip():
                return None
            return value.strip()

        defaults = cls()
        poll_interval = _parse_int(
            "STATUS_POLL_INTERVAL_SECONDS",
            raw("STATUS_POLL_INTERVAL_SECONDS"),
            defaults.status_poll_interval_seconds,
        )
        if poll_interval < MIN_STATUS_POLL_INTERVAL_SECONDS:
            # Graph asks callers to wait more than 30 s between status checks; a shorter interval only burns
            # the Viva Engage rate limit (10 requests per 30 s per app).
            logger.warning(
                "STATUS_POLL_INTERVAL_SECONDS=%s is below Graph's minimum of %s s; using %s s",
                poll_interval,
                MIN_STATUS_POLL_INTERVAL_SECONDS,
                MIN_STATUS_POLL_INTERVAL_SECONDS,
            )
            poll_interval = MIN_STATUS_POLL_INTERVAL_SECONDS
        hosts_raw = raw("CALLBACK_ALLOWED_HOSTS")
        return cls(
            graph_base_url=validate_graph_base_url(raw("GRAPH_BASE_URL") or defaults.graph_base_url),
            azure_client_id=raw("AZURE_CLIENT_ID"),
            graph_connect_timeout_seconds=_parse_positive_float(
                "GRAPH_CONNECT_TIMEOUT_SECONDS",
                raw("GRAPH_CONNECT_TIMEOUT_SECONDS"),
                defaults.graph_connect_timeout_seconds,
            ),
            graph_read_timeout_seconds=_parse_positive_float(
                "GRAPH_READ_TIMEOUT_SECONDS",
                raw("GRAPH_READ_TIMEOUT_SECONDS"),
                defaults.graph_read_timeout_seconds,
            ),
            status_poll_interval_seconds=poll_interval,
            provisioning_timeout_minutes=_parse_int(
                "PROVISIONING_TIMEOUT_MINUTES",
                raw("PROVISIONING_TIMEOUT_MINUTES"),
                defaults.provisioning_timeout_minutes,
                minimum=1,
            ),
            graph_budget_requests=_parse_int(
                "GRAPH_BUDGET_REQUESTS",
                raw("GRAPH_BUDGET_REQUESTS"),
                defaults.graph_budget_requests,
                minimum=1,
            ),
            graph_budget_window_seconds=_parse_int(
                "GRAPH_BUDGET_WINDOW_SECONDS",
                raw("GRAPH_BUDGET_WINDOW_SECONDS"),
                defaults.graph_budget_window_seconds,
                minimum=1,
            ),
            provisioning_queue=raw("PROVISIONING_QUEUE") or defaults.provisioning_queue,
            results_queue=raw("RESULTS_QUEUE") or defaults.results_queue,
            callback_allowed_hosts=(
                _parse_host_list("CALLBACK_ALLOWED_HOSTS", hosts_raw)
                if hosts_raw is not None
                else defaults.callback_allowed_hosts
            ),
            callback_allow_loopback=_parse_bool(
                "CALLBACK_ALLOW_LOOPBACK", raw("CALLBACK_ALLOW_LOOPBACK"), defaults.callback_allow_loopback
            ),
            public_base_url=_parse_public_base_url(raw("PUBLIC_BASE_URL")),
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, parsed from the environment on first use."""
    return Settings.from_mapping(os.environ)


def is_loopback_host(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def validate_graph_base_url(url: str) -> str:
    """Return the Graph base URL without a trailing slash, or raise naming GRAPH_BASE_URL.

    Plain http is accepted only for loopback hosts (the Graph simulator): the bearer token must never travel
    unencrypted over a network.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise SettingsError(f"GRAPH_BASE_URL must be an absolute https URL, got {url!r}")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise SettingsError(
            f"GRAPH_BASE_URL may use plain http only for a loopback host (the Graph simulator), got {url!r}"
        )
    if parts.query or parts.fragment:
        raise SettingsError(f"GRAPH_BASE_URL must not carry a query or fragment, got {url!r}")
    return url.strip().rstrip("/")


def _parse_public_base_url(value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise SettingsError(f"PUBLIC_BASE_URL must be an absolute https URL, got {value!r}")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise SettingsError(f"PUBLIC_BASE_URL may use plain http only for a loopback host, got {value!r}")
    if parts.query or parts.fragment:
        raise SettingsError(f"PUBLIC_BASE_URL must not carry a query or fragment, got {value!r}")
    return value.rstrip("/")


def _parse_int(name: str, value: str | None, default: int, *, minimum: int | None = None) -> int:
    if value is None:
        return default
    try:
        parsed = int(value)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {value!r}") from None
    if minimum is not None and parsed < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {parsed}")
    return parsed


def _parse_positive_float(name: str, value: str | None, default: float) -> float:
    if value is None:
        return default
    try:
        parsed = float(value)
    except ValueError:
        raise SettingsError(f"{name} must be a number of seconds, got {value!r}") from None
    if not parsed > 0:
        raise SettingsError(f"{name} must be greater than 0, got {value!r}")
    return parsed


def _parse_bool(name: str, value: str | None, default: bool) -> bool:
    if value is None:
        return default
    lowered = value.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise SettingsError(f"{name} must be true or false, got {value!r}")


def _parse_host_list(name: str, value: str) -> tuple[str, ...]:
    hosts = tuple(host.strip().lower() for host in value.split(",") if host.strip())
    for host in hosts:
        bare = host.removeprefix("*.")
        if not bare or "/" in bare or ":" in bare or "*" in bare:
            raise SettingsError(
                f"{name} holds host names or *.suffix patterns separated by commas, got {host!r}"
            )
    return hosts
