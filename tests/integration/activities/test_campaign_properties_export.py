"""Campaign properties written on export: contacts carry their campaign data (step 3)."""

from __future__ import annotations

import base64
from typing import Any

from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from core.adapters.dataverse.client import DataverseClient
from core.adapters.storage.job_store import JobStore
from core.domain.config import DynamicsConfig
from core.domain.connection import DynamicsConnection
from core.domain.export_request import ExportRequest
from core.services.dynamics.metadata_cache import MetadataCache
from core.services.exports.service import EXPORT_NAMES, EXPORT_QUEUE, ExportService
from core.services.exports.worker import ExportWorker
from core.services.jobs.messages import ChunkMessage
from emulators.dataverse import DataverseEmulator
from emulators.tls import trusting_session
from tests.integration.activities.conftest import CALLER, WS
from tests.support.dataverse import STATIC_TOKEN, rows

CONFIG = DynamicsConfig.model_validate(
    {
        "syncIdentifiers": {"contactIdentifier": "name_company", "associateContactsWithCompanies": False},
        "fieldMapping": {
            "contacts": [
                {"kind": "platform_field", "platformField": "firstName", "dynamicsField": "firstname"},
                {"kind": "platform_field", "platformField": "lastName", "dynamicsField": "lastname"},
            ],
            "companies": [],
        },
        "campaignMapping": {
            "campaignOpens": "new_campaignopens",
            "campaignClicks": "new_campaignclicks",
            "sequenceStatus": "new_sequencestatus",
            "senders": "new_senders",
            "campaignSequenceDetails": "new_campaignsequence",  # String(400): long sequences are cut
        },
        "userMapping": {},
    }
)


def _contact(opens: int, steps: int = 2) -> dict[str, Any]:
    return {
        "id": "p-kim",
        "firstName": "Kim",
        "lastName": "Park",
        "campaigns": [
            {
                "id": "c1",
                "name": "Spring",
                "sequenceStatus": "active",
                "engagementStatus": "opened",
                "steps": [
                    {
                        "index": i,
                        "channel": "email",
                        "name": f"Step number {i} with a longish name",
                        "status": "sent",
                        "opens": opens if i == 1 else 0,
                    }
                    for i in range(1, steps + 1)
                ],
                "senders": [{"identityId": "i1", "name": "Ana Ruiz"}],
            }
        ],
    }


def _export(emulator: DataverseEmulator, connection_string: str, contact: dict[str, Any]) -> dict[str, Any]:
    store = JobStore(
        TableServiceClient.from_connection_string(connection_string),
        BlobServiceClient.from_connection_string(connection_string),
        QueueServiceClient.from_connection_string(connection_string),
        EXPORT_NAMES,
    )
    store.ensure_ready()
    queue = QueueServiceClient.from_connection_string(connection_string).get_queue_client(EXPORT_QUEUE)
    queue.clear_messages()
    client = DataverseClient(emulator.url, lambda _force: STATIC_TOKEN, session=trusting_session())
    connection = DynamicsConnection(WS, emulator.url, "integration@contoso.com", client.who_am_i().user_id)
    worker = ExportWorker(store, lambda _ws: (client, connection), metadata=MetadataCache())
    service = ExportService(store, lambda _caller: CONFIG)
    job = service.submit(CALLER, ExportRequest.model_validate({"entity": "contacts", "records": [contact]}))
    while messages := list(queue.receive_messages(max_messages=32, visibility_timeout=60)):
        for message in messages:
            worker.handle(ChunkMessage.parse(base64.b64decode(message.content)), 1)
            queue.delete_message(message)
    records = service.records(WS, job.job_id, None, None, 10)
    assert records is not None
    result: dict[str, Any] = records.records[0]
    return result


def test_export_writes_campaign_properties_and_skips_unchanged_ones(
    emulator: DataverseEmulator, storage_connection_string: str
) -> None:
    emulator.reset()
    created = _export(emulator, storage_connection_string, _contact(opens=3))
    assert created["action"] == "created"
    [row] = rows(emulator, "contacts")
    assert row["new_campaignopens"] == 3 and row["new_campaignclicks"] == 0
    assert row["new_sequencestatus"] == "Spring: active"
    assert row["new_senders"] == "Ana Ruiz"
    assert row["new_campaignsequence"] == (
        'Spring #1 email "Step number 1 with a longish name": sent; '
        'Spring #2 email "Step number 2 with a longish name": sent'
    )

    assert _export(emulator, storage_connection_string, _contact(opens=3))["action"] == "unchanged"

    updated = _export(emulator, storage_connection_string, _contact(opens=4, steps=12))
    assert updated["action"] == "updated"
    assert set(updated["changes"]) == {"new_campaignopens", "new_campaignsequence"}  # only what changed
    [row] = rows(emulator, "contacts")
    assert row["new_campaignopens"] == 4
    sequence = row["new_campaignsequence"]
    assert len(sequence) <= 400 and sequence.endswith("more")
    kept = sequence.split("; ")[:-1]
    assert kept and all(entry.endswith('longish name": sent') for entry in kept)  # whole entries only
    assert sequence.split("; ")[-1] == f"… +{12 - len(kept)} more"
