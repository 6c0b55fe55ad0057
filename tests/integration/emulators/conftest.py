"""The ``dataverse`` fixture: one emulator per test session, emptied before every test.

``dataverse`` is the :class:`DataverseEmulator` (reset: only the root business unit and the default
integration user exist, limits and faults back to defaults); ``dv`` is a ``requests`` session that trusts
the local CA and sends the accepted static token, with ``dv.api`` = the Web API base URL.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from emulators.dataverse import DataverseEmulator, LimitConfig
from emulators.tls import trusting_session

TOKEN = "static-test-token"


class DataverseSession(requests.Session):
    api: str
    base: str

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if isinstance(url, str) and not url.startswith(("http://", "https://")):
            url = (self.base + url) if url.startswith("/") else (self.api + url)
        return super().request(method, url, *args, **kwargs)


@pytest.fixture(scope="session")
def dataverse_session_emulator() -> Iterator[DataverseEmulator]:
    emulator = DataverseEmulator(accepted_tokens=(TOKEN,))
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture()
def dataverse(dataverse_session_emulator: DataverseEmulator) -> DataverseEmulator:
    emulator = dataverse_session_emulator
    emulator.reset()
    emulator.limits.configure(**LimitConfig().to_dict())
    emulator.clock.unfreeze()
    emulator.clock.set(time.time())
    return emulator


@pytest.fixture()
def dv(dataverse: DataverseEmulator) -> Iterator[DataverseSession]:
    """Relative URLs go to the Web API (``dv.get("contacts")``), ``/_emulator/...`` to the control API."""
    base = trusting_session()
    session = DataverseSession()
    session.trust_env = False
    session.verify = base.verify
    session.api = dataverse.api_url
    session.base = dataverse.url
    session.headers.update(
        {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json", "OData-Version": "4.0"}
    )
    with session:
        yield session
