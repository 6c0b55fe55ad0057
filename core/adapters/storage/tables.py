"""Table and Blob clients built from the one settings loader; tables/containers created on first use.

Connection, in order:
1. ``AzureWebJobsStorage`` set to a connection string (``UseDevelopmentStorage=true`` means local Azurite
   on its default ports);
2. otherwise, when ``AzureWebJobsStorage__accountName`` is set, the account's public endpoints with
   ``DefaultAzureCredential`` (the Function App's managed identity);
3. otherwise the default, local Azurite.

Keys: Table Storage forbids ``/ \\ # ?`` and control characters in PartitionKey/RowKey; ``escape_key``
percent-encodes them (and ``%`` itself), so any id maps to exactly one key and back.
"""

from __future__ import annotations

import threading
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote, unquote

import requests
from azure.core.exceptions import ResourceExistsError
from azure.core.pipeline.transport import RequestsTransport
from azure.data.tables import TableClient, TableServiceClient
from azure.storage.blob import BlobServiceClient, ContainerClient, ExponentialRetry

from core.settings import Settings

DEV_STORAGE = "UseDevelopmentStorage=true"
AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's documented, public development key (not a secret).
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
AZURITE_CONNECTION_STRING = (
    f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
    f"BlobEndpoint=http://127.0.0.1:10000/{AZURITE_ACCOUNT};"
    f"QueueEndpoint=http://127.0.0.1:10001/{AZURITE_ACCOUNT};"
    f"TableEndpoint=http://127.0.0.1:10002/{AZURITE_ACCOUNT};"
)
_KEY_SAFE = "-_.!~*'()@:+=,;$&"


def escape_key(value: str) -> str:
    """A PartitionKey/RowKey for any string (reversible with ``unescape_key``)."""
    return quote(value, safe=_KEY_SAFE)


def unescape_key(key: str) -> str:
    return unquote(key)


def connection_string(settings: Settings) -> str | None:
    """The storage connection string, or ``None`` when the managed identity should be used."""
    explicit = settings.values.get("AzureWebJobsStorage")
    if explicit:
        return AZURITE_CONNECTION_STRING if explicit.strip() == DEV_STORAGE else explicit
    if settings.get("AzureWebJobsStorage__accountName") or any(_service_uris(settings).values()):
        return None
    default = settings.get("AzureWebJobsStorage") or DEV_STORAGE
    return AZURITE_CONNECTION_STRING if default.strip() == DEV_STORAGE else default


def _service_uris(settings: Settings) -> dict[str, str | None]:
    return {
        "blob": settings.get("AzureWebJobsStorage__blobServiceUri"),
        "queue": settings.get("AzureWebJobsStorage__queueServiceUri"),
        "table": settings.get("AzureWebJobsStorage__tableServiceUri"),
    }


def service_uri(settings: Settings, service: Literal["blob", "queue", "table"]) -> str:
    """The account's endpoint for identity-based access: the host's own
    ``AzureWebJobsStorage__<service>ServiceUri`` setting (right in every cloud), else built from the
    account name for public Azure."""
    explicit = _service_uris(settings)[service]
    if explicit:
        return explicit.rstrip("/")
    account = settings.require("AzureWebJobsStorage__accountName")
    return f"https://{account}.{service}.core.windows.net"


def _transport() -> dict[str, Any]:
    """Storage clients skip requests' per-call environment lookups (keeping what they would find).

    By default requests re-reads proxy, CA-bundle and netrc settings from the environment on every call
    (walking every environment variable twice): about 0.5 ms of CPU per storage request in a Functions
    process, a good part of a configuration read. The CA bundle is read once here instead; when a proxy
    is configured the default behaviour is kept (its ``no_proxy`` rules are per host).
    """
    if urllib.request.getproxies():
        return {}
    with requests.Session() as session:  # what requests itself would take from the environment
        found = session.merge_environment_settings("https://storage.invalid/", {}, None, True, None)
    verify = found.get("verify", True)  # True, or the REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE path
    return {"transport": RequestsTransport(use_env_settings=False, connection_verify=verify)}


def blob_retry() -> ExponentialRetry:
    """Blob clients retry a failed call after ~1, ~3, ~5 s instead of the SDK's 15-18 s first wait: one
    connection reset (a pooled keep-alive connection the service had closed) made an export chunk wait
    15 s for its staged records (bench.export: 26 s chunks among 5 s ones)."""
    return ExponentialRetry(initial_backoff=1, increment_base=2, retry_total=3, random_jitter_range=1)


@dataclass
class Storage:
    """Clients for one storage account; ``table(name)`` / ``container(name)`` create on first use."""

    table_service: TableServiceClient
    blob_service: BlobServiceClient
    _tables: dict[str, TableClient] = field(default_factory=dict)
    _containers: dict[str, ContainerClient] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_settings(cls, settings: Settings) -> Storage:
        conn = connection_string(settings)
        if conn is not None:
            return cls(
                TableServiceClient.from_connection_string(conn, **_transport()),
                BlobServiceClient.from_connection_string(conn, retry_policy=blob_retry(), **_transport()),
            )
        from azure.identity import DefaultAzureCredential

        credential: Any = DefaultAzureCredential()
        return cls(
            TableServiceClient(service_uri(settings, "table"), credential=credential, **_transport()),
            BlobServiceClient(
                service_uri(settings, "blob"),
                credential=credential,
                retry_policy=blob_retry(),
                **_transport(),
            ),
        )

    def table(self, name: str) -> TableClient:
        with self._lock:
            client = self._tables.get(name)
        if client is not None:
            return client
        try:
            self.table_service.create_table(name)
        except ResourceExistsError:
            pass
        client = self.table_service.get_table_client(name)
        with self._lock:
            self._tables[name] = client
        return client

    def container(self, name: str) -> ContainerClient:
        with self._lock:
            client = self._containers.get(name)
        if client is not None:
            return client
        client = self.blob_service.get_container_client(name)
        try:
            client.create_container()
        except ResourceExistsError:
            pass
        with self._lock:
            self._containers[name] = client
        return client

    def ping(self, timeout: float = 2.0) -> None:
        """One cheap round trip to the table endpoint, no retries (raises when storage is unreachable)."""
        pages = self.table_service.list_tables(
            results_per_page=1, retry_total=0, connection_timeout=timeout, read_timeout=timeout
        ).by_page()
        next(iter(pages), None)
