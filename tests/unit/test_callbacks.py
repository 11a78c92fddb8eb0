"""Callback URL policy and redaction."""

from __future__ import annotations

import pytest

from provisioning.callbacks import CallbackPolicy, CallbackUrlError, Resolver, host_matches, redact_url
from provisioning.settings import DEFAULT_CALLBACK_ALLOWED_HOSTS, Settings

POLICY = CallbackPolicy(("*.logic.azure.com", "hooks.contoso.com", "20.50.2.10"))
DEV_POLICY = CallbackPolicy(("*.logic.azure.com",), allow_loopback=True)


@pytest.mark.parametrize(
    "url",
    [
        "https://prod-37.eastus2.logic.azure.com/workflows/1/runs/2/actions/wait/run?api-version=1&sig=abc",
        "https://prod-37.eastus2.logic.azure.com:443/x",
        "https://hooks.contoso.com/path",
        "https://HOOKS.contoso.com./path",
    ],
)
def test_allowed_urls(url: str) -> None:
    assert POLICY.check_url(url) == url


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://prod-37.eastus2.logic.azure.com/x", "https"),
        ("ftp://hooks.contoso.com/x", "absolute https URL"),
        ("//hooks.contoso.com/x", "absolute https URL"),
        ("not a url", "absolute https URL"),
        ("https://logic.azure.com/x", "not allowed"),  # "*.suffix" matches subdomains only
        ("https://evil-logic.azure.com/x", "not allowed"),
        ("https://logic.azure.com.evil.example/x", "not allowed"),
        ("https://hooks.contoso.com.evil.example/x", "not allowed"),
        ("https://user:pw@hooks.contoso.com/x", "user name or password"),
        ("https://hooks.contoso.com:99999/x", "absolute https URL"),
        ("https://10.1.2.3/x", "private"),
        ("https://192.168.0.1/x", "private"),
        ("https://169.254.169.254/metadata", "link-local"),
        ("https://[fe80::1]/x", "link-local"),
        ("https://0.0.0.0/x", "unspecified"),
        ("https://224.0.0.1/x", "multicast"),
        ("https://[::ffff:10.0.0.1]/x", "private"),
        ("https://100.64.0.1/x", "non-global"),
        ("https://127.0.0.1/x", "loopback"),
        ("https://[::1]/x", "loopback"),
        ("https://localhost/x", "loopback"),
        ("https://hooks.contoso.com/" + "x" * 2100, "at most 2048"),
    ],
)
def test_refused_urls(url: str, reason: str) -> None:
    with pytest.raises(CallbackUrlError) as caught:
        POLICY.check_url(url)
    assert reason in str(caught.value)


def test_public_literal_ip_must_still_be_on_the_allow_list() -> None:
    assert POLICY.check_url("https://20.50.2.10/x")  # listed (listed exactly)
    with pytest.raises(CallbackUrlError, match="not allowed"):
        POLICY.check_url("https://8.8.8.8/x")


def test_refusal_messages_never_contain_the_query() -> None:
    for url in ("https://evil.example.com/x?sig=SECRET", "http://hooks.contoso.com/x?sig=SECRET"):
        with pytest.raises(CallbackUrlError) as caught:
            POLICY.check_url(url)
        assert "SECRET" not in str(caught.value)


def test_loopback_only_with_the_dev_switch_and_then_http_too() -> None:
    for url in (
        "http://127.0.0.1:8080/hook",
        "https://localhost/hook",
        "http://[::1]:9/x",
        "http://127.9.9.9/",
    ):
        assert DEV_POLICY.check_url(url) == url
    # The switch does not open private networks.
    with pytest.raises(CallbackUrlError, match="private"):
        DEV_POLICY.check_url("https://10.0.0.1/hook")
    with pytest.raises(CallbackUrlError, match="https"):
        DEV_POLICY.check_url("http://prod-1.westeurope.logic.azure.com/x")


def test_host_matching() -> None:
    patterns = ("*.logic.azure.com", "exact.example.com")
    assert host_matches("a.logic.azure.com", patterns)
    assert host_matches("a.b.logic.azure.com", patterns)
    assert host_matches("EXACT.example.com", patterns)
    assert not host_matches("logic.azure.com", patterns)
    assert not host_matches("sub.exact.example.com", patterns)
    assert not host_matches("xlogic.azure.com", patterns)


def test_default_allow_list_covers_power_automate_and_logic_apps_hosts() -> None:
    policy = CallbackPolicy.from_settings(Settings())
    assert policy.allowed_hosts == DEFAULT_CALLBACK_ALLOWED_HOSTS
    assert not policy.allow_loopback
    policy.check_url("https://prod-12.westeurope.logic.azure.com/workflows/x/run?sig=s")
    policy.check_url("https://default1234.56.environment.api.powerplatform.com/powerautomate/x?sig=s")
    with pytest.raises(CallbackUrlError):
        policy.check_url("https://example.com/x")


def test_check_resolved_checks_every_address() -> None:
    def resolver(addresses: list[str]) -> Resolver:
        return lambda host, port: addresses

    url = "https://hooks.contoso.com/x"
    assert POLICY.check_resolved(url, resolver(["20.50.2.7", "2603:1020::7"])) == [
        "20.50.2.7",
        "2603:1020::7",
    ]
    with pytest.raises(CallbackUrlError, match="resolves to a private address"):
        POLICY.check_resolved(url, resolver(["20.50.2.7", "10.0.0.5"]))
    with pytest.raises(CallbackUrlError, match="resolves to a loopback"):
        POLICY.check_resolved(url, resolver(["127.0.0.1"]))
    with pytest.raises(CallbackUrlError, match="does not resolve"):
        POLICY.check_resolved(url, resolver([]))
    # The URL rules run first: no resolution for a refused URL.
    with pytest.raises(CallbackUrlError, match="not allowed"):
        POLICY.check_resolved("https://evil.example.com/x", resolver(["20.50.2.7"]))


def test_check_resolved_allows_loopback_in_dev_with_the_real_resolver() -> None:
    assert "127.0.0.1" in DEV_POLICY.check_resolved("http://127.0.0.1:9/hook")
    with pytest.raises(CallbackUrlError, match="loopback"):
        POLICY.check_resolved("https://localhost/hook")


def test_unresolvable_host_is_refused() -> None:
    policy = CallbackPolicy(("*.invalid",))
    with pytest.raises(CallbackUrlError, match="cannot be resolved"):
        policy.check_resolved("https://no-such-host.invalid/x")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "https://prod-1.logic.azure.com/workflows/1/run?sig=SECRET&sv=1",
            "https://prod-1.logic.azure.com/workflows/1/run",
        ),
        ("https://user:pw@host.example:8443/p#frag", "https://host.example:8443/p"),
        ("http://[::1]:8080/hook?x=1", "http://[::1]:8080/hook"),
        ("not a url", "<invalid url>"),
        ("https://host:notaport/x", "<invalid url>"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown
