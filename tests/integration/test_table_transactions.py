"""``replace_entities``: the export store's own entity-group transaction, against Azurite.

It replaces ``TableClient.submit_transaction`` on the per-record results path (same wire format, a
fraction of the CPU), so it must keep its contract: every entity written as given (replacing the old
one), keys with quotes and non-ASCII values intact, and a refused transaction writes nothing and raises.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ServiceResponseError
from azure.core.pipeline.transport import RequestsTransport
from azure.data.tables import TableClient, TableServiceClient

from core.adapters.storage.table_transactions import replace_entities


@pytest.fixture()
def table(storage_connection_string: str) -> TableClient:
    name = f"tx{uuid.uuid4().hex[:12]}"
    service = TableServiceClient.from_connection_string(storage_connection_string)
    service.create_table(name)
    return service.get_table_client(name)


def test_a_hundred_entities_land_as_given(table: TableClient) -> None:
    partition = "ws-o'brien~job 1 é"  # quotes, spaces, non-ASCII (keys may not hold / \ # ?)
    entities = [
        {
            "PartitionKey": partition,
            "RowKey": f"{i:07d}",
            "platformId": f"p-'{i}",
            "detail0": '{"note":"Zoë \\"quoted\\" 中文 ✓"}',
            "count": i,
            "big": 2**40 + i,
            "flag": i % 2 == 0,
        }
        for i in range(100)
    ]
    replace_entities(table, entities)
    rows = sorted(
        table.query_entities("PartitionKey eq @pk", parameters={"pk": partition}), key=lambda r: r["RowKey"]
    )
    assert len(rows) == 100
    assert rows[7]["platformId"] == "p-'7"
    assert rows[7]["detail0"] == '{"note":"Zoë \\"quoted\\" 中文 ✓"}'
    assert rows[7]["count"] == 7 and rows[7]["flag"] is False and rows[8]["flag"] is True
    assert rows[7]["big"].value == 2**40 + 7


def test_an_entity_is_replaced_not_merged(table: TableClient) -> None:
    replace_entities(table, [{"PartitionKey": "p", "RowKey": "1", "action": "creating", "detail1": "x"}])
    replace_entities(table, [{"PartitionKey": "p", "RowKey": "1", "action": "created"}])
    row = table.get_entity("p", "1")
    assert row["action"] == "created" and "detail1" not in row


def test_a_refused_transaction_raises_with_the_reason_and_writes_nothing(table: TableClient) -> None:
    entities = [
        {"PartitionKey": "p", "RowKey": "1", "v": "fine"},
        {"PartitionKey": "p", "RowKey": "2", "v": "x" * 70_000},  # over the 64 KiB property limit
    ]
    with pytest.raises(HttpResponseError, match="maximum allowed size"):
        replace_entities(table, entities)
    assert list(table.query_entities("PartitionKey eq 'p'")) == []


def test_one_transaction_holds_one_partition(table: TableClient) -> None:
    with pytest.raises(ValueError, match="one partition"):
        replace_entities(table, [{"PartitionKey": "a", "RowKey": "1"}, {"PartitionKey": "b", "RowKey": "1"}])


class _DropsFirstBatch(RequestsTransport):
    """A transport whose first $batch dies after sending, as a keep-alive connection the server closed."""

    def __init__(self) -> None:
        super().__init__()
        self.dropped = 0

    def send(self, request: Any, **kwargs: Any) -> Any:
        if request.url.endswith("/$batch") and not self.dropped:
            self.dropped += 1
            raise ServiceResponseError("Connection aborted: connection reset by peer")
        return super().send(request, **kwargs)


def test_a_transaction_whose_connection_broke_is_sent_again(
    table: TableClient, storage_connection_string: str
) -> None:
    transport = _DropsFirstBatch()
    client = TableClient.from_connection_string(
        storage_connection_string, table.table_name, transport=transport
    )
    replace_entities(client, [{"PartitionKey": "p", "RowKey": str(i), "v": "x"} for i in range(3)])
    assert transport.dropped == 1
    assert len(list(table.query_entities("PartitionKey eq 'p'"))) == 3
