"""Queue Storage client from the one settings loader (same account as tables and blobs)."""

from __future__ import annotations

from typing import Any

from azure.storage.queue import QueueServiceClient

from core.adapters.storage.tables import connection_string, service_uri
from core.settings import Settings


def queue_service(settings: Settings) -> QueueServiceClient:
    """Producers here send base64 text themselves (host.json ``messageEncoding: base64``)."""
    conn = connection_string(settings)
    if conn is not None:
        return QueueServiceClient.from_connection_string(conn)
    from azure.identity import DefaultAzureCredential

    credential: Any = DefaultAzureCredential()
    return QueueServiceClient(service_uri(settings, "queue"), credential=credential)
