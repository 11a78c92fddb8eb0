"""Scenario catalog and engine: the misbehaviours of Graph a test or ``make run`` can switch on.

Each scenario has a stable name and typed options (``CATALOG``, docs/graph-simulator.md); several can be
active at once. Scenarios that shape a create (operation outcome, polling header) are bound to an operation
when it is created; fault scenarios fire on the next ``times`` requests of their route, then switch off.
``fault-mix`` draws one of those single faults (``MIX_FAULTS``) for a seeded random share of Graph requests.
"""

from __future__ import annotations

import math
import random
import re
import threading
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any, Literal
from urllib.parse import urlsplit

ROUTES = ("create", "operation", "community", "list", "users", "members", "token", "any")
# Routes the Viva Engage rate limit counts ("Viva Engage API calls"); users and groups are plain Graph.
ENGAGE_ROUTES = frozenset({"create", "operation", "community", "list"})
RETRY_AFTER_FORMS = ("auto", "seconds", "fractional", "http-date", "none")
UNLIMITED = "unlimited"

Kind = Literal[
    "operation",
    "create-shape",
    "create-check",
    "list-shape",
    "success-header",
    "fault-before",
    "fault-after",
    "rate-limit",
    "fault-mix",
]


class ScenarioError(ValueError):
    """An unknown scenario, an unknown option or a value of the wrong type; the message names it."""


@dataclass(frozen=True)
class Option:
    name: str
    parse: Callable[[str], Any]
    default: Any
    help: str


@dataclass(frozen=True)
class ScenarioSpec:
    name: str
    kind: Kind
    help: str
    options: tuple[Option, ...] = ()


