"""Keys under --enforce-keys, over real HTTP, as the Functions host decides them.

azure-functions-host (v4.1037.0 prep, commit 89dc438d476542786f2fc4070f553423213a6223):
`SecretManager.GetAuthorizationLevelAsync` matches the master key (Admin), system keys (System), host keys
(Function) and the keys of the called function only (Function); `AuthUtility.PrincipalHasAuthLevelClaim` then
lets Admin through everywhere and otherwise wants exactly the trigger's level.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from devhost.host import FUNCTION_KEYS_SETTING, HOST_KEYS_SETTING, MASTER_KEY_SETTING, AccessKeys
from devhost.local_settings import SettingsError
from devhost.testing import DevHost
from tests.devhost.cli import DevHostProcess, free_port

APP = "tests.devhost.apps.keys_app:app"
KEYS = AccessKeys(host=("host-key",), functions={"first": ("first-key", "first-key-2")})


@pytest.fixture
def host(devhost_factory: Callable[..., DevHost]) -> DevHost:
    return devhost_factory(app=APP, host_json=None, enforce_keys=True, keys=KEYS)


def status(host: DevHost, route: str, key: str | None = None, *, header: str | None = None) -> int:
    params = {"code": key} if key is not None else {}
    headers = {"x-functions-key": header} if header is not None else {}
    return requests.get(f"{host.base_url}/api/{route}", params=params, headers=headers, timeout=5).status_code


def test_a_function_key_opens_its_own_function_only(host: DevHost) -> None:
    assert status(host, "first", "first-key") == 200
    assert status(host, "first", header="first-key-2") == 200
    # The status-URL case: a key of one function carried to another function's route.
    assert status(host, "second", "first-key") == 401
    assert status(host, "second", header="first-key") == 401
    assert status(host, "admin", "first-key") == 401


def test_a_host_key_opens_every_function_level_function_but_not_admin(host: DevHost) -> None:
    assert status(host, "first", "host-key") == 200
    assert status(host, "second", header="host-key") == 200
    assert status(host, "admin", "host-key") == 401


def test_the_master_key_opens_every_level(host: DevHost) -> None:
    for route in ("first", "second", "admin", "open"):
        assert status(host, route, host.system_key) == 200


def test_missing_wrong_or_non_ascii_keys_are_401_and_anonymous_stays_open(host: DevHost) -> None:
    assert status(host, "first") == 401
    assert status(host, "first", "wrong") == 401
    assert status(host, "first", "first-keyé") == 401  # not a 500 from comparing non-ASCII text
    assert status(host, "open") == 200
    assert status(host, "open", "wrong") == 200


def test_the_header_hides_the_code_even_when_empty(host: DevHost) -> None:
    assert status(host, "second", "host-key", header="first-key") == 401
    assert status(host, "second", "wrong", header="host-key") == 200
    assert status(host, "second", "host-key", header="") == 401


def test_the_durable_webhook_takes_the_master_key_only(host: DevHost) -> None:
    webhook = f"{host.base_url}/runtime/webhooks/durabletask/instances/nope"
    for key in (None, "host-key", "first-key"):
        assert requests.get(webhook, params={"code": key}, timeout=5).status_code == 401
    assert requests.get(webhook, params={"code": host.system_key}, timeout=5).status_code == 404


def test_keys_from_settings_with_padding_spaces_and_any_case(devhost_factory: Callable[..., DevHost]) -> None:
    settings = {
        HOST_KEYS_SETTING: " h1 , h2 ",
        FUNCTION_KEYS_SETTING: "FIRST=abc==, f2 ; second = s1;",
        MASTER_KEY_SETTING: "the-master",
    }
    host = devhost_factory(app=APP, host_json=None, enforce_keys=True, settings=settings)
    assert host.system_key == "the-master"
    assert [status(host, "first", key) for key in ("abc==", "f2", "h2", "s1")] == [200, 200, 200, 401]
    assert [status(host, "second", key) for key in ("s1", "h1", "abc==")] == [200, 200, 401]


@pytest.mark.parametrize(
    "function_keys",
    ["only-a-secret-value", "first=;second=a-secret-value", "=a-secret-value", "a-secret-value=x"],
)
def test_a_bad_function_keys_setting_stops_the_start_without_showing_it(
    devhost_factory: Callable[..., DevHost], function_keys: str
) -> None:
    with pytest.raises(SettingsError, match=FUNCTION_KEYS_SETTING) as raised:
        devhost_factory(
            app=APP, host_json=None, enforce_keys=True, settings={FUNCTION_KEYS_SETTING: function_keys}
        )
    assert "secret" not in str(raised.value)


def test_python_m_devhost_reads_the_keys_from_its_settings_and_never_prints_them(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}/api"
    args = ["--port", str(port), "--app", APP, "--state", str(tmp_path / "s.db"), "--enforce-keys"]
    env = {HOST_KEYS_SETTING: "host-xyz", FUNCTION_KEYS_SETTING: "first=first-xyz"}
    host = DevHostProcess(args, cwd=tmp_path, env=env)
    try:
        host.wait_started()
        codes = [
            requests.get(f"{base}/{route}", params={"code": key}, timeout=5).status_code
            for route, key in [("first", "first-xyz"), ("second", "first-xyz"), ("admin", "host-xyz")]
        ]
        assert codes == [200, 401, 401]
    finally:
        assert host.interrupt() == 0
    assert f"({FUNCTION_KEYS_SETTING}) for: first" in host.output
    assert "xyz" not in host.output

    bad = DevHostProcess(args, cwd=tmp_path, env={FUNCTION_KEYS_SETTING: "flat-xyz"})
    assert bad.wait_exit() == 1
    assert f"{FUNCTION_KEYS_SETTING}: entry 1 is not function_name=key" in bad.output
    assert "xyz" not in bad.output
