"""GET /api/dashboard: the operators' page (docs/dashboard.md).

One self-contained HTML page: ``dashboard_page/index.html`` with ``dashboard.css`` and ``dashboard.js`` put
inline, so the page loads nothing else and needs no second route. It holds no data: everything it shows comes
from the app's own API, which it calls from the browser with the key the operator types (kept in the tab's
session storage, sent as ``x-functions-key``, never in a URL). So the page itself is served without a key.

The Content-Security-Policy allows exactly the two inline blocks (by hash), API calls to this origin and
nothing else: no other script, style, frame, form target or outside address.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

import azure.functions as func

bp = func.Blueprint()

ROUTE = "dashboard"
PAGE_DIR = Path(__file__).with_name("dashboard_page")
# index.html links the two files (so it also opens from the folder while editing); they are put inline here.
CSS_TAG = '<link rel="stylesheet" href="dashboard.css">'
SCRIPT_TAG = '<script src="dashboard.js"></script>'


@dataclass(frozen=True)
class Page:
    body: bytes
    content_security_policy: str


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


@functools.cache
def page() -> Page:
    """The page with its style and script inline, and the policy that allows only those (built once)."""
    html = (PAGE_DIR / "index.html").read_text(encoding="utf-8")
    css = (PAGE_DIR / "dashboard.css").read_text(encoding="utf-8")
    script = (PAGE_DIR / "dashboard.js").read_text(encoding="utf-8")
    if html.count(CSS_TAG) != 1 or html.count(SCRIPT_TAG) != 1:
        raise ValueError("index.html must link dashboard.css and dashboard.js exactly once")
    if "</style" in css.lower() or "</script" in script.lower():
        raise ValueError("the style or script would end its inline element early")
    html = html.replace(CSS_TAG, f"<style>{css}</style>").replace(SCRIPT_TAG, f"<script>{script}</script>")
    policy = "; ".join(
        (
            "default-src 'none'",
            f"script-src {_sha256(script)}",
            f"style-src {_sha256(css)}",
            "connect-src 'self'",
            "img-src data:",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    )
    return Page(html.encode("utf-8"), policy)


@bp.route(route=ROUTE, methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def get_dashboard(req: func.HttpRequest) -> func.HttpResponse:
    """The page; anonymous because it holds no data (every API call it makes needs a key)."""
    served = page()
    return func.HttpResponse(
        body=served.body,
        status_code=200,
        mimetype="text/html",
        charset="utf-8",
        headers={
            "Content-Security-Policy": served.content_security_policy,
            "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "X-Frame-Options": "DENY",
        },
    )