def _int(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value

    return parse


def _float(low: float, high: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = float(text)
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value

    return parse


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return text

    return parse


def _bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise ValueError("must be true or false")


def _seconds_or_none(text: str) -> float | None:
    return None if text.lower() == "none" else _float(0, 86400)(text)


def _count(text: str) -> int | None:
    if text.lower() == UNLIMITED:
        return None
    return _int(1, 1_000_000)(text)


def _text(text: str) -> str:
    return text


def _origin(text: str) -> str:
    """``scheme://host[:port]``: where a foreign URL points (a trailing slash is dropped)."""
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        raise ValueError("must be an origin such as http://127.0.0.1:8091 (scheme and host, no path)")
    if parts.query or parts.fragment:
        raise ValueError("must be an origin without query or fragment")
    return f"{parts.scheme}://{parts.netloc}"


def _times(default: int | None) -> Option:
    shown = UNLIMITED if default is None else default
    return Option("times", _count, default, f"how many times it fires, or '{UNLIMITED}' (default {shown})")


def _route(default: str = "any") -> Option:
    return Option(
        "route",
        _choice(*ROUTES),
        default,
        f"which route it hits: {', '.join(ROUTES)} ('any' = every Graph route, not the token endpoint; "
        f"default {default})",
    )


_FOREIGN_ORIGIN = Option(
    "origin",
    _origin,
    "http://127.0.0.1:1",
    "origin of the foreign URL, e.g. another simulator's (default http://127.0.0.1:1, where nothing listens)",
)
_POLLS = Option("polls", _int(1, 1000), None, "poll on which the operation turns terminal (default: global)")
_RETRY_AFTER_FORM = Option(
    "form",
    _choice(*RETRY_AFTER_FORMS),
    "auto",
    "Retry-After form: auto (integer if whole, else fractional), seconds (rounded up), fractional, "
    "http-date (clock + retry_after), none (no header)",
)

CATALOG: dict[str, ScenarioSpec] = {
    spec.name: spec
    for spec in (
        ScenarioSpec(
            "operation-failed",
            "operation",
            "created operations end in 'failed' (or another failure status) with a statusDetail; "
            "no community is created",
            (
                Option("status", _text, "failed", "terminal status string, e.g. failed or invalid"),
                Option("status_detail", _text, "The community could not be created.", "statusDetail text"),
                _POLLS,
                _times(None),
            ),
        ),
        ScenarioSpec(
            "operation-skipped",
            "operation",
            "created operations end in 'skipped'; no community is created",
            (
                Option("status_detail", _text, "The operation was skipped.", "statusDetail text"),
                _POLLS,
                _times(None),
            ),
        ),
        ScenarioSpec(
            "operation-unknown-status",
            "operation",
            "in-progress polls report an undocumented status string instead of 'running'",
            (
                Option("status", _text, "unknownFutureValue", "the unknown status string"),
                Option(
                    "final", _text, "succeeded", "terminal status after 'polls' polls, or 'none' to never end"
                ),
                _POLLS,
                _times(None),
            ),
        ),
        ScenarioSpec(
            "operation-in-progress-spelling",
            "operation",
            "in-progress polls say 'inProgress' (early beta enum) instead of 'running'",
            (
                Option("status", _text, "inProgress", "spelling, e.g. inProgress or inprogress"),
                _POLLS,
                _times(None),
            ),
        ),
        ScenarioSpec(
            "operation-succeeded-without-community",
            "operation",
            "operations end 'succeeded' but resourceId points to nothing (GET community -> 404), or to a "
            "community Graph shows only 'readable_after' seconds later",
            (
                Option(
                    "readable_after",
                    _seconds_or_none,
                    None,
                    "seconds (simulator clock) after the first 'succeeded' until GET and list show the "
                    "community, or 'none' = it never exists (default none)",
                ),
                _POLLS,
                _times(None),
            ),
        ),
        ScenarioSpec(
            "operation-never-ends",
            "operation",
            "operations stay in progress forever (the community is not created)",
            (Option("status", _text, "running", "the status every poll after the first shows"), _times(None)),
        ),
        ScenarioSpec(
            "no-polling-header",
            "create-shape",
            "the create answers 202 with neither Location nor Operation-Location (the community is created)",
            (_times(None),),
        ),
        ScenarioSpec(
            "relative-location",
            "create-shape",
            "the polling header is path-absolute: /{ver}/employeeExperience/engagementAsyncOperations('id')",
            (_times(None),),
        ),
        ScenarioSpec(
            "segment-id-location",
            "create-shape",
            "the polling URL uses the /engagementAsyncOperations/{id} form instead of ('id')",
            (_times(None),),
        ),
        ScenarioSpec(
            "operation-location-only",
            "create-shape",
            "the create sends only Operation-Location (what the docs' prose says), no Location",
            (_times(None),),
        ),
        ScenarioSpec(
            "both-polling-headers",
            "create-shape",
            "the create sends Location and Operation-Location",
            (_times(None),),
        ),
        ScenarioSpec(
            "foreign-location",
            "create-shape",
            "the polling header points to another origin (the community is created): a client must not "
            "send its token there",
            (_FOREIGN_ORIGIN, _times(None)),
        ),
        ScenarioSpec(
            "foreign-next-link",
            "list-shape",
            "community list pages' @odata.nextLink point to another origin: a client must not send its "
            "token there",
            (_FOREIGN_ORIGIN, _times(None)),
        ),
        ScenarioSpec(
            "operation-retry-after",
            "success-header",
            "successful creates (202) and/or operation polls (200) carry Retry-After (Graph's long-running "
            "operation pattern)",
            (
                Option("retry_after", _float(0, 86400), 60.0, "seconds to ask for"),
                _RETRY_AFTER_FORM,
                Option("on", _choice("create", "operation", "both"), "both", "which answers carry it"),
                _times(None),
            ),
        ),
        ScenarioSpec(
            "duplicate-name-conflict",
            "create-check",
            "a create whose displayName already exists gets 409 nameAlreadyExists (FastTrack's reading; "
            "by default duplicates are allowed like Graph)",
            (_times(None),),
        ),
        ScenarioSpec(
            "throttle",
            "fault-before",
            "429 TooManyRequests with Retry-After",
            (
                Option("retry_after", _float(0, 86400), 1.0, "seconds to wait (e.g. 2.128)"),
                _RETRY_AFTER_FORM,
                _route(),
                _times(1),
            ),
        ),
        ScenarioSpec(
            "server-error",
            "fault-before",
            "a 5xx Graph error (nothing is processed)",
            (
                Option("status", _int(500, 599), 503, "HTTP status: 500, 502, 503 or 504"),
                Option("retry_after", _float(0, 86400), None, "optional Retry-After seconds"),
                _RETRY_AFTER_FORM,
                _route(),
                _times(1),
            ),
        ),
        ScenarioSpec(
            "http-error",
            "fault-before",
            "any Graph error status/code (e.g. 403 accessDenied, 409) (nothing is processed)",
            (
                Option("status", _int(400, 599), 403, "HTTP status"),
                Option("code", _text, None, "Graph error code (default from the status)"),
                Option("message", _text, None, "Graph error message"),
                _route(),
                _times(1),
            ),
        ),
        ScenarioSpec(
            "connection-reset",
            "fault-after",
            "the request is read, then the socket is reset without a response",
            (
                Option(
                    "commit",
                    _bool,
                    True,
                    "process the request before resetting (true: a create still creates the community = the "
                    "ambiguous case; false: nothing happens)",
                ),
                Option(
                    "how",
                    _choice("reset", "close"),
                    "reset",
                    "reset: TCP RST; close: the connection is closed without an answer (default reset)",
                ),
                _route(),
                _times(1),
            ),
        ),
        ScenarioSpec(
            "slow",
            "fault-after",
            "the response is sent after a real delay (the request is processed first)",
            (Option("seconds", _float(0, 10), 0.5, "real seconds of delay"), _route(), _times(1)),
        ),
        ScenarioSpec(
            "malformed-json",
            "fault-after",
            "the request is processed, the body sent back is truncated JSON",
            (_route(), _times(1)),
        ),
        ScenarioSpec(
            "rate-limit",
            "rate-limit",
            "Viva Engage's limit: at most 'limit' Engage requests per 'window' seconds per app "
            "(simulator clock), then 429 TooManyRequests with Retry-After until the window frees up",
            (
                Option("limit", _int(1, 100_000), 10, "requests per window"),
                Option("window", _float(0.001, 86400), 30.0, "window length in seconds"),
                _RETRY_AFTER_FORM,
            ),
        ),
        ScenarioSpec(
            "fault-mix",
            "fault-mix",
            "a seeded random share of Graph requests (never the token endpoint) gets one fault of the mix: "
            "429 or 503 with or without Retry-After, 504, a reset or a closed connection after the request "
            "was processed, a slow answer; creates also an operation that ends failed or skipped or "
            "succeeds before the community is readable",
            (
                Option("rate", _float(0, 1), 0.3, "share of Graph requests faulted, 0 to 1"),
                Option("seed", _int(-(2**63), 2**63 - 1), 0, "random seed"),
                Option(
                    "slow_seconds",
                    _float(0, 10),
                    1.0,
                    "real seconds of a slow answer; set the client's read timeout below it",
                ),
                Option(
                    "readable_after",
                    _float(0, 86400),
                    40.0,
                    "seconds (simulator clock) a 'succeeded' community stays unreadable",
                ),
            ),
        ),
    )
}


@dataclass(frozen=True)
class MixFault:
    """One fault of ``fault-mix``: a single-fault scenario of the catalog with these options."""

    label: str
    scenario: str
    options: Mapping[str, Any] = field(default_factory=dict)
    create_only: bool = False


MIX_FAULTS = (
    MixFault("throttle", "throttle", {"retry_after": 2.128}),
    MixFault("throttle-without-retry-after", "throttle", {"form": "none"}),
    MixFault("unavailable", "server-error", {"status": 503}),
    MixFault("unavailable-with-retry-after", "server-error", {"status": 503, "retry_after": 5}),
    MixFault("gateway-timeout", "server-error", {"status": 504}),
    MixFault("connection-reset", "connection-reset", {"commit": True}),
    MixFault("dropped-answer", "connection-reset", {"commit": True, "how": "close"}),
    MixFault("slow", "slow"),  # seconds: the mix's slow_seconds
    MixFault("operation-failed", "operation-failed", create_only=True),
    MixFault("operation-skipped", "operation-skipped", create_only=True),
    # readable_after: the mix's
    MixFault("succeeded-before-readable", "operation-succeeded-without-community", create_only=True),
)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def parse_scenario_spec(text: str) -> tuple[str, dict[str, str]]:
    """``NAME[:k=v,...]`` (the CLI form) → name and raw options."""
    name, _, rest = text.partition(":")
    options: dict[str, str] = {}
    for pair in filter(None, rest.split(",")):
        key, sep, value = pair.partition("=")
        if not sep:
            raise ScenarioError(f"scenario option {pair!r} of {name!r} is not key=value")
        options[key.strip()] = value.strip()
    return name.strip(), options


def format_retry_after(seconds: float, form: str, now: float) -> str | None:
    """Render ``Retry-After`` in one of Graph's forms (an HTTP date is based on the simulator clock)."""
    if form == "none":
        return None
    if form == "http-date":
        return formatdate(now + seconds, usegmt=True)
    if form == "seconds" or (form == "auto" and float(seconds).is_integer()):
        return str(math.ceil(seconds))
    return f"{seconds:.3f}".rstrip("0").rstrip(".")


@dataclass
class ActiveScenario:
    spec: ScenarioSpec
    options: dict[str, Any]
    remaining: int | None  # None = until cleared
    # fault-mix only: requests seen per (route, method, subject), faults fired per MixFault label
    seen: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    fired: Counter[str] = field(default_factory=Counter)

    @property
    def name(self) -> str:
        return self.spec.name

    def applies_to(self, route: str) -> bool:
        target = self.options.get("route", "any")
        if target == "any":
            return route != "token"
        return bool(target == route)

    def to_dict(self) -> dict[str, Any]:
        data = {"name": self.name, "options": dict(self.options), "remaining": self.remaining}
        if self.spec.kind == "fault-mix":
            data["fired"] = dict(sorted(self.fired.items()))
        return data


@dataclass
class ScenarioEngine:
    """Active scenarios plus the rate limiter's request history; thread-safe.

    A fault drawn by ``fault-mix`` belongs to one request: ``draw`` keeps it for the calling thread (each
    request is served on its own thread), where ``take_first``/``take_all`` hand it out before the active
    scenarios, at the stage of the pipeline its kind belongs to."""

    _lock: threading.Lock = field(default_factory=threading.Lock)
    _active: list[ActiveScenario] = field(default_factory=list)
    _rate_history: dict[str, deque[float]] = field(default_factory=dict)
    _drawn: threading.local = field(default_factory=threading.local)

    def activate(self, name: str, options: Mapping[str, Any]) -> ActiveScenario:
        scenario = self._build(name, options)
        with self._lock:
            if scenario.spec.kind in ("rate-limit", "fault-mix"):
                self._active = [s for s in self._active if s.spec.kind != scenario.spec.kind]
            if scenario.spec.kind == "rate-limit":
                self._rate_history.clear()
            self._active.append(scenario)
        return scenario

    @staticmethod
    def _build(name: str, options: Mapping[str, Any]) -> ActiveScenario:
        spec = CATALOG.get(name)
        if spec is None:
            raise ScenarioError(f"unknown scenario {name!r}; known: {', '.join(CATALOG)}")
        known = {option.name: option for option in spec.options}
        values = {option.name: option.default for option in spec.options}
        for raw_key, raw_value in options.items():
            key = _snake(raw_key)
            option = known.get(key)
            if option is None:
                raise ScenarioError(
                    f"scenario {name!r} has no option {raw_key!r}; options: {', '.join(known) or 'none'}"
                )
            try:
                values[key] = option.parse(
                    str(raw_value).lower() if isinstance(raw_value, bool) else str(raw_value)
                )
            except ValueError as exc:
                raise ScenarioError(f"option {raw_key!r} of scenario {name!r}: {exc}") from exc
        remaining = values.pop("times", None)
        return ActiveScenario(spec, values, remaining)

    def clear(self) -> None:
        with self._lock:
            self._active.clear()
            self._rate_history.clear()

    def active(self) -> list[dict[str, Any]]:
        with self._lock:
            return [scenario.to_dict() for scenario in self._active]

    def _fire(self, scenario: ActiveScenario) -> None:
        if scenario.remaining is not None:
            scenario.remaining -= 1
            if scenario.remaining <= 0:
                self._active.remove(scenario)

    def draw(self, route: str, method: str, subject: Callable[[], str]) -> str | None:
        """``fault-mix``: pick this request's fault (or none) and keep it for this thread; its label.

        Call once per Graph request before the ``take_*`` calls for it. The draw depends only on the seed,
        the route, the method, ``subject()`` (what the request is about) and how many such requests came
        before, so each community's sequence of calls meets the same faults however clients interleave."""
        self._drawn.scenario = None
        with self._lock:
            mix = next((s for s in self._active if s.spec.kind == "fault-mix"), None)
        if mix is None or not mix.applies_to(route):
            return None
        about = subject()
        with self._lock:
            occurrence = mix.seen[(route, method, about)]
            mix.seen[(route, method, about)] += 1
        options = mix.options
        rng = random.Random(f"{options['seed']}/{route}/{method}/{about}/{occurrence}")
        if rng.random() >= float(options["rate"]):
            return None
        fault = rng.choice([f for f in MIX_FAULTS if route == "create" or not f.create_only])
        values = dict(fault.options)
        if fault.scenario == "slow":
            values["seconds"] = options["slow_seconds"]
        elif fault.scenario == "operation-succeeded-without-community":
            values["readable_after"] = options["readable_after"]
        self._drawn.scenario = self._build(fault.scenario, values)
        with self._lock:
            mix.fired[fault.label] += 1
        return fault.label

    def _take_drawn(
        self, kind: Kind, route: str, condition: Callable[[ActiveScenario], bool]
    ) -> ActiveScenario | None:
        drawn: ActiveScenario | None = getattr(self._drawn, "scenario", None)
        if drawn is None or drawn.spec.kind != kind or not drawn.applies_to(route) or not condition(drawn):
            return None
        self._drawn.scenario = None
        return drawn

    def has(self, kind: Kind, route: str) -> bool:
        with self._lock:
            return any(s.spec.kind == kind and s.applies_to(route) for s in self._active)

    def take_first(
        self, kind: Kind, route: str, condition: Callable[[ActiveScenario], bool] = lambda _: True
    ) -> ActiveScenario | None:
        """This request's drawn fault, else the oldest active scenario of ``kind`` for ``route`` meeting
        ``condition``, counted as fired."""
        drawn = self._take_drawn(kind, route, condition)
        if drawn is not None:
            return drawn
        with self._lock:
            for scenario in self._active:
                if scenario.spec.kind == kind and scenario.applies_to(route) and condition(scenario):
                    self._fire(scenario)
                    return scenario
        return None

    def take_all(
        self, kind: Kind, route: str, condition: Callable[[ActiveScenario], bool] = lambda _: True
    ) -> list[ActiveScenario]:
        drawn = self._take_drawn(kind, route, condition)
        with self._lock:
            fired = [s for s in self._active if s.spec.kind == kind and s.applies_to(route) and condition(s)]
            for scenario in fired:
                self._fire(scenario)
        return fired if drawn is None else [drawn, *fired]

    def rate_limit_wait(self, app_key: str, route: str, now: float) -> tuple[float, str] | None:
        """Count an Engage request against the rate limit; (wait seconds, Retry-After form) when over it."""
        if route not in ENGAGE_ROUTES:
            return None
        with self._lock:
            limit = next((s for s in self._active if s.spec.kind == "rate-limit"), None)
            if limit is None:
                return None
            window = float(limit.options["window"])
            history = self._rate_history.setdefault(app_key, deque())
            while history and history[0] <= now - window:
                history.popleft()
            if len(history) >= int(limit.options["limit"]):
                # Rejected requests are not counted: the window frees up as the accepted ones age out.
                return max(history[0] + window - now, 0.0), str(limit.options["form"])
            history.append(now)
            return None


def describe_catalog() -> str:
    """Plain-text list of every scenario and its options (``python -m graph_simulator --help``)."""
    lines = []
    for spec in CATALOG.values():
        lines.append(f"  {spec.name}: {spec.help}")
        for option in spec.options:
            default = option.default
            shown = "" if default is None or "default" in option.help else f" (default {default})"
            lines.append(f"      {option.name}: {option.help}{shown}")
    return "\n".join(lines)
