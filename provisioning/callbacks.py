"""Callback URL policy: where the app may POST a finished request's status document.

A callback URL comes from the caller, so without a policy the app would be an open proxy into its own network
(SSRF). Two checks share one rule set:

* ``CallbackPolicy.check_url`` runs when a request is validated: scheme, allowed host pattern, and literal IP
  addresses. It never touches DNS, so validation stays fast and deterministic.
* ``CallbackPolicy.check_resolved`` runs right before the POST (``provisioning.notify``): it resolves the host
  and refuses the URL if any address is private, loopback, link-local, unspecified, multicast or not global.
  An allowed host name could point at an internal address, and DNS can change between validation and delivery.

Callback URLs are secrets (Logic Apps signs them in the query string, and their path names the flow): logs
and delivery details show only their origin (``origin_of``).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from provisioning.settings import Settings, get_settings, is_loopback_host

# Logic Apps callback URLs are a few hundred characters; anything far longer is not a callback URL.
MAX_CALLBACK_URL_LENGTH = 2048

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]


class CallbackUrlError(ValueError):
    """The callback URL breaks the policy; the message says why and never contains the URL's query."""


def redact_url(url: str) -> str:
    """``url`` without user info, query and fragment, safe for logs and error messages."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return "<invalid url>"
    if not parts.scheme or not host:
        return "<invalid url>"
    shown_host = f"[{host}]" if ":" in host else host
    netloc = f"{shown_host}:{port}" if port is not None else shown_host
    return f"{parts.scheme}://{netloc}{parts.path}"


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: what logs show of a callback URL (its path names the flow too)."""
    scheme, _, rest = redact_url(url).partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}" if rest else scheme


def host_matches(host: str, patterns: Sequence[str]) -> bool:
    """True when ``host`` equals a pattern or, for ``*.suffix`` patterns, is a subdomain of ``suffix``."""
    host = host.lower().rstrip(".")
    for pattern in patterns:
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) and len(host) > len(pattern) - 1:
                return True
        elif host == pattern:
            return True
    return False


def _parse_ip(host: str) -> IPAddress | None:
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    # ::ffff:10.0.0.1 reaches 10.0.0.1: judge the IPv4 address it maps to.
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _refusal_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` must not receive a callback, or None when it is a public unicast address."""
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_private:
        return "a private address"
    if not ip.is_global:
        return "a reserved (non-global) address"
    return None


@dataclass(frozen=True)
class CallbackPolicy:
    allowed_hosts: tuple[str, ...]
    allow_loopback: bool = False

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> CallbackPolicy:
        settings = settings or get_settings()
        return cls(settings.callback_allowed_hosts, settings.callback_allow_loopback)

    def check_url(self, url: str) -> str:
        """Return ``url`` unchanged if the policy accepts it, else raise ``CallbackUrlError``."""
        if len(url) > MAX_CALLBACK_URL_LENGTH:
            raise CallbackUrlError(f"must be at most {MAX_CALLBACK_URL_LENGTH} characters")
        try:
            parts = urlsplit(url)
            host = parts.hostname
            _ = parts.port  # raises on a non-numeric or out-of-range port
        except ValueError:
            raise CallbackUrlError("must be an absolute https URL") from None
        if parts.scheme.lower() not in ("https", "http") or not host:
            raise CallbackUrlError("must be an absolute https URL")
        if parts.username is not None or parts.password is not None:
            raise CallbackUrlError("must not contain user name or password")
        ip = _parse_ip(host)
        if is_loopback_host(host) or (ip is not None and ip.is_loopback):
            if not self.allow_loopback:
                raise CallbackUrlError(
                    "must not point at a loopback address (set CALLBACK_ALLOW_LOOPBACK for dev)"
                )
            return url  # dev only: any scheme of the two, any loopback host, no allow-list
        if parts.scheme.lower() != "https":
            raise CallbackUrlError("must use https")
        if ip is not None:
            reason = _refusal_reason(ip)
            if reason is not None:
                raise CallbackUrlError(f"must not point at {reason}")
        if not host_matches(host, self.allowed_hosts):
            raise CallbackUrlError(
                f"host {host!r} is not allowed; allowed hosts are {', '.join(self.allowed_hosts) or '(none)'}"
            )
        return url

    def check_address(self, address: str) -> None:
        """Raise ``CallbackUrlError`` unless a resolved ``address`` may receive a callback."""
        ip = _parse_ip(address)
        if ip is None:
            raise CallbackUrlError(f"resolved to something that is not an IP address: {address!r}")
        if ip.is_loopback and self.allow_loopback:
            return
        reason = _refusal_reason(ip)
        if reason is not None:
            raise CallbackUrlError(f"host resolves to {reason}")

    def check_resolved(self, url: str, resolver: Resolver | None = None) -> list[str]:
        """Run ``check_url``, resolve the host and check every address; return the addresses.

        Call it right before delivering: a host on the allow-list may still resolve to an internal address.
        """
        self.check_url(url)
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        addresses = list((resolver or _resolve)(host, port))
        if not addresses:
            raise CallbackUrlError("host does not resolve to any address")
        for address in addresses:
            self.check_address(address)
        return addresses


def _resolve(host: str, port: int) -> list[str]:
    try:
        infos: list[tuple[Any, ...]] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as err:
        raise CallbackUrlError(f"host cannot be resolved ({err.__class__.__name__})") from None
    return sorted({str(info[4][0]) for info in infos})
