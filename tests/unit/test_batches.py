"""Batch parsing and validation: every rule, every error located, and property tests over both formats."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provisioning.batches import (
    CSV_COLUMNS,
    MAX_BATCH_ITEMS,
    MAX_LISTED_DUPLICATES,
    BatchRequest,
    BatchTooLargeError,
    BatchValidationError,
    UnsupportedMediaTypeError,
    batch_hash,
    parse_batch,
)
from provisioning.callbacks import CallbackPolicy
from provisioning.models import (
    MAX_BODY_BYTES,
    MAX_REPORTED_ERRORS,
    BodyTooLargeError,
    RequestValidationError,
    validate_request,
)
from provisioning.problems import validation_problem

POLICY = CallbackPolicy(("*.logic.azure.com",))
OWNER_ID = "6f1b6c0e-2b1d-4c7e-9a43-6c0f4c3d2a11"
CALLBACK = "https://prod-01.westeurope.logic.azure.com/workflows/abc/run?sig=secret"
JSON = "application/json"
CSV = "text/csv"
# Reproducible runs, as in tests/fuzz: no example database, no timing-dependent deadline.
PROPERTIES = settings(derandomize=True, database=None, deadline=None, max_examples=100)


def item(name: str = "Contoso Engineering", **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"displayName": name, "owners": [OWNER_ID]}
    body.update(changes)
    return body


def json_body(*items: Any, **envelope: Any) -> bytes:
    return json.dumps({"items": list(items), **envelope}).encode()


def parse(body: bytes | str, content_type: str | None = CSV, **kwargs: Any) -> BatchRequest:
    raw = body.encode() if isinstance(body, str) else body
    return parse_batch(raw, content_type, callback_policy=POLICY, **kwargs)


def errors_of(body: bytes | str, content_type: str | None = CSV, **kwargs: Any) -> list[dict[str, str]]:
    with pytest.raises(BatchValidationError) as caught:
        parse(body, content_type, **kwargs)
    return caught.value.errors


def csv_text(rows: list[list[str]], terminator: str = "\r\n") -> str:
    return "".join(",".join(row) + terminator for row in rows)


# ----------------------------------------------------------------------------------------------------
# JSON


def test_json_batch_gives_validated_items_in_order() -> None:
    body = json_body(
        item("  Contoso Engineering  ", privacy="PUBLIC", members=["a@contoso.com", "A@contoso.com"]),
        item("Contoso Sales", description="  Deals  ", onDuplicateName="adopt"),
        callbackUrl=CALLBACK,
    )
    batch = parse(body, JSON)
    assert batch.source_format == "json"
    assert batch.callback_url == CALLBACK
    first, second = batch.items
    assert first == validate_request(item("Contoso Engineering", privacy="public", members=["a@contoso.com"]))
    assert (second.display_name, second.description, second.on_duplicate_name) == (
        "Contoso Sales",
        "Deals",
        "adopt",
    )
    assert all(request.callback_url is None for request in batch.items)


@pytest.mark.parametrize(
    "content_type", ["application/json", "Application/JSON; charset=UTF-8", 'application/json;charset="utf8"']
)
def test_json_media_type_is_case_insensitive_and_may_name_utf8(content_type: str) -> None:
    assert (
        parse(b"\xef\xbb\xbf" + json_body(item()), content_type).items[0].display_name
        == "Contoso Engineering"
    )


def test_json_errors_name_the_item_index_and_field() -> None:
    errors = errors_of(
        json_body(
            item("A"), item("B", owners=[OWNER_ID, "not a user"]), item("C", privacy="secret", members=[5])
        ),
        JSON,
    )
    assert [error["field"] for error in errors] == [
        "items[1].owners[1]",
        "items[2].privacy",
        "items[2].members[0]",
    ]
    assert "must be an Entra object id" in errors[0]["message"]


def test_json_item_that_is_not_an_object_is_named_and_the_others_still_checked() -> None:
    errors = errors_of(json_body("Contoso", item(owners=[])), JSON)
    assert errors == [
        {"field": "items[0]", "message": "must be a JSON object"},
        {"field": "items[1].owners", "message": errors[1]["message"]},
    ]


def test_json_item_may_not_have_its_own_callback() -> None:
    errors = errors_of(json_body(item(callbackUrl=CALLBACK)), JSON)
    assert errors == [
        {
            "field": "items[0].callbackUrl",
            "message": "is not allowed on an item; set callbackUrl on the batch",
        }
    ]


@pytest.mark.parametrize(
    ("callback", "message"),
    [
        ("http://prod.logic.azure.com/x", "must use https"),
        (5, "must be a string"),
        ("https://evil.com/", "host"),
    ],
)
def test_json_batch_callback_is_checked_by_the_callback_policy(callback: Any, message: str) -> None:
    errors = errors_of(json_body(item(), callbackUrl=callback), JSON)
    assert [error["field"] for error in errors] == ["callbackUrl"]
    assert message in errors[0]["message"]


@pytest.mark.parametrize("callback", [None, "", "  "])
def test_json_batch_without_callback(callback: Any) -> None:
    assert parse(json_body(item(), callbackUrl=callback), JSON).callback_url is None


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (b'{"callbackUrl": null}', "items", "is required"),
        (b'{"items": {}}', "items", "must be an array"),
        (b'{"items": []}', "items", "must hold at least one item"),
        (b"[]", "body", 'must be a JSON object with an "items" array'),
        (b"", "body", "must not be empty"),
        (b" \n", "body", "must not be empty"),
        (b'{"items": [}', "body", "is not valid JSON"),
        (b'{"items": "\xff"}', "body", "must be UTF-8 encoded JSON"),
        (b'{"items": [], "items": []}', "body", 'has the field "items" more than once'),
        (b'{"items": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "body", "nested too deeply"),
    ],
)
def test_json_malformed_batches(body: bytes, field: str, message: str) -> None:
    errors = errors_of(body, JSON)
    assert len(errors) == 1
    assert errors[0]["field"] == field
    assert message in errors[0]["message"]


def test_json_unknown_batch_fields_are_named() -> None:
    errors = errors_of(json_body(item(), requestId="x", **{"two words": 1}), JSON)
    assert errors == [
        {"field": "requestId", "message": "is not a known field"},
        {"field": '["two words"]', "message": "is not a known field"},
    ]


def test_json_item_is_held_to_the_size_of_a_single_request() -> None:
    members = [f"user{n:05}-{'x' * 50}@contoso.com" for n in range(1000)]
    errors = errors_of(json_body(item(members=members)), JSON)
    assert errors[0]["field"] == "items[0]"
    assert f"must be at most {MAX_BODY_BYTES} bytes as JSON" in errors[0]["message"]


def test_json_batch_over_the_item_limit_reports_only_that() -> None:
    items = [item(f"Community {n}", owners=["bad"]) for n in range(4)]
    assert errors_of(json_body(*items), JSON, max_items=3) == [
        {"field": "items", "message": "must hold at most 3 items, got 4"}
    ]
    assert len(parse(json_body(*[item(f"C{n}") for n in range(3)]), JSON, max_items=3).items) == 3


def test_default_item_limit_is_a_thousand() -> None:
    assert MAX_BATCH_ITEMS == 1000
    body = json_body(*[item(f"Community {n}") for n in range(1001)])
    assert errors_of(body, JSON)[0]["message"] == "must hold at most 1000 items, got 1001"


# ----------------------------------------------------------------------------------------------------
# CSV


def test_csv_batch_reads_columns_by_name_in_any_order_and_case() -> None:
    text = (
        "\ufeffOWNERS, privacy ,DisplayName,members,onduplicatename,Description\r\n"
        f'a@contoso.com;{OWNER_ID},Public,Contoso Engineering,"b@contoso.com, c@contoso.com",adopt,'
        '"Says ""hi""\nover two lines, with commas"\r\n'
        "a@contoso.com,,Contoso Sales,,,\r\n"
        ",,,,,\r\n"
        "\r\n"
    )
    batch = parse(text.encode())
    assert batch.source_format == "csv"
    assert batch.callback_url is None
    first, second = batch.items
    assert first.owners == ["a@contoso.com", OWNER_ID]
    assert first.members == ["b@contoso.com", "c@contoso.com"]
    assert (first.privacy, first.on_duplicate_name) == ("public", "adopt")
    assert first.description == 'Says "hi"\nover two lines, with commas'
    # Empty cells are absent fields: the defaults of a single request apply.
    assert second == validate_request(item("Contoso Sales", owners=["a@contoso.com"]), callback_policy=POLICY)


@pytest.mark.parametrize("terminator", ["\r\n", "\n", "\r"])
def test_csv_line_breaks_may_be_crlf_lf_or_cr_and_the_last_is_optional(terminator: str) -> None:
    text = csv_text([["displayName", "owners"], ["A", OWNER_ID], ["B", OWNER_ID]], terminator)
    for body in (text, text.removesuffix(terminator)):
        assert [request.display_name for request in parse(body).items] == ["A", "B"]


def test_csv_owners_and_members_split_on_semicolons_commas_and_line_breaks() -> None:
    members = '"x@contoso.com,y@contoso.com\r\nz@contoso.com;;"'
    text = f'displayName,owners,members\r\nA,"{OWNER_ID} ; ",{members}\r\n'
    request = parse(text).items[0]
    assert request.owners == [OWNER_ID]
    assert request.members == ["x@contoso.com", "y@contoso.com", "z@contoso.com"]


def test_csv_spaces_around_a_quoted_cell_are_ignored() -> None:
    assert parse(f'displayName,owners\r\n  "A, B"  ,{OWNER_ID}\r\n').items[0].display_name == "A, B"


def test_csv_errors_name_the_row_its_line_and_the_column() -> None:
    text = (
        "displayName,description,owners,privacy\r\n"
        f'A,"two\r\nlines",{OWNER_ID},public\r\n'
        f'B,,"{OWNER_ID};;not a user",secret\r\n'
        ",,,\r\n"
    )
    errors = errors_of(text)
    assert [error["field"] for error in errors] == [
        "row 2 (line 4), column privacy",
        "row 2 (line 4), column owners, entry 3",
    ]


@pytest.mark.parametrize(
    ("cell", "field"),
    [("", "row 1 (line 2), column displayName"), ("\t", "row 1 (line 2), column displayName")],
)
def test_csv_empty_required_cell_is_a_missing_field(cell: str, field: str) -> None:
    assert errors_of(f"displayName,owners\r\n{cell},{OWNER_ID}\r\n") == [
        {"field": field, "message": "is required"}
    ]


def test_csv_header_problems_are_named_by_column() -> None:
    errors = errors_of("Owners,Colour,owners,=cmd|' /C calc'!A0\r\nx@contoso.com,red,y@contoso.com,z\r\n")
    assert errors == [
        {
            "field": "header, column 2",
            "message": 'is not a known column ("Colour"); use ' + ", ".join(CSV_COLUMNS),
        },
        {"field": "header, column 3", "message": "repeats column 1 (owners)"},
        {
            "field": "header, column 4",
            "message": "is not a known column (\"'=cmd|' /C calc'!A0\"); use " + ", ".join(CSV_COLUMNS),
        },
        {"field": "header", "message": "must have a displayName column"},
    ]


def test_csv_unnamed_columns_are_ignored_while_empty() -> None:
    assert len(parse(f"displayName,owners,,\r\nA,{OWNER_ID},,\r\n").items) == 1
    assert errors_of(f"displayName,owners,\r\nA,{OWNER_ID},stray\r\n") == [
        {
            "field": "row 1 (line 2), column 3",
            "message": "has a value but its column has no name in the header",
        }
    ]


def test_csv_semicolon_separated_file_gets_a_hint() -> None:
    errors = errors_of(f"displayName;owners\r\nA;{OWNER_ID}\r\n")
    assert errors == [
        {
            "field": "header",
            "message": "must separate the column names with commas (semicolons separate owners and members)",
        }
    ]


def test_csv_ragged_rows_are_named_with_the_missing_or_extra_column() -> None:
    errors = errors_of(f"displayName,owners,members\r\nA,{OWNER_ID}\r\nB,{OWNER_ID},,extra\r\n")
    assert [error["field"] for error in errors] == [
        "row 1 (line 2), column members",
        "row 2 (line 3), column 4",
    ]
    assert errors[0]["message"].startswith("is missing: the row ends after 2 of the header's 3 columns")
    assert errors[1]["message"].startswith("is beyond the header's 3 columns")


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        (
            f'displayName,owners\r\nA,{OWNER_ID}\r\n"B,{OWNER_ID}\r\n',
            "row 2 (line 3), column displayName",
            "never closed",
        ),
        (
            f'displayName,owners\r\n"A"B,{OWNER_ID}\r\n',
            "row 1 (line 2), column displayName",
            "after its closing quote",
        ),
        (
            f'displayName,owners\r\nA "B",{OWNER_ID}\r\n',
            "row 1 (line 2), column displayName",
            "does not start with one",
        ),
        (f'displayName,"owners\r\nA,{OWNER_ID}\r\n', "header, column 2", "never closed"),
        (
            f'"desc\nription",displayName,owners\r\nx,"A\n"B,{OWNER_ID}\r\n',
            "row 1 (line 3), column displayName",
            "after",
        ),
    ],
)
def test_csv_bad_quoting_is_named_by_row_and_column(text: str, field: str, message: str) -> None:
    errors = errors_of(text)
    assert [error["field"] for error in errors] == [field]
    assert message in errors[0]["message"]


def test_csv_bytes_that_are_not_utf8_are_named_by_row_and_column() -> None:
    body = f"displayName,description,owners\r\nCaf\xe9,ok,{OWNER_ID}\r\nB,na\xefve,{OWNER_ID}\r\n".encode(
        "latin-1"
    )
    assert errors_of(body) == [
        {
            "field": "row 1 (line 2), column displayName",
            "message": "is not UTF-8 text (byte 0xE9); save the file as CSV UTF-8",
        },
        {
            "field": "row 2 (line 3), column description",
            "message": "is not UTF-8 text (byte 0xEF); save the file as CSV UTF-8",
        },
    ]


def test_csv_utf16_file_is_refused_as_a_whole() -> None:
    body = f"displayName,owners\r\nA,{OWNER_ID}\r\n".encode("utf-16")
    assert errors_of(body) == [{"field": "body", "message": "is UTF-16 text; save the file as CSV UTF-8"}]


def test_csv_nul_bytes_are_named_by_row_and_column() -> None:
    assert errors_of(f"displayName,owners\r\nA\x00,{OWNER_ID}\r\n") == [
        {
            "field": "row 1 (line 2), column displayName",
            "message": "contains a NUL byte; save the file as CSV UTF-8 text",
        }
    ]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", {"field": "body", "message": "must not be empty"}),
        ("\ufeff \r\n", {"field": "body", "message": "must not be empty"}),
        ("displayName,owners\r\n", {"field": "body", "message": "has a header but no data rows"}),
        ("displayName,owners\r\n,\r\n\r\n", {"field": "body", "message": "has a header but no data rows"}),
        (
            f",\r\nA,{OWNER_ID}\r\n",
            {"field": "header", "message": "is empty; the first line must name the columns"},
        ),
        (
            f"displayName,owners\r\nA,{OWNER_ID}\r\n\r\nB,{OWNER_ID}\r\n",
            {"field": "row 2 (line 3)", "message": "is empty; remove empty rows between the data rows"},
        ),
    ],
)
def test_csv_empty_files_header_only_and_empty_rows(text: str, error: dict[str, str]) -> None:
    assert errors_of(text) == [error]


def test_csv_rows_over_the_limit_report_only_that() -> None:
    text = csv_text([["displayName", "owners"]] + [[f"C{n}", "bad"] for n in range(4)])
    assert errors_of(text, max_items=3) == [
        {"field": "row 4 (line 5)", "message": "is over the limit: a batch holds at most 3 data rows"}
    ]
    # Empty rows at the end are not rows of the batch.
    text = f"displayName,owners\r\nA,{OWNER_ID}\r\n,\r\n \t, \r\n\r\n"
    assert len(parse(text, max_items=1).items) == 1
    assert len(parse(f'displayName,owners\r\nA,{OWNER_ID}\r\n"",\r\n').items) == 1


def test_csv_rows_have_at_most_64_columns() -> None:
    assert errors_of("displayName,owners" + "," * 63 + f"\r\nA,{OWNER_ID}" + "," * 63 + "\r\n") == [
        {"field": "header, column 65", "message": "is one too many: a row has at most 64 columns"}
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"displayName,owners\r\n" + b"x,y\n" * 2_000_000, "row 1001 (line 1002)"),
        (b"displayName,owners\r\n" + b"\n,\n" * 2_000_000 + b"A,a@b.cd\n", "row 1001 (line 1002)"),
        (b"a," * 4_000_000, "header, column 65"),
        (b"displayName,owners\r\n" + b"\n" * 8_000_000, "body"),
    ],
)
def test_csv_work_on_a_huge_body_is_bounded_by_the_limits(body: bytes, field: str) -> None:
    # Each of these took seconds when every row and cell was read before the limits were checked.
    assert [error["field"] for error in errors_of(body)] == [field]


def test_csv_structure_is_checked_before_the_cells_content() -> None:
    # The bad owner of row 1 is not reported while row 2 is ragged: the columns could be shifted.
    errors = errors_of("displayName,owners\r\nA,bad\r\nB\r\n")
    assert [error["field"] for error in errors] == ["row 2 (line 3), column owners"]


# ----------------------------------------------------------------------------------------------------
# Rules shared by both formats


def test_duplicate_display_names_are_reported_with_the_items_involved() -> None:
    errors = errors_of(json_body(item("Contoso"), item("Other"), item(" contoso "), item("CONTOSO")), JSON)
    assert [error["field"] for error in errors] == [
        "items[0].displayName",
        "items[2].displayName",
        "items[3].displayName",
    ]
    assert errors[0]["message"].startswith("is also the display name of items[2], items[3], ignoring")
    assert errors[2]["message"].startswith("is also the display name of items[0], items[2], ignoring")


def test_duplicate_display_names_in_csv_name_the_rows() -> None:
    errors = errors_of(f"displayName,owners\r\nContoso,{OWNER_ID}\r\ncontoso,bad\r\n")
    assert [error["field"] for error in errors] == [
        "row 1 (line 2), column displayName",
        "row 2 (line 3), column owners, entry 1",
        "row 2 (line 3), column displayName",
    ]
    assert errors[0]["message"].startswith("is also the display name of row 2 (line 3), ignoring")


def test_duplicate_display_names_are_allowed_for_items_that_create_anyway() -> None:
    batch = parse(
        json_body(item("Contoso", onDuplicateName="create"), item("contoso", onDuplicateName=" Create")), JSON
    )
    assert len(batch.items) == 2
    # Only the item that would fail (or adopt) on the other's community is an error.
    errors = errors_of(
        json_body(item("Contoso", onDuplicateName="create"), item("contoso", onDuplicateName="adopt")), JSON
    )
    assert [error["field"] for error in errors] == ["items[1].displayName"]
    assert "items[0]" in errors[0]["message"]


def test_duplicate_lists_are_bounded() -> None:
    errors = errors_of(json_body(*[item("Same") for _ in range(MAX_LISTED_DUPLICATES + 3)]), JSON)
    assert errors[0]["message"].startswith("is also the display name of items[1], items[2]")
    assert " and 2 more, ignoring case" in errors[0]["message"]


def test_errors_are_bounded_with_a_count_of_the_rest() -> None:
    items = [item(f"C{n}", owners=["bad1", "bad2"]) for n in range(30)]
    errors = errors_of(json_body(*items), JSON)
    assert len(errors) == MAX_REPORTED_ERRORS + 1
    assert errors[-1] == {"field": "body", "message": f"{60 - MAX_REPORTED_ERRORS} more errors not shown"}


def test_formula_like_values_are_valid_names() -> None:
    text = f'displayName,owners,description\r\n=SUM(A1),{OWNER_ID},-ish\r\n"@home, +1",{OWNER_ID},\r\n'
    assert [request.display_name for request in parse(text).items] == ["=SUM(A1)", "@home, +1"]


@pytest.mark.parametrize("prefix", ["=", "+", "-", "@", "\uff1d"])
def test_formula_like_values_are_neutralised_in_errors(prefix: str) -> None:
    value = f"{prefix}cmd|' /C calc'!A0"
    errors = [
        *errors_of(f"displayName,owners,{value}\r\nA,{OWNER_ID},x\r\n"),
        *errors_of(f"displayName,owners\r\nA,{value}\r\n"),
        *errors_of(json_body(item(owners=[value]), **{value: 1}), JSON),
    ]
    assert [error["field"] for error in errors] == [
        "header, column 3",
        "row 1 (line 2), column owners, entry 1",
        f'["\'{value}"]',
        "items[0].owners[0]",
    ]
    for error in errors:
        assert_no_formula(error)
        assert f"'{value}" in error["field"] + error["message"]


# ----------------------------------------------------------------------------------------------------
# Content type, size, result types, hash


@pytest.mark.parametrize(
    ("content_type", "media_type"),
    [
        (None, None),
        ("  ", None),
        ("text/plain", "text/plain"),
        ("application/xml; charset=utf-8", "application/xml"),
        ("application/problem+json", "application/problem+json"),
        ("text/csv; charset=windows-1252", "text/csv"),
        ("application/json; charset=utf-16", "application/json"),
    ],
)
def test_other_media_types_are_unsupported(content_type: str | None, media_type: str | None) -> None:
    with pytest.raises(UnsupportedMediaTypeError) as caught:
        parse(json_body(item()), content_type)
    assert caught.value.media_type == media_type
    assert [error["field"] for error in caught.value.errors] == ["Content-Type"]
    assert "send" in caught.value.errors[0]["message"]


def test_body_over_the_byte_limit_is_too_large_like_a_single_request() -> None:
    body = json_body(item())
    with pytest.raises(BatchTooLargeError) as caught:
        parse(body, JSON, max_bytes=len(body) - 1)
    assert isinstance(caught.value, BodyTooLargeError)
    assert caught.value.errors == [
        {"field": "body", "message": f"must be at most {len(body) - 1} bytes, got {len(body)}"}
    ]


def test_batch_errors_make_the_same_problem_body_as_request_errors() -> None:
    with pytest.raises(RequestValidationError) as caught:
        parse(json_body(item(owners=[])), JSON)
    assert isinstance(caught.value, BatchValidationError)
    problem = validation_problem(caught.value.errors)
    assert problem["status"] == 400
    assert problem["detail"] == str(caught.value)
    assert problem["detail"].startswith("items[0].owners: ")


def test_batch_request_is_frozen() -> None:
    batch = parse(json_body(item()), JSON)
    with pytest.raises(dataclasses.FrozenInstanceError):
        batch.callback_url = CALLBACK  # type: ignore[misc]


def test_batch_hash_ignores_formatting_and_format_but_not_content() -> None:
    json_batch = parse(json.dumps({"items": [item("A"), item("B")]}, indent=2), JSON)
    same = parse(f"owners,displayName\r\n{OWNER_ID.upper()},  A \r\n{OWNER_ID};{OWNER_ID},B\r\n")
    assert batch_hash(json_batch) == batch_hash(same)
    assert batch_hash(json_batch).startswith("sha256:")
    assert batch_hash(json_batch) != batch_hash(parse(json_body(item("B"), item("A")), JSON))
    assert batch_hash(json_batch) != batch_hash(
        parse(json_body(item("A"), item("B"), callbackUrl=CALLBACK), JSON)
    )
    assert batch_hash(json_batch) != batch_hash(
        parse(json_body(item("A"), item("B", privacy="public")), JSON)
    )


# ----------------------------------------------------------------------------------------------------
# Properties

_FORMULA_ECHO = re.compile(r"""^[=+\-@]|"[=+\-@]|(?:^|[^"'])'[=+\-@]""")
_ITEM_FIELD = re.compile(
    r"items\[(\d+)\]\.(displayName|description|privacy|owners|members|onDuplicateName)(\[\d+\])?"
)
_ROW_FIELD = re.compile(
    r"row (\d+) \(line \d+\), column (displayName|description|privacy|owners|members|onDuplicateName)"
    r"(, entry \d+)?"
)


def assert_no_formula(error: dict[str, str]) -> None:
    """No field or message starts a formula or echoes a value that would start one unescaped."""
    for text in error.values():
        assert not _FORMULA_ECHO.search(text), error


_text = st.characters(exclude_categories=("Cc", "Cs"))
_names = st.text(_text | st.sampled_from('=+-@",; '), min_size=1, max_size=30).filter(
    lambda name: name.strip()
)
_descriptions = st.text(_text | st.sampled_from('\r\n\t",;='), max_size=60)
# Cheap to draw: generating data, not parsing it, is what makes these tests take seconds.
_upns = st.builds(
    "{}{}@{}".format,
    st.sampled_from(["adele.vance", "o'neil", "x-y_z", "Alex.Wilber"]),
    st.integers(0, 20),
    st.sampled_from(["contoso.com", "fabrikam.onmicrosoft.com"]),
)
_guids = st.uuids().map(str) | st.uuids().map(lambda guid: guid.hex.upper())
_users = _upns | _guids


@st.composite
def _items(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {
        "displayName": draw(_names),
        "owners": draw(st.lists(_users, min_size=1, max_size=3)),
    }
    optional = {
        "description": _descriptions,
        "privacy": st.sampled_from(["public", "private", "Public"]),
        "members": st.lists(_users, max_size=3),
        "onDuplicateName": st.sampled_from(["fail", "adopt", "create"]),
    }
    for field, values in optional.items():
        if draw(st.booleans()):
            body[field] = draw(values)
    return body


_batches = st.lists(
    _items(), min_size=1, max_size=6, unique_by=lambda body: body["displayName"].strip().casefold()
)


@st.composite
def _csv_bodies(draw: st.DrawFn, items: list[dict[str, Any]]) -> bytes:
    """``items`` as a CSV file as spreadsheets write one: any column order and case, any line break."""
    columns = draw(st.permutations(CSV_COLUMNS))
    header = [draw(st.sampled_from([column, column.lower(), column.upper()])) for column in columns]
    separator = draw(st.sampled_from([";", "; ", ",", "\n"]))
    terminator = draw(st.sampled_from(["\r\n", "\n", "\r"]))
    # csv.writer quotes a cell holding \r or \n only when its line terminator holds that character too.
    quote_all = terminator != "\r\n" or draw(st.booleans())
    out = io.StringIO()
    writer = csv.writer(
        out, lineterminator=terminator, quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL
    )
    writer.writerow(header)
    for body in items:
        row = []
        for column in columns:
            value = body.get(column, "")
            row.append(separator.join(value) if isinstance(value, list) else value)
        writer.writerow(row)
    bom = draw(st.sampled_from(["", "\ufeff"]))
    return (bom + out.getvalue()).encode()


@PROPERTIES
@given(items=_batches, data=st.data())
def test_valid_batches_round_trip_through_json_and_csv(
    items: list[dict[str, Any]], data: st.DataObject
) -> None:
    expected = tuple(validate_request(body, callback_policy=POLICY) for body in items)
    json_batch = parse(json_body(*items), JSON)
    csv_batch = parse(data.draw(_csv_bodies(items)), CSV)
    assert json_batch.items == expected
    assert csv_batch.items == expected
    assert batch_hash(json_batch) == batch_hash(csv_batch)


# Pieces of CSV files: arbitrary input that reaches the header, row and cell checks, not only the tokenizer.
_csvish = st.lists(
    st.sampled_from(
        [
            *("displayName", "Owners", "members", "privacy", "x", ",", ";", '"', " ", "\r\n", "\n", "\r"),
            *("\x00", "=", "@", "\ufeff", "\xe9", "a@b.cd", OWNER_ID, "public", "create"),
        ]
    ),
    max_size=60,
).map("".join)


@PROPERTIES
@given(
    body=st.binary(max_size=300)
    | _csvish.map(lambda text: text.encode("utf-8"))
    | _csvish.map(lambda text: ("displayName,owners\r\n" + text).encode("latin-1", "replace"))
    | st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=10),
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.sampled_from(["items", "displayName", "owners", "x"]), children, max_size=3)
        ),
        max_leaves=12,
    ).map(lambda value: json.dumps(value).encode()),
    content_type=st.sampled_from([JSON, CSV]),
)
def test_arbitrary_bytes_raise_only_the_documented_errors(body: bytes, content_type: str) -> None:
    errors: list[dict[str, str]] = []
    try:
        parse(body, content_type, max_items=5)
    except BatchValidationError as err:
        errors = err.errors
        assert errors
    assert len(errors) <= MAX_REPORTED_ERRORS + 1
    for error in errors:
        assert set(error) == {"field", "message"}
        assert error["field"]
        assert error["message"]
        assert_no_formula(error)
        (error["field"] + error["message"]).encode()  # valid Unicode: no lone surrogate reaches an answer


_BAD_VALUES = {
    "displayName": st.sampled_from(["", " ", "bell\x07", "x" * 256]),
    "owners": st.sampled_from([["not a user"], [], ["=1+1"], [OWNER_ID, "-x"]]),
    "members": st.sampled_from([["@nobody"], ["a b@c.d"]]),
    "privacy": st.sampled_from(["secret", "=public"]),
    "onDuplicateName": st.sampled_from(["merge", "+create"]),
}


@PROPERTIES
@given(items=_batches.filter(lambda items: len(items) >= 2), data=st.data())
def test_every_error_names_an_item_and_a_field(items: list[dict[str, Any]], data: st.DataObject) -> None:
    duplicated = set()
    if data.draw(st.booleans()):  # a duplicate name: an error on each of the two items that does not create
        items[0]["displayName"] = f" {items[1]['displayName']} "
        duplicated = {0, 1}
    broken = data.draw(st.sets(st.integers(0, len(items) - 1), min_size=1))
    for index in broken:
        field = data.draw(st.sampled_from(sorted(_BAD_VALUES)))
        items[index][field] = data.draw(_BAD_VALUES[field])
    for content_type, body, pattern in (
        (JSON, json_body(*items), _ITEM_FIELD),
        (CSV, data.draw(_csv_bodies(items)), _ROW_FIELD),
    ):
        located = []
        for error in errors_of(body, content_type):
            assert_no_formula(error)
            match = pattern.fullmatch(error["field"])
            assert match, error
            # JSON indexes are 0-based like JSON paths; CSV rows count from 1 like a spreadsheet's data rows.
            located.append(int(match.group(1)) - (content_type == CSV))
        assert broken <= set(located) <= broken | duplicated
