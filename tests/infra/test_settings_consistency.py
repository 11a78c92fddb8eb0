"""Code, Bicep and local.settings.sample.json agree on the app settings.

"Read by the code" = the names provisioning/settings.py reads from the environment + the %NAME% binding
expressions in host.json and in the function bindings + the storage connections the bindings and the host use.
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from provisioning.settings import Settings
from tests.infra.infra_files import (
    HOST_STORAGE_CONNECTION,
    ROOT,
    binding_connections,
    binding_setting_names,
    function_bindings,
    host_json_setting_names,
    local_sample_values,
    parse_bicep,
    settings_read_by_settings_module,
    variable,
)

# Set in Azure though the code does not read them: the platform does.
BICEP_PLATFORM_SETTINGS = {
    # The Functions host sends telemetry there, authenticating as the managed identity (local auth is off).
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
}
# Identity-based form of a storage connection C (the host reads C__<property>); checked per connection below.
IDENTITY_CONNECTION_PROPERTIES = {
    "credential",
    "clientId",
    "blobServiceUri",
    "queueServiceUri",
    "tableServiceUri",
}
# Set in the local sample though the code does not read them.
LOCAL_PLATFORM_SETTINGS = {
    # Core Tools (`func start`) needs the worker language locally; on Flex it comes from functionAppConfig.
    "FUNCTIONS_WORKER_RUNTIME",
    # azure-identity's ManagedIdentityCredential reads these; locally they point at the Graph simulator's
    # token endpoint (in Azure the platform sets them).
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
}
APP_CODE = ("function_app.py", "triggers", "orchestrators", "activities", "entities", "provisioning")


@pytest.fixture(scope="module")
def bindings() -> list[dict[str, Any]]:
    return function_bindings()


@pytest.fixture(scope="module")
def read_by_code(bindings: list[dict[str, Any]]) -> set[str]:
    return settings_read_by_settings_module() | host_json_setting_names() | binding_setting_names(bindings)


@pytest.fixture(scope="module")
def connections(bindings: list[dict[str, Any]]) -> set[str]:
    return {HOST_STORAGE_CONNECTION} | binding_connections(bindings)


def _bicep_app_settings() -> dict[str, Any]:
    """Every app setting Bicep sets: the code's (main.bicep) over the platform's (function-app.bicep)."""
    platform = variable(parse_bicep("modules/function-app.bicep"), "platformAppSettings")
    return {**platform, **variable(parse_bicep("main.bicep"), "appSettings")}


def test_the_readers_find_what_the_settings_module_reads() -> None:
    names = settings_read_by_settings_module()
    assert {
        "GRAPH_BASE_URL",
        "AZURE_CLIENT_ID",
        "STATUS_POLL_INTERVAL_SECONDS",
        "CALLBACK_ALLOWED_HOSTS",
    } <= names
    # Every Settings field is one environment variable of the same name, upper-cased.
    assert {field.name.upper() for field in dataclasses.fields(Settings)} == names


def test_the_reader_finds_direct_and_helper_reads() -> None:
    source = (
        "import os\n"
        "def load(env):\n"
        "    def raw(name):\n"
        "        return env.get(name)\n"
        "    return raw('A'), env.get('B'), os.environ['C'], os.getenv('D'), env.get('x', 'not-a-name')\n"
    )
    assert settings_read_by_settings_module(source) == {"A", "B", "C", "D", "x"}


def test_bindings_use_binding_expressions_for_queue_names(bindings: list[dict[str, Any]]) -> None:
    assert {"PROVISIONING_QUEUE", "RESULTS_QUEUE"} <= binding_setting_names(bindings)
    assert "TASKHUB_NAME" in host_json_setting_names()


def test_bicep_sets_every_setting_the_code_reads(read_by_code: set[str]) -> None:
    missing = read_by_code - set(_bicep_app_settings())
    assert not missing, f"read by the code but not set in infra/main.bicep appSettings: {sorted(missing)}"


def test_bicep_connects_every_storage_connection_with_the_identity(connections: set[str]) -> None:
    settings = _bicep_app_settings()
    for connection in connections:
        assert connection not in settings, f"{connection} as a connection string needs a shared key"
        properties = {key.split("__", 1)[1] for key in settings if key.startswith(f"{connection}__")}
        assert properties == IDENTITY_CONNECTION_PROPERTIES, connection
        assert settings[f"{connection}__credential"] == "managedidentity"


def test_bicep_sets_nothing_the_code_does_not_read(read_by_code: set[str], connections: set[str]) -> None:
    identity_connection_settings = {f"{c}__{p}" for c in connections for p in IDENTITY_CONNECTION_PROPERTIES}
    unread = (
        set(_bicep_app_settings()) - read_by_code - identity_connection_settings - BICEP_PLATFORM_SETTINGS
    )
    assert not unread, f"set in Bicep but read by nothing: {sorted(unread)}"


def test_bicep_defaults_are_the_code_defaults() -> None:
    main = parse_bicep("main.bicep")
    parameters = main["parameters"]
    env: dict[str, str] = {}
    for name, value in variable(main, "appSettings").items():
        if isinstance(value, str) and value in parameters:
            default = parameters[value]["default"]
            assert isinstance(default, str), f"{value}: app settings are strings"
            env[name] = default
    assert set(env) >= {f.name.upper() for f in dataclasses.fields(Settings)} - {"AZURE_CLIENT_ID"}
    assert Settings.from_mapping(env) == Settings()


def test_local_sample_sets_every_setting_the_code_reads(
    read_by_code: set[str], connections: set[str]
) -> None:
    values = local_sample_values()
    missing = (read_by_code | connections) - set(values)
    assert not missing, f"read by the code but missing from local.settings.sample.json: {sorted(missing)}"


def test_local_sample_sets_nothing_the_code_does_not_read(
    read_by_code: set[str], connections: set[str]
) -> None:
    unread = set(local_sample_values()) - read_by_code - connections - LOCAL_PLATFORM_SETTINGS
    assert not unread, f"set in local.settings.sample.json but read by nothing: {sorted(unread)}"


def test_local_sample_values_are_valid_settings() -> None:
    Settings.from_mapping(local_sample_values())


def test_only_the_settings_module_reads_the_environment() -> None:
    offenders = []
    for entry in APP_CODE:
        paths = [ROOT / entry] if entry.endswith(".py") else sorted((ROOT / entry).rglob("*.py"))
        for path in paths:
            if path == ROOT / "provisioning" / "settings.py":
                continue
            if _reads_environment(path):
                offenders.append(str(path.relative_to(ROOT)))
    assert not offenders, f"read settings through provisioning.settings, not os.environ: {offenders}"


def _reads_environment(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return any(
        (isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv"))
        or (
            isinstance(node, ast.ImportFrom)
            and node.module == "os"
            and any(a.name in ("environ", "getenv") for a in node.names)
        )
        for node in ast.walk(tree)
    )
