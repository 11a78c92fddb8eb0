"""Bulk provisioning input: parse and validate a batch of community requests (JSON or CSV).

A batch is all-or-nothing: every item is validated with ``validate_request`` (the rules of a single request
live in ``provisioning.models`` only), and one bad item rejects the batch with every error, each located by
item (``items[3].owners[1]``) or CSV row and column (``row 4 (line 5), column owners, entry 2``).

CSV files come from spreadsheets and errors go back to them, so no error may start a spreadsheet formula
(CSV injection): values are echoed only inside quotes, and a quoted value starting with ``= + - @`` (or their
full-width forms, a tab or a carriage return) gets an apostrophe in front, as spreadsheets escape formulas.
Such values are not rejected: they are valid community names and a single request accepts them too.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from provisioning.callbacks import CallbackPolicy, CallbackUrlError
from provisioning.models import (
    MAX_BODY_BYTES,
    MAX_REPORTED_ERRORS,
    BodyTooLargeError,
    CommunityRequest,
    RequestValidationError,
    split_users,
    validate_request,
)

# The app makes both limits settings; these are the defaults.
MAX_BATCH_ITEMS = 1000
# 1,000 ordinary requests take well under 4 MiB; the headroom is for member lists. Each item is still held to
# a single request's MAX_BODY_BYTES.
MAX_BATCH_BODY_BYTES = 8 * 1024 * 1024

BatchFormat = Literal["json", "csv"]

CSV_COLUMNS = ("displayName", "description", "privacy", "owners", "members", "onDuplicateName")
_COLUMN_BY_KEY = {column.casefold(): column for column in CSV_COLUMNS}
_USER_LIST_COLUMNS = frozenset({"owners", "members"})
_JSON_FIELDS = frozenset({"items", "callbackUrl"})
# Six columns are known; spreadsheets add empty ones. The bound, with the row limit, keeps the work on a
# hostile body of a few MiB to milliseconds.
MAX_CSV_COLUMNS = 64

# Other items named in one duplicate-name error; a thousand copies of a name must not make a huge message.
MAX_LISTED_DUPLICATES = 10
MAX_SHOWN_LENGTH = 64

# Characters that make a spreadsheet read a cell as a formula (OWASP's list, plus full-width forms that some
# locales convert), at the start of the text or right after an opening quote of an echoed value.
_FORMULA_START = re.compile("(^|[\"'])(?=[=+\\-@\t\r\uff1d\uff0b\uff0d\uff20])")
_SURROGATE = re.compile("[\ud800-\udfff]")
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A field path from validate_request that names a column: ``owners`` or ``owners[3]``.
_MODEL_FIELD = re.compile(r"([A-Za-z]+)(?:\[(\d+)\])?")

# RFC 4180 cells. Spaces around a quoted cell are tolerated (hand-written files have them); a quote inside an
# unquoted cell or text after a closing quote is an error, as the cell's end would be a guess.
_QUOTED_CELL = re.compile(r'[ \t]*"([^"]*(?:""[^"]*)*)"[ \t]*')
_OPENING_QUOTE = re.compile(r'[ \t]*"')
_PLAIN_CELL = re.compile(r'[^,"\r\n]*')
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class BatchRequest:
    """A validated batch. Item ``i`` is ``items[i]`` of a JSON batch and data row ``i + 1`` of a CSV one."""

    items: tuple[CommunityRequest, ...]
    callback_url: str | None
    source_format: BatchFormat


class BatchValidationError(RequestValidationError):
    """The batch is invalid; ``errors`` lists ``{"field", "message"}`` entries like a single request's."""


class BatchTooLargeError(BatchValidationError, BodyTooLargeError):
    """The body exceeds the batch byte limit (HTTP answers 413, as for a single request)."""


