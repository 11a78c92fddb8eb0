"""Arguments shared by commands: a request body from --file and flags (`create` over HTTP, `queue-send` over
the queue) and durations."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cli.api import CliError, ExitCode

# Request flags and the JSON fields they set (provisioning/models.py CommunityRequest).
BODY_FLAGS = (
    ("name", "displayName"),
    ("description", "description"),
    ("privacy", "privacy"),
    ("owner", "owners"),
    ("member", "members"),
    ("on_duplicate_name", "onDuplicateName"),
    ("callback_url", "callbackUrl"),
)


def add_body_options(parser: argparse.ArgumentParser) -> None:
    """The fields of a request (provisioning/models.py CommunityRequest) as flags, plus --file."""
    parser.add_argument("--file", metavar="FILE", help="a JSON request body (- reads stdin)")
    parser.add_argument("--name", metavar="TEXT", help="displayName")
    parser.add_argument("--description", metavar="TEXT", help="description")
    parser.add_argument(
        "--privacy", choices=("public", "private"), help="privacy (the app's default: private)"
    )
    parser.add_argument(
        "--owner", action="append", metavar="USER", help="owner UPN or object id (repeat for several)"
    )
    parser.add_argument(
        "--member", action="append", metavar="USER", help="member UPN or object id (repeat for several)"
    )
    parser.add_argument(
        "--on-duplicate-name", choices=("fail", "adopt", "create"), help="onDuplicateName (default: fail)"
    )
    parser.add_argument("--callback-url", metavar="URL", help="callbackUrl (https, an allowed host)")


def read_input(name: str) -> bytes:
    """The bytes of file ``name`` (``-``: stdin); a missing file is a usage error."""
    if name == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(name).read_bytes()
    except OSError as err:
        raise CliError(ExitCode.USAGE, f"cannot read {name}: {err.strerror or err}") from None


def request_body(args: argparse.Namespace) -> dict[str, Any]:
    """The JSON body from --file and the field flags (flags win). Not validated here: the app names every
    problem, and its rules (callback allow-list, limits) are its own."""
    body: Any = {}
    if args.file:
        raw = read_input(args.file)
        try:
            body = json.loads(raw.decode("utf-8-sig"))
        except (UnicodeDecodeError, ValueError) as err:
            raise CliError(ExitCode.USAGE, f"{args.file}: not a UTF-8 JSON file: {err}") from None
        if not isinstance(body, dict):
            raise CliError(ExitCode.USAGE, f"{args.file}: must hold a JSON object")
    for flag, field_name in BODY_FLAGS:
        value = getattr(args, flag)
        if value is not None:
            body[field_name] = value
    return body


def positive_seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {value!r}") from None
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {value!r}")
    return seconds
