"""A pytest plugin that reads every log line the app writes during the whole test session and fails the run if
one carries personal data or a secret: a user principal name (any e-mail-like address), the display name of a
directory user, a bearer token, a function key or callback signature, or a callback URL's path.

The app runs in the test process (the dev host loads it there), so its records reach the root logger. The
app's loggers are set to INFO for the session so that every line it would write in Azure is seen.
"""

from __future__ import annotations

import logging
import re

import pytest

from graph_simulator import SEED_USERS

APP_LOGGERS = ("provisioning", "triggers", "orchestrators", "activities", "entities", "function_app")
# What must never be in a log line: (pattern, what it is).
FORBIDDEN = [
    (re.compile(r"[A-Za-z0-9._%+'-]+(@|%40)[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+"), "a user principal name"),
    # A credential, not the words "bearer token": real tokens are long runs of base64url and dots.
    (re.compile(r"\bBearer\s+[A-Za-z0-9._~+/=-]{20,}", re.IGNORECASE), "a bearer token"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"), "a JSON web token"),
    (re.compile(r"[?&](sig|code|sv|se)=", re.IGNORECASE), "a signed query string or function key"),
    (re.compile(r"x-functions-key", re.IGNORECASE), "a function key header"),
    (re.compile(r"/workflows/[^/\s]+/triggers/"), "a Logic Apps callback URL"),
    *[(re.compile(re.escape(user["displayName"])), "a person's display name") for user in SEED_USERS],
]


class LogPrivacy(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.test = "(collection)"
        self.findings: list[str] = []
        self.lines = 0

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith(APP_LOGGERS):
            return
        self.lines += 1
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += "\n" + str(record.exc_info[1])
        for pattern, what in FORBIDDEN:
            if match := pattern.search(text):
                self.findings.append(
                    f"{self.test}: {what} ({match.group(0)!r}) in {record.name}: {text[:300]}"
                )


_handler = LogPrivacy()


def pytest_configure(config: pytest.Config) -> None:
    logging.getLogger().addHandler(_handler)
    for name in APP_LOGGERS:
        if logging.getLogger(name).level in (logging.NOTSET, logging.WARNING):
            logging.getLogger(name).setLevel(logging.INFO)


def pytest_runtest_setup(item: pytest.Item) -> None:
    _handler.test = item.nodeid


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and _handler.lines:
        reporter.ensure_newline()
        found = len(_handler.findings)
        reporter.write_line(f"log privacy: {_handler.lines} app log lines read, {found} with personal data")
    if _handler.findings:
        lines = [
            f"{len(_handler.findings)} app log lines carry personal data or secrets:",
            *_handler.findings[:50],
        ]
        if reporter is not None:
            reporter.write_line("\n".join(lines), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
