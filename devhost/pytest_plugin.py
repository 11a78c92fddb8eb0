"""Pytest fixtures for the dev host: `azurite` (session) and `devhost_factory` (function).

The dev host is imported inside the fixtures so that loading this plugin never breaks a test session.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from devhost.testing import Azurite, DevHost


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """A private in-memory Azurite queue service for the test session (fails if Azurite is not installed)."""
    from devhost.testing import Azurite

    with Azurite(services=("queue",)) as instance:
        yield instance


@pytest.fixture
def devhost_factory() -> Iterator[Callable[..., DevHost]]:
    """`devhost_factory(**DevHost kwargs)` → a started DevHost, stopped at teardown."""
    from devhost.testing import DevHost

    hosts: list[DevHost] = []

    def factory(**kwargs: Any) -> DevHost:
        host = DevHost(**kwargs)
        host.start()
        hosts.append(host)
        return host

    yield factory
    for host in reversed(hosts):
        host.stop()
