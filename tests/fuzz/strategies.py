"""Hypothesis strategies for request bodies and queue messages, and hand-picked hostile bodies.

Bodies range from valid requests through near misses (a field replaced by a hostile value, a duplicate key, a
number no double holds, nesting past the limit) to arbitrary JSON and bytes that are not JSON at all, so that
every layer of the intake is reached: decoding, parsing, the models.
"""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import strategies as st

from provisioning.models import MAX_BODY_BYTES, MAX_JSON_DEPTH, split_users

FIELDS = (
    "displayName",
    "description",
    "privacy",
    "owners",
    "members",
    "callbackUrl",
    "onDuplicateName",
    "requestId",
)
OWNER = "adele.vance@contoso.onmicrosoft.com"

# Hostile bodies a client or a queue sender may send, each with a part of the message that must name its
# problem (all on the field "body"). Each fits in a queue message (48 KiB before base64).
HOSTILE_BODIES: dict[str, tuple[bytes, str]] = {
    "deep-arrays": (b"[" * 5000 + b"]" * 5000, "nested too deeply"),
    "deep-objects": (b'{"x":' * 3000 + b"1" + b"}" * 3000, "nested too deeply"),
    "deep-in-a-field": (
        b'{"displayName": "a", "owners": ' + b"[" * 2000 + b"]" * 2000 + b"}",
        "nested too deeply",
    ),
    "just-too-deep": (b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1), "nested too deeply"),
    "huge-exponent": (b'{"displayName": 1e999999, "owners": []}', "number out of range"),
    "huge-integer": (b'{"displayName": 1' + b"0" * 5000 + b', "owners": []}', "number out of range"),
    "nan": (b'{"displayName": NaN}', "NaN is not a JSON value"),
    "infinity": (b"[-Infinity]", "Infinity is not a JSON value"),
    "lone-surrogate": (b'"\\ud800"', "lone surrogate"),
    "two-boms": (b"\xef\xbb\xbf\xef\xbb\xbf{}", "byte order mark"),
    "utf-16": ('{"displayName": "x"}'.encode("utf-16"), "UTF-8"),
    "latin-1": ('{"displayName": "Caf\u00e9"}'.encode("latin-1"), "UTF-8"),
    "encoded-surrogate": (b'{"displayName": "\xed\xa0\x80"}', "UTF-8"),
    "duplicate-key": (b'{"owners": [], "owners": []}', "more than once"),
    "array-top": (b"[1, 2]", "must be a JSON object"),
    "long-string-top": (b'"' + b"x" * 40_000 + b'"', "must be a JSON object"),
    "number-top": (b"42", "must be a JSON object"),
    "null-top": (b"null", "must be a JSON object"),
    "empty": (b"", "must not be empty"),
    "whitespace": (b" \r\n\t ", "must not be empty"),
    "truncated": (b'{"displayName": "a', "not valid JSON"),
}

# -------------------------------------------------------------------------------------------- valid requests

GUIDS = st.uuids().flatmap(
    lambda value: st.sampled_from([str(value), str(value).upper(), value.hex, f" {value} "])
)
UPNS = st.from_regex(r"[a-z][a-z0-9._-]{0,20}@[a-z]{1,10}\.(com|org|onmicrosoft\.com)", fullmatch=True)
USER_REFERENCES = GUIDS | UPNS
USER_LIST_FIELDS = frozenset({"owners", "members"})
# What may follow a user in a list given as one string: a separator, with spaces, empty entries, line breaks.
SEPARATORS = st.sampled_from([";", ",", "; ", " , ", ";;", " ;, ", "\n", "\r\n", ",\n"])


def as_text(users: list[str]) -> st.SearchStrategy[str]:
    """``users`` as one string: each user followed by a separator (a trailing one included)."""
    separators = st.lists(SEPARATORS, min_size=len(users), max_size=len(users))
    return separators.map(lambda after: "".join(user + sep for user, sep in zip(users, after, strict=True)))


def users_of(value: Any) -> Any:
    """A user list as the list it stands for: a string's non-empty entries, anything else as it is."""
    return [entry for _, entry in split_users(value)] if isinstance(value, str) else value


