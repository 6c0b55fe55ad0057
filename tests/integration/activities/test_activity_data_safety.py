"""What an activity job's report keeps under crashes and races: the real activity service and worker against
Azurite and the Dataverse emulator. A chunk failed for good keeps the events an earlier attempt logged, and
two submits racing with one Idempotency-Key answer one job."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from core.adapters.storage.job_store import JobRow
from core.domain.activities import ActivitiesRequest
from core.domain.caller import Caller, Role
from core.domain.config import DynamicsConfig
from core.services.activities.service import ActivityService
from core.services.jobs.messages import ChunkMessage
from tests.integration.activities.conftest import (  # noqa: F401  (fixtures)
    CALLER,
    WS,
    ActivityHarness,
    emulator,
    harness_for,
)
from tests.support.dataverse import create, rows

pytestmark = pytest.mark.integration

CONFIG = DynamicsConfig.model_validate(
    {
        "syncIdentifiers": {
            "contactIdentifier": "linkedin_or_name_company",
            "columns": {"contactLinkedinUrl": "new_linkedinurl"},
        },
        "fieldMapping": {
            "contacts": [
                {"kind": "platform_field", "platformField": "firstName", "dynamicsField": "firstname"}
            ],
            "companies": [],
        },
        "campaignMapping": {},
        "userMapping": {},
    }
)
JANE: dict[str, Any] = {
    "id": "p-jane",
    "firstName": "Jane",
    "lastName": "Doe",
    "linkedinUrl": "https://www.linkedin.com/in/jane-doe",
}


def _event(event_id: str) -> dict[str, Any]:
    return {
        "id": event_id,
        "contactId": "p-jane",
        "kind": "email_sent",
        "at": "2026-11-20T10:30:00Z",
        "subject": "Intro",
        "body": "Hello",
        "campaignId": "c1",
    }


def test_activities_logged_by_a_crashed_attempt_are_not_reported_failed(
    harness_for: Callable[[DynamicsConfig], ActivityHarness],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = harness_for(CONFIG)
    create(
        env.emulator,
        "contacts",
        {"firstname": "Jane", "lastname": "Doe", "new_linkedinurl": JANE["linkedinUrl"]},
    )
    service = env.service()
    request = ActivitiesRequest.model_validate(
        {"events": [_event("ev-1"), _event("ev-2")], "contacts": [JANE]}
    )
    job_id = service.submit(CALLER, request).job_id
    original = env.store.finish_chunk

    def crash_once(*args: Any, **kwargs: Any) -> None:
        monkeypatch.setattr(env.store, "finish_chunk", original)
        raise ConnectionError("the host was recycled")

    monkeypatch.setattr(env.store, "finish_chunk", crash_once)
    message = ChunkMessage(WS, job_id, 0)
    with pytest.raises(ConnectionError):
        env.worker.handle(message, 1)
    page = service.records(WS, job_id, None, None, 100)
    assert page is not None
    logged = {r["platformId"]: r for r in page.records}
    assert {r["action"] for r in logged.values()} == {"created"}
    env.worker.fail_poisoned(message, "the chunk could not be processed after repeated attempts")

    emails = rows(env.emulator, "emails")
    assert len(emails) == 2  # both activities are on Jane's timeline
    page = service.records(WS, job_id, None, None, 100)
    assert page is not None
    assert {r["action"] for r in page.records} == {"created"}, page.records


class _RacingStore:
    """Lets two submits with one Idempotency-Key both pass the existence check, as two instances can."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self._barrier = threading.Barrier(2, timeout=10)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def create_job(self, job: JobRow) -> None:
        self._barrier.wait()
        self._store.create_job(job)


def test_concurrent_submits_with_one_idempotency_key_answer_one_job(
    harness_for: Callable[[DynamicsConfig], ActivityHarness],  # noqa: F811
) -> None:
    """Two instances taking one submit at once: no 500 for the loser, one job, staged events of its own."""
    env = harness_for(CONFIG)
    service = ActivityService(_RacingStore(env.store), lambda _caller: CONFIG)  # type: ignore[arg-type]
    bodies = [[_event("ev-a")], [_event("ev-b"), _event("ev-c")]]
    results: list[Any] = [None, None]

    def submit(i: int) -> None:
        try:
            request = ActivitiesRequest.model_validate({"events": bodies[i], "contacts": [JANE]})
            results[i] = service.submit(
                Caller(WS, f"user-{i}", Role.SERVICE), request, idempotency_key="k-race"
            )
        except Exception as exc:  # what the HTTP layer would turn into a 500
            results[i] = exc

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert [r for r in results if isinstance(r, Exception)] == []
    assert results[0].job_id == results[1].job_id
    job = env.store.get_job(WS, results[0].job_id)
    assert job is not None
    staged = env.store.load_chunk(WS, job.job_id, 0, staging=job.staging)
    assert len(staged) == job.total_records - job.invalid_count  # the job's row describes its own events
