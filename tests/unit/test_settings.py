"""Settings: every setting, its default, and bad values named in the error."""

from __future__ import annotations

import logging

import pytest

from provisioning.settings import (
    DEFAULT_CALLBACK_ALLOWED_HOSTS,
    DEFAULT_GRAPH_BASE_URL,
    Settings,
    SettingsError,
    get_settings,
    validate_graph_base_url,
)


def test_defaults() -> None:
    settings = Settings.from_mapping({})
    assert settings == Settings()
    assert settings.graph_base_url == DEFAULT_GRAPH_BASE_URL
    assert settings.azure_client_id is None
    assert settings.graph_connect_timeout_seconds == 5.0
    assert settings.graph_read_timeout_seconds == 30.0
    assert settings.status_poll_interval_seconds == 30
    assert settings.provisioning_timeout_minutes == 60
    assert settings.provisioning_queue == "community-requests"
    assert settings.results_queue == "community-results"
    assert settings.callback_allowed_hosts == DEFAULT_CALLBACK_ALLOWED_HOSTS
    assert settings.callback_allow_loopback is False
    assert settings.public_base_url is None


def test_empty_values_take_the_defaults() -> None:
    names = [
        "GRAPH_BASE_URL",
        "AZURE_CLIENT_ID",
        "GRAPH_CONNECT_TIMEOUT_SECONDS",
        "GRAPH_READ_TIMEOUT_SECONDS",
        "STATUS_POLL_INTERVAL_SECONDS",
        "PROVISIONING_TIMEOUT_MINUTES",
        "PROVISIONING_QUEUE",
        "RESULTS_QUEUE",
        "CALLBACK_ALLOWED_HOSTS",
        "CALLBACK_ALLOW_LOOPBACK",
        "PUBLIC_BASE_URL",
    ]
    assert Settings.from_mapping(dict.fromkeys(names, "  ")) == Settings()


def test_every_setting_is_read() -> None:
    settings = Settings.from_mapping(
        {
            "GRAPH_BASE_URL": "http://127.0.0.1:8123/v1.0/",
            "AZURE_CLIENT_ID": " 11111111-2222-3333-4444-555555555555 ",
            "GRAPH_CONNECT_TIMEOUT_SECONDS": "2.5",
            "GRAPH_READ_TIMEOUT_SECONDS": "10",
            "STATUS_POLL_INTERVAL_SECONDS": "45",
            "PROVISIONING_TIMEOUT_MINUTES": "90",
            "PROVISIONING_QUEUE": "in-q",
            "RESULTS_QUEUE": "out-q",
            "CALLBACK_ALLOWED_HOSTS": "hooks.contoso.com, *.Logic.Azure.com",
            "CALLBACK_ALLOW_LOOPBACK": "TRUE",
            "PUBLIC_BASE_URL": "https://api.contoso.com/provisioning/api/",
        }
    )
    assert settings == Settings(
        graph_base_url="http://127.0.0.1:8123/v1.0",
        azure_client_id="11111111-2222-3333-4444-555555555555",
        graph_connect_timeout_seconds=2.5,
        graph_read_timeout_seconds=10.0,
        status_poll_interval_seconds=45,
        provisioning_timeout_minutes=90,
        provisioning_queue="in-q",
        results_queue="out-q",
        callback_allowed_hosts=("hooks.contoso.com", "*.logic.azure.com"),
        callback_allow_loopback=True,
        public_base_url="https://api.contoso.com/provisioning/api",
    )


def test_poll_interval_below_graph_minimum_is_raised_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="provisioning.settings"):
        settings = Settings.from_mapping({"STATUS_POLL_INTERVAL_SECONDS": "5"})
    assert settings.status_poll_interval_seconds == 30
    assert "STATUS_POLL_INTERVAL_SECONDS" in caplog.text


@pytest.mark.parametrize("value", ["false", "0", "no", "False"])
def test_loopback_switch_false_values(value: str) -> None:
    assert Settings.from_mapping({"CALLBACK_ALLOW_LOOPBACK": value}).callback_allow_loopback is False


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GRAPH_BASE_URL", "graph.microsoft.com"),
        ("GRAPH_BASE_URL", "http://graph.microsoft.com/v1.0"),
        ("GRAPH_BASE_URL", "https://graph.microsoft.com/v1.0?x=1"),
        ("GRAPH_CONNECT_TIMEOUT_SECONDS", "fast"),
        ("GRAPH_CONNECT_TIMEOUT_SECONDS", "0"),
        ("GRAPH_READ_TIMEOUT_SECONDS", "-1"),
        ("STATUS_POLL_INTERVAL_SECONDS", "30s"),
        ("PROVISIONING_TIMEOUT_MINUTES", "0"),
        ("PROVISIONING_TIMEOUT_MINUTES", "1.5"),
        ("CALLBACK_ALLOWED_HOSTS", "https://hooks.contoso.com"),
        ("CALLBACK_ALLOWED_HOSTS", "*.contoso.com, host:443"),
        ("CALLBACK_ALLOWED_HOSTS", "a.*.contoso.com"),
        ("CALLBACK_ALLOW_LOOPBACK", "maybe"),
        ("PUBLIC_BASE_URL", "api.contoso.com/api"),
        ("PUBLIC_BASE_URL", "http://api.contoso.com/api"),
        ("PUBLIC_BASE_URL", "https://api.contoso.com/api?code=x"),
    ],
)
def test_bad_values_name_the_setting(name: str, value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_mapping({name: value})
    assert name in str(caught.value)


def test_http_is_accepted_for_loopback_only() -> None:
    assert validate_graph_base_url("http://localhost:9/v1.0") == "http://localhost:9/v1.0"
    assert Settings.from_mapping({"PUBLIC_BASE_URL": "http://127.0.0.1:7071/api"}).public_base_url == (
        "http://127.0.0.1:7071/api"
    )


def test_get_settings_reads_the_environment_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESULTS_QUEUE", "lazy-results")
    get_settings.cache_clear()
    try:
        assert get_settings().results_queue == "lazy-results"
        monkeypatch.setenv("RESULTS_QUEUE", "changed")
        assert get_settings().results_queue == "lazy-results"  # cached until cache_clear()
    finally:
        get_settings.cache_clear()
