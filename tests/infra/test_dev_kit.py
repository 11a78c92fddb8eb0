"""The developer kit around the app: GitHub workflows, Dependabot, the dev container, VS Code tasks and launch
settings, test.http, the azd postprovision hook, and the idempotency of the Microsoft Graph grant.

None of these can run here (no GitHub, Azure, Docker or VS Code), so they are kept declarative and checked
against what they refer to: the Makefile, package.json, main.bicep's outputs and parameters, the app's own
HTTP routes (a new route without a test.http request fails), and the scripts run against a fake `az`.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from devhost.http_routes import RouteTemplate
from tests.infra.infra_files import (
    HOST_JSON,
    INFRA,
    LOCAL_SETTINGS_SAMPLE,
    ROOT,
    function_bindings,
    local_sample_values,
    module_config,
    parse_bicep,
    resource_body,
    variable,
)

WORKFLOWS = ROOT / ".github" / "workflows"
CI_WORKFLOW = WORKFLOWS / "ci.yml"
DEPLOY_WORKFLOW = WORKFLOWS / "deploy.yml"
DEPENDABOT = ROOT / ".github" / "dependabot.yml"
DEVCONTAINER = ROOT / ".devcontainer" / "devcontainer.json"
VSCODE = ROOT / ".vscode"
TEST_HTTP = ROOT / "test.http"
AZURE_YAML = ROOT / "azure.yaml"
SCRIPTS = INFRA / "scripts"
GRANT_SCRIPT = SCRIPTS / "grant-graph-permissions.sh"
FAKE_AZ = Path(__file__).parent / "fake_az.py"

JSONC_FILES = [
    DEVCONTAINER,
    VSCODE / "tasks.json",
    VSCODE / "launch.json",
    VSCODE / "extensions.json",
    VSCODE / "settings.json",
]
YAML_FILES = [CI_WORKFLOW, DEPLOY_WORKFLOW, DEPENDABOT, AZURE_YAML]

# Set by `azd pipeline config` for the workflow; everything else the deploy job passes must feed main.bicep.
AZD_LOGIN_VARIABLES = {"AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_SUBSCRIPTION_ID"}


# ---- readers ----------------------------------------------------------------------------------------------


def load_jsonc(path: Path) -> Any:
    """JSON with // and /* */ comments (VS Code and dev container files), comments outside strings only."""
    text = path.read_text(encoding="utf-8")
    out: list[str] = []
    i, in_string = 0, False
    while i < len(text):
        char = text[i]
        if in_string:
            out.append(char)
            if char == "\\":
                out.append(text[i + 1])
                i += 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
            out.append(char)
        elif text.startswith("//", i):
            i = text.find("\n", i)
            if i < 0:
                break
            continue
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            assert end >= 0, f"{path}: unterminated comment"
            i = end + 2
            continue
        else:
            out.append(char)
        i += 1
    return json.loads("".join(out))


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def workflow_triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    # YAML 1.1 (PyYAML) reads the key `on` as the boolean True.
    triggers = workflow.get("on", workflow.get(True))
    assert isinstance(triggers, dict), "write `on:` as a mapping of events"
    return triggers


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = job["steps"]
    return found


def step_index(job: dict[str, Any], predicate: str) -> int:
    for index, step in enumerate(steps(job)):
        if predicate in str(step.get("run", "")) or predicate in str(step.get("uses", "")):
            return index
    raise AssertionError(f"no step runs or uses {predicate!r}")


def makefile_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([A-Za-z][\w-]*):", text, flags=re.MULTILINE))


def bicep_outputs() -> set[str]:
    return set(parse_bicep("main.bicep")["outputs"])


def parameter_placeholders() -> set[str]:
    """Environment names main.parameters.json reads (`${NAME}` / `${NAME=default}`)."""
    document = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))
    names = set()
    for entry in document["parameters"].values():
        match = re.fullmatch(r"\$\{([A-Z_][A-Z0-9_]*)(=.*)?\}", str(entry["value"]))
        assert match, entry
        names.add(match[1])
    return names