def user_lists(min_size: int) -> st.SearchStrategy[list[str] | str]:
    """Valid owners or members: a list of users, or the same users as one separated string."""
    users = st.lists(USER_REFERENCES, min_size=min_size, max_size=5)
    return users | users.flatmap(as_text)


# No control characters (Cc) and no lone surrogates (Cs); at least one character that is not a space.
NAMES = st.text(st.characters(exclude_categories=["Cc", "Cs"]), min_size=1, max_size=80).filter(str.strip)
DESCRIPTIONS = st.text(
    st.characters(exclude_categories=["Cc", "Cs"]) | st.sampled_from("\n\r\t"), max_size=200
)
VALID_REQUESTS = st.fixed_dictionaries(
    {"displayName": NAMES, "owners": user_lists(min_size=1)},
    optional={
        "description": st.none() | DESCRIPTIONS,
        "privacy": st.sampled_from(["public", "private", "PUBLIC", " Private ", None]),
        "members": st.none() | user_lists(min_size=0),
        "onDuplicateName": st.sampled_from(["fail", "adopt", "CREATE", None]),
        "callbackUrl": st.sampled_from([None, "", "https://prod-1.westeurope.logic.azure.com/w/run?sig=S"]),
    },
)
VALID_MESSAGES = st.builds(
    lambda body, request_id: {**body, "requestId": request_id},
    VALID_REQUESTS,
    st.text(st.characters(exclude_categories=["Cc", "Cs"]), min_size=1, max_size=40).filter(str.strip),
)

# ------------------------------------------------------------------------------------ arbitrary JSON values

# Lone surrogates are rare in st.text(); JSON writes them as \ud800-style escapes.
SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
TEXT = st.text(st.characters(exclude_categories=[]), max_size=40)
WITH_SURROGATE = st.builds(lambda head, surrogate, tail: head + surrogate + tail, TEXT, SURROGATES, TEXT)
STRINGS = st.one_of(
    TEXT,
    WITH_SURROGATE,
    st.integers(100, 3000).map(lambda size: "\u00e9x\n" * size),
    st.integers(0, 400).map(lambda size: "\u0001" * size),
    USER_REFERENCES,
    st.sampled_from(["public", "PRIVATE", "secret", "fail", "adopt", "merge", "", " ", "https://x"]),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    STRINGS,
)
KEYS = st.one_of(
    st.sampled_from(FIELDS),
    TEXT,
    WITH_SURROGATE,
    st.integers(60, 200).map(lambda size: "k" * size),
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=12,
)
# A valid request or message with one field replaced, one removed or one added.
VALID_BODIES = VALID_REQUESTS | VALID_MESSAGES
NEAR_MISSES = st.one_of(
    st.builds(lambda body, key, value: {**body, key: value}, VALID_BODIES, KEYS, JSON_VALUES),
    st.builds(
        lambda body, key, values: {**body, key: values},
        VALID_BODIES,
        st.sampled_from(["owners", "members"]),
        st.lists(USER_REFERENCES | JSON_VALUES, max_size=60),
    ),
    # A user list as one string, its entries good, bad or holding separators of their own.
    st.builds(
        lambda body, key, text: {**body, key: text},
        VALID_BODIES,
        st.sampled_from(["owners", "members"]),
        st.lists(USER_REFERENCES | STRINGS, max_size=60).flatmap(as_text),
    ),
    st.builds(
        lambda body, key: {name: value for name, value in body.items() if name != key},
        VALID_BODIES,
        st.sampled_from(FIELDS),
    ),
)
ANY_VALUES = NEAR_MISSES | JSON_VALUES


# ------------------------------------------------------------------------------------------------- as bytes


def encode(value: Any, ascii_only: bool = True) -> bytes:
    # Without ensure_ascii a lone surrogate becomes the three bytes that UTF-8 forbids for it.
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


def _with_field_text(body: dict[str, Any], field: str, value_text: str, duplicate: bool = False) -> bytes:
    """``body`` with ``"field": value_text`` written first, replacing the field or, with ``duplicate``,
    repeating it."""
    rest = json.dumps(body if duplicate else {k: v for k, v in body.items() if k != field})[1:]
    return f'{{"{field}": {value_text}{", " if rest != "}" else ""}{rest}'.encode()


