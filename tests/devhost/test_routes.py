"""Route template matching (the ASP.NET subset the host supports)."""

from __future__ import annotations

import pytest

from devhost.http_routes import RouteTemplate, RouteTemplateError

GUID = "6f1d2a3b-0000-4000-8000-000000000001"


@pytest.mark.parametrize(
    ("template", "path", "expected"),
    [
        ("items/{id}", "items/abc", {"id": "abc"}),
        ("items/{id}", "items", None),
        ("items/{id}", "items/a/b", None),
        ("items/{id:int}", "items/12", {"id": "12"}),
        ("items/{id:int}", "items/1.5", None),
        ("items/{id:int}", "items/99999999999", None),
        ("items/{id:long}", "items/99999999999", {"id": "99999999999"}),
        ("items/{id:guid}", f"items/{GUID}", {"id": GUID}),
        ("items/{id:guid}", "items/nope", None),
        ("items/{name:alpha}", "items/abc", {"name": "abc"}),
        ("items/{name:alpha}", "items/ab1", None),
        ("items/{flag:bool}", "items/True", {"flag": "True"}),
        ("items/{n:min(3)}", "items/2", None),
        ("items/{n:range(1,5)}", "items/5", {"n": "5"}),
        ("items/{s:length(2,3)}", "items/abcd", None),
        ("items/{s:regex(^[a-z]{{2}}\\d$)}", "items/ab1", {"s": "ab1"}),
        ("items/{s:regex(^x:y$)}", "items/x:y", {"s": "x:y"}),
        ("items/{id?}", "items", {}),
        ("items/{id=7}", "items", {"id": "7"}),
        ("files/{*path}", "files/a/b%20c", {"path": "a/b c"}),
        ("files/{*path}", "files", {}),
        ("Items/List", "items/list", {}),
        ("", "", {}),
    ],
)
def test_match(template: str, path: str, expected: dict[str, str] | None) -> None:
    assert RouteTemplate(template).match(path) == expected


@pytest.mark.parametrize("template", ["a/{*rest}/b", "a/{x:unknown}", "a/b{x}", "a/{1x}", "a/{n:min(z)}"])
def test_bad_templates_are_rejected(template: str) -> None:
    with pytest.raises(RouteTemplateError):
        RouteTemplate(template)
