"""What the CLI writes: documents as JSON or aligned plain-text tables on stdout, messages and live progress
on stderr, so that ``vecp … -o json | jq`` sees only the document."""

from __future__ import annotations

import json
import shutil
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO

JSON = "json"
TABLE = "table"
OUTPUT_FORMATS = (TABLE, JSON)
# Secrets shorter than this are not masked: replacing every "ab" in the output would garble it, and no real
# key is that short.
MIN_MASKED_SECRET_LENGTH = 4
MASK = "***"

# Columns of the request rows of `vecp list`, of a document's fields, and of a batch's items.
REQUEST_COLUMNS = (
    ("ID", "id"),
    ("STATUS", "status"),
    ("PHASE", "phase"),
    ("CREATED", "createdAt"),
    ("NAME", "displayName"),
    ("RESULT", "result"),
)
FIELD_COLUMNS = (("FIELD", "field"), ("VALUE", "value"))
BATCH_ITEM_COLUMNS = (
    ("INDEX", "index"),
    ("ID", "requestId"),
    ("STATUS", "status"),
    ("NAME", "displayName"),
    ("RESULT", "result"),
)


def cell(value: Any) -> str:
    """One table cell: plain text on one line (descriptions may hold line breaks and tabs)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, Mapping):
        text = " ".join(f"{key}={cell(item)}" for key, item in value.items())
    elif isinstance(value, list):
        text = ", ".join(cell(item) for item in value)
    else:
        text = str(value)
    return "".join(" " if unicodedata.category(char) == "Cc" else char for char in text)


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    """Rows under a header, columns padded to their widest cell, two spaces apart; the last is not padded."""
    lines = [[header for header, _ in columns]]
    lines += [[cell(row.get(key)) for _, key in columns] for row in rows]
    widths = [max(len(line[index]) for line in lines) for index in range(len(columns))]
    rendered = []
    for line in lines:
        padded = [text.ljust(width) for text, width in zip(line[:-1], widths[:-1], strict=True)]
        rendered.append("  ".join([*padded, line[-1]]).rstrip())
    return "\n".join(rendered)


def flatten(document: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    """``(dotted.name, value)`` pairs of a document; nested objects are walked, ``items`` is left out."""
    for key, value in document.items():
        name = f"{prefix}{key}"
        if key == "items" and not prefix:
            continue
        if isinstance(value, Mapping) and value:
            yield from flatten(value, name + ".")
        elif isinstance(value, list) and value and all(isinstance(item, Mapping) for item in value):
            # One line per entry (members.failed[0], timeline[3]): a single cell would run off the screen.
            for index, item in enumerate(value):
                yield f"{name}[{index}]", item
        elif value is not None and value != [] and value != {}:
            yield name, value


def record(document: Mapping[str, Any]) -> str:
    """A document as FIELD / VALUE lines, followed by the table of its ``items`` (a batch) when it has any."""
    text = table([{"field": name, "value": value} for name, value in flatten(document)], FIELD_COLUMNS)
    items = document.get("items")
    if isinstance(items, list) and items and all(isinstance(item, Mapping) for item in items):
        text += "\n\n" + table([with_result(item) for item in items], BATCH_ITEM_COLUMNS)
    return text


def with_result(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row with ``result``: the community id once created, else the error code."""
    return {**row, "result": row.get("communityId") or row.get("errorCode")}


def request_progress(body: Any) -> str:
    """One line of a running request: id, status, phase, Graph's operation, checks and the next check."""
    if not isinstance(body, Mapping):
        return "waiting for an answer"
    parts = [f"{body.get('id', '?')}: {body.get('status', '?')}"]
    if body.get("phase"):
        parts.append(f"phase {body['phase']}")
    operation = _mapping(body.get("operation"))
    if operation.get("status"):
        parts.append(f"Graph operation {operation['status']}")
    if operation.get("checks"):
        parts.append(f"{operation['checks']} check{'s' if operation['checks'] != 1 else ''}")
    if operation.get("nextCheckAt"):
        parts.append(f"next check {operation['nextCheckAt']}")
    return ", ".join(parts)


SETTLED_ITEM_STATUSES = ("Succeeded", "Failed", "Canceled")
BAR_WIDTH = 24


def batch_progress(body: Any) -> str:
    """A progress bar over a batch's items: settled of total, then the counts by status."""
    if not isinstance(body, Mapping):
        return "waiting for an answer"
    if "total" not in body:  # the POST's answer: id and status only
        return f"{body.get('id', '?')}: {body.get('status', '?')}"
    total = int(body.get("total") or 0)
    counts = _mapping(body.get("counts"))
    done = sum(int(counts.get(status) or 0) for status in SETTLED_ITEM_STATUSES)
    filled = BAR_WIDTH * done // total if total else 0
    bar = "#" * filled + "-" * (BAR_WIDTH - filled)
    line = f"{body.get('id', '?')}: [{bar}] {done}/{total} done"
    shown = [f"{status} {count}" for status, count in counts.items() if count]
    if shown:
        line += f" ({', '.join(shown)})"
    if body.get("estimatedCompletionAt"):
        line += f", estimated completion {body['estimatedCompletionAt']}"
    return line


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


class Console:
    """stdout for documents, stderr for messages and progress; every secret is masked on the way out."""

    def __init__(
        self, stdout: TextIO, stderr: TextIO, output: str = TABLE, secrets: Iterable[str] = ()
    ) -> None:
        self.stdout = stdout
        self.stderr = stderr
        self.output = output
        self._secrets = [secret for secret in secrets if len(secret) >= MIN_MASKED_SECRET_LENGTH]
        self._tty = _isatty(stderr)
        self._progress_width = 0
        self._last_progress: str | None = None

    def mask(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text

    def out(self, text: str) -> None:
        self.end_progress()
        self.stdout.write(self.mask(text) + "\n")
        self.stdout.flush()

    def err(self, text: str) -> None:
        self.end_progress()
        self.stderr.write(self.mask(text) + "\n")
        self.stderr.flush()

    def document(self, body: Any) -> None:
        if self.output == JSON or not isinstance(body, Mapping):
            self.out(json.dumps(body, indent=2, ensure_ascii=False))
        else:
            self.out(record(body))

    def rows(self, rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]]) -> None:
        self.out(table([with_result(row) for row in rows], columns))

    def progress(self, text: str) -> None:
        """Live progress: one line rewritten in place on a terminal, else a new line per change (logs)."""
        text = self.mask(text)
        if not self._tty:
            if text != self._last_progress:
                self.stderr.write(text + "\n")
                self.stderr.flush()
            self._last_progress = text
            return
        # A line longer than the terminal wraps, and \r would then only go back to its last row.
        width = shutil.get_terminal_size(fallback=(100, 24)).columns - 1
        text = text if len(text) <= width else text[: width - 3] + "..."
        self.stderr.write("\r" + text.ljust(self._progress_width))
        self.stderr.flush()
        self._progress_width = len(text)

    def end_progress(self) -> None:
        if self._tty and self._progress_width:
            self.stderr.write("\n")
            self.stderr.flush()
        self._progress_width = 0
        self._last_progress = None


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or minimal stream
        return False