class UnsupportedMediaTypeError(ValueError):
    """The Content-Type is neither JSON nor CSV in UTF-8 (HTTP answers 415); ``errors`` names the header."""

    def __init__(self, media_type: str | None, message: str) -> None:
        self.media_type = media_type
        self.errors = [{"field": "Content-Type", "message": message}]
        super().__init__(f"Content-Type: {message}")


def parse_batch(
    body: bytes,
    content_type: str | None,
    *,
    max_items: int = MAX_BATCH_ITEMS,
    max_bytes: int = MAX_BATCH_BODY_BYTES,
    callback_policy: CallbackPolicy | None = None,
) -> BatchRequest:
    """Parse and validate a batch sent as ``application/json`` or ``text/csv`` (UTF-8).

    Raises ``UnsupportedMediaTypeError`` for any other Content-Type, ``BatchTooLargeError`` over ``max_bytes``
    and ``BatchValidationError`` listing every other problem. ``callback_policy`` defaults to the settings'.
    """
    batch_format = _batch_format(content_type)
    if len(body) > max_bytes:
        message = f"must be at most {max_bytes} bytes, got {len(body)}"
        raise BatchTooLargeError([_error("body", message)])
    policy = callback_policy or CallbackPolicy.from_settings()
    if batch_format == "json":
        return _parse_json_batch(body, max_items, policy)
    return _parse_csv_batch(body, max_items, policy)


