"""A stand-in for the Azure CLI commands grant-graph-permissions.sh uses, over an in-memory directory.

Run as `python fake_az.py <az arguments>`. It answers `az cloud show` and `az rest` against Microsoft Graph's
documented response shapes, applies `--query` with jmespath exactly as the real CLI does, and prints `-o tsv`
like the CLI. State (existing app role assignments) and a log of the calls live in the JSON file named by
FAKE_AZ_STATE, so a test can seed assignments and inspect what the script posted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import jmespath  # type: ignore[import-untyped]

GRAPH = "https://graph.microsoft.com/v1.0"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
GRAPH_SP_ID = "5f0c4b3a-0000-4000-8000-00000000a001"
APP_ROLES = [
    {
        "value": "Community.ReadWrite.All",
        "id": "35d59e32-eab5-4553-9345-abb62b4c703c",
        "allowedMemberTypes": ["Application"],
    },
    {
        "value": "User.Read.All",
        "id": "df021288-bdef-4463-88db-98f22de89214",
        "allowedMemberTypes": ["Application"],
    },
    {
        "value": "GroupMember.ReadWrite.All",
        "id": "dbaae8cf-10b5-4b86-a4a1-f871c94c6695",
        "allowedMemberTypes": ["Application"],
    },
    # A delegated-only role of the same name shape: the script must not pick it.
    {"value": "Delegated.Only", "id": "11111111-0000-4000-8000-000000000000", "allowedMemberTypes": ["User"]},
]


def main(argv: list[str]) -> int:
    state_path = Path(os.environ["FAKE_AZ_STATE"])
    state: dict[str, Any] = json.loads(state_path.read_text()) if state_path.exists() else {}
    state.setdefault("assignments", {})
    state.setdefault("calls", [])
    state["calls"].append(argv)
    try:
        _print_tsv(_run(argv, state))
    except CliError as error:
        print(error.message, file=sys.stderr)
        return error.exit_code
    finally:
        state_path.write_text(json.dumps(state))
    return 0


class CliError(Exception):
    def __init__(self, exit_code: int, message: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.message = message


def _run(argv: list[str], state: dict[str, Any]) -> Any:
    parser = argparse.ArgumentParser(prog="az")
    parser.add_argument("group")
    parser.add_argument("command", nargs="?")
    parser.add_argument("--method", default="get")
    parser.add_argument("--url")
    parser.add_argument("--query")
    parser.add_argument("--headers")
    parser.add_argument("--body")
    parser.add_argument("-o", "--output")
    args = parser.parse_args(argv)
    if (args.group, args.command) == ("cloud", "show"):
        return _query({"endpoints": {"microsoftGraphResourceId": "https://graph.microsoft.com/"}}, args.query)
    if args.group == "rest" and args.command is None:
        return _rest(args.method.lower(), args.url, args.body, args.query, state)
    raise CliError(2, f"fake az: unsupported command {argv}")


def _rest(method: str, url: str, body: str | None, query: str | None, state: dict[str, Any]) -> Any:
    path = url.removeprefix(GRAPH)
    if method == "get" and path == f"/servicePrincipals(appId='{GRAPH_APP_ID}')":
        return _query({"id": GRAPH_SP_ID, "appId": GRAPH_APP_ID, "appRoles": APP_ROLES}, query)
    if method == "get" and path == f"/servicePrincipals/{GRAPH_SP_ID}?$select=appRoles":
        return _query({"appRoles": APP_ROLES}, query)
    if path.startswith("/servicePrincipals/") and path.endswith("/appRoleAssignments"):
        principal = path.split("/")[2]
        assignments = state["assignments"].setdefault(principal, [])
        if method == "get":
            return _query({"value": assignments}, query)
        if method == "post" and body is not None:
            assignment = json.loads(body)
            if assignment["principalId"] != principal:
                raise CliError(1, "Bad Request: principalId differs from the URL")
            assignments.append(assignment)
            return None
    raise CliError(3, f"fake az: no route for {method.upper()} {url}")


def _query(document: Any, query: str | None) -> Any:
    return jmespath.search(query, document) if query else document


def _print_tsv(value: Any) -> None:
    if value is None:
        return
    if isinstance(value, str | int | float):
        print(value)
    else:
        print(json.dumps(value))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