# ---- every file parses ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", JSONC_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_jsonc_files_parse(path: Path) -> None:
    assert isinstance(load_jsonc(path), dict)


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_yaml_files_parse(path: Path) -> None:
    assert isinstance(load_yaml(path), dict)


def test_jsonc_reader_keeps_comment_markers_inside_strings(tmp_path: Path) -> None:
    # The reader must not eat "//" in URLs or "/*" in globs, and must drop real comments.
    path = tmp_path / "sample.jsonc"
    path.write_text('{"url": "https://x/*y*/", // note\n /* block */ "n": "a\\"b"}', encoding="utf-8")
    assert load_jsonc(path) == {"url": "https://x/*y*/", "n": 'a"b'}


# ---- GitHub Actions ---------------------------------------------------------------------------------------


def test_ci_runs_dot_ci_run_on_pushes_and_pull_requests() -> None:
    workflow = load_yaml(CI_WORKFLOW)
    assert {"push", "pull_request", "workflow_call"} <= set(workflow_triggers(workflow))
    assert workflow["permissions"] == {"contents": "read"}
    (job,) = workflow["jobs"].values()
    assert step_index(job, ".ci/run") > step_index(job, "actions/checkout")
    assert os.access(ROOT / ".ci" / "run", os.X_OK)


def test_ci_uses_the_python_the_app_runs_on_and_the_node_azurite_needs() -> None:
    (job,) = load_yaml(CI_WORKFLOW)["jobs"].values()
    python = steps(job)[step_index(job, "actions/setup-python")]["with"]["python-version"]
    assert python == parse_bicep("main.bicep")["parameters"]["pythonVersion"]["default"]
    target = re.search(
        r'^target-version = "py(\d)(\d+)"$', (ROOT / "pyproject.toml").read_text(), re.MULTILINE
    )
    assert target
    assert python == f"{target[1]}.{target[2]}"
    node = steps(job)[step_index(job, "actions/setup-node")]["with"]["node-version"]
    assert str(node) == "20"
    assert "azurite" in json.loads((ROOT / "package.json").read_text())["devDependencies"]


def test_deploy_signs_in_with_federated_credentials_and_no_secret() -> None:
    text = DEPLOY_WORKFLOW.read_text(encoding="utf-8")
    assert "secrets." not in text, "the deployment uses OIDC federated credentials, never a stored secret"
    workflow = load_yaml(DEPLOY_WORKFLOW)
    assert workflow["permissions"] == {"id-token": "write", "contents": "read"}
    job = workflow["jobs"]["deploy"]
    # An environment would change the OIDC subject that the branch-based federated credential matches.
    assert "environment" not in job
    login = steps(job)[step_index(job, "azd auth login")]["run"]
    for flag in ("--client-id", "--tenant-id"):
        assert flag in login
    assert re.search(r"--federated-credential-provider\s+\"?github\"?", login)
    order = [
        step_index(job, "actions/checkout"),
        step_index(job, "Azure/setup-azd"),
        step_index(job, "azd auth login"),
        step_index(job, "azd provision --no-prompt"),
        step_index(job, "azd deploy --no-prompt"),
    ]
    assert order == sorted(order)


def test_deploy_reads_repository_variables_that_azd_and_main_bicep_use() -> None:
    job = load_yaml(DEPLOY_WORKFLOW)["jobs"]["deploy"]
    env: dict[str, str] = job["env"]
    for name in (*AZD_LOGIN_VARIABLES, "AZURE_ENV_NAME", "AZURE_LOCATION"):
        assert env[name] == f"${{{{ vars.{name} }}}}", name
    # Whatever else it passes must be something main.parameters.json reads, or it would be ignored.
    assert set(env) - AZD_LOGIN_VARIABLES <= parameter_placeholders(), set(env) - parameter_placeholders()
    assert env["AZURE_PRINCIPAL_TYPE"] == "ServicePrincipal"


