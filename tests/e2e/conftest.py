"""e2e fixtures: the real function_app served by the devhost (a subprocess) on the test run's Azurite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.azurite import Azurite
from tests.support.devhost import AppClient, start_function_app


@pytest.fixture(scope="module")
def live_app(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppClient]:
    """One function_app devhost per test module; it must stop cleanly (exit 0) at the end."""
    client = start_function_app(azurite, tmp_path_factory.mktemp("function-app"))
    try:
        yield client
    finally:
        assert client.process.stop() == 0, "the devhost did not stop cleanly"
