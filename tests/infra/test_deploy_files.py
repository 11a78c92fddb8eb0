"""azd and func deployment files: azure.yaml, main.parameters.json, bicepconfig.json, .funcignore, the Graph
permissions script and the settings table of docs/deploy.md."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.infra.infra_files import INFRA, ROOT, parse_bicep, required_parameters, variable

AZD_PLACEHOLDER = re.compile(r"^\$\{(?P<name>[A-Z_][A-Z0-9_]*)(?:=(?P<default>.*))?\}$")
GRANT_SCRIPT = INFRA / "scripts" / "grant-graph-permissions.sh"
# What the deployment package holds; anything else at the top level must be excluded by .funcignore.
DEPLOYED = {
    "function_app.py",
    "host.json",
    "requirements.txt",
    "triggers",
    "orchestrators",
    "activities",
    "entities",
    "provisioning",
}
NEVER_DEPLOYED = {
    "tests",
    "infra",
    "docs",
    "devhost",
    "graph_simulator",
    "bench",
    "cli",
    "connector",
    "openapi",
    "node_modules",
    ".venv",
    ".venv-checkov",
    "local.settings.json",
    "local.settings.sample.json",
}


def test_azure_yaml_declares_the_function_service() -> None:
    config = yaml.safe_load((ROOT / "azure.yaml").read_text(encoding="utf-8"))
    assert config["services"] == {"api": {"project": ".", "language": "python", "host": "function"}}


def test_parameters_file_uses_azd_placeholders_for_main_bicep_parameters() -> None:
    document = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))
    declared = parse_bicep("main.bicep")["parameters"]
    required = required_parameters(declared)
    assert required <= set(document["parameters"])
    for name, entry in document["parameters"].items():
        assert name in declared, f"{name} is not a main.bicep parameter"
        match = AZD_PLACEHOLDER.match(str(entry["value"]))
        assert match, f"{name}: use azd's ${{VAR}} or ${{VAR=default}} form"
        if match["default"] is not None:
            # azd substitutes the default as a string: it must equal the Bicep default.
            bicep_default = declared[name]["default"]
            expected = str(bicep_default).lower() if isinstance(bicep_default, bool) else str(bicep_default)
            assert match["default"] == expected, f"{name}: {match['default']!r} != Bicep default {expected!r}"


def test_bicepconfig_is_json_with_the_graph_extension() -> None:
    config = json.loads((INFRA / "bicepconfig.json").read_text(encoding="utf-8"))
    assert "microsoftGraphV1" in config["extensions"]


def _funcignore_patterns() -> list[str]:
    lines = (ROOT / ".funcignore").read_text(encoding="utf-8").splitlines()
    return [line.strip().rstrip("/") for line in lines if line.strip() and not line.startswith("#")]


def _excluded(name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in patterns)


def test_funcignore_keeps_dev_files_out_and_the_app_in() -> None:
    patterns = _funcignore_patterns()
    assert not [name for name in DEPLOYED if _excluded(name, patterns)]
    assert not [name for name in NEVER_DEPLOYED if not _excluded(name, patterns)]


def test_funcignore_excludes_every_other_top_level_file() -> None:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    top_level = {path.split("/", 1)[0] for path in listed}
    patterns = _funcignore_patterns()
    shipped = {name for name in top_level if not _excluded(name, patterns)} - DEPLOYED
    assert not shipped, f"add these to .funcignore (or to DEPLOYED if the app needs them): {sorted(shipped)}"


def test_grant_script_is_valid_bash_and_grants_what_bicep_grants() -> None:
    subprocess.run(["bash", "-n", str(GRANT_SCRIPT)], check=True)
    assert os.access(GRANT_SCRIPT, os.X_OK)
    match = re.search(
        r'^readonly ALL_ROLES="([^"]+)"', GRANT_SCRIPT.read_text(encoding="utf-8"), re.MULTILINE
    )
    assert match
    roles = variable(parse_bicep("main.bicep"), "graphAppRoles")["operator"]["operands"]["true_value"]
    assert match[1].split(",") == roles


def test_grant_script_refuses_to_run_without_a_principal(tmp_path: Path) -> None:
    # An empty PATH: neither az nor azd can be reached, so nothing can touch a real tenant.
    bash = shutil.which("bash")
    assert bash
    env = {"PATH": str(tmp_path), "HOME": str(tmp_path)}
    done = subprocess.run([bash, str(GRANT_SCRIPT)], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert "--principal-id" in done.stderr
    done = subprocess.run(
        [bash, str(GRANT_SCRIPT), "--bogus"], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert "unknown argument: --bogus" in done.stderr


def test_deploy_doc_lists_every_app_setting() -> None:
    doc = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    table = {
        m for line in doc.splitlines() if line.startswith("| `") for m in re.findall(r"`([A-Za-z_]+)`", line)
    }
    code_settings = set(variable(parse_bicep("main.bicep"), "appSettings"))
    platform = {
        name
        for name in variable(parse_bicep("modules/function-app.bicep"), "platformAppSettings")
        if "__" not in name
    }
    assert code_settings | platform <= table, sorted((code_settings | platform) - table)
    assert "AzureWebJobsStorage__credential" in table


def _run_grant_script(
    tmp_path: Path, *args: str, principal: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Runs the script with `az` = tests/infra/fake_az.py (the real CLI's --query via jmespath) on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "az"
    fake.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{Path(__file__).parent / "fake_az.py"}" "$@"\n')
    fake.chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "FAKE_AZ_STATE": str(tmp_path / "az.json"),
    }
    if principal:
        env["MANAGED_IDENTITY_PRINCIPAL_ID"] = principal
    return subprocess.run(
        ["bash", str(GRANT_SCRIPT), *args], env=env, capture_output=True, text=True, check=False
    )


def _assignments(tmp_path: Path, principal: str) -> list[dict[str, str]]:
    state = json.loads((tmp_path / "az.json").read_text())
    assignments: list[dict[str, str]] = state["assignments"].get(principal, [])
    return assignments


def test_grant_script_grants_each_role_once(tmp_path: Path) -> None:
    principal = "0b9c1a2e-0000-4000-8000-00000000beef"
    first = _run_grant_script(tmp_path, principal=principal)
    assert first.returncode == 0, first.stderr
    granted = _assignments(tmp_path, principal)
    assert {a["appRoleId"] for a in granted} == {
        "35d59e32-eab5-4553-9345-abb62b4c703c",  # Community.ReadWrite.All
        "df021288-bdef-4463-88db-98f22de89214",  # User.Read.All
        "dbaae8cf-10b5-4b86-a4a1-f871c94c6695",  # GroupMember.ReadWrite.All
    }
    assert {(a["principalId"], a["resourceId"]) for a in granted} == {
        (principal, "5f0c4b3a-0000-4000-8000-00000000a001")
    }
    again = _run_grant_script(tmp_path, principal=principal)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("already granted") == 3
    assert len(_assignments(tmp_path, principal)) == 3


def test_grant_script_grants_only_the_roles_asked_for(tmp_path: Path) -> None:
    principal = "0b9c1a2e-0000-4000-8000-00000000cafe"
    done = _run_grant_script(tmp_path, "--principal-id", principal, "--roles", "Community.ReadWrite.All")
    assert done.returncode == 0, done.stderr
    assert [a["appRoleId"] for a in _assignments(tmp_path, principal)] == [
        "35d59e32-eab5-4553-9345-abb62b4c703c"
    ]


def test_grant_script_rejects_a_role_graph_does_not_offer_to_applications(tmp_path: Path) -> None:
    principal = "0b9c1a2e-0000-4000-8000-00000000f00d"
    done = _run_grant_script(tmp_path, "--roles", "Delegated.Only", principal=principal)
    assert done.returncode == 1
    assert "no application permission named Delegated.Only" in done.stderr
    assert _assignments(tmp_path, principal) == []
