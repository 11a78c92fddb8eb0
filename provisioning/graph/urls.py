"""Graph URLs: the configured service root, the token scope, and which URLs the bearer token may go to."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

from provisioning.settings import validate_graph_base_url

from .errors import ErrorKind, GraphError

_DEFAULT_PORTS = {"http": 80, "https": 443}
# Path segments that name a Graph service version: a relative URL starting with one is origin-relative.
_GRAPH_VERSIONS = frozenset({"v1.0", "beta"})


def origin_of(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) with default ports made explicit, or None when ``url`` is not absolute http(s)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    try:
        port = parts.port or _DEFAULT_PORTS[scheme]
    except ValueError:  # a non-numeric or out-of-range port
        return None
    return scheme, parts.hostname.lower(), port


# A user segment of a path: /users/{id or UPN} and /users('{UPN}'). UPNs are personal data.
_USER_SEGMENT = re.compile(r"(/users)(?:/[^/]+|\('[^']*'\))", re.IGNORECASE)


def path_for_log(url: str) -> str:
    """Only the path of a URL, with user names and ids left out: query strings (skip tokens, whatever an
    operation URL carries) and user principal names (personal data) never reach the logs."""
    path = urlsplit(url).path or "/"
    return _USER_SEGMENT.sub(r"\1/{user}", unquote(path))


@dataclass(frozen=True)
class GraphEndpoint:
    """The configured Graph service root, e.g. ``https://graph.microsoft.com/v1.0``."""

    base_url: str

    @classmethod
    def parse(cls, base_url: str) -> GraphEndpoint:
        return cls(validate_graph_base_url(base_url))

    @property
    def origin(self) -> str:
        parts = urlsplit(self.base_url)
        return f"{parts.scheme.lower()}://{parts.netloc.lower()}"

    @property
    def token_scope(self) -> str:
        """``https://graph.microsoft.com/.default`` for the global cloud; the simulator's origin locally."""
        return f"{self.origin}/.default"

    def url(self, *segments: str) -> str:
        """A URL under the service root; each segment is percent-encoded as one path segment."""
        return "/".join([self.base_url, *(quote(segment, safe="@$") for segment in segments)])

    def entity_url(self, collection: str, object_id: str) -> str:
        """An absolute entity URL as ``@odata.bind`` expects: ``{origin}/{version}/users/{id}``."""
        return self.url(collection, object_id)

    def resolve(self, url: str, *, what: str) -> str:
        """An absolute URL for a URL Graph handed us (operation location, next link), token-safe.

        Absolute URLs are used exactly as given. Relative ones are resolved like this: a path whose first
        segment is a Graph version (``/beta/...``) or that starts with the base URL's own path is relative to
        the base URL's origin; any other path (``/employeeExperience/...`` or ``employeeExperience/...``) is
        relative to the service root, because Graph writes its relative URLs without the version. A URL on
        another scheme, host or port is refused with a permanent error: the bearer token would be sent there.
        """
        value = url.strip()
        if not value:
            raise GraphError(ErrorKind.PERMANENT, f"Graph returned an empty {what}", code="InvalidGraphUrl")
        parts = urlsplit(value)
        if parts.scheme or value.startswith("//"):
            absolute = value if parts.scheme else f"{urlsplit(self.base_url).scheme}:{value}"
        elif value.startswith("/"):
            first_segment = value.split("/", 2)[1]
            base_path = urlsplit(self.base_url).path
            if first_segment in _GRAPH_VERSIONS or (base_path and value.startswith(base_path + "/")):
                absolute = self.origin + value
            else:
                absolute = self.base_url + value
        else:
            absolute = f"{self.base_url}/{value}"
        self.require_same_origin(absolute, what=what)
        return absolute

    def require_same_origin(self, url: str, *, what: str) -> None:
        if origin_of(url) != origin_of(self.base_url):
            # Name only scheme and host: the rest of a foreign URL may carry secrets.
            parts = urlsplit(url)
            where = f"{parts.scheme}://{parts.netloc}" if parts.scheme else "a non-absolute URL"
            raise GraphError(
                ErrorKind.PERMANENT,
                f"Refusing to follow the {what} to {where}: it is not on the configured Graph origin "
                f"{self.origin}, and the bearer token is only ever sent there",
                code="UntrustedGraphUrl",
            )
