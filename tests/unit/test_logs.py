"""The request fields on app log lines, and the suite-wide log privacy check itself."""

from __future__ import annotations

import asyncio
import logging

import pytest

from provisioning.logs import get_logger, ids_of, log_fields
from tests.log_privacy import LogPrivacy


def records_of(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == name]


def test_fields_come_from_the_call_or_the_invocation_context(caplog: pytest.LogCaptureFixture) -> None:
    logger = get_logger("provisioning.test_logs")
    caplog.set_level(logging.INFO, logger="provisioning.test_logs")
    logger.info("started %s", "req-1", extra=ids_of("req-1"))
    with log_fields(batchId="batch-9"), log_fields(graphRequestId="rid-5"):
        logger.info("100%% of the %s", "items")
    logger.info("no context")

    first, second, third = records_of(caplog, "provisioning.test_logs")
    assert first.getMessage() == "started req-1 [requestId=req-1]"
    assert first.requestId == "req-1"  # type: ignore[attr-defined]
    assert second.getMessage() == "100% of the items [batchId=batch-9 graphRequestId=rid-5]"
    assert (second.batchId, second.graphRequestId) == ("batch-9", "rid-5")  # type: ignore[attr-defined]
    assert third.getMessage() == "no context"
    assert ids_of("batch-1") == {"batchId": "batch-1"}


def test_concurrent_invocations_keep_their_own_fields(caplog: pytest.LogCaptureFixture) -> None:
    logger = get_logger("provisioning.test_logs")
    caplog.set_level(logging.INFO, logger="provisioning.test_logs")

    async def invocation(request_id: str) -> None:
        with log_fields(requestId=request_id):
            await asyncio.sleep(0)
            await asyncio.to_thread(logger.info, "step")

    async def both() -> None:
        await asyncio.gather(invocation("req-a"), invocation("req-b"))

    asyncio.run(both())
    shown = sorted(record.getMessage() for record in records_of(caplog, "provisioning.test_logs"))
    assert shown == ["step [requestId=req-a]", "step [requestId=req-b]"]


@pytest.mark.parametrize(
    ("message", "what"),
    [
        ("resolved adele.vance@contoso.onmicrosoft.com", "a user principal name"),
        ("GET /users/adele.vance%40contoso.onmicrosoft.com", "a user principal name"),
        ("owner Adele Vance", "a person's display name"),
        (
            "callback to https://prod-00.westeurope.logic.azure.com/workflows/abc/triggers/manual/run",
            "a Logic",
        ),
        ("status at https://app/api/communities/requests/req-1?code=abc", "a signed query string"),
        ("Authorization: Bearer abcdefghij.klmnopqrst.uvwxyz", "a bearer token"),
    ],
)
def test_the_privacy_check_finds_what_it_looks_for(message: str, what: str) -> None:
    check = LogPrivacy()
    check.emit(logging.LogRecord("triggers.http_api", logging.INFO, __file__, 1, message, None, None))
    check.emit(
        logging.LogRecord("devhost.host", logging.INFO, __file__, 1, message, None, None)
    )  # not the app
    assert len(check.findings) == 1
    assert what in check.findings[0]
