"""Which storage the app talks to, and how workspace ids become Table keys."""

from __future__ import annotations

import pytest

from core.adapters.storage.tables import (
    AZURITE_CONNECTION_STRING,
    connection_string,
    escape_key,
    service_uri,
    unescape_key,
)
from core.settings import load_settings


def test_development_storage_means_local_azurite() -> None:
    assert connection_string(load_settings({})) == AZURITE_CONNECTION_STRING
    assert connection_string(load_settings({"AzureWebJobsStorage": "UseDevelopmentStorage=true"})) == (
        AZURITE_CONNECTION_STRING
    )


def test_explicit_connection_string_wins() -> None:
    conn = "DefaultEndpointsProtocol=https;AccountName=x;AccountKey=eA==;EndpointSuffix=core.windows.net"
    settings = load_settings({"AzureWebJobsStorage": conn, "AzureWebJobsStorage__accountName": "other"})
    assert connection_string(settings) == conn


def test_account_name_alone_means_managed_identity() -> None:
    assert connection_string(load_settings({"AzureWebJobsStorage__accountName": "prodstore"})) is None


@pytest.mark.parametrize("value", ["ws-1", "a/b", "a\\b", "a#b?c", "100%", "tab\there", "ünï", "a%2Fb"])
def test_escaped_keys_are_legal_and_reversible(value: str) -> None:
    key = escape_key(value)
    assert not set(key) & set("/\\#?") and all(ord(c) >= 32 and ord(c) != 127 for c in key)
    assert unescape_key(key) == value


def test_distinct_ids_never_share_a_key() -> None:
    ids = ["a/b", "a%2Fb", "a%252Fb", "A/b", "a b", "a+b"]
    assert len({escape_key(i) for i in ids}) == len(ids)


def test_storage_keeps_proxy_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from core.adapters.storage import tables

    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
    ):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    # Nothing set: the per-call environment lookups are skipped.
    plain = tables._transport()["transport"]
    assert plain._use_env_settings is False and plain.connection_config.verify is True
    # A CA bundle is read once and still used for every call.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/corp.pem")
    assert tables._transport()["transport"].connection_config.verify == "/etc/ssl/corp.pem"
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    assert tables._transport() == {}  # a proxy is set: requests' default (honour the environment) stays


def test_identity_based_storage_uses_the_hosts_service_uris_in_any_cloud() -> None:
    china = {
        "AzureWebJobsStorage__accountName": "prodstore",
        "AzureWebJobsStorage__tableServiceUri": "https://prodstore.table.core.chinacloudapi.cn/",
        "AzureWebJobsStorage__queueServiceUri": "https://prodstore.queue.core.chinacloudapi.cn",
    }
    settings = load_settings(china)
    assert connection_string(settings) is None
    assert service_uri(settings, "table") == "https://prodstore.table.core.chinacloudapi.cn"
    assert service_uri(settings, "queue") == "https://prodstore.queue.core.chinacloudapi.cn"
    # not given: public Azure's endpoint of the account
    assert service_uri(settings, "blob") == "https://prodstore.blob.core.windows.net"
    only_uris = load_settings(
        {"AzureWebJobsStorage__blobServiceUri": "https://x.blob.core.usgovcloudapi.net"}
    )
    assert connection_string(only_uris) is None
