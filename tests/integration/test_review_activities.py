"""Review of activity data safety: the real activity service and worker against Azurite and the Dataverse
emulator. R8 of docs/review-findings.md (fixed in b5744db): a chunk failed for good keeps what an earlier
attempt logged."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from core.domain.activities import ActivitiesRequest
from core.domain.config import DynamicsConfig
from core.services.export_worker import ChunkMessage
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
    logged = {r["platformId"]: r for r in page["records"]}
    assert {r["action"] for r in logged.values()} == {"created"}
    env.worker.fail_poisoned(message, "the chunk could not be processed after repeated attempts")

    emails = rows(env.emulator, "emails")
    assert len(emails) == 2  # both activities are on Jane's timeline
    page = service.records(WS, job_id, None, None, 100)
    assert page is not None
    assert {r["action"] for r in page["records"]} == {"created"}, page["records"]