def test_deploy_runs_only_after_ci_passed() -> None:
    jobs = load_yaml(DEPLOY_WORKFLOW)["jobs"]
    assert jobs["ci"]["uses"] == "./.github/workflows/ci.yml"
    assert jobs["deploy"]["needs"] == "ci"
    assert "workflow_call" in workflow_triggers(load_yaml(CI_WORKFLOW))


def test_dependabot_watches_pip_npm_and_the_workflows() -> None:
    config = load_yaml(DEPENDABOT)
    assert config["version"] == 2
    updates = {u["package-ecosystem"]: u for u in config["updates"]}
    assert set(updates) == {"pip", "npm", "github-actions"}
    manifests = {"pip": "requirements.txt", "npm": "package.json", "github-actions": ".github/workflows"}
    for ecosystem, update in updates.items():
        assert update["directory"] == "/"
        assert (ROOT / manifests[ecosystem]).exists()
        assert update["schedule"]["interval"] in {"daily", "weekly", "monthly"}


# ---- dev container and VS Code ----------------------------------------------------------------------------


def _feature(features: dict[str, Any], name: str) -> dict[str, Any]:
    found = [options for ref, options in features.items() if ref.rsplit("/", 1)[-1].split(":")[0] == name]
    assert len(found) == 1, f"expected one {name} feature in {sorted(features)}"
    options: dict[str, Any] = found[0]
    return options


def test_devcontainer_has_the_tool_chain() -> None:
    container = load_jsonc(DEVCONTAINER)
    assert re.search(r"python:[\w.-]*3\.11-", container["image"]), container["image"]
    features = container["features"]
    assert str(_feature(features, "node")["version"]) == "20"
    assert _feature(features, "azure-cli")["installBicep"] is True
    _feature(features, "azd")
    _feature(features, "azure-functions-core-tools")
    command = container["postCreateCommand"].split()
    assert command[0] == "make"
    assert set(command[1:]) <= makefile_targets()


def test_devcontainer_forwards_the_local_ports() -> None:
    ports = set(load_jsonc(DEVCONTAINER)["forwardPorts"])
    graph_port = int(re.search(r":(\d+)/", local_sample_values()["GRAPH_BASE_URL"])[1])  # type: ignore[index]
    assert {7071, 10000, 10001, 10002, graph_port} <= ports


def test_recommended_extensions_match_the_devcontainer() -> None:
    recommended = set(load_jsonc(VSCODE / "extensions.json")["recommendations"])
    container = set(load_jsonc(DEVCONTAINER)["customizations"]["vscode"]["extensions"])
    assert recommended == container
    assert {"ms-azuretools.vscode-azurefunctions", "humao.rest-client"} <= recommended


def _tasks() -> dict[str, dict[str, Any]]:
    tasks = load_jsonc(VSCODE / "tasks.json")["tasks"]
    labels = [task["label"] for task in tasks]
    assert len(labels) == len(set(labels)), labels
    return {task["label"]: task for task in tasks}


def _check_shell_command(command: str) -> None:
    """Every shell task must be one of the forms below, each checked against what it runs."""
    if command.startswith("test -f local.settings.json || cp "):
        assert shlex.split(command)[-2:] == [LOCAL_SETTINGS_SAMPLE.name, "local.settings.json"]
        assert LOCAL_SETTINGS_SAMPLE.exists()
        return
    argv = shlex.split(command)
    if argv[0] == "make":
        assert set(argv[1:]) <= makefile_targets(), argv
    elif argv[0] == "node_modules/.bin/azurite":
        assert "azurite" in json.loads((ROOT / "package.json").read_text())["devDependencies"]
        options = ROOT / "node_modules" / "azurite" / "dist" / "src" / "common" / "Environment.js"
        if not options.exists():
            pytest.skip("Azurite is not installed (npm ci)")
        declared = set(re.findall(r'\.option\(\[\s*"\w*",\s*"(\w+)"\]', options.read_text()))
        flags = {arg.removeprefix("--") for arg in argv[1:] if arg.startswith("--")}
        assert flags <= declared, flags - declared
    elif argv[:3] == [".venv/bin/python", "-m", "graph_simulator"]:
        from graph_simulator.__main__ import build_parser

        args = build_parser().parse_args(argv[3:])
        values = local_sample_values()
        assert f"127.0.0.1:{args.port}/" in values["GRAPH_BASE_URL"]
        assert f"127.0.0.1:{args.port}/" in values["IDENTITY_ENDPOINT"]
        assert args.identity_header == values["IDENTITY_HEADER"]
    else:
        raise AssertionError(f"unchecked task command {command!r}: add a check for it here")


