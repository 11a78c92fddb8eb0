"""The host's scrubbing of worker exception messages (azure-functions-host `src/WebJobs.Script/Sanitizer.cs`;
its cases are in `test/WebJobs.Script.Tests/SanitizerTests.cs`), and what an orchestrator then sees."""

from __future__ import annotations

import json
from typing import Any

import azure.durable_functions as df
import azure.functions as func
import pytest

from devhost.sanitizer import SECRET_REPLACEMENT as HIDDEN
from devhost.sanitizer import sanitize
from devhost.testing import DevHost


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Foo", "Foo"),
        ("TokenFoo", "TokenFoo"),
        ("PublicKeyToken=1234456789ab", "PublicKeyToken=1234456789ab"),
        ("Token=1234,Test=bar'Other=bar", f"{HIDDEN}'Other=bar"),
        ('Token=1234,Test=bar"Other=barData Source=secret!', f'{HIDDEN}"Other=bar{HIDDEN}'),
        ("Token=1234<Other", f"{HIDDEN}<Other"),
        ("AccountKey=abc", HIDDEN),
        ("password=hunter2 and more", HIDDEN),  # case-insensitive; no terminator: cut to the end
        ("see https://x/cb?sig=abc", f"see https://x/cb{HIDDEN}"),
        ("test?foo=bar&code=REAAAT-ag==", f"test?foo=bar{HIDDEN}"),
        ("api-key=abc'rest", f"api-{HIDDEN}'rest"),
        ("test,aaa://user:pa55@host.io:1111,test", f"test,{HIDDEN},test"),
        ("no credentials: just a colon", "no credentials: just a colon"),
    ],
)
def test_sanitize_matches_the_hosts_rules(text: str, expected: str) -> None:
    assert sanitize(text) == expected


def test_a_json_payload_in_an_exception_message_is_cut() -> None:
    # Why activities never carry structured data in exception text: everything from `key=` to the next quote.
    payload = json.dumps({"message": "bad key=abc", "requestId": "rid-1"})
    assert (
        sanitize(f"GraphError: {payload}")
        == 'GraphError: {"message": "bad ' + HIDDEN + '", "requestId": "rid-1"}'
    )
    assert "rid-1" not in sanitize('GraphError: {"message": "key=abc, requestId rid-1"}')


def build_app() -> df.DFApp:
    app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.orchestration_trigger(context_name="context")
    def leaky(context: df.DurableOrchestrationContext) -> Any:
        try:
            yield context.call_activity("fail_with_secret", None)
        except Exception as exc:
            return str(exc)
        return "no failure"

    @app.activity_trigger(input_name="unused")
    def fail_with_secret(unused: Any) -> None:
        raise RuntimeError('Graph said "denied" at https://x/?sig=SECRET&key=K2 request-id rid-7')

    return app


def test_the_orchestrator_sees_the_sanitized_reason() -> None:
    with DevHost(app=build_app()) as host:
        instance_id = host.start_new("leaky", None)
        status = host.run_until_status(instance_id)
    # The SDK raises Exception("<Reason> \n <Details>"); the host scrubs the message (Reason), not the stack
    # trace the worker sends with it, which lands in Details.
    reason, _, details = status["output"].partition(" \n ")
    assert reason == (
        "Activity function 'fail_with_secret' failed:  RuntimeError: "
        f'Graph said "denied" at https://x/{HIDDEN}'
    )
    assert json.loads(details)["StackTraceString"].endswith("?sig=SECRET&key=K2 request-id rid-7\n")
