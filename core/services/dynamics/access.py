"""A Dataverse client for a workspace's Dynamics connection (one per workspace and environment, reused).

Exports, activities, the fields endpoint and metadata checks all reach Dynamics through here, so every
call shares the workspace's adaptive concurrency and the token provider of the connection.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import requests

from core.adapters.dataverse.client import DataverseClient, RequestEvent, token_source_for
from core.domain.connection import DynamicsConnection, NotConnected, TokenProvider


class DynamicsAccess:
    def __init__(
        self,
        tokens: TokenProvider,
        *,
        session_factory: Callable[[], requests.Session] = requests.Session,
        max_concurrency: int = 16,
        on_request_for: Callable[[str], Callable[[RequestEvent], None]] | None = None,
        before_send_for: Callable[[str], Callable[[], None]] | None = None,
    ) -> None:
        self._tokens = tokens
        self._on_request_for = on_request_for  # e.g. the shared budget's ledger, per workspace
        self._before_send_for = before_send_for  # e.g. the shared budget's 429 pause, per workspace
        self._session_factory = session_factory
        self._max_concurrency = max_concurrency
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, str], DataverseClient] = {}

    def connection(self, workspace_id: str) -> DynamicsConnection:
        connection = self._tokens.connection(workspace_id)
        if connection is None:
            raise NotConnected(workspace_id)
        return connection

    def client_for(self, workspace_id: str) -> tuple[DataverseClient, DynamicsConnection]:
        """The workspace's client and connection; ``NotConnected`` when there is none."""
        connection = self.connection(workspace_id)
        key = (workspace_id, connection.environment_url.rstrip("/").lower())
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = DataverseClient(
                    connection.environment_url,
                    token_source_for(self._tokens, workspace_id),
                    session=self._session_factory(),
                    max_concurrency=self._max_concurrency,
                    on_request=self._on_request_for(workspace_id) if self._on_request_for else None,
                    before_send=self._before_send_for(workspace_id) if self._before_send_for else None,
                )
                self._clients[key] = client
        return client, connection
