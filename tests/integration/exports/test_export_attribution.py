"""Who owns and who wrote what an export puts in Dynamics (step 4 of the setup guide), against the
Dataverse emulator: a campaign's export is written as the identity's mapped Dynamics user (Dynamics shows
them as created by / modified by) and owned by the users mapping of the campaign's platform user; an
automatic export is owned by the mapped user of the platform user the change belongs to, or by the
default CRM owner; an identity that cannot write is reported on every record it affects."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.domain.caller import Caller, Role
from core.domain.config import DynamicsConfig
from tests.integration.exports.conftest import WS, ExportHarness
from tests.support.dataverse import rows

SERVICE = Caller(WS, "campaign-engine", Role.SERVICE)
U_SDR = "5d000000-0000-4000-8000-0000000000a1"  # the identity's user (runs the campaign)
U_ANA = "a0000000-0000-4000-8000-0000000000a2"  # the platform user's mapped user (owns)
U_DEF = "d0000000-0000-4000-8000-0000000000a3"  # default CRM owner
U_OFF = "0ff00000-0000-4000-8000-0000000000a4"  # disabled
OID_SDR = "5d5d5d5d-0000-4000-8000-000000000001"
OID_ANA = "a1a1a1a1-0000-4000-8000-000000000002"


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
                "companies": [pf("name", "name")],
            },
            "campaignMapping": {},
            "userMapping": {
                "identities": [
                    {"identityId": "id-sdr", "dynamicsUserId": U_SDR},
                    {"identityId": "id-gone", "dynamicsUserId": U_OFF},
                ],
                "users": [{"userId": "pu-ana", "dynamicsUserId": U_ANA}],
                "defaultOwnerId": U_DEF,
            },
        }
    )


def _env(harness_for: Callable[[DynamicsConfig], ExportHarness]) -> ExportHarness:
    h = harness_for(_config())
    h.emulator.add_user(user_id=U_SDR, object_id=OID_SDR, firstname="Sam", lastname="Sdr")
    h.emulator.add_user(user_id=U_ANA, object_id=OID_ANA, firstname="Ana", lastname="Ruiz")
    h.emulator.add_user(user_id=U_DEF, firstname="Default", lastname="Owner")
    h.emulator.add_user(user_id=U_OFF, firstname="Gone", lastname="Away", disabled=True)
    return h


def _contact(h: ExportHarness, last_name: str) -> dict[str, Any]:
    [row] = [r for r in rows(h.emulator, "contacts") if r["lastname"] == last_name]
    return row


def test_a_campaign_export_is_written_as_the_identitys_user_and_owned_by_the_campaigns_user(
    harness_for: Callable[[DynamicsConfig], ExportHarness],
) -> None:
    h = _env(harness_for)
    before = h.run(
        {"entity": "contacts", "records": [{"id": "p-2", "firstName": "Old", "lastName": "Timer"}]},
        caller=SERVICE,
    )
    existing = before["records"]["p-2"]["dynamicsId"]
    result = h.run(
        {
            "entity": "contacts",
            "userId": "pu-ana",
            "identityId": "id-sdr",
            "records": [
                {"id": "p-1", "firstName": "Nora", "lastName": "Quist"},
                {"id": "p-2", "firstName": "Old", "lastName": "Timer", "jobTitle": "CTO"},
            ],
        },
        caller=SERVICE,
    )
    records = result["records"]
    assert records["p-1"]["action"] == "created" and records["p-2"]["action"] == "updated"
    assert "note" not in records["p-1"] and "note" not in records["p-2"]
    created = _contact(h, "Quist")
    # Dynamics shows the identity's user as the one who executed the export, on the integration user's
    # behalf; the record belongs to the user the campaign's platform user is mapped to.
    assert created["_createdby_value"] == U_SDR and created["_modifiedby_value"] == U_SDR
    assert created["_createdonbehalfby_value"] == h.integration_user_id
    assert created["_ownerid_value"] == U_ANA
    updated = _contact(h, "Timer")
    assert updated["contactid"] == existing and updated["jobtitle"] == "CTO"
    assert updated["_modifiedby_value"] == U_SDR  # an update too is the identity's
    assert updated["_createdby_value"] == h.integration_user_id
    assert updated["_ownerid_value"] == U_DEF  # an existing record keeps its owner


def test_an_identity_that_cannot_write_falls_back_to_the_owners_rule_and_says_so(
    harness_for: Callable[[DynamicsConfig], ExportHarness],
) -> None:
    h = _env(harness_for)
    unmapped = h.run(
        {
            "entity": "contacts",
            "userId": "pu-ana",
            "identityId": "id-unknown",
            "records": [{"id": "p-1", "firstName": "Nora", "lastName": "Quist"}],
        },
        caller=SERVICE,
    )
    note = unmapped["records"]["p-1"]["note"]
    assert "identity id-unknown is not mapped" in note and f"written as Dynamics user {U_ANA}" in note
    row = _contact(h, "Quist")
    assert row["_createdby_value"] == U_ANA and row["_ownerid_value"] == U_ANA  # the owner writes

    disabled = h.run(
        {
            "entity": "contacts",
            "identityId": "id-gone",  # no userId: the service's own id is mapped to no one
            "records": [{"id": "p-2", "firstName": "Ivy", "lastName": "Lane"}],
        },
        caller=SERVICE,
    )
    note = disabled["records"]["p-2"]["note"]
    assert f"Dynamics user {U_OFF} is disabled" in note and "written as the integration user" in note
    row = _contact(h, "Lane")
    assert row["_createdby_value"] == h.integration_user_id and row["_ownerid_value"] == U_DEF


def test_an_automatic_export_is_owned_by_the_user_the_change_belongs_to_or_the_default_owner(
    harness_for: Callable[[DynamicsConfig], ExportHarness],
) -> None:
    h = _env(harness_for)
    mapped = h.run(
        {
            "entity": "contacts",
            "trigger": "automatic",
            "userId": "pu-ana",
            "records": [
                {"id": "p-1", "firstName": "Nora", "lastName": "Quist", "changedAt": "2026-12-01T10:00:00Z"}
            ],
        },
        caller=SERVICE,
    )
    assert mapped["records"]["p-1"]["action"] == "created"
    row = _contact(h, "Quist")
    assert row["_ownerid_value"] == U_ANA and row["_createdby_value"] == U_ANA  # on Ana's behalf
    unmapped = h.run(
        {
            "entity": "contacts",
            "trigger": "automatic",
            "userId": "pu-nobody",
            "records": [
                {"id": "p-2", "firstName": "Ivy", "lastName": "Lane", "changedAt": "2026-12-01T10:00:00Z"}
            ],
        },
        caller=SERVICE,
    )
    assert unmapped["records"]["p-2"]["action"] == "created"
    row = _contact(h, "Lane")
    assert row["_ownerid_value"] == U_DEF and row["_createdby_value"] == h.integration_user_id
