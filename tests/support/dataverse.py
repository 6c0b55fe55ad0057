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
