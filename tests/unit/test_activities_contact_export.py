"""The exportMissingContacts option: its place in step 1, its validation, and why a contact's
data cannot be exported (pure)."""

from __future__ import annotations

from typing import Any

from core.domain.activities import (
    ActivityOutcome,
    ContactAction,
    ValidEvent,
    contact_export_problem,
    export_aliases,
)
from core.domain.catalog import Entity
from core.domain.config import DynamicsConfig
from core.domain.config_validation import Severity, validate_config
from core.domain.jobs import RecordAction
from core.domain.matching import IdentifierConfig, rule_for


def _config(*, export_missing: bool | None, contacts_tab: list[dict[str, Any]]) -> DynamicsConfig:
    sync: dict[str, Any] = {"contactIdentifier": "name_company"}
    if export_missing is not None:
        sync["exportMissingContacts"] = export_missing
    return DynamicsConfig.model_validate(
        {
            "syncIdentifiers": sync,
            "fieldMapping": {"contacts": contacts_tab, "companies": []},
            "campaignMapping": {},
            "userMapping": {},
        }
    )


FIRST_NAME = {"kind": "platform_field", "platformField": "firstName", "dynamicsField": "firstname"}
SOURCE = {"kind": "fixed_value", "dynamicsField": "new_source", "value": "Enginy", "valueType": "text"}


def test_off_by_default_so_existing_workspaces_keep_skipping() -> None:
    config = _config(export_missing=None, contacts_tab=[FIRST_NAME])
    assert config.sync_identifiers.export_missing_contacts is False
    assert config.to_json()["syncIdentifiers"]["exportMissingContacts"] is False


def test_on_without_a_mapped_platform_field_is_a_warning_not_a_refusal() -> None:
    # A fixed value alone identifies no one: the export refuses to create such a blank contact.
    problems = validate_config(_config(export_missing=True, contacts_tab=[SOURCE]))
    assert [(p.pointer, p.severity) for p in problems] == [
        ("/syncIdentifiers/exportMissingContacts", Severity.WARNING)
    ]
    assert "skipped" in problems[0].message
    assert validate_config(_config(export_missing=True, contacts_tab=[FIRST_NAME, SOURCE])) == []
    assert validate_config(_config(export_missing=False, contacts_tab=[])) == []


def test_the_reason_a_contact_cannot_be_exported() -> None:
    assert "no contact data was sent" in (contact_export_problem("p-1", None) or "")
    bad = contact_export_problem("p-1", {"id": "p-1", "firstName": 42, "company": {"domain": 7}})
    assert bad is not None and "p-1" in bad and "firstName" in bad and "company.domain" in bad
    assert contact_export_problem("p-1", {"id": "p-1", "firstName": "Ann"}) is None


def test_the_result_says_what_happened_to_the_contact() -> None:
    outcome = ActivityOutcome(0, "e1", RecordAction.CREATED, contact_action=ContactAction.CREATED)
    assert outcome.to_json()["contactAction"] == "created"
    assert "contactAction" not in ActivityOutcome(0, "e1", RecordAction.INVALID).to_json()


def test_platform_contacts_of_one_person_in_a_request_are_exported_under_the_first_ones_id() -> None:
    identifiers = IdentifierConfig.from_json(
        {
            "contactIdentifier": "linkedin_or_name_company",
            "columns": {"contactLinkedinUrl": "new_linkedinurl"},
        }
    )
    rule = rule_for(Entity.CONTACT, identifiers)
    ana = {"id": "p-1", "firstName": "Ana", "lastName": "Ruiz", "linkedinUrl": "linkedin.com/in/ana-ruiz"}
    events = [
        ValidEvent(0, {"id": "e0", "contactId": "p-1"}, ana),
        ValidEvent(
            1,
            {"id": "e1", "contactId": "p-2"},
            {**ana, "id": "p-2", "linkedinUrl": "https://www.linkedin.com/in/Ana-Ruiz/"},
        ),
        ValidEvent(
            2,
            {"id": "e2", "contactId": "p-3"},
            {"id": "p-3", "firstName": "Bo", "lastName": "Lee", "linkedinUrl": "linkedin.com/in/bo"},
        ),
        ValidEvent(3, {"id": "e3", "contactId": "p-2"}, None),  # its data came with the first event
        ValidEvent(4, {"id": "e4", "contactId": "p-4"}, None),  # no data: nothing to compare
    ]
    assert export_aliases(rule, events) == {"p-2": "p-1"}