def test_tasks_run_real_commands_and_start_func_after_its_dependencies() -> None:
    tasks = _tasks()
    for task in tasks.values():
        for dependency in task.get("dependsOn", []):
            assert dependency in tasks, dependency
        if task["type"] == "shell":
            _check_shell_command(task["command"])
        if task.get("isBackground") and isinstance(task["problemMatcher"], dict):
            background = task["problemMatcher"]["background"]
            for key in ("beginsPattern", "endsPattern"):
                re.compile(background[key])
    func = tasks["func: host start"]
    assert (func["type"], func["command"], func["isBackground"]) == ("func", "host start", True)
    assert func["dependsOrder"] == "sequence"
    assert func["dependsOn"][-2:] == ["azurite: start", "graph simulator: start"]
    assert local_sample_values()["AzureWebJobsStorage"] == "UseDevelopmentStorage=true"  # Azurite's ports


def test_launch_configurations_use_real_tasks_and_modules() -> None:
    import importlib.util

    tasks = _tasks()
    settings = load_jsonc(VSCODE / "settings.json")
    venv = re.search(r"^VENV := (\S+)$", (ROOT / "Makefile").read_text(), flags=re.MULTILINE)[1]  # type: ignore[index]
    assert settings["azureFunctions.pythonVenv"] == venv
    for configuration in load_jsonc(VSCODE / "launch.json")["configurations"]:
        assert configuration["type"] == "debugpy"
        if "preLaunchTask" in configuration:
            assert configuration["preLaunchTask"] in tasks
        if "module" in configuration:
            assert importlib.util.find_spec(configuration["module"]) is not None
            assert configuration["python"] == f"${{workspaceFolder}}/{venv}/bin/python"


def test_dev_kit_files_stay_out_of_the_deployment_package() -> None:
    import fnmatch

    lines = (ROOT / ".funcignore").read_text(encoding="utf-8").splitlines()
    patterns = [line.strip().rstrip("/") for line in lines if line.strip() and not line.startswith("#")]
    for name in (".github", ".devcontainer", ".vscode", "test.http"):
        assert any(fnmatch.fnmatch(name, pattern) for pattern in patterns), name


# ---- test.http --------------------------------------------------------------------------------------------


@dataclass
class HttpRequest:
    method: str
    url: str
    headers: dict[str, str]


_REQUEST_LINE = re.compile(r"^(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS)\s+(\S+)(?:\s+HTTP/[\d.]+)?$")


def parse_http_file(text: str) -> tuple[dict[str, str], list[HttpRequest]]:
    """File variables (`@name = value`) and requests of a REST Client .http file (`###` separates them)."""
    variables: dict[str, str] = {}
    requests: list[HttpRequest] = []
    for block in re.split(r"^###.*$", text, flags=re.MULTILINE):
        lines = iter(block.splitlines())
        for line in lines:
            stripped = line.strip()
            if not stripped or stripped.startswith(("#", "//")):
                continue
            variable_match = re.fullmatch(r"@([\w-]+)\s*=\s*(.*)", stripped)
            if variable_match:
                variables[variable_match[1]] = variable_match[2]
                continue
            match = _REQUEST_LINE.match(stripped)
            assert match, f"not a request line: {line!r}"
            headers = {}
            for header in lines:
                if not header.strip():
                    break
                name, _, value = header.partition(":")
                headers[name.strip().lower()] = value.strip()
            requests.append(HttpRequest(match[1], match[2], headers))
            break
    return variables, requests


