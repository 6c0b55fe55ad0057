"""Who an activity is logged as comes from who is calling, never from what a person sends.

A workspace member who posts an event naming another user or identity (the sales director's, say) would
have Dynamics show an activity created by that person (``CallerObjectId``), with a subject the member
chose. Only the platform's service may submit events; a person is refused before anything is staged, so
the worker has nothing to run and Dynamics receives nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from core.domain.activities import ActivitiesRequest
from core.domain.caller import Caller, Forbidden, Role
from core.domain.config import DynamicsConfig
from tests.integration.activities.conftest import WS, ActivityHarness
from tests.support.dataverse import create, rows

U_DIRECTOR = "d1000000-0000-4000-8000-0000000000d1"
OID_DIRECTOR = "d2000000-0000-4000-8000-0000000000d2"
CONFIG = DynamicsConfig.model_validate(
    {
        "syncIdentifiers": {
            "contactIdentifier": "linkedin_or_name_company",
            "columns": {"contactLinkedinUrl": "new_linkedinurl"},
        },
        "fieldMapping": {"contacts": [], "companies": []},
        "campaignMapping": {},
        "userMapping": {
            "identities": [{"identityId": "id-director", "dynamicsUserId": U_DIRECTOR}],
            "users": [{"userId": "pu-director", "dynamicsUserId": U_DIRECTOR}],
        },
    }
)
LINKEDIN = "https://www.linkedin.com/in/jane-doe"
CONTACT = {"id": "p-jane", "firstName": "Jane", "lastName": "Doe", "linkedinUrl": LINKEDIN}
EVENT = {
    "id": "e-forged",
    "contactId": "p-jane",
    "kind": "task",
    "at": "2026-11-20T10:30:00Z",
    "subject": "Approved a 90% discount",
    "body": "As agreed, the director approves.",
}
FORGERIES: dict[str, dict[str, Any]] = {
    "as another user": {"events": [{**EVENT, "userId": "pu-director"}], "contacts": [CONTACT]},
    "as another identity": {"events": [{**EVENT, "identityId": "id-director"}], "contacts": [CONTACT]},
    "through identities[]": {
        "events": [{**EVENT, "identityId": "id-mine"}],
        "contacts": [CONTACT],
        "identities": [{"id": "id-mine", "userId": "pu-director"}],
    },
}


@pytest.fixture()
def env(harness_for: Callable[[DynamicsConfig], ActivityHarness]) -> ActivityHarness:
    harness = harness_for(CONFIG)
    harness.emulator.add_user(
        user_id=U_DIRECTOR, object_id=OID_DIRECTOR, firstname="Sales", lastname="Director"
    )
    create(
        harness.emulator,
        "contacts",
        {"firstname": "Jane", "lastname": "Doe", "new_linkedinurl": LINKEDIN},
    )
    return harness


@pytest.mark.parametrize("role", [Role.MEMBER, Role.ADMIN])
@pytest.mark.parametrize("forgery", list(FORGERIES))
def test_a_person_cannot_log_an_activity_as_someone_else(
    env: ActivityHarness, role: Role, forgery: str
) -> None:
    person = Caller(WS, "pu-member", role)
    env.emulator.reset_stats()
    with pytest.raises(Forbidden, match="platform's service"):
        env.service().submit(person, ActivitiesRequest.model_validate(FORGERIES[forgery]))
    env.drain(WS)
    assert env.service().list_jobs(WS) == []  # nothing staged or queued
    assert env.emulator.stats()["requests"] == 0  # Dynamics saw no request, so no CallerObjectId either
    assert rows(env.emulator, "tasks") == []


def test_the_platform_service_logs_it_as_the_user_it_names(env: ActivityHarness) -> None:
    service = Caller(WS, "platform-backend", Role.SERVICE)
    result = env.run(FORGERIES["as another identity"], caller=service)
    record = result["records"]["e-forged"]
    assert record["action"] == "created", record
    assert record["activity"]["actor"] == {
        "source": "identity_mapping",
        "dynamicsUserId": U_DIRECTOR,
        "impersonated": True,
    }
    [task] = rows(env.emulator, "tasks")
    assert task["_createdby_value"] == U_DIRECTOR
