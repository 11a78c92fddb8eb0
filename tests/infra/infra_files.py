"""Shared readers for the infra tests: Bicep ASTs (pycep-parser) and the app-setting names the code reads."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
SETTINGS_MODULE = ROOT / "provisioning" / "settings.py"
HOST_JSON = ROOT / "host.json"
LOCAL_SETTINGS_SAMPLE = ROOT / "local.settings.sample.json"
FUNCTION_APP = ROOT / "function_app.py"

# The connection every Functions app has: host storage, Durable's Azure Storage provider, and queue bindings
# without an explicit `connection`.
HOST_STORAGE_CONNECTION = "AzureWebJobsStorage"

_BINDING_EXPRESSION = re.compile(r"%([A-Za-z_][A-Za-z0-9_]*)%")


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


def required_parameters(declared: dict[str, Any]) -> set[str]:
    """Parameters without a default. pycep gives every parameter a `default` key, None when there is none."""
    return {name for name, spec in declared.items() if spec.get("default") is None}


@cache
def parse_bicep(relative_path: str) -> dict[str, Any]:
    """The pycep-parser 0.7.1 AST of infra/<relative_path> (parsed once per session)."""
    from pycep import BicepParser

    return dict(BicepParser().parse(file_path=INFRA / relative_path))


def resources_of_type(doc: dict[str, Any], resource_type: str) -> list[dict[str, Any]]:
    return [r for r in doc["resources"].values() if r["type"] == resource_type]


def one_resource(doc: dict[str, Any], resource_type: str) -> dict[str, Any]:
    found = resources_of_type(doc, resource_type)
    assert len(found) == 1, f"expected one {resource_type}, found {len(found)}"
    return found[0]


def resource_body(resource: dict[str, Any]) -> dict[str, Any]:
    """The literal body of a resource, looking through a loop or condition wrapper."""
    config: dict[str, Any] = resource["config"]
    return config["config"] if "loop_type" in config or "condition" in config else config


def module_config(doc: dict[str, Any], name: str) -> dict[str, Any]:
    """`{name, scope, params, ...}` of a module, plus `condition` when it has one."""
    config: dict[str, Any] = doc["modules"][name]["config"]
    if "condition" in config and "config" in config:
        return {**config["config"], "condition": config["condition"]}
    return config


def variable(doc: dict[str, Any], name: str) -> Any:
    return doc["variables"][name]["value"]


# ---- what the code reads ----------------------------------------------------------------------------------


def settings_read_by_settings_module(source: str | None = None) -> set[str]:
    """Names `provisioning/settings.py` reads from the environment mapping.

    The module reads through a local helper (`raw(name)`, which calls `env.get(name)`) and may also read
    the mapping directly; both are found: a function whose body calls `<mapping>.get(<its own param>)` is a
    reader, and string literals passed to a reader, `.get()`, `os.getenv()` or `environ[...]` are names.
    """
    tree = ast.parse(source if source is not None else SETTINGS_MODULE.read_text(encoding="utf-8"))
    readers = {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and _reads_mapping_with_own_param(node)
    }
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args and _is_str(node.args[0]):
            func = node.func
            called = (
                func.id
                if isinstance(func, ast.Name)
                else func.attr
                if isinstance(func, ast.Attribute)
                else ""
            )
            receiver = func.value if isinstance(func, ast.Attribute) else None
            direct_get = called == "get" and _names_environment(receiver)
            if called in readers or called == "getenv" or direct_get:
                names.add(node.args[0].value)  # type: ignore[attr-defined]
        elif isinstance(node, ast.Subscript) and _names_environment(node.value) and _is_str(node.slice):
            names.add(node.slice.value)  # type: ignore[attr-defined]
    return names


def _reads_mapping_with_own_param(function: ast.FunctionDef) -> bool:
    params = {a.arg for a in function.args.args}
    return any(
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "get"
        and _names_environment(node.func.value)
        and node.args
        and isinstance(node.args[0], ast.Name)
        and node.args[0].id in params
        for node in ast.walk(function)
    )


def _names_environment(node: ast.AST | None) -> bool:
    if isinstance(node, ast.Name):
        return node.id in ("env", "environ", "environment")
    return isinstance(node, ast.Attribute) and node.attr == "environ"


def _is_str(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def host_json_setting_names() -> set[str]:
    return set(_BINDING_EXPRESSION.findall(HOST_JSON.read_text(encoding="utf-8")))


def function_bindings() -> list[dict[str, Any]]:
    """Every binding of every function of `function_app.app`, as the worker reports them to the host."""
    # The dev host's indexer: a bare second `get_functions()` on the shared app object raises, it does not.
    from devhost.indexing import index_app, load_app

    return [binding for fn in index_app(load_app("function_app:app")).functions for binding in fn.bindings]


def binding_setting_names(bindings: list[dict[str, Any]]) -> set[str]:
    return {name for value in _strings(bindings) for name in _BINDING_EXPRESSION.findall(value)}


def binding_connections(bindings: list[dict[str, Any]]) -> set[str]:
    """Connection names of storage bindings; an empty connection means AzureWebJobsStorage."""
    storage_bindings = [b for b in bindings if str(b.get("type", "")).startswith(("queue", "blob", "table"))]
    return {str(b.get("connection") or HOST_STORAGE_CONNECTION) for b in storage_bindings}


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def local_sample_values() -> dict[str, str]:
    values: dict[str, str] = json.loads(LOCAL_SETTINGS_SAMPLE.read_text(encoding="utf-8"))["Values"]
    return values
