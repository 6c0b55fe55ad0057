"""An export whose mapping no longer fits Dynamics fails as a whole, with one reason, writing nothing.

An admin deletes a mapped column in Dynamics after the configuration was saved. Whether the worker's
metadata is fresh (the drift is seen before any write) or still holds the deleted column (Dynamics refuses
the first write, the worker reads the metadata again), every chunk fails at once with the same reason
naming the column, no record is written or reported half-way, and nothing is retried record by record.
Real Azurite, the Dataverse emulator, the real export service, store and worker.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from core.domain.config import DynamicsConfig
from core.services.dynamics.metadata_cache import MetadataCache
from tests.integration.exports.conftest import ExportHarness
from tests.integration.exports.test_export_worker import CONFIG
from tests.support.dataverse import api_session, rows

pytestmark = pytest.mark.integration

DRIFTING = DynamicsConfig.model_validate(
    {
        **CONFIG.to_json(),
        "fieldMapping": {
            "contacts": [
                {"kind": "platform_field", "platformField": "firstName", "dynamicsField": "firstname"},
                {"kind": "platform_field", "platformField": "lastName", "dynamicsField": "lastname"},
                {"kind": "platform_field", "platformField": "jobTitle", "dynamicsField": "new_replyanalysis"},
            ],
            "companies": CONFIG.to_json()["fieldMapping"]["companies"],
        },
    }
)
RECORDS = [
    {"id": f"p-{n}", "firstName": "Ada", "lastName": f"Drift {n}", "jobTitle": "CTO"} for n in range(5)
]


@pytest.fixture()
def env(harness_for: Callable[[DynamicsConfig], ExportHarness]) -> ExportHarness:
    return harness_for(DRIFTING)


def delete_column(env: ExportHarness, table: str, column: str) -> None:
    url = f"{env.emulator.api_url}EntityDefinitions(LogicalName='{table}')/Attributes(LogicalName='{column}')"
    assert api_session(env.emulator).delete(url).status_code == 204


@pytest.mark.parametrize("metadata", ["fresh", "cached before the deletion"])
def test_a_deleted_mapped_column_fails_the_export_as_a_whole_with_one_reason(
    env: ExportHarness, metadata: str
) -> None:
    cache = MetadataCache()
    env.worker = env.worker_for(lambda _ws: (env.client, env.connection), metadata=cache)
    if metadata != "fresh":
        cache.columns(env.client, "contact")  # read before the admin deleted the column
        cache.columns(env.client, "account")
    delete_column(env, "contact", "new_replyanalysis")
    writes_before = env.emulator.stats()["requests_by_kind"].get("bulk", 0)

    result = env.run({"entity": "contacts", "records": RECORDS}, chunk_size=2)

    status, records = result["status"], result["records"]
    assert status.state == "failed"
    [reason] = status.errors  # one reason for the whole job, not one per record
    assert "/fieldMapping/contacts/2/dynamicsField" in reason and "new_replyanalysis" in reason
    assert "nothing was written" in reason
    assert status.counts["failed"] == 5 and status.counts["invalid"] == 0
    assert {r["action"] for r in records.values()} == {"failed"}
    assert all(r["errors"][0]["message"] == reason and "note" not in r for r in records.values())
    assert rows(env.emulator, "contacts") == [] and rows(env.emulator, "accounts") == []
    refused_writes = env.emulator.stats()["requests_by_kind"].get("bulk", 0) - writes_before
    assert refused_writes <= (1 if metadata != "fresh" else 0)  # at most the one write that found it


def test_a_chunk_failed_on_drift_is_not_retried_and_the_next_export_after_the_fix_works(
    env: ExportHarness,
) -> None:
    delete_column(env, "contact", "new_replyanalysis")
    first = env.run({"entity": "contacts", "records": RECORDS[:2]})
    assert first["status"].state == "failed"
    assert env.drain() == []  # nothing queued again: the failure is final, not a retry

    env.config = DynamicsConfig.model_validate(
        {
            **DRIFTING.to_json(),
            "fieldMapping": {
                **DRIFTING.to_json()["fieldMapping"],
                "contacts": CONFIG.to_json()["fieldMapping"]["contacts"],
            },
        }
    )
    fixed = env.run({"entity": "contacts", "records": RECORDS[:2]})
    assert fixed["status"].state == "succeeded" and fixed["status"].counts["created"] == 2
    assert sorted(r["lastname"] for r in rows(env.emulator, "contacts")) == ["Drift 0", "Drift 1"]
