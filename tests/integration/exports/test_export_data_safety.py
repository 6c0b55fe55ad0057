"""What a sales-ops admin relies on from an export, whatever happens to the worker: the real service and
worker against Azurite and the Dataverse emulator.

- The report stays exact when an instance dies between saving outcomes and finishing the chunk, when the
  chunk is redelivered or failed for good afterwards, and when the token dies before the write: the counts
  add up, a record Dynamics holds is never reported ``failed``, a record it does not hold never ``created``.
- Two submits racing with one Idempotency-Key (two instances) both answer one job staged with its own rows.
- Dynamics never gets a blank record (nothing mapped, or only fixed values), never loses a value to an
  empty platform value, and a quote in an identifier never widens an OData lookup.
- A dry run reports what a real run would do, never that something was created.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from core.adapters.storage.job_store import JobRow
from core.domain.caller import Caller, Role
from core.domain.config import DynamicsConfig
from core.domain.connection import ReconnectRequired
from core.domain.export_request import ExportRequest
from core.domain.jobs import ChunkState
from core.services.exports.service import ExportService, InvalidExport
from core.services.jobs.messages import ChunkMessage
from emulators.dataverse import DataverseEmulator
from tests.integration.exports.conftest import (  # noqa: F401  (fixtures)
    CALLER,
    WS,
    ExportHarness,
    emulator,
    harness_for,
)
from tests.support.dataverse import create, rows

pytestmark = pytest.mark.integration

CONFIG = DynamicsConfig.model_validate(
    {
        "syncIdentifiers": {
            "contactIdentifier": "name_company",
            "companyIdentifier": "domain",
            "columns": {"companyDomain": "websiteurl"},
            "associateContactsWithCompanies": False,
        },
        "fieldMapping": {
            "contacts": [
                {"kind": "platform_field", "platformField": "firstName", "dynamicsField": "firstname"},
                {"kind": "platform_field", "platformField": "lastName", "dynamicsField": "lastname"},
                {"kind": "platform_field", "platformField": "jobTitle", "dynamicsField": "jobtitle"},
            ],
            "companies": [{"kind": "platform_field", "platformField": "name", "dynamicsField": "name"}],
        },
        "campaignMapping": {},
        "userMapping": {},
    }
)

CONTACTS = [
    {"id": "p-jane", "firstName": "Jane", "lastName": "Doe", "jobTitle": "CEO", "company": {"name": "Acme"}},
    {
        "id": "p-john",
        "firstName": "John",
        "lastName": "Smith",
        "jobTitle": "CTO",
        "company": {"name": "Acme"},
    },
    {"id": "p-zoe", "firstName": "Zoë", "lastName": "O'Brien", "jobTitle": "VP", "company": {"name": "Acme"}},
]


@pytest.fixture()
def env(harness_for: Callable[[DynamicsConfig], ExportHarness]) -> ExportHarness:  # noqa: F811
    return harness_for(CONFIG)


def _seed_jane(emulator: DataverseEmulator) -> str:  # noqa: F811
    acme = create(emulator, "accounts", {"name": "Acme"})
    return create(
        emulator,
        "contacts",
        {
            "firstname": "Jane",
            "lastname": "Doe",
            "jobtitle": "Founder",
            "parentcustomerid_account@odata.bind": f"/accounts({acme})",
        },
    )


def _submit(
    env: ExportHarness, records: list[dict[str, Any]], chunk_size: int = 3
) -> tuple[ExportService, str]:
    service = env.service(chunk_size)
    job = service.submit(CALLER, ExportRequest.model_validate({"entity": "contacts", "records": records}))
    return service, job.job_id


def _records(service: ExportService, job_id: str) -> dict[str, dict[str, Any]]:
    page = service.records(WS, job_id, None, None, 1000)
    assert page is not None
    return {r["platformId"]: r for r in page.records}


def _crash_before_finish(env: ExportHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    """The instance dies after the chunk's outcomes are saved but before the chunk row says done."""
    original = env.store.finish_chunk
    calls = {"n": 0}

    def finish_chunk(*args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("the host was recycled")
        original(*args, **kwargs)

    monkeypatch.setattr(env.store, "finish_chunk", finish_chunk)


def test_counts_add_up_when_a_chunk_fails_after_a_crashed_attempt(
    env: ExportHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    _seed_jane(env.emulator)
    service, job_id = _submit(env, CONTACTS)
    message = ChunkMessage(WS, job_id, 0)
    _crash_before_finish(env, monkeypatch)
    with pytest.raises(ConnectionError):
        env.worker.handle(message, 1)
    # Every later delivery fails too (e.g. Dynamics down); the poison queue fails the chunk.
    env.worker.fail_poisoned(message, "the chunk could not be processed after repeated attempts")

    status = service.status(WS, job_id)
    assert status is not None
    counts = status.counts
    assert sum(counts.values()) == status.progress.records == 3, counts
    assert counts["updated"] == 1, counts  # Jane was updated by the first attempt and still is


def test_records_created_by_a_crashed_attempt_are_not_reported_failed(
    env: ExportHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    service, job_id = _submit(env, CONTACTS[1:])
    message = ChunkMessage(WS, job_id, 0)
    _crash_before_finish(env, monkeypatch)
    with pytest.raises(ConnectionError):
        env.worker.handle(message, 1)
    env.worker.fail_poisoned(message, "the chunk could not be processed after repeated attempts")

    in_dynamics = {r["lastname"] for r in rows(env.emulator, "contacts")}
    assert in_dynamics == {"Smith", "O'Brien"}  # the first attempt did create them
    reported = _records(service, job_id)
    assert {r["action"] for r in reported.values()} == {"created"}, reported


def test_a_redelivered_chunk_still_reports_the_update_it_made(
    env: ExportHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    jane = _seed_jane(env.emulator)
    service, job_id = _submit(env, CONTACTS[:1])
    message = ChunkMessage(WS, job_id, 0)
    _crash_before_finish(env, monkeypatch)
    with pytest.raises(ConnectionError):
        env.worker.handle(message, 1)
    assert env.worker.handle(message, 2) is ChunkState.DONE

    [row] = rows(env.emulator, "contacts", f"?$filter=contactid eq {jane}")
    assert row["jobtitle"] == "CEO"  # this job changed it
    status = service.status(WS, job_id)
    assert status is not None and status.counts["updated"] == 1, status.counts
    assert _records(service, job_id)["p-jane"]["action"] == "updated"


def test_a_paused_chunk_reports_no_record_as_created_that_is_not_in_dynamics(env: ExportHarness) -> None:
    service, job_id = _submit(env, CONTACTS)

    def grant_dies(*_args: Any) -> None:
        raise ReconnectRequired(WS, "revoked")

    env.client.before("create_multiple", grant_dies)
    assert env.worker.handle(ChunkMessage(WS, job_id, 0), 1) is ChunkState.PAUSED_RECONNECT

    assert rows(env.emulator, "contacts") == []
    created = {pid for pid, r in _records(service, job_id).items() if r["action"] == "created"}
    assert created == set(), f"reported created but not in Dynamics: {sorted(created)}"


def test_an_empty_platform_value_never_erases_dynamics_data(env: ExportHarness) -> None:
    jane = _seed_jane(env.emulator)
    service, job_id = _submit(env, [{**CONTACTS[0], "jobTitle": "   "}])
    env.drain()
    [row] = rows(env.emulator, "contacts", f"?$filter=contactid eq {jane}")
    assert row["jobtitle"] == "Founder"
    assert _records(service, job_id)["p-jane"]["action"] == "unchanged"


def test_quotes_in_identifiers_are_escaped_in_odata_lookups(env: ExportHarness) -> None:
    """O'Brien and a name built like an OData injection match exactly the row they name, nothing else."""
    acme = create(env.emulator, "accounts", {"name": "Acme"})
    for first, last in (("Zoë", "O'Brien"), ("Eve", "x' or lastname ne 'y")):
        create(
            env.emulator,
            "contacts",
            {
                "firstname": first,
                "lastname": last,
                "parentcustomerid_account@odata.bind": f"/accounts({acme})",
            },
        )
    records = [
        CONTACTS[2],
        {
            "id": "p-eve",
            "firstName": "Mallory",
            "lastName": "x' or lastname ne 'y",
            "company": {"name": "Acme"},
        },
    ]
    service, job_id = _submit(env, records)
    env.drain()
    reported = _records(service, job_id)
    assert reported["p-zoe"]["action"] == "updated"
    assert reported["p-eve"]["action"] == "created"  # first name differs: no match, no injected match
    assert len(rows(env.emulator, "contacts")) == 3


class _RacingStore:
    """Lets two submits with the same Idempotency-Key both pass the existence check, as two instances can."""

    def __init__(self, store: Any, parties: int) -> None:
        self._store = store
        self._barrier = threading.Barrier(parties, timeout=10)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def create_job(self, job: JobRow) -> None:
        self._barrier.wait()
        self._store.create_job(job)


def test_concurrent_submits_with_one_idempotency_key_both_answer_the_same_job(env: ExportHarness) -> None:
    service = ExportService(_RacingStore(env.store, 2), lambda _caller: CONFIG, chunk_size=3)  # type: ignore[arg-type]
    bodies = [CONTACTS[:1], CONTACTS[1:]]
    results: list[Any] = [None, None]

    def submit(i: int) -> None:
        try:
            request = ExportRequest.model_validate({"entity": "contacts", "records": bodies[i]})
            results[i] = service.submit(Caller(WS, f"user-{i}", Role.ADMIN), request, idempotency_key="k-1")
        except Exception as exc:  # what the HTTP layer turns into a 500
            results[i] = exc

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    errors = [r for r in results if isinstance(r, Exception)]
    assert errors == [], errors
    assert results[0].job_id == results[1].job_id
    job = env.store.get_job(WS, results[0].job_id)
    assert job is not None
    staging = getattr(job, "staging", "")  # a per-request staging folder, where the store has one
    staged = env.store.load_chunk(WS, job.job_id, 0, **({"staging": staging} if staging else {}))
    assert len(staged) == job.total_records - job.invalid_count  # the job's rows describe its own records


def test_an_export_never_creates_a_blank_record_in_dynamics(
    harness_for: Callable[[DynamicsConfig], ExportHarness],  # noqa: F811
) -> None:
    # A workspace that exports before saving any field mapping (the defaults), and a contact whose
    # mapped fields are all empty under a real mapping.
    unconfigured = harness_for(DynamicsConfig.default())
    with pytest.raises(InvalidExport):  # refused up front: "map fields before exporting"
        _submit(unconfigured, [{"id": "p-ada", "firstName": "Ada", "lastName": "Lovelace"}])
    blank_rows = [r for r in rows(unconfigured.emulator, "contacts") if not (r["firstname"] or r["lastname"])]
    reported = "refused"

    mapped = harness_for(CONFIG)
    service, job_id = _submit(mapped, [{"id": "p-empty", "firstName": " ", "lastName": ""}])
    mapped.drain()
    blank_rows += [r for r in rows(mapped.emulator, "contacts") if not (r["firstname"] or r["lastname"])]
    reported_empty = _records(service, job_id)["p-empty"]["action"]

    assert blank_rows == [], f"{len(blank_rows)} blank contact(s) created in Dynamics"
    assert reported != "created" and reported_empty != "created"


def test_a_dry_run_never_reports_a_company_as_created(
    harness_for: Callable[[DynamicsConfig], ExportHarness],  # noqa: F811
) -> None:
    config = CONFIG.to_json()
    config["syncIdentifiers"]["associateContactsWithCompanies"] = True
    env = harness_for(DynamicsConfig.model_validate(config))
    service = env.service()
    body = {
        "entity": "contacts",
        "dryRun": True,
        "records": [{"id": "p-kim", "firstName": "Kim", "lastName": "Lee", "company": {"name": "NewCo"}}],
    }
    job_id = service.submit(CALLER, ExportRequest.model_validate(body)).job_id
    env.drain()
    assert rows(env.emulator, "accounts") == [] and rows(env.emulator, "contacts") == []  # nothing written
    record = _records(service, job_id)["p-kim"]
    assert record["action"] == "would_create"
    assert "created in Dynamics" not in (record.get("note") or ""), record.get("note")


def test_a_record_whose_only_values_are_fixed_values_is_not_created_blank(
    harness_for: Callable[[DynamicsConfig], ExportHarness],  # noqa: F811
) -> None:
    """A fixed value ("Lead source: Platform") is the same on every record: alone it identifies no one, so a
    record with no platform value must not become a nameless contact carrying only that constant."""
    config = CONFIG.to_json()
    config["fieldMapping"]["contacts"].append(
        {"kind": "fixed_value", "dynamicsField": "description", "value": "Imported", "valueType": "text"}
    )
    env = harness_for(DynamicsConfig.model_validate(config))
    service, job_id = _submit(env, [{"id": "p-empty", "firstName": " ", "lastName": ""}])
    env.drain()
    nameless = [r for r in rows(env.emulator, "contacts") if not (r["firstname"] or r["lastname"])]
    assert nameless == [], (
        f"{len(nameless)} nameless contact(s) created: {[r['description'] for r in nameless]}"
    )
    assert _records(service, job_id)["p-empty"]["action"] != "created"
