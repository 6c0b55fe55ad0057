"""Shared fixtures. Services are real processes started for the run on free loopback ports."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.azurite import Azurite, run_azurite


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    with run_azurite() as instance:
        yield instance


@pytest.fixture()
def storage_connection_string(azurite: Azurite) -> str:
    return azurite.connection_string