def app_http_routes() -> set[tuple[str, str]]:
    """(method, route template) of every HTTP trigger the app registers."""
    routes = set()
    for binding in function_bindings():
        if binding["type"] == "httpTrigger":
            assert binding.get("methods"), f"{binding}: give the route its methods"
            routes |= {(method.upper(), binding["route"]) for method in binding["methods"]}
    return routes


def test_test_http_has_a_request_for_every_route() -> None:
    _, requests = parse_http_file(TEST_HTTP.read_text(encoding="utf-8"))
    prefix = json.loads(HOST_JSON.read_text())["extensions"]["http"]["routePrefix"]
    paths = []
    for request in requests:
        assert request.url.startswith("{{baseUrl}}/"), request.url
        path = request.url.removeprefix("{{baseUrl}}/").split("?", 1)[0]
        assert path.startswith(f"{prefix}/"), request.url
        paths.append((request.method, path.removeprefix(f"{prefix}/")))
    routes = app_http_routes()
    assert len(routes) >= 10
    missing = sorted(
        f"{method} /{prefix}/{template}"
        for method, template in routes
        if not any(m == method and RouteTemplate(template).match(p) is not None for m, p in paths)
    )
    assert not missing, f"add these to test.http: {missing}"


def test_test_http_sends_a_key_and_commits_none() -> None:
    variables, requests = parse_http_file(TEST_HTTP.read_text(encoding="utf-8"))
    assert variables["baseUrl"].startswith("http://localhost:7071")
    assert variables["key"] == "", "never commit a key: leave @key empty"
    assert requests
    for request in requests:
        assert request.headers.get("x-functions-key") == "{{key}}", f"{request.method} {request.url}"


def test_http_parser_finds_requests_headers_and_variables() -> None:
    text = textwrap.dedent(
        """\
        @baseUrl = http://h
        ### one
        # @name first
        GET {{baseUrl}}/api/a?x=1
        x-functions-key: {{key}}

        ### two
        POST {{baseUrl}}/api/b HTTP/1.1
        Content-Type: application/json

        {"a": 1}
        """
    )
    variables, requests = parse_http_file(text)
    assert variables == {"baseUrl": "http://h"}
    assert [(r.method, r.url) for r in requests] == [
        ("GET", "{{baseUrl}}/api/a?x=1"),
        ("POST", "{{baseUrl}}/api/b"),
    ]
    assert requests[0].headers == {"x-functions-key": "{{key}}"}
    assert requests[1].headers == {"content-type": "application/json"}


# ---- azd hooks --------------------------------------------------------------------------------------------


def _postprovision() -> dict[str, Any]:
    hook: dict[str, Any] = load_yaml(AZURE_YAML)["hooks"]["postprovision"]
    return hook


def test_azure_yaml_hooks_point_at_executable_scripts() -> None:
    hook = _postprovision()
    assert set(hook) == {"posix", "windows"}
    assert hook["posix"]["shell"] == "sh"
    assert hook["windows"]["shell"] == "pwsh"
    posix = ROOT / hook["posix"]["run"]
    windows = ROOT / hook["windows"]["run"]
    assert posix.suffix == ".sh"
    assert windows.suffix == ".ps1"
    assert os.access(posix, os.X_OK), f"{posix}: azd runs it by its path on Linux and macOS"
    assert posix.read_text().startswith("#!/bin/sh\n")
    assert windows.exists()
    subprocess.run(["sh", "-n", str(posix)], check=True)


def test_hooks_read_only_values_main_bicep_or_the_parameters_provide() -> None:
    hook = _postprovision()
    posix = (ROOT / hook["posix"]["run"]).read_text(encoding="utf-8")
    windows = (ROOT / hook["windows"]["run"]).read_text(encoding="utf-8")
    read = set(re.findall(r"\$\{?([A-Z][A-Z0-9_]+)", posix))
    assert {"SERVICE_API_URI", "AZURE_FUNCTION_NAME", "AZURE_RESOURCE_GROUP", "GRANT_GRAPH_APP_ROLES"} <= read
    provided = bicep_outputs() | parameter_placeholders()
    assert read <= provided, read - provided
    assert not [name for name in read if name not in windows], "the Windows hook reads the same values"