def _mutate(data: bytes, position: int, replacement: bytes) -> bytes:
    position %= len(data) + 1
    return data[:position] + replacement + data[position + 1 :]


DEPTHS = st.sampled_from([MAX_JSON_DEPTH - 1, MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1]) | st.integers(0, 3000)
NUMBER_LITERALS = ["1e999999", "-1e400", "1" + "0" * 400, "NaN", "Infinity", "-Infinity", "1e-999", "-0"]
BODIES: st.SearchStrategy[bytes] = st.one_of(
    st.builds(encode, VALID_REQUESTS),
    st.builds(encode, NEAR_MISSES, st.booleans()),
    st.builds(encode, NEAR_MISSES, st.booleans()),
    st.builds(encode, JSON_VALUES, st.booleans()),
    # nesting, written out: json.dumps itself recurses
    st.builds(
        lambda body, field, depth, opener: _with_field_text(
            body, field, opener * depth + json.dumps(OWNER) + ("]" if opener == "[" else "}") * depth
        ),
        VALID_REQUESTS,
        st.sampled_from(FIELDS),
        DEPTHS,
        st.sampled_from(["[", '{"x": ']),
    ),
    st.builds(_with_field_text, VALID_REQUESTS, st.sampled_from(FIELDS), st.sampled_from(NUMBER_LITERALS)),
    st.builds(
        lambda body, field, value: _with_field_text(body, field, json.dumps(value), duplicate=True),
        VALID_REQUESTS,
        st.sampled_from(FIELDS),
        SCALARS,
    ),
    st.builds(
        lambda body, field, text: encode({**body, field: text} if field else {**body, text: 1}),
        VALID_BODIES,
        st.sampled_from([*FIELDS, ""]),
        WITH_SURROGATE,
    ),
    st.builds(
        lambda prefix, body: prefix + encode(body, False),
        st.sampled_from(
            [b"\xef\xbb\xbf", b"\xef\xbb\xbf\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b" ", b"\x00"]
        ),
        VALID_REQUESTS,
    ),
    st.builds(
        _mutate, st.builds(encode, VALID_REQUESTS, st.booleans()), st.integers(), st.binary(max_size=3)
    ),
    st.builds(
        lambda body, size: encode({**body, "description": "x" * size}),
        VALID_REQUESTS,
        st.integers(MAX_BODY_BYTES - 200, MAX_BODY_BYTES + 200),
    ),
    st.binary(max_size=64),
)

# ---------------------------------------------------------------------------------------- naming the fields

_PATH_PART = re.compile(r'\.?([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]')
TRUNCATION = "..."


def path_exists(data: Any, path: str, known_fields: set[str]) -> bool:
    """Whether an error's ``field`` names something real in ``data``: the body, a value in it, a known field
    that is missing, or a field whose long name was shortened to a prefix."""
    if path == "body":
        return True
    parts = list(_PATH_PART.finditer(path))
    if "".join(match.group(0) for match in parts) != path:
        return False
    steps: list[int | str] = [
        int(position) if position is not None else name if name is not None else json.loads(quoted)
        for name, position, quoted in (match.groups() for match in parts)
    ]
    return _resolves(data, steps, known_fields if len(steps) == 1 else set())


def _resolves(node: Any, steps: list[int | str], missing_allowed: set[str], user_list: bool = False) -> bool:
    if not steps:
        return True
    step, rest = steps[0], steps[1:]
    if isinstance(step, int):
        if user_list and isinstance(node, str):
            # owners[1] of a string is its second user (empty entries dropped).
            return not rest and step < len(split_users(node))
        return isinstance(node, list) and step < len(node) and _resolves(node[step], rest, set())
    if not isinstance(node, dict):
        return False
    if step in node:
        return _resolves(node[step], rest, set(), user_list=step in USER_LIST_FIELDS)
    if step.endswith(TRUNCATION):
        prefix = step[: -len(TRUNCATION)]
        return any(key.startswith(prefix) and _resolves(node[key], rest, set()) for key in node)
    return not rest and step in missing_allowed
