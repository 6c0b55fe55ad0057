"""Per-workspace refresh leases on Table Storage ETags (real Azurite)."""

from __future__ import annotations

import datetime as dt
import threading
import uuid

import pytest
from azure.data.tables import TableServiceClient

from core.adapters.storage.leases import TableLeases
from tests.support.azurite import Azurite

pytestmark = pytest.mark.integration


def test_one_holder_at_a_time_expiry_and_stale_release(azurite: Azurite) -> None:
    now = [dt.datetime(2026, 1, 1, tzinfo=dt.UTC)]
    tables = TableServiceClient.from_connection_string(azurite.connection_string)
    name = "l" + uuid.uuid4().hex[:12]
    leases = TableLeases(tables, "token-refresh", name, clock=lambda: now[0])
    leases.ensure_ready()
    try:
        first = leases.acquire("ws-a", dt.timedelta(minutes=2))
        assert first is not None
        assert leases.acquire("ws-a", dt.timedelta(minutes=2)) is None  # held
        assert leases.acquire("ws-b", dt.timedelta(minutes=2)) is not None  # other keys are independent
        now[0] += dt.timedelta(minutes=3)  # the holder crashed: its lease expires
        second = leases.acquire("ws-a", dt.timedelta(minutes=2))
        assert second is not None and second.owner != first.owner
        leases.release(first)  # a stale holder cannot free the new holder's lease
        assert leases.acquire("ws-a", dt.timedelta(minutes=2)) is None
        leases.release(second)
        assert leases.acquire("ws-a", dt.timedelta(minutes=2)) is not None
    finally:
        tables.delete_table(name)


def test_racing_acquirers_get_exactly_one_lease(azurite: Azurite) -> None:
    tables = TableServiceClient.from_connection_string(azurite.connection_string)
    name = "l" + uuid.uuid4().hex[:12]
    leases = TableLeases(tables, "token-refresh", name)
    leases.ensure_ready()
    won: list[bool] = []
    barrier = threading.Barrier(8)

    def race() -> None:
        barrier.wait()
        won.append(leases.acquire("ws-race", dt.timedelta(minutes=2)) is not None)

    try:
        threads = [threading.Thread(target=race) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert won.count(True) == 1 and len(won) == 8
    finally:
        tables.delete_table(name)
