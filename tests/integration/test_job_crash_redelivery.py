"""A worker killed at every checkpoint of a chunk, for both job kinds: redelivered, the job ends as if
nothing had happened — no duplicate, no lost record, and each record reported as what happened to it.

The worker "dies" (a ``BaseException``: nothing in the worker catches it, as nothing runs after a real
process death) just before or just after each write of one delivery, in turn: every Table write of the
job store (chunk row, checkpoints, report) and every Dynamics write (``CreateMultiple``,
``UpdateMultiple``). Then the queue delivers the message again to a fresh worker.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from core.domain.caller import Caller, Role
from core.domain.config import DynamicsConfig
from core.domain.jobs import ExportEntity, deterministic_dynamics_id
from core.services.jobs.messages import ChunkMessage
from emulators.dataverse import DataverseEmulator
from tests.support.dataverse import create, rows
from tests.support.job_harness import (
    ACTIVITIES,
    EXPORTS,
    JobHarness,
    JobKind,
    build_harness,
    emulator_fixture,
)

pytestmark = pytest.mark.integration

CALLER = Caller("ws-crashes", "platform-user-1", Role.SERVICE)  # it may submit both kinds
U_ANA = "a0000000-0000-4000-8000-00000000000a"
STORE_WRITES = ("put_chunk", "save_outcomes", "finish_chunk")
DYNAMICS_WRITES = ("create_multiple", "update_multiple")

CONFIG = DynamicsConfig.model_validate(
    {
        "syncIdentifiers": {
            "contactIdentifier": "linkedin_or_name_company",
            "companyIdentifier": "domain",
            "columns": {"contactLinkedinUrl": "new_linkedinurl", "companyDomain": "websiteurl"},
            "associateContactsWithCompanies": True,
            "exportMissingContacts": True,
        },
        "fieldMapping": {
            "contacts": [
                {"kind": "platform_field", "platformField": "firstName", "dynamicsField": "firstname"},
                {"kind": "platform_field", "platformField": "lastName", "dynamicsField": "lastname"},
                {"kind": "platform_field", "platformField": "jobTitle", "dynamicsField": "jobtitle"},
                {
                    "kind": "platform_field",
                    "platformField": "linkedinUrl",
                    "dynamicsField": "new_linkedinurl",
                },
                {
                    "kind": "engagement",
                    "dynamicsField": "new_engagement",
                    "value": "Engaged",
                    "valueType": "text",
                },
            ],
            "companies": [
                {"kind": "platform_field", "platformField": "name", "dynamicsField": "name"},
                {"kind": "platform_field", "platformField": "domain", "dynamicsField": "websiteurl"},
            ],
        },
        "campaignMapping": {},
        "userMapping": {"identities": [{"identityId": "id-ana", "dynamicsUserId": U_ANA}]},
    }
)
JANE = {
    "id": "p-jane",
    "firstName": "Jane",
    "lastName": "Doe",
    "jobTitle": "VP Sales",  # Dynamics has CTO: the export updates her
    "linkedinUrl": "https://www.linkedin.com/in/jane-doe",
    "company": {"id": "co-acme", "name": "Acme", "domain": "acme.com"},
}
JOHN = {
    "id": "p-john",
    "firstName": "John",
    "lastName": "Smith",
    "company": {"id": "co-acme", "domain": "acme.com"},
}
ZOE = {
    "id": "p-zoe",
    "firstName": "Zoe",
    "lastName": "Obi",
    "company": {"id": "co-new", "name": "NewCo", "domain": "newco.io"},
}


def _event(event_id: str, kind: str, contact: str) -> dict[str, Any]:
    return {
        "id": event_id,
        "contactId": contact,
        "kind": kind,
        "at": "2026-11-21T09:00:00Z",
        "identityId": "id-ana",
        "subject": f"Step {event_id}",
        "campaignId": "c1",
    }


@dataclass(frozen=True)
class Scenario:
    kind: JobKind
    body: dict[str, Any]
    truth: dict[str, dict[str, str]]  # platform id -> the fields of its record that must read so
    contacts: int  # contacts Dynamics must hold afterwards (1 seeded: Jane)
    accounts: int  # accounts (1 seeded: Acme)
    activities: int


SCENARIOS = {
    "exports": Scenario(
        EXPORTS,
        {"entity": "contacts", "records": [JANE, JOHN, ZOE]},
        {"p-jane": {"action": "updated"}, "p-john": {"action": "created"}, "p-zoe": {"action": "created"}},
        contacts=3,
        accounts=2,
        activities=0,
    ),
    "activities": Scenario(
        ACTIVITIES,
        {
            "events": [
                _event("e1", "task", "p-jane"),
                _event("e2", "call", "p-jane"),
                _event("e3", "task", "p-zoe"),
            ],
            "contacts": [JANE, ZOE],
        },
        {
            "e1": {"action": "created", "contactAction": "existing"},
            "e2": {"action": "created", "contactAction": "existing"},
            "e3": {"action": "created", "contactAction": "created"},  # Zoe exported first, once
        },
        contacts=2,
        accounts=2,
        activities=3,
    ),
}


class ProcessDied(BaseException):
    """The worker process died here."""


class Dying:
    """Counts the writes of one delivery and dies just before (or just after) the ``at``-th."""

    def __init__(self, at: int, after: bool) -> None:
        self.at, self.after = at, after
        self.count = 0
        self.died_at: str | None = None

    def wrap(self, name: str, call: Callable[..., Any]) -> Callable[..., Any]:
        def write(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            dies = self.count == self.at
            if dies and not self.after:
                self.died_at = f"before {name}"
                raise ProcessDied(name)
            result = call(*args, **kwargs)
            if dies:
                self.died_at = f"after {name}"
                raise ProcessDied(name)
            return result

        return write


class _Proxy:
    def __init__(self, target: Any, dying: Dying, names: tuple[str, ...]) -> None:
        self._target = target
        for name in names:
            setattr(self, name, dying.wrap(name, getattr(target, name)))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


emulator = emulator_fixture()


def _fresh(scenario: Scenario, emulator: DataverseEmulator, connection_string: str) -> JobHarness:
    env = build_harness(scenario.kind, CALLER, emulator, connection_string, CONFIG)
    env.emulator.add_user(user_id=U_ANA, object_id="11111111-1111-4111-8111-111111111111", firstname="Ana")
    acme = create(env.emulator, "accounts", {"name": "Acme", "websiteurl": "https://acme.com"})
    create(
        env.emulator,
        "contacts",
        {
            "firstname": "Jane",
            "lastname": "Doe",
            "jobtitle": "CTO",
            "new_linkedinurl": "http://www.LinkedIn.com/in/Jane-Doe/",
            "parentcustomerid_account@odata.bind": f"/accounts({acme})",
        },
    )
    return env


@pytest.mark.parametrize("after", [False, True], ids=["before-each-write", "after-each-write"])
@pytest.mark.parametrize("kind", sorted(SCENARIOS))
def test_a_worker_killed_at_every_checkpoint_leaves_no_duplicate_and_no_lost_record(
    kind: str, after: bool, emulator: DataverseEmulator, storage_connection_string: str
) -> None:
    scenario = SCENARIOS[kind]
    died_at: list[str] = []
    at = 0
    while True:
        at += 1
        env = _fresh(scenario, emulator, storage_connection_string)
        service = env.service(chunk_size=10)  # one chunk
        job = service.submit(CALLER, scenario.kind.request.model_validate(scenario.body))
        dying = Dying(at, after)
        store = _Proxy(env.store, dying, STORE_WRITES)
        client = _Proxy(env.client, dying, DYNAMICS_WRITES)
        doomed = env.kind.worker(
            store,  # type: ignore[arg-type]
            lambda _ws, c=client, e=env: (c, e.connection),  # type: ignore[misc]
            {"contacts_store": store} if env.kind is ACTIVITIES else {},
        )
        message = ChunkMessage(CALLER.workspace_id, job.job_id, 0)
        try:
            doomed.handle(message, 1)
        except ProcessDied:
            assert dying.died_at is not None
            died_at.append(dying.died_at)
            env.worker.handle(message, 2)  # the queue delivers the message again, to a fresh worker
        else:
            break  # this delivery has fewer writes than ``at``: every checkpoint was tried
        _assert_as_if_nothing_happened(env, scenario, job.job_id, dying.died_at)

    names = {d.split(" ", 1)[1] for d in died_at}
    assert set(STORE_WRITES) | set(DYNAMICS_WRITES) <= names, died_at


def _assert_as_if_nothing_happened(
    env: JobHarness, scenario: Scenario, job_id: str, died_at: str | None
) -> None:
    service = env.service()
    status = service.status(CALLER.workspace_id, job_id)
    page = service.records(CALLER.workspace_id, job_id, None, None, 100)
    assert status is not None and page is not None
    assert status.state == "succeeded", (died_at, status)
    records = {r["platformId"]: r for r in page.records}
    reported = {p: {k: records[p].get(k) for k in want} for p, want in scenario.truth.items()}
    assert reported == scenario.truth, died_at  # no lost record, each reported as what happened to it
    counts = status.counts
    assert counts["created"] == sum(1 for t in scenario.truth.values() if t["action"] == "created"), died_at
    contacts = rows(env.emulator, "contacts")
    assert len(contacts) == scenario.contacts, died_at  # no duplicate
    assert len(rows(env.emulator, "accounts")) == scenario.accounts, died_at
    if scenario.kind is EXPORTS:
        created = {
            deterministic_dynamics_id(CALLER.workspace_id, ExportEntity.CONTACTS, p)
            for p in ("p-john", "p-zoe")
        }
        assert created <= {c["contactid"] for c in contacts}, died_at
        assert {c["jobtitle"] for c in contacts if c["lastname"] == "Doe"} == {"VP Sales"}, died_at
    else:
        activities = rows(env.emulator, "tasks") + rows(env.emulator, "phonecalls")
        assert len(activities) == scenario.activities, died_at
        assert {a["statecode"] for a in activities} == {1}, died_at  # every logged activity closed
        assert {c["new_engagement"] for c in contacts} == {"Engaged"}, died_at
