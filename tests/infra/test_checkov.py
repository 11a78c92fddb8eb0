"""checkov's Bicep security checks over infra/, in a virtual environment of its own.

checkov pins pycep-parser 0.5.1 (older than the .venv's 0.7.1), so it cannot share the project venv. It
skips any file its parser cannot read *silently, with exit code 0*: the guard below fails on unexpected parse
failures and checks that the security-relevant files were actually scanned.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra.infra_files import INFRA, ROOT, bicep_files, parse_bicep

CHECKOV_VERSION = "3.3.30"
CHECKOV_VENV = ROOT / ".venv-checkov"  # gitignored by .venv-*/
SKIPS_FILE = INFRA / "checkov-skips.yaml"
# Uses `extension microsoftGraphV1`, which checkov's pycep 0.5.1 cannot parse; it holds only Graph resources,
# for which checkov has no checks anyway. pycep 0.7.1 parses it (test_bicep_structure.py).
ALLOWED_PARSE_FAILURES = {"modules/graph-app-roles.bicep"}
# Resource types checkov has Bicep checks for: a file declaring one must show up in checkov's results.
SCANNED_RESOURCE_TYPES = {
    "Microsoft.Storage/storageAccounts",
    "Microsoft.Web/sites",
    "Microsoft.Web/serverfarms",
}

pytestmark = pytest.mark.timeout(900)  # the first run installs checkov (~1-3 min)


def _installed_checkov_version() -> str | None:
    python = CHECKOV_VENV / "bin" / "python"
    if not python.exists():
        return None
    probe = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('checkov'))"],
        capture_output=True,
        text=True,
        check=False,
    )
    return probe.stdout.strip() if probe.returncode == 0 else None


@pytest.fixture(scope="session")
def checkov() -> Path:
    """The checkov executable, installing it into .venv-checkov unless the right version is already there."""
    # Test sessions running side by side in one checkout must not build the venv over each other.
    with open(Path(tempfile.gettempdir()) / "viva-provisioner-checkov-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _installed_checkov_version() != CHECKOV_VERSION:
            _install_checkov()
    return CHECKOV_VENV / "bin" / "checkov"


def _install_checkov() -> None:
    shutil.rmtree(CHECKOV_VENV, ignore_errors=True)
    python = str(CHECKOV_VENV / "bin" / "python")
    for step in (
        [sys.executable, "-m", "venv", str(CHECKOV_VENV)],
        [python, "-m", "pip", "install", "--quiet", f"checkov=={CHECKOV_VERSION}"],
    ):
        done = subprocess.run(step, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            shutil.rmtree(CHECKOV_VENV, ignore_errors=True)
            pytest.fail(f"could not install checkov: {' '.join(step)}\n{done.stderr[-3000:]}")


@pytest.fixture(scope="session")
def checkov_report(checkov: Path) -> dict[str, Any]:
    done = subprocess.run(
        [
            str(checkov),
            "--directory",
            str(INFRA),
            "--framework",
            "bicep",
            "--output",
            "json",
            "--skip-download",
        ],
        capture_output=True,
        text=True,
        check=False,
        # Offline: don't fetch check guidelines from the vendor's API.
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )
    assert done.returncode in (0, 1), f"checkov crashed ({done.returncode}):\n{done.stderr[-3000:]}"
    report = json.loads(done.stdout)
    # One framework gives one report dict; checkov returns a list when it ran several.
    return report if isinstance(report, dict) else report[0]


def _skips() -> dict[str, str]:
    skips: dict[str, str] = yaml.safe_load(SKIPS_FILE.read_text(encoding="utf-8"))
    return skips


def test_every_skip_has_a_one_line_reason() -> None:
    skips = _skips()
    assert skips, "the skip list is empty: delete the file rather than keep an empty one"
    for check_id, reason in skips.items():
        assert check_id.startswith("CKV_"), check_id
        assert isinstance(reason, str), check_id
        assert reason.strip(), f"{check_id} has no reason"
        assert "\n" not in reason.strip(), f"{check_id}: keep the reason to one line"


def test_checkov_parsed_every_bicep_file_but_the_allowed_one(checkov_report: dict[str, Any]) -> None:
    failed_to_parse = {os.path.relpath(path, INFRA) for path in checkov_report["results"]["parsing_errors"]}
    assert failed_to_parse == ALLOWED_PARSE_FAILURES, (
        "checkov skips files it cannot parse (exit 0): keep infra/ in pycep-parser 0.5.1 syntax (no import, "
        f"func, typed params, nested child loops); unexpected: {failed_to_parse - ALLOWED_PARSE_FAILURES}"
    )


def test_checkov_scanned_every_file_with_checked_resources(checkov_report: dict[str, Any]) -> None:
    results = checkov_report["results"]
    reported = {r["file_path"].lstrip("/") for r in results["passed_checks"] + results["failed_checks"]}
    present = {str(path.relative_to(INFRA)) for path in bicep_files()}
    assert reported <= present
    expected = {
        name
        for name in present - ALLOWED_PARSE_FAILURES
        if any(
            r["type"] in SCANNED_RESOURCE_TYPES and not r["existing"]
            for r in parse_bicep(name)["resources"].values()
        )
    }
    assert expected, "no file declares a storage account, plan or site"
    assert expected <= reported, f"checkov reported nothing for {expected - reported}"


def test_no_failed_check_outside_the_skip_list(checkov_report: dict[str, Any]) -> None:
    failed = checkov_report["results"]["failed_checks"]
    skips = _skips()
    unexpected = [
        f"{c['check_id']} {c['check_name']} ({c['file_path']}: {c['resource']})"
        for c in failed
        if c["check_id"] not in skips
    ]
    assert not unexpected, "fix these or list them in infra/checkov-skips.yaml with a reason:\n" + "\n".join(
        unexpected
    )
    stale = set(skips) - {c["check_id"] for c in failed}
    assert not stale, (
        f"these skips no longer fail; remove them from infra/checkov-skips.yaml: {sorted(stale)}"
    )
