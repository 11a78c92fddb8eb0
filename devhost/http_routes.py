"""ASP.NET-style route templates, as the Functions host matches HTTP trigger routes.

Supported: literal segments (case-insensitive), `{name}`, optional `{name?}`, defaults `{name=value}`,
catch-all `{*name}`, and the common inline constraints (`int`, `long`, `bool`, `guid`, `alpha`, `double`,
`float`, `decimal`, `datetime`, `min(n)`, `max(n)`, `range(a,b)`, `length(n)`, `length(a,b)`, `minlength(n)`,
`maxlength(n)`, `regex(...)`).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from urllib.parse import unquote


class RouteTemplateError(ValueError):
    """A route template the host would reject."""


@dataclass(frozen=True)
class _Parameter:
    name: str
    optional: bool
    catch_all: bool
    default: str | None
    checks: tuple[Callable[[str], bool], ...]

    def accepts(self, value: str) -> bool:
        return all(check(value) for check in self.checks)


_Segment = str | _Parameter


class RouteTemplate:
    """One compiled route; `match(path)` returns the route parameters or None."""

    def __init__(self, template: str) -> None:
        self.template = template.strip("/")
        self._segments: list[_Segment] = (
            [_parse_segment(s) for s in self.template.split("/")] if self.template else []
        )
        for index, segment in enumerate(self._segments):
            if isinstance(segment, _Parameter) and segment.catch_all and index != len(self._segments) - 1:
                raise RouteTemplateError(f"route '{template}': a catch-all must be the last segment")

    @property
    def literal_count(self) -> int:
        """More literal segments = more specific (ASP.NET tries those first)."""
        return sum(1 for s in self._segments if isinstance(s, str))

    def match(self, path: str) -> dict[str, str] | None:
        parts = [unquote(p) for p in path.strip("/").split("/")] if path.strip("/") else []
        values: dict[str, str] = {}
        for index, segment in enumerate(self._segments):
            if isinstance(segment, str):
                if index >= len(parts) or parts[index].lower() != segment.lower():
                    return None
                continue
            if segment.catch_all:
                rest = "/".join(parts[index:])
                if rest:
                    if not segment.accepts(rest):
                        return None
                    values[segment.name] = rest
                elif segment.default is not None:
                    values[segment.name] = segment.default
                return values
            if index >= len(parts) or parts[index] == "":
                if segment.default is not None:
                    values[segment.name] = segment.default
                    continue
                if segment.optional:
                    continue
                return None
            if not segment.accepts(parts[index]):
                return None
            values[segment.name] = parts[index]
        return values if len(parts) <= len(self._segments) else None


def _parse_segment(segment: str) -> _Segment:
    if not (segment.startswith("{") and segment.endswith("}")):
        if "{" in segment or "}" in segment:
            raise RouteTemplateError(f"route segment '{segment}': literal and parameter mixed in one segment")
        return segment
    body = segment[1:-1]
    catch_all = body.startswith("*")
    body = body.lstrip("*")
    default: str | None = None
    if "=" in body:
        body, default = body.split("=", 1)
    optional = body.endswith("?")
    body = body.rstrip("?")
    name, *constraints = _split_constraints(body)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise RouteTemplateError(f"route parameter '{segment}': '{name}' is not a valid parameter name")
    return _Parameter(name, optional, catch_all, default, tuple(_constraint(c, segment) for c in constraints))


def _split_constraints(body: str) -> list[str]:
    # ':' inside regex(...) belongs to the pattern, so split only outside parentheses.
    parts, depth, current = [], 0, ""
    for char in body:
        if char == ":" and depth == 0:
            parts.append(current)
            current = ""
            continue
        depth += {"(": 1, ")": -1}.get(char, 0)
        current += char
    parts.append(current)
    return parts


def _constraint(text: str, segment: str) -> Callable[[str], bool]:
    match = re.fullmatch(r"(\w+)(?:\((.*)\))?", text, re.DOTALL)
    if not match:
        raise RouteTemplateError(f"route parameter '{segment}': bad constraint '{text}'")
    kind, argument = match.group(1).lower(), match.group(2)
    args = [a.strip() for a in argument.split(",")] if argument is not None and kind != "regex" else []
    simple: dict[str, Callable[[str], bool]] = {
        "int": lambda v: _is_int(v, 32),
        "long": lambda v: _is_int(v, 64),
        "bool": lambda v: v.lower() in ("true", "false"),
        "guid": _is_guid,
        "alpha": lambda v: re.fullmatch(r"[A-Za-z]+", v) is not None,
        "double": _is_decimal,
        "float": _is_decimal,
        "decimal": _is_decimal,
        "datetime": _is_datetime,
    }
    if kind in simple:
        return simple[kind]
    try:
        if kind == "regex" and argument is not None:
            # Route templates escape braces by doubling them.
            pattern = re.compile(argument.replace("{{", "{").replace("}}", "}"), re.IGNORECASE)
            return lambda v: pattern.search(v) is not None
        n = [int(a) for a in args]
    except (re.error, ValueError) as exc:
        raise RouteTemplateError(f"route parameter '{segment}': bad constraint '{text}' ({exc})") from exc
    numeric: dict[tuple[str, int], Callable[[str], bool]] = {
        ("min", 1): lambda v: _is_int(v, 64) and int(v) >= n[0],
        ("max", 1): lambda v: _is_int(v, 64) and int(v) <= n[0],
        ("range", 2): lambda v: _is_int(v, 64) and n[0] <= int(v) <= n[1],
        ("minlength", 1): lambda v: len(v) >= n[0],
        ("maxlength", 1): lambda v: len(v) <= n[0],
        ("length", 1): lambda v: len(v) == n[0],
        ("length", 2): lambda v: n[0] <= len(v) <= n[1],
    }
    if (kind, len(n)) in numeric:
        return numeric[(kind, len(n))]
    raise RouteTemplateError(f"route parameter '{segment}': unsupported constraint '{text}'")


def _is_int(value: str, bits: int) -> bool:
    if not re.fullmatch(r"[+-]?\d+", value):
        return False
    return -(2 ** (bits - 1)) <= int(value) < 2 ** (bits - 1)


def _is_guid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _is_decimal(value: str) -> bool:
    try:
        Decimal(value)
    except InvalidOperation:
        return False
    return value.strip() == value and value.lower() not in ("nan", "inf", "-inf", "infinity")


def _is_datetime(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True
