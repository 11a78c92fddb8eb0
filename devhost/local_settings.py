"""App settings and host.json, read the way the Functions host reads them locally.

`func start` loads `local.settings.json` `Values` into the worker's environment, but a variable that is
already set in the environment wins. `%NAME%` in a binding property (queue names, for example) is resolved
against those settings.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

_SETTING_EXPRESSION = re.compile(r"%([^%]+)%")


class SettingsError(Exception):
    """A settings file that cannot be used; the message names the file and the problem."""


def read_local_settings(path: str | Path = "local.settings.json") -> dict[str, str]:
    """The `Values` of a `local.settings.json` file ({} when the file does not exist)."""
    file = Path(path)
    if not file.exists():
        return {}
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SettingsError(f"{file}: not valid JSON ({exc})") from exc
    values = document.get("Values", {}) if isinstance(document, dict) else None
    if not isinstance(values, dict):
        raise SettingsError(f"{file}: 'Values' must be an object of setting names to strings")
    return {str(name): "" if value is None else str(value) for name, value in values.items()}


def apply_local_settings(values: Mapping[str, str], environ: MutableMapping[str, str]) -> list[str]:
    """Copy settings into `environ` unless already set there (the environment wins); returns names applied."""
    applied = []
    for name, value in values.items():
        if name not in environ:
            environ[name] = value
            applied.append(name)
    return applied


def read_host_json(path: str | Path | None) -> dict[str, Any]:
    """The parsed host.json ({} when no path is given or the file does not exist)."""
    if path is None or not Path(path).exists():
        return {}
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SettingsError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(document, dict):
        raise SettingsError(f"{path}: must be a JSON object")
    return document


def host_extension_section(host_json: Mapping[str, Any], name: str) -> dict[str, Any]:
    """`extensions.<name>` of host.json, matched case-insensitively like the host's configuration binder."""
    extensions = _get_ci(host_json, "extensions")
    section = _get_ci(extensions, name) if isinstance(extensions, Mapping) else None
    return dict(section) if isinstance(section, Mapping) else {}


def get_setting_ci(section: Mapping[str, Any], key: str, default: Any = None) -> Any:
    """A host.json option, matched case-insensitively (the host binds options that way)."""
    value = _get_ci(section, key)
    return default if value is None else value


def resolve_setting_expressions(value: str, environ: Mapping[str, str] | None = None) -> str:
    """Replace every `%NAME%` with the app setting NAME, failing clearly when it is not set."""
    settings = os.environ if environ is None else environ

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in settings:
            raise SettingsError(f"binding expression '%{name}%': app setting '{name}' is not set")
        return settings[name]

    return _SETTING_EXPRESSION.sub(replace, value)


def parse_timespan(value: Any, *, field: str) -> float:
    """Seconds in a .NET TimeSpan string such as "00:00:30" or "1.00:00:00" (numbers are taken as seconds)."""
    if isinstance(value, int | float):
        return float(value)
    match = re.fullmatch(r"(?:(\d+)\.)?(\d+):(\d+):(\d+(?:\.\d+)?)", str(value).strip())
    if not match:
        raise SettingsError(f"host.json {field}: '{value}' is not a TimeSpan like 00:00:30")
    days, hours, minutes, seconds = match.groups()
    return int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def _get_ci(mapping: Mapping[str, Any], key: str) -> Any:
    for name, value in mapping.items():
        if name.lower() == key.lower():
            return value
    return None