# `az` for the hook and grant tests: tests/infra/fake_az.py behind a thin layer for what they need beyond it.
# `az account show` succeeds unless FAKE_AZ_SIGNED_OUT. Reads of the identity's assignments fail the first
# FAKE_AZ_UNREADABLE times (the identity not replicated yet) or miss what exists the first FAKE_AZ_STALE_READS
# times (a lagging replica). A POST of an assignment that exists is refused, as Graph does; with
# FAKE_AZ_POST_FAILS every POST is refused.
FAKE_AZ_LAYER = """\
import json, os, sys
sys.path.insert(0, sys.argv.pop(1))
import fake_az

argv = sys.argv[1:]
state_path = os.environ["FAKE_AZ_STATE"]
counters_path = state_path + ".counters"


def load(path):
    return json.load(open(path)) if os.path.exists(path) else {}


def spend(name):
    counters = load(counters_path)
    left = counters.get(name, int(os.environ.get(name, "0")))
    counters[name] = max(left - 1, 0)
    json.dump(counters, open(counters_path, "w"))
    return left > 0


def fail(message):
    print("ERROR: " + message, file=sys.stderr)
    sys.exit(1)


if argv[:2] == ["account", "show"]:
    sys.exit(1 if os.environ.get("FAKE_AZ_SIGNED_OUT") else 0)
url = argv[argv.index("--url") + 1] if "--url" in argv else ""
method = argv[argv.index("--method") + 1] if "--method" in argv else "get"
if url.endswith("/appRoleAssignments") and method == "get":
    if spend("FAKE_AZ_UNREADABLE"):
        fail('Not Found({"error":{"code":"Request_ResourceNotFound"}})')
    if spend("FAKE_AZ_STALE_READS"):
        print(0)
        sys.exit(0)
if url.endswith("/appRoleAssignments") and method == "post":
    if os.environ.get("FAKE_AZ_POST_FAILS"):
        fail("Forbidden(Authorization_RequestDenied)")
    body = json.loads(argv[argv.index("--body") + 1])
    held = load(state_path).get("assignments", {}).get(body["principalId"], [])
    if any(a["appRoleId"] == body["appRoleId"] for a in held):
        fail("Bad Request(Permission being assigned already exists on the object)")
sys.exit(fake_az.main(argv))
"""


