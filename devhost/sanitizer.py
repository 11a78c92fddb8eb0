"""The Functions host's credential scrubbing of worker exception messages.

When a function fails, the host wraps the worker's message in an `RpcException` whose message passes through
`Sanitizer.Sanitize` (azure-functions-host `src/WebJobs.Script/Workers/Rpc/RpcException.cs` and
`src/WebJobs.Script/Sanitizer.cs`, commit 89dc438d, 2024-10-24); the stack trace is not scrubbed. From each
credential-like token (matched case-insensitively) up to the next `<`, `"` or `'`, or the end of the text, the
message is replaced by `[Hidden Credential]`; `user:password@host:port` URLs are replaced whole. That is the
`Reason` an orchestrator sees of a failed activity, so anything structured in an exception message can be cut.
"""

from __future__ import annotations

import re

SECRET_REPLACEMENT = "[Hidden Credential]"
_CREDENTIAL_TOKENS = (
    "Token=",
    "DefaultEndpointsProtocol=http",
    "AccountKey=",
    "Data Source=",
    "Server=",
    "Password=",
    "pwd=",
    "&amp;sig=",
    "&sig=",
    "?sig=",
    "SharedAccessKey=",
    "&amp;code=",
    "&code=",
    "?code=",
    "key=",
)
# Never taken for a credential, though it contains one of the tokens ("Token=", "key=").
_ALLOWED_TOKENS = ("PublicKeyToken=",)
_VALUE_END = re.compile("[<\"']")
_URL_WITH_CREDENTIALS = re.compile(r"\b[a-z]+://[^:/\s]+:[^@/\s]+@[^:/\s]+:[0-9]+\b", re.IGNORECASE)


def sanitize(text: str) -> str:
    """``text`` as the host passes it on: every credential-like value replaced by ``[Hidden Credential]``."""
    if "=" not in text and ":" not in text:
        return text
    # Tokens are searched in a copy where allowed tokens are masked; both copies are cut at the same places.
    searched = text
    for allowed in _ALLOWED_TOKENS:
        searched = re.sub(re.escape(allowed), "#" * len(allowed), searched, flags=re.IGNORECASE)
    for token in _CREDENTIAL_TOKENS:
        pattern = re.compile(re.escape(token), re.IGNORECASE)
        while (found := pattern.search(searched)) is not None:
            start = found.start()
            value_end = _VALUE_END.search(text, start)
            rest = value_end.start() if value_end else len(text)
            text = text[:start] + SECRET_REPLACEMENT + text[rest:]
            searched = searched[:start] + SECRET_REPLACEMENT + searched[rest:]
    if ":" in text:
        text = _URL_WITH_CREDENTIALS.sub(SECRET_REPLACEMENT, text)
    return text