def batch_hash(batch: BatchRequest) -> str:
    """SHA-256 of the validated batch in canonical form, for Idempotency-Key conflicts.

    Like ``idempotency.body_hash`` it hashes the validated items, so formatting, trimming and duplicate owners
    do not count, and neither does the format: the same items sent as JSON or as CSV are the same batch.
    """
    canonical = {
        "callbackUrl": batch.callback_url,
        "items": [item.model_dump(by_alias=True, mode="json") for item in batch.items],
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


# ----------------------------------------------------------------------------------------------------
# Shared: content type, errors, item validation


def _batch_format(content_type: str | None) -> BatchFormat:
    supported = "send application/json or text/csv"
    if content_type is None or not content_type.strip():
        raise UnsupportedMediaTypeError(None, f"is required: {supported}")
    media_type, *parameters = content_type.split(";")
    media_type = media_type.strip().lower()
    batch_format: BatchFormat
    if media_type == "application/json":
        batch_format = "json"
    elif media_type == "text/csv":
        batch_format = "csv"
    else:
        raise UnsupportedMediaTypeError(media_type, f"is not supported ({_quoted(media_type)}); {supported}")
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        charset = value.strip().strip('"').lower()
        if name.strip().lower() == "charset" and charset not in ("utf-8", "utf8"):
            message = f"has a charset that is not supported ({_quoted(charset)}); send UTF-8"
            raise UnsupportedMediaTypeError(media_type, message)
    return batch_format


def _shortened(text: str) -> str:
    return text if len(text) <= MAX_SHOWN_LENGTH else text[: MAX_SHOWN_LENGTH - 3] + "..."


def _quoted(text: str) -> str:
    """``text`` shortened and quoted, with control characters and lone surrogates escaped as in JSON."""
    quoted = json.dumps(_shortened(text), ensure_ascii=False)
    return _SURROGATE.sub(lambda match: f"\\u{ord(match.group()):04x}", quoted)


def _neutralised(text: str) -> str:
    return _FORMULA_START.sub(r"\1'", text)


def _error(field: str, message: str) -> dict[str, str]:
    return {"field": field, "message": message}


def _fail(errors: list[dict[str, str]]) -> BatchValidationError:
    shown = [_error(_neutralised(e["field"]), _neutralised(e["message"])) for e in errors]
    if len(shown) > MAX_REPORTED_ERRORS:
        hidden = len(shown) - MAX_REPORTED_ERRORS
        shown = [*shown[:MAX_REPORTED_ERRORS], _error("body", f"{hidden} more errors not shown")]
    return BatchValidationError(shown)


class _Locator(Protocol):
    """Names an item, and a field of an item as ``validate_request`` names it, in the batch's own terms."""

    def item(self, index: int) -> str: ...

    def field(self, index: int, path: str) -> str: ...


class _JsonLocator:
    def item(self, index: int) -> str:
        return f"items[{index}]"

    def field(self, index: int, path: str) -> str:
        if path == "body":
            return self.item(index)
        return self.item(index) + (path if path.startswith("[") else f".{path}")


class _CsvLocator:
    def __init__(self, lines: Sequence[int], user_positions: Sequence[Mapping[str, list[int]]]) -> None:
        self._lines = lines
        # Per row and user column: 1-based position in the cell of each entry passed on (empty ones are not).
        self._user_positions = user_positions

    def item(self, index: int) -> str:
        return _row_label(index + 1, self._lines[index])

    def field(self, index: int, path: str) -> str:
        match = _MODEL_FIELD.fullmatch(path)
        if path == "body" or match is None:
            return self.item(index)
        column, entry = match.group(1), match.group(2)
        label = f"{self.item(index)}, column {column}"
        positions = self._user_positions[index].get(column)
        if entry is not None and positions is not None and int(entry) < len(positions):
            label += f", entry {positions[int(entry)]}"
        return label


def _row_label(row: int, line: int) -> str:
    return f"row {row} (line {line})"


def _validate_items(
    raw_items: Sequence[Mapping[str, Any] | None], locator: _Locator, policy: CallbackPolicy
) -> tuple[list[CommunityRequest], list[dict[str, str]]]:
    """The validated items and the errors of every item (duplicate display names included), in item order.

    A None item was already found unreadable: it only keeps the other items' indexes.
    """
    items: list[CommunityRequest] = []
    errors_by_item: list[list[dict[str, str]]] = [[] for _ in raw_items]
    for index, raw in enumerate(raw_items):
        if raw is None:
            continue
        errors = errors_by_item[index]
        size = len(
            json.dumps(raw, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")
        )
        if size > MAX_BODY_BYTES:
            message = f"must be at most {MAX_BODY_BYTES} bytes as JSON, like a single request, got {size}"
            errors.append(_error(locator.item(index), message))
        try:
            items.append(validate_request(raw, callback_policy=policy))
        except RequestValidationError as err:
            errors.extend(_error(locator.field(index, e["field"]), e["message"]) for e in err.errors)
    for index, message in _duplicate_name_errors(raw_items, locator):
        errors_by_item[index].append(_error(locator.field(index, "displayName"), message))
    return items, [error for errors in errors_by_item for error in errors]


def _duplicate_name_errors(
    raw_items: Sequence[Mapping[str, Any] | None], locator: _Locator
) -> list[tuple[int, str]]:
    # Read from the raw items, as validate_request trims and compares, so that an item with other errors is
    # still checked and the caller sees every error at once.
    groups: dict[str, list[int]] = {}
    for index, raw in enumerate(raw_items):
        name = raw.get("displayName") if raw is not None else None
        if isinstance(name, str) and name.strip():
            groups.setdefault(name.strip().casefold(), []).append(index)
    found = []
    for indexes in groups.values():
        for index in indexes:
            choice = (raw_items[index] or {}).get("onDuplicateName")
            if len(indexes) == 1 or (isinstance(choice, str) and choice.strip().lower() == "create"):
                continue
            others = [locator.item(other) for other in indexes if other != index]
            listed = ", ".join(others[:MAX_LISTED_DUPLICATES])
            if len(others) > MAX_LISTED_DUPLICATES:
                listed += f" and {len(others) - MAX_LISTED_DUPLICATES} more"
            message = (
                f"is also the display name of {listed}, ignoring case and surrounding spaces; "
                "set onDuplicateName to create on each item that should create its community anyway"
            )
            found.append((index, message))
    return sorted(found)


# ----------------------------------------------------------------------------------------------------
# JSON


class _DuplicateKeyError(ValueError):
    pass


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(f"has the field {_quoted(key)} more than once")
        result[key] = value
    return result


def _load_json(body: bytes) -> Any:
    def body_error(message: str) -> BatchValidationError:
        return _fail([_error("body", message)])

    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise body_error("must be UTF-8 encoded JSON") from None
    if not text.strip():
        raise body_error("must not be empty")
    try:
        return json.loads(text, object_pairs_hook=_reject_duplicate_keys)
    except _DuplicateKeyError as err:
        raise body_error(str(err)) from None
    except ValueError as err:
        raise body_error(f"is not valid JSON: {err}") from None
    except RecursionError:
        raise body_error("is nested too deeply") from None


def _json_field(key: str) -> str:
    if _PLAIN_NAME.fullmatch(key) and len(key) <= MAX_SHOWN_LENGTH:
        return key
    return f"[{_quoted(key)}]"


def _callback_url(value: Any, policy: CallbackPolicy) -> tuple[str | None, list[dict[str, str]]]:
    """The batch's callback URL checked like a single request's (blank or null: none)."""
    if value is None:
        return None, []
    if not isinstance(value, str):
        return None, [_error("callbackUrl", "must be a string")]
    if _SURROGATE.search(value):
        return None, [_error("callbackUrl", "must be valid Unicode (it holds a lone surrogate escape)")]
    if not value.strip():
        return None, []
    try:
        return policy.check_url(value.strip()), []
    except CallbackUrlError as err:
        return None, [_error("callbackUrl", str(err))]


def _parse_json_batch(body: bytes, max_items: int, policy: CallbackPolicy) -> BatchRequest:
    data = _load_json(body)
    if not isinstance(data, dict):
        raise _fail([_error("body", 'must be a JSON object with an "items" array')])
    items = data.get("items")
    if isinstance(items, list) and len(items) > max_items:
        raise _fail([_error("items", f"must hold at most {max_items} items, got {len(items)}")])
    errors = [_error(_json_field(key), "is not a known field") for key in data if key not in _JSON_FIELDS]
    callback_url, callback_errors = _callback_url(data.get("callbackUrl"), policy)
    errors.extend(callback_errors)
    if "items" not in data:
        errors.append(_error("items", "is required"))
    elif not isinstance(items, list):
        errors.append(_error("items", "must be an array"))
    elif not items:
        errors.append(_error("items", "must hold at least one item"))
    else:
        raw_items: list[Mapping[str, Any] | None] = []
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                errors.append(_error(f"items[{index}]", "must be a JSON object"))
                item = None
            elif "callbackUrl" in item:
                # One callback for the batch; per-item callbacks would be a thousand POSTs to one flow.
                message = "is not allowed on an item; set callbackUrl on the batch"
                errors.append(_error(f"items[{index}].callbackUrl", message))
                item = {key: value for key, value in item.items() if key != "callbackUrl"}
            raw_items.append(item)
        validated, item_errors = _validate_items(raw_items, _JsonLocator(), policy)
        errors.extend(item_errors)
        if not errors:
            return BatchRequest(tuple(validated), callback_url, "json")
    raise _fail(errors)


# ----------------------------------------------------------------------------------------------------
# CSV


@dataclass(frozen=True)
class _Record:
    line: int  # where the record starts; quoted cells may span lines
    cells: list[str]


class _CsvSyntaxError(ValueError):
    """Bad quoting or a cell too many: cell ``cell`` (0-based) of the record at ``line`` after ``records``."""

    def __init__(self, records: list[_Record], cell: int, line: int, message: str) -> None:
        self.records, self.cell, self.line = records, cell, line
        super().__init__(message)


class _TooManyRowsError(ValueError):
    def __init__(self, line: int) -> None:
        self.line = line
        super().__init__(line)


def _records(text: str, max_rows: int) -> list[_Record]:
    """RFC 4180 records; line breaks are CRLF, LF or CR, and a final line break ends the last record.

    Trailing rows without content are left out; ``_TooManyRowsError`` after ``max_rows`` data rows.
    """
    records: list[_Record] = []
    pos, line = 0, 1
    # Past this point only empty cells and line breaks are left (spreadsheets end files with empty rows).
    end = len(text.rstrip(" \t\r\n,"))
    while pos < end:
        if len(records) > max_rows:
            raise _TooManyRowsError(line)
        record = _Record(line, [])
        while True:
            if len(record.cells) == MAX_CSV_COLUMNS:
                message = f"is one too many: a row has at most {MAX_CSV_COLUMNS} columns"
                raise _CsvSyntaxError(records, MAX_CSV_COLUMNS, record.line, message)
            quoted = _QUOTED_CELL.match(text, pos)
            if quoted:
                record.cells.append(quoted.group(1).replace('""', '"'))
                line += len(_LINE_BREAK.findall(quoted.group(1)))
                pos = quoted.end()
            elif _OPENING_QUOTE.match(text, pos):
                message = "has a quote that is never closed"
                raise _CsvSyntaxError(records, len(record.cells), record.line, message)
            else:
                plain = _PLAIN_CELL.match(text, pos)
                assert plain is not None  # the pattern matches the empty string
                record.cells.append(plain.group())
                pos = plain.end()
            if pos == len(text):
                break
            if text[pos] == ",":
                pos += 1
                continue
            line_break = _LINE_BREAK.match(text, pos)
            if line_break:
                pos, line = line_break.end(), line + 1
                break
            if quoted:
                message = 'has text after its closing quote; write a quote inside a quoted cell as ""'
            else:
                message = (
                    'has a quote but does not start with one; quote the whole cell and write its quotes as ""'
                )
            raise _CsvSyntaxError(records, len(record.cells) - 1, record.line, message)
        records.append(record)
    return records


def _blank(cells: Sequence[str]) -> bool:
    return all(not cell.strip() for cell in cells)


def _cell_problem(cell: str) -> str | None:
    """Why a cell cannot be read as text, without echoing it."""
    if "\x00" in cell:
        return "contains a NUL byte; save the file as CSV UTF-8 text"
    escaped = _SURROGATE.search(cell)
    if escaped:
        # Decoding with surrogateescape turned each byte that is not UTF-8 into U+DC80..U+DCFF.
        byte = ord(escaped.group()) - 0xDC00
        return f"is not UTF-8 text (byte 0x{byte:02X}); save the file as CSV UTF-8"
    return None


class _Header:
    def __init__(self, cells: list[str]) -> None:
        self.width = len(cells)
        self.index: dict[str, int] = {}  # canonical column name -> position
        self.unnamed: set[int] = set()
        self.errors: list[dict[str, str]] = []
        for position, cell in enumerate(cells):
            field = f"header, column {position + 1}"
            key = cell.strip().casefold()
            column = _COLUMN_BY_KEY.get(key)
            problem = _cell_problem(cell)
            if problem:
                self.errors.append(_error(field, problem))
            elif not key:
                self.unnamed.add(position)  # ignored while empty in every row: spreadsheets add such columns
            elif column is None:
                known = ", ".join(CSV_COLUMNS)
                self.errors.append(_error(field, f"is not a known column ({_quoted(cell)}); use {known}"))
            elif column in self.index:
                message = f"repeats column {self.index[column] + 1} ({column})"
                self.errors.append(_error(field, message))
            else:
                self.index[column] = position
        if "displayName" not in self.index:
            self.errors.append(_error("header", "must have a displayName column"))

    def label(self, position: int) -> str:
        for column, index in self.index.items():
            if index == position:
                return column
        return str(position + 1)


def _row_structure_errors(header: _Header, row: int, record: _Record) -> list[dict[str, str]]:
    where = _row_label(row, record.line)
    if _blank(record.cells):
        return [_error(where, "is empty; remove empty rows between the data rows")]
    errors = []
    count = len(record.cells)
    if count < header.width:
        message = (
            f"is missing: the row ends after {count} of the header's {header.width} columns "
            "(a comma too few, or a line break outside quotes?)"
        )
        errors.append(_error(f"{where}, column {header.label(count)}", message))
    elif count > header.width:
        message = f"is beyond the header's {header.width} columns (a comma that should be quoted?)"
        errors.append(_error(f"{where}, column {count}", message))
    for position, cell in enumerate(record.cells[: header.width]):
        problem = _cell_problem(cell)
        if problem is None and position in header.unnamed and cell.strip():
            problem = "has a value but its column has no name in the header"
        if problem:
            errors.append(_error(f"{where}, column {header.label(position)}", problem))
    return errors


def _split_users(cell: str) -> tuple[list[str], list[int]]:
    """The non-empty entries of a cell (split as a request's string of users is), and the 1-based position of
    each among all its entries."""
    entries = split_users(cell)
    return [entry for _, entry in entries], [position for position, _ in entries]


def _parse_csv_batch(body: bytes, max_items: int, policy: CallbackPolicy) -> BatchRequest:
    def body_error(message: str) -> BatchValidationError:
        return _fail([_error("body", message)])

    if body.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise body_error("is UTF-16 text; save the file as CSV UTF-8")
    # surrogateescape: bytes that are not UTF-8 are reported by row and column after the cells are split.
    text = body.decode("utf-8-sig", "surrogateescape")
    if not text.strip():
        raise body_error("must not be empty")
    try:
        records = _records(text, max_items)
    except _TooManyRowsError as err:
        message = f"is over the limit: a batch holds at most {max_items} data rows"
        raise _fail([_error(_row_label(max_items + 1, err.line), message)]) from None
    except _CsvSyntaxError as err:
        if not err.records:
            raise _fail([_error(f"header, column {err.cell + 1}", str(err))]) from None
        column = _Header(err.records[0].cells).label(err.cell)
        where = _row_label(len(err.records), err.line)
        raise _fail([_error(f"{where}, column {column}", str(err))]) from None
    header_record, rows = records[0], records[1:]
    while rows and _blank(rows[-1].cells):
        rows.pop()  # empty rows the tokenizer could not skip: quoted empty cells
    if _blank(header_record.cells):
        raise _fail([_error("header", "is empty; the first line must name the columns")])
    if len(header_record.cells) == 1 and ";" in header_record.cells[0]:
        # Excel writes semicolon-separated "CSV" in locales with a decimal comma.
        message = "must separate the column names with commas (semicolons separate owners and members)"
        raise _fail([_error("header", message)])
    if not rows:
        raise body_error("has a header but no data rows")
    header = _Header(header_record.cells)
    errors = list(header.errors)
    for row, record in enumerate(rows, start=1):
        errors.extend(_row_structure_errors(header, row, record))
    if errors:
        # The cells' content is checked once the file's structure is sound: before, columns may be shifted.
        raise _fail(errors)
    raw_items: list[Mapping[str, Any]] = []
    user_positions: list[dict[str, list[int]]] = []
    for record in rows:
        item: dict[str, Any] = {}
        positions: dict[str, list[int]] = {}
        for column, position in header.index.items():
            cell = record.cells[position]
            if not cell.strip():
                continue  # an empty cell is an absent field
            if column in _USER_LIST_COLUMNS:
                item[column], positions[column] = _split_users(cell)
            else:
                item[column] = cell
        raw_items.append(item)
        user_positions.append(positions)
    locator = _CsvLocator([record.line for record in rows], user_positions)
    validated, item_errors = _validate_items(raw_items, locator, policy)
    if item_errors:
        raise _fail(item_errors)
    return BatchRequest(tuple(validated), None, "csv")
