"""Retrying an export's failed records after a fix, and cancelling an export while it runs, against the
Dataverse emulator: no duplicate in Dynamics, and every record written once or not at all, the counts
saying which."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from core.adapters.dataverse.errors import DataverseError
from core.domain.caller import Caller, Forbidden, Role
from core.domain.config import DynamicsConfig
from core.domain.export_request import RetryRequest
from core.domain.jobs import ExportEntity, JobState, deterministic_dynamics_id
from core.services.exports.service import JobNotFinished
from core.services.jobs import stopping
from core.services.jobs.queries import JobFinished
from tests.integration.exports.conftest import CALLER, WS, ExportHarness
from tests.support.dataverse import rows

pytestmark = pytest.mark.integration


def _config(column: str) -> DynamicsConfig:
    return DynamicsConfig.model_validate(
        {
            "syncIdentifiers": {"contactIdentifier": "linkedin_or_name_company"},
            "fieldMapping": {
                "contacts": [
                    {"kind": "platform_field", "platformField": "firstName", "dynamicsField": "firstname"},
                    {"kind": "platform_field", "platformField": "lastName", "dynamicsField": "lastname"},
                    {"kind": "platform_field", "platformField": "jobTitle", "dynamicsField": column},
                ],
                "companies": [],
            },
            "campaignMapping": {},
            "userMapping": {},
        }
    )


def _contacts(count: int) -> list[dict[str, Any]]:
    return [
        {"id": f"p-{i}", "firstName": f"Ada{i}", "lastName": "Quist", "jobTitle": f"Role {i}"}
        for i in range(count)
    ]


def _refuse_column(env: ExportHarness, column: str) -> None:
    """Dynamics refuses every record that sets ``column`` (as a plugin or a field security profile would):
    the mapping to it is the mistake an admin fixes."""

    def refuse(table: str, records: Any) -> None:
        if any(column in r for r in records):
            raise DataverseError(
                f"the column '{column}' cannot be set by the integration user",
                status=400,
                code="0x80048306",
            )

    env.client.before("create_multiple", refuse)


@pytest.fixture()
def env(harness_for: Callable[[DynamicsConfig], ExportHarness]) -> ExportHarness:
    return harness_for(_config("fax"))


def test_retry_after_fixing_the_mapping_creates_the_failed_records_once(env: ExportHarness) -> None:
    _refuse_column(env, "fax")
    records = _contacts(6)
    records[4]["jobTitle"] = None  # nothing for the refused column: created the first time
    records[5]["jobTitle"] = None
    service = env.service()
    job = service.submit(CALLER, env.kind.request.model_validate({"entity": "contacts", "records": records}))
    env.drain()
    first = service.status(WS, job.job_id)
    assert first is not None and first.state is JobState.PARTIALLY_FAILED
    assert (first.counts["created"], first.counts["failed"]) == (2, 4)
    assert first.top_errors == (("0x80048306", 4),)

    # The admin maps the job title where it belongs; the same records go out again, once.
    env.config = _config("jobtitle")
    service = env.service()
    retried = service.retry(CALLER, job.job_id, RetryRequest())
    assert retried is not None and retried.submitted.created_new and retried.submitted.accepted == 4
    again = service.retry(CALLER, job.job_id, RetryRequest())  # a second call answers the same job
    assert again is not None and again.submitted.job_id == retried.submitted.job_id
    assert not again.submitted.created_new
    env.drain()

    status = service.status(WS, retried.submitted.job_id)
    assert status is not None and status.state is JobState.SUCCEEDED and status.counts["created"] == 4
    assert status.retry_of == job.job_id and status.requested_by == CALLER.user_id
    source = service.status(WS, job.job_id)
    assert source is not None and source.retried_by == retried.submitted.job_id
    contacts = rows(env.emulator, "contacts")
    assert len(contacts) == 6  # no duplicate: each platform record is one Dynamics contact
    by_id = {c["contactid"]: c for c in contacts}
    for i in range(4):
        contact = by_id[deterministic_dynamics_id(WS, ExportEntity.CONTACTS, f"p-{i}")]
        assert contact["jobtitle"] == f"Role {i}"


def test_retries_at_once_make_one_retry_job(env: ExportHarness) -> None:
    _refuse_column(env, "fax")
    service = env.service()
    job = service.submit(
        CALLER, env.kind.request.model_validate({"entity": "contacts", "records": _contacts(3)})
    )
    env.drain()
    results: list[str] = []

    def retry() -> None:
        result = env.service().retry(CALLER, job.job_id, RetryRequest())
        assert result is not None
        results.append(result.submitted.job_id)

    threads = [threading.Thread(target=retry) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1 and len(results) == 4
    jobs = [j for j in service.list_jobs(WS) if j.retry_of == job.job_id]
    assert [j.job_id for j in jobs] == results[:1]


def test_a_member_retries_and_cancels_only_their_own_exports(env: ExportHarness) -> None:
    _refuse_column(env, "fax")
    service = env.service()
    owner = Caller(WS, "member-owner", Role.MEMBER)
    other = Caller(WS, "member-other", Role.MEMBER)
    body = {"entity": "contacts", "records": _contacts(2)}
    mine = service.submit(owner, env.kind.request.model_validate(body))

    with pytest.raises(Forbidden):
        service.cancel(other, mine.job_id)
    with pytest.raises(JobNotFinished):
        service.retry(owner, mine.job_id, RetryRequest())  # still queued: what failed is not known
    env.drain()
    finished = service.status(WS, mine.job_id)
    assert finished is not None and finished.counts["failed"] == 2

    with pytest.raises(Forbidden):
        service.retry(other, mine.job_id, RetryRequest())
    assert service.status(WS, mine.job_id).retried_by is None  # type: ignore[union-attr]
    retried = service.retry(owner, mine.job_id, RetryRequest())
    assert retried is not None and retried.submitted.accepted == 2
    retry_status = service.status(WS, retried.submitted.job_id)
    assert retry_status is not None and retry_status.requested_by == owner.user_id
    # The owner cancels their own retry; an admin may cancel anyone's.
    cancelled = service.cancel(owner, retried.submitted.job_id)
    assert cancelled is not None and cancelled.cancel_requested_at is not None
    other_job = service.submit(other, env.kind.request.model_validate(body))
    assert service.cancel(CALLER, other_job.job_id) is not None


def test_cancel_mid_export_writes_each_record_once_or_not_at_all(env: ExportHarness) -> None:
    env.config = _config("jobtitle")
    service = env.service(chunk_size=5)
    records = _contacts(25)  # five chunks
    job = service.submit(CALLER, env.kind.request.model_validate({"entity": "contacts", "records": records}))
    asked = threading.Event()

    def batch(*args: Any, **kwargs: Any) -> Any:
        # The first lookup of the second chunk: the cancel arrives while that chunk runs. What the
        # workspace client's before_send does in the app (``stopping.before_request``) then stops it
        # before this request is sent: it has written nothing.
        if not asked.is_set():
            done = [c for c in env.store.list_chunks(WS, job.job_id) if c.state.value == "done"]
            if len(done) == 1:
                asked.set()
                env.service().cancel(CALLER, job.job_id)
        stopping.before_request()
        return original(*args, **kwargs)

    original = env.client.execute_batch
    env.client.execute_batch = batch  # type: ignore[method-assign]
    env.drain()

    status = service.status(WS, job.job_id)
    assert status is not None and status.state is JobState.CANCELLED, status
    counts = status.counts
    assert counts["created"] + counts["cancelled"] == 25
    assert counts["created"] == 5 and status.cancelled_by == CALLER.user_id
    contacts = {c["contactid"] for c in rows(env.emulator, "contacts")}
    assert len(contacts) == counts["created"]  # written once each
    page = service.records(WS, job.job_id, None, None, 100)
    assert page is not None
    for record in page.records:
        own_id = deterministic_dynamics_id(WS, ExportEntity.CONTACTS, record["platformId"])
        assert (own_id in contacts) == (record["action"] == "created"), record
    assert {r["action"] for r in page.records} == {"created", "cancelled"}

    with pytest.raises(JobFinished):  # a finished job cannot be cancelled; a cancelled one answers again
        finished = service.submit(
            CALLER, env.kind.request.model_validate({"entity": "contacts", "records": _contacts(1)})
        )
        env.drain()
        service.cancel(CALLER, finished.job_id)
    again = service.cancel(CALLER, job.job_id)
    assert again is not None and again.state is JobState.CANCELLED and again.counts == counts