def _fake_az(tmp_path: Path) -> dict[str, str]:
    """Environment with FAKE_AZ_LAYER as `az` first on PATH (and no real az or azd reachable before it)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    layer = bin_dir / "fake_az_layer.py"
    layer.write_text(FAKE_AZ_LAYER)
    az = bin_dir / "az"
    az.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{layer}" "{FAKE_AZ.parent}" "$@"\n')
    az.chmod(0o755)
    return {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "FAKE_AZ_STATE": str(tmp_path / "az.json"),
        "GRANT_RETRY_DELAY_SECONDS": "0",
    }


PRINCIPAL = "0b9c1a2e-0000-4000-8000-0000000d0c5e"
COMMUNITY_ROLE = "35d59e32-eab5-4553-9345-abb62b4c703c"  # Community.ReadWrite.All in fake_az
GRAPH_SP = "5f0c4b3a-0000-4000-8000-00000000a001"
HOOK_OUTPUTS = {
    "SERVICE_API_URI": "https://func-abc.azurewebsites.net",
    "AZURE_FUNCTION_NAME": "func-abc",
    "AZURE_RESOURCE_GROUP": "rg-dev",
    "MANAGED_IDENTITY_PRINCIPAL_ID": PRINCIPAL,
    "GRAPH_APP_ROLES": "Community.ReadWrite.All",
}


def _run_hook(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    hook = ROOT / _postprovision()["posix"]["run"]
    return subprocess.run([str(hook)], env=env, cwd=ROOT, capture_output=True, text=True, check=False)


def _held(tmp_path: Path) -> list[dict[str, str]]:
    state_path = tmp_path / "az.json"
    if not state_path.exists():
        return []
    held: list[dict[str, str]] = json.loads(state_path.read_text())["assignments"].get(PRINCIPAL, [])
    return held


def _az_calls(tmp_path: Path) -> list[list[str]]:
    state_path = tmp_path / "az.json"
    calls: list[list[str]] = json.loads(state_path.read_text())["calls"] if state_path.exists() else []
    return calls


def test_hook_prints_the_base_url_and_key_command_and_grants_nothing_by_default(tmp_path: Path) -> None:
    done = _run_hook({**_fake_az(tmp_path), **HOOK_OUTPUTS})
    assert done.returncode == 0, done.stderr
    assert "API base URL: https://func-abc.azurewebsites.net/api\n" in done.stdout
    assert (
        'az functionapp keys list -g "rg-dev" -n "func-abc" --query functionKeys.default -o tsv'
        in done.stdout
    )
    assert "GRANT_GRAPH_APP_ROLES is not true" in done.stdout
    assert _az_calls(tmp_path) == []  # printing the command, never running it: no key in any log


def test_hook_runs_the_grant_when_opted_in(tmp_path: Path) -> None:
    done = _run_hook({**_fake_az(tmp_path), **HOOK_OUTPUTS, "GRANT_GRAPH_APP_ROLES": "True"})
    assert done.returncode == 0, done.stderr
    assert "granted: Community.ReadWrite.All" in done.stdout
    assert [a["appRoleId"] for a in _held(tmp_path)] == [COMMUNITY_ROLE]
    again = _run_hook({**_fake_az(tmp_path), **HOOK_OUTPUTS, "GRANT_GRAPH_APP_ROLES": "true"})
    assert again.returncode == 0, again.stderr
    assert "already granted: Community.ReadWrite.All" in again.stdout
    assert len(_held(tmp_path)) == 1


def test_hook_leaves_the_grant_to_an_admin_when_the_cli_is_not_signed_in(tmp_path: Path) -> None:
    env = {**_fake_az(tmp_path), **HOOK_OUTPUTS, "GRANT_GRAPH_APP_ROLES": "true", "FAKE_AZ_SIGNED_OUT": "1"}
    done = _run_hook(env)
    assert done.returncode == 0, done.stderr
    assert f'grant-graph-permissions.sh --principal-id "{PRINCIPAL}"' in done.stderr
    assert _held(tmp_path) == []


def test_hook_fails_without_the_outputs_of_a_provision(tmp_path: Path) -> None:
    env = {**_fake_az(tmp_path), **{k: v for k, v in HOOK_OUTPUTS.items() if k != "SERVICE_API_URI"}}
    done = _run_hook(env)
    assert done.returncode != 0
    assert "SERVICE_API_URI" in done.stderr


# ---- the Graph grant stays idempotent (msgraph-bicep-types #161, #193) ----------------------------------


def _grant(env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "bash",
            str(GRANT_SCRIPT),
            "--principal-id",
            PRINCIPAL,
            "--roles",
            "Community.ReadWrite.All",
            *extra,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_grant_waits_for_an_identity_that_is_not_replicated_yet(tmp_path: Path) -> None:
    done = _grant({**_fake_az(tmp_path), "FAKE_AZ_UNREADABLE": "3", "GRANT_RETRY_ATTEMPTS": "4"})
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("not readable yet") == 3
    assert [a["appRoleId"] for a in _held(tmp_path)] == [COMMUNITY_ROLE]


def test_grant_gives_up_on_an_identity_it_never_reads(tmp_path: Path) -> None:
    done = _grant({**_fake_az(tmp_path), "FAKE_AZ_UNREADABLE": "9", "GRANT_RETRY_ATTEMPTS": "3"})
    assert done.returncode == 1
    assert f"Could not read the app role assignments of {PRINCIPAL}" in done.stderr
    assert _held(tmp_path) == []


def test_grant_counts_an_assignment_it_could_not_see_yet_as_granted(tmp_path: Path) -> None:
    # Made by the Bicep grant moments ago; the first read comes from a replica that does not have it yet, so
    # the POST is refused as a duplicate. That is success, and nothing is added.
    env = _fake_az(tmp_path)
    existing = {"principalId": PRINCIPAL, "resourceId": GRAPH_SP, "appRoleId": COMMUNITY_ROLE}
    (tmp_path / "az.json").write_text(json.dumps({"assignments": {PRINCIPAL: [existing]}}))
    done = _grant({**env, "FAKE_AZ_STALE_READS": "1"})
    assert done.returncode == 0, done.stderr
    assert "already exists" in done.stderr  # az's own message, shown as is
    assert "already granted: Community.ReadWrite.All" in done.stdout
    assert _held(tmp_path) == [existing]


def test_grant_fails_when_a_post_fails_and_the_role_is_still_missing(tmp_path: Path) -> None:
    done = _grant({**_fake_az(tmp_path), "FAKE_AZ_POST_FAILS": "1"})
    assert done.returncode == 1
    assert f"Could not grant Community.ReadWrite.All to {PRINCIPAL}" in done.stderr


def test_graph_module_declares_only_the_key_of_each_assignment() -> None:
    # appRoleAssignedTo (v1.0 1.0.0 types) cannot be updated: a redeploy is a no-op only if the template holds
    # nothing but the key (resource service principal, role, principal), each stable across deployments.
    doc = parse_bicep("modules/graph-app-roles.bicep")
    (assignments,) = [
        r for r in doc["resources"].values() if r["type"] == "Microsoft.Graph/appRoleAssignedTo"
    ]
    assert set(resource_body(assignments)) == {"resourceId", "appRoleId", "principalId"}
    app_role_id = resource_body(assignments)["appRoleId"]["operator"]["operands"]["operand_1"]
    lookup = app_role_id["operator"]["operands"]["operand_1"]["function"]
    assert lookup["type"] == "filter"
    assert lookup["parameters"]["input_array"] == "applicationRoles"
    # The same roles the script picks: offered to applications.
    only_applications = variable(doc, "applicationRoles")["function"]["parameters"]["expression"]["detail"]
    contains = only_applications["expression"]["function"]
    assert contains["type"] == "contains"
    assert contains["parameters"]["item_to_find"] == "Application"
    assert "contains(allowedMemberTypes, 'Application')" in GRANT_SCRIPT.read_text()


def test_main_bicep_never_asks_for_one_role_twice() -> None:
    # Two loop entries with one role would be two creates of one assignment: the second one conflicts.
    main = parse_bicep("main.bicep")
    assert module_config(main, "graphPermissions")["params"]["appRoleNames"] == "graphAppRoles"
    roles = variable(main, "graphAppRoles")["operator"]["operands"]
    for branch in (roles["true_value"], roles["false_value"]):
        assert len(branch) == len(set(branch)), branch


# ---- docs/deploy.md keeps the Graph extension's requirements in step with bicepconfig.json ----------------

# Minimum Bicep per Microsoft Graph Bicep types version (learn.microsoft.com/graph/templates/bicep/whats-new),
# and the first azd release that fetches at least that Bicep (Azure/azure-dev cli/azd/CHANGELOG.md).
GRAPH_TYPES_REQUIREMENTS = {"1.0.0": ("0.36.1", "1.17.0")}


def test_deploy_doc_states_what_the_graph_extension_needs() -> None:
    config = json.loads((INFRA / "bicepconfig.json").read_text(encoding="utf-8"))
    reference = config["extensions"]["microsoftGraphV1"]
    version = reference.rsplit(":", 1)[1]
    assert version in GRAPH_TYPES_REQUIREMENTS, f"{reference}: look up its minimum Bicep and update the docs"
    bicep, azd = GRAPH_TYPES_REQUIREMENTS[version]
    doc = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    assert reference.removeprefix("br:") in doc
    assert f"Bicep {bicep}" in doc
    assert f"azd {azd}" in doc
    assert "what-if" in doc
    assert "does not show" in doc
