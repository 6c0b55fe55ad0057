"""Automatic exports keep the order of a record's changes, against Azurite and the Dataverse emulator.

What the platform and its users notice: several changes of one record sent within the window end as one
write with the latest values; a change older than one already received is never written over it, whether
it arrives later, in the same request, or while the newer one's export is still running; an automatic
export waits the window before it runs; a change without its time is refused by name.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from azure.data.tables import TableServiceClient

from core.adapters.storage.record_versions import RecordVersions
from core.domain.caller import Caller, Role
from core.domain.config import DynamicsConfig
from core.domain.export_request import MAX_AUTOMATIC_RECORDS, ExportRequest, RetryInclude, RetryRequest
from core.domain.jobs import ChunkState
from core.services.exports.service import ExportService, InvalidExport
from core.services.jobs.messages import ChunkMessage
from tests.integration.exports.conftest import WS, ExportHarness
from tests.support.dataverse import rows

SERVICE = Caller(WS, "sync-engine", Role.SERVICE)
T1, T2 = "2026-12-01T10:00:00Z", "2026-12-01T10:00:05.250+00:00"


def _config() -> DynamicsConfig:
    def pf(platform: str, column: str) -> dict[str, Any]:
        return {"kind": "platform_field", "platformField": platform, "dynamicsField": column}

    return DynamicsConfig.model_validate(
        {
            "syncIdentifiers": {"contactIdentifier": "name_company"},
            "fieldMapping": {
                "contacts": [
                    pf("firstName", "firstname"),
                    pf("lastName", "lastname"),
                    pf("jobTitle", "jobtitle"),
                ],
                "companies": [],
            },
            "campaignMapping": {},
            "userMapping": {},
        }
    )


class Ordered:
    """The harness with the record versions wired into its service and worker, as the app wires them."""

    def __init__(self, h: ExportHarness, connection_string: str, window_seconds: int = 0) -> None:
        self.h = h
        self.versions = RecordVersions(TableServiceClient.from_connection_string(connection_string))
        self.service = ExportService(
            h.store, lambda _c: h.config, versions=self.versions, window_seconds=window_seconds
        )
        h.worker = h.worker_for(lambda _ws: (h.client, h.connection), versions=self.versions, defer_seconds=0)
        self.writes: list[dict[str, Any]] = []  # every record sent to CreateMultiple / UpdateMultiple
        h.client.before("create_multiple", lambda _t, records: self.writes.extend(records))
        h.client.before("update_multiple", lambda _t, records: self.writes.extend(records))

    def submit(self, *records: dict[str, Any]) -> str:
        body = {"entity": "contacts", "trigger": "automatic", "userId": "pu-1", "records": list(records)}
        return self.service.submit(SERVICE, ExportRequest.model_validate(body)).job_id

    def records(self, job_id: str) -> dict[str, dict[str, Any]]:
        page = self.service.records(WS, job_id, None, None, 100)
        assert page is not None
        return {f"{r['platformId']}@{r['seq']}": r for r in page.records}

    def contact(self, last_name: str) -> dict[str, Any]:
        [row] = [r for r in rows(self.h.emulator, "contacts") if r["lastname"] == last_name]
        return row

    def writes_of(self, dynamics_id: str) -> int:
        return sum(1 for w in self.writes if str(w.get("contactid", "")).lower() == dynamics_id)


@pytest.fixture()
def ordered(
    harness_for: Callable[[DynamicsConfig], ExportHarness], storage_connection_string: str
) -> Ordered:
    return Ordered(harness_for(_config()), storage_connection_string)


def _change(pid: str, at: str, title: str, last: str = "Quist") -> dict[str, Any]:
    return {"id": pid, "firstName": "Nora", "lastName": last, "jobTitle": title, "changedAt": at}


def _pid() -> str:
    return f"p-{uuid.uuid4().hex[:8]}"  # version rows outlive a test: each test its own records


def test_two_changes_within_the_window_are_one_write_with_the_latest_values(ordered: Ordered) -> None:
    pid = _pid()
    first = ordered.submit(_change(pid, T1, "Engineer"))
    second = ordered.submit(_change(pid, T2, "CTO"))
    ordered.h.drain(WS)
    [older] = ordered.records(first).values()
    assert older["action"] == "skipped" and "superseded" in older["note"] and T2[:19] in older["note"]
    [newer] = ordered.records(second).values()
    assert newer["action"] == "created"
    row = ordered.contact("Quist")
    assert row["jobtitle"] == "CTO"
    assert ordered.writes_of(row["contactid"]) == 1


def test_an_older_change_arriving_later_is_never_written_over_a_newer_one(ordered: Ordered) -> None:
    pid = _pid()
    ordered.submit(_change(pid, T2, "CTO"))
    ordered.h.drain(WS)
    late = ordered.submit(_change(pid, T1, "Engineer"))
    status = ordered.service.status(WS, late)
    assert status is not None and status.counts["skipped"] == 1  # known before sending
    [record] = ordered.records(late).values()
    assert record["action"] == "skipped" and "never overwrite newer" in record["note"]
    ordered.h.drain(WS)
    assert ordered.contact("Quist")["jobtitle"] == "CTO"
    # The same change sent again (a retry) is not refused: writing it again changes nothing.
    again = ordered.submit(_change(pid, T2, "CTO"))
    ordered.h.drain(WS)
    assert [r["action"] for r in ordered.records(again).values()] == ["unchanged"]


def test_several_changes_in_one_request_are_one_write_with_the_latest(ordered: Ordered) -> None:
    pid = _pid()
    job = ordered.submit(
        _change(pid, T2, "CTO"), _change(pid, T1, "Engineer"), _change(_pid(), T1, "X", "Ng")
    )
    ordered.h.drain(WS)
    records = ordered.records(job)
    assert records[f"{pid}@0"]["action"] == "created"
    older = records[f"{pid}@1"]
    assert older["action"] == "skipped" and older["mergedInto"]["seq"] == 0
    row = ordered.contact("Quist")
    assert row["jobtitle"] == "CTO" and ordered.writes_of(row["contactid"]) == 1
    # the platform can link the superseded change too
    assert older["mergedInto"]["dynamicsId"] == row["contactid"]


def test_a_persons_retry_of_an_automatic_export_never_writes_a_superseded_change(ordered: Ordered) -> None:
    pid = _pid()
    first = ordered.submit(_change(pid, T1, "Engineer"))
    ordered.submit(_change(pid, T2, "CTO"))
    ordered.h.drain(WS)
    assert ordered.contact("Quist")["jobtitle"] == "CTO"
    [older] = ordered.records(first).values()
    assert older["action"] == "skipped"

    # An admin retries the first job with its skipped records: a manual export by the admin, whose one
    # change is older than the one Dynamics holds; it is skipped again, not written.
    admin = Caller(WS, "admin-1", Role.ADMIN)
    retried = ordered.service.retry(admin, first, RetryRequest(include=[RetryInclude.SKIPPED]))
    assert retried is not None and retried.submitted.accepted + retried.submitted.invalid <= 1
    ordered.h.drain(WS)
    [again] = ordered.records(retried.submitted.job_id).values()
    assert again["action"] == "skipped" and "superseded" in again["note"], again
    assert ordered.contact("Quist")["jobtitle"] == "CTO"


def test_a_newer_change_waits_for_an_older_write_in_flight_then_lands_last(ordered: Ordered) -> None:
    pid = _pid()
    h = ordered.h
    first = ordered.submit(_change(pid, T1, "Engineer"))
    states: list[ChunkState] = []

    def newer_arrives_mid_write(_table: str, _records: Any) -> None:
        if states:
            return
        second = ordered.submit(_change(pid, T2, "CTO"))
        message = _take_message(h, second)
        states.append(h.worker.handle(message, 1))  # runs while the older write is in flight

    h.client.before("create_multiple", newer_arrives_mid_write)
    h.drain(WS)
    assert states == [ChunkState.QUEUED]  # deferred, nothing written, not a failed attempt
    assert [r["action"] for r in ordered.records(first).values()] == ["created"]
    row = ordered.contact("Quist")
    assert row["jobtitle"] == "CTO"  # the newer change landed after the older one
    assert ordered.writes_of(row["contactid"]) == 2


def test_an_automatic_export_waits_the_window_before_it_runs(
    harness_for: Callable[[DynamicsConfig], ExportHarness], storage_connection_string: str
) -> None:
    windowed = Ordered(harness_for(_config()), storage_connection_string, window_seconds=600)
    job = windowed.submit(_change(_pid(), T1, "CTO"))
    queue = windowed.h.queues.get_queue_client(windowed.h.kind.names.queue)
    visible = [ChunkMessage.parse(base64.b64decode(m.content)).job_id for m in queue.peek_messages(32)]
    assert job not in visible
    status = windowed.service.status(WS, job)
    assert status is not None and status.state == "queued"


def test_an_automatic_change_without_its_time_is_refused_by_name(ordered: Ordered) -> None:
    job = ordered.submit({"id": _pid(), "firstName": "Nora", "lastName": "Quist"})
    [record] = ordered.records(job).values()
    assert record["action"] == "invalid" and record["errors"][0]["field"] == "changedAt"


def test_an_automatic_export_carries_one_windows_changes_at_most(ordered: Ordered) -> None:
    records = [_change(f"p-{n}", T1, "CTO") for n in range(MAX_AUTOMATIC_RECORDS + 1)]
    jobs_before = len(ordered.h.store.list_jobs(WS, limit=1000))
    with pytest.raises(InvalidExport) as refused:
        ordered.submit(*records)
    assert [p.pointer for p in refused.value.problems] == ["/records"]
    assert len(ordered.h.store.list_jobs(WS, limit=1000)) == jobs_before  # nothing staged


def _take_message(h: ExportHarness, job_id: str) -> ChunkMessage:
    queue = h.queues.get_queue_client(h.kind.names.queue)
    for message in queue.receive_messages(max_messages=32, visibility_timeout=60):
        chunk = ChunkMessage.parse(base64.b64decode(message.content))
        if chunk.job_id == job_id:
            queue.delete_message(message)
            return chunk
        queue.update_message(message, visibility_timeout=0)
    raise AssertionError(f"no message for job {job_id}")
