"""A Dataverse emulator for tests outside the emulator's own suite, plus a trusting HTTP session."""

from __future__ import annotations

from typing import Any

import requests

from emulators.dataverse import DataverseEmulator
from emulators.tls import trusting_session

STATIC_TOKEN = "static-test-token"


def api_session(emulator: DataverseEmulator) -> requests.Session:
    session = trusting_session()
    session.headers.update(
        {"Authorization": f"Bearer {STATIC_TOKEN}", "Accept": "application/json", "OData-Version": "4.0"}
    )
    return session


def create(emulator: DataverseEmulator, entity_set: str, body: dict[str, Any]) -> str:
    """Create a record through the real Web API path; returns its id."""
    response = api_session(emulator).post(emulator.api_url + entity_set, json=body, timeout=10)
    response.raise_for_status()
    return response.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")


def rows(emulator: DataverseEmulator, entity_set: str, query: str = "") -> list[dict[str, Any]]:
    response = api_session(emulator).get(emulator.api_url + entity_set + query, timeout=10)
    response.raise_for_status()
    result: list[dict[str, Any]] = response.json()["value"]
    return result


class HookedClient:
    """The real Dataverse client, with hooks a test runs just before a bulk write reaches Dynamics (another
    attempt racing this one, a token dying, a worker crashing): the seam a worker's injected client gives,
    instead of patching the worker's internals. ``before("create_multiple", hook)``: ``hook(table,
    records)`` runs before each ``CreateMultiple`` (and ``update_multiple`` likewise)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._hooks: dict[str, list[Any]] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def before(self, method: str, hook: Any) -> None:
        self._hooks.setdefault(method, []).append(hook)

    def clear_hooks(self) -> None:
        self._hooks.clear()

    def create_multiple(self, table: str, records: Any, **options: Any) -> Any:
        for hook in list(self._hooks.get("create_multiple", [])):
            hook(table, records)
        return self._client.create_multiple(table, records, **options)

    def update_multiple(self, table: str, records: Any, **options: Any) -> Any:
        for hook in list(self._hooks.get("update_multiple", [])):
            hook(table, records)
        return self._client.update_multiple(table, records, **options)
