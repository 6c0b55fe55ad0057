"""Every configuration rule (docs/contracts.md): each problem is reported once, at the right pointer."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from core.domain.catalog import CAMPAIGN_PROPERTIES, Entity, FieldType, PlatformField
from core.domain.config import CampaignMapping, DynamicsConfig, Step
from core.domain.config_validation import validate_config

GUID = "6f1c1f7e-8d3a-4c6b-9a53-2f5c1e0d9b11"
GUID2 = "0b8e5d1e-2a44-4f0e-8f1b-7d2c9c3e4a55"


def valid_doc() -> dict[str, Any]:
    return {
        "syncIdentifiers": {
            "contactIdentifier": "custom",
            "contactRule": {
                "operator": "or",
                "conditions": [
                    {
                        "operator": "and",
                        "conditions": [
                            {"platformField": "firstName", "dynamicsField": "firstname"},
                            {"platformField": "lastName", "dynamicsField": "lastname"},
                            {"platformField": "company.name", "dynamicsField": "parentcustomeridname"},
                        ],
                    },
                    {"platformField": "professionalEmail", "dynamicsField": "emailaddress1"},
                ],
            },
            "companyIdentifier": "domain",
            "companyDomainAnyExtension": True,
            "columns": {"contactLinkedinUrl": "new_linkedinurl", "companyDomain": "websiteurl"},
            "associateContactsWithCompanies": True,
            "associateCompaniesWithContacts": True,
        },
        "fieldMapping": {
            "contacts": [
                {
                    "kind": "platform_field",
                    "dynamicsField": "jobtitle",
                    "platformField": "jobTitle",
                    "mode": "overwrite",
                },
                {
                    "kind": "fixed_value",
                    "dynamicsField": "new_source",
                    "value": "Enginy",
                    "valueType": "text",
                    "mode": "overwrite",
                },
                {
                    "kind": "manual_export",
                    "dynamicsField": "new_campaignname",
                    "valueType": "text",
                    "mode": "fill_if_empty",
                },
                {
                    "kind": "engagement",
                    "dynamicsField": "new_lastengaged",
                    "value": True,
                    "valueType": "boolean",
                    "mode": "overwrite",
                },
            ],
            "companies": [
                {
                    "kind": "platform_field",
                    "dynamicsField": "numberofemployees",
                    "platformField": "employeeCount",
                    "mode": "fill_if_empty",
                },
                {
                    "kind": "engagement",
                    "dynamicsField": "new_lastengaged",
                    "value": True,
                    "valueType": "boolean",
                    "mode": "overwrite",
                },
            ],
        },
        "campaignMapping": {"campaignOpens": "new_opens", "campaignClicks": "new_clicks", "campaigns": None},
        "userMapping": {
            "identities": [{"identityId": "idt-1", "dynamicsUserId": GUID}],
            "users": [{"userId": "u-1", "dynamicsUserId": GUID2}],
            "defaultOwnerId": GUID,
        },
    }


def problems_of(doc: dict[str, Any], **kw: Any) -> dict[str, str]:
    return {p.pointer: p.message for p in validate_config(DynamicsConfig.model_validate(doc), **kw)}


def test_valid_config_has_no_problems_and_defaults_are_valid() -> None:
    assert problems_of(valid_doc()) == {}
    assert validate_config(DynamicsConfig.default()) == []


def test_campaign_mapping_has_exactly_the_thirteen_properties() -> None:
    assert tuple(f.alias for f in CampaignMapping.model_fields.values()) == CAMPAIGN_PROPERTIES
    assert [s.member for s in Step] == list(DynamicsConfig.default().to_json())


def test_unknown_platform_field_in_mapping_and_rule() -> None:
    doc = valid_doc()
    doc["fieldMapping"]["contacts"][0]["platformField"] = "favouriteColour"
    doc["syncIdentifiers"]["contactRule"]["conditions"][1]["platformField"] = "shoeSize"
    assert problems_of(doc).keys() == {
        "/fieldMapping/contacts/0/platformField",
        "/syncIdentifiers/contactRule/conditions/1/platformField",
    }


def test_custom_workspace_fields_are_known() -> None:
    doc = valid_doc()
    doc["fieldMapping"]["contacts"][0]["platformField"] = "favouriteColour"
    custom = [PlatformField("favouriteColour", Entity.CONTACT, FieldType.TEXT, custom=True)]
    assert problems_of(doc, custom_fields=custom) == {}


def test_more_than_one_engagement_mapping_per_tab() -> None:
    doc = valid_doc()
    doc["fieldMapping"]["contacts"].append(
        {"kind": "engagement", "dynamicsField": "new_other", "value": "x", "valueType": "text"}
    )
    found = problems_of(doc)
    assert list(found) == ["/fieldMapping/contacts/4/kind"]
    assert "/fieldMapping/contacts/3" in found["/fieldMapping/contacts/4/kind"]


def test_same_dynamics_column_twice_in_a_tab() -> None:
    doc = valid_doc()
    doc["fieldMapping"]["contacts"].append(
        {"kind": "platform_field", "dynamicsField": "jobtitle", "platformField": "seniority"}
    )
    assert list(problems_of(doc)) == ["/fieldMapping/contacts/4/dynamicsField"]


def severities_of(doc: dict[str, Any]) -> dict[str, str]:
    return {p.pointer: p.severity.value for p in validate_config(DynamicsConfig.model_validate(doc))}


def test_company_field_in_contacts_tab_warns_and_the_same_column_mapped_differently_is_an_error() -> None:
    doc = valid_doc()
    crossing = {
        "kind": "platform_field",
        "dynamicsField": "new_industry",
        "platformField": "company.industry",
    }
    doc["fieldMapping"]["contacts"].append(crossing)
    # The setup guide warns against it; the save goes ahead (the company's name kept as text on the contact).
    assert severities_of(doc) == {"/fieldMapping/contacts/4/platformField": "warning"}
    assert "can cause export errors" in problems_of(doc)["/fieldMapping/contacts/4/platformField"]
    mirrored = copy.deepcopy(doc)
    mirrored["fieldMapping"]["companies"].append({**crossing, "platformField": "industry"})
    assert problems_of(mirrored) == {}
    different_mode = copy.deepcopy(doc)
    different_mode["fieldMapping"]["companies"].append(
        {**crossing, "platformField": "industry", "mode": "fill_if_empty"}
    )
    assert severities_of(different_mode) == {"/fieldMapping/contacts/4/platformField": "error"}
    assert (
        "/fieldMapping/companies/2" in problems_of(different_mode)["/fieldMapping/contacts/4/platformField"]
    )
    other_field = copy.deepcopy(doc)
    other_field["fieldMapping"]["companies"].append({**crossing, "platformField": "name"})
    assert severities_of(other_field) == {"/fieldMapping/contacts/4/platformField": "error"}
    # The counterpart mapped to another column of the account is no conflict: still only the warning.
    elsewhere = copy.deepcopy(doc)
    elsewhere["fieldMapping"]["companies"].append(
        {**crossing, "platformField": "industry", "dynamicsField": "x"}
    )
    assert severities_of(elsewhere) == {"/fieldMapping/contacts/4/platformField": "warning"}


def test_the_documented_cross_tab_example_is_what_validation_reports() -> None:
    from core.openapi_examples import _CROSSING_CONFIG, _CROSSING_WARNING

    [problem] = validate_config(DynamicsConfig.model_validate(_CROSSING_CONFIG))
    assert problem.severity.value == "warning"
    assert {"pointer": problem.pointer, "message": problem.message} == _CROSSING_WARNING


def test_contact_field_in_companies_tab_unless_mirrored() -> None:
    doc = valid_doc()
    doc["fieldMapping"]["companies"].append(
        {"kind": "platform_field", "dynamicsField": "new_owner_title", "platformField": "jobTitle"}
    )
    assert "contact field" in problems_of(doc)["/fieldMapping/companies/2/platformField"]
    assert severities_of(doc) == {"/fieldMapping/companies/2/platformField": "warning"}
    doc["fieldMapping"]["contacts"].append(
        {"kind": "platform_field", "dynamicsField": "new_owner_title", "platformField": "jobTitle"}
    )
    assert problems_of(doc) == {}


@pytest.mark.parametrize(
    ("value_type", "value"),
    [
        ("integer", "12"),
        ("integer", True),
        ("boolean", "yes"),
        ("datetime", "2026-01-01T09:00:00"),  # no zone
        ("email", "not an email"),
        ("choices", "one"),
        ("decimal", "1.5"),
        ("text", None),
    ],
)
def test_fixed_value_must_fit_its_type(value_type: str, value: Any) -> None:
    doc = valid_doc()
    doc["fieldMapping"]["contacts"][1].update(value=value, valueType=value_type)
    assert list(problems_of(doc)) == ["/fieldMapping/contacts/1/value"]


@pytest.mark.parametrize(
    ("value_type", "value"),
    [("integer", 12), ("datetime", "2026-01-01T09:00:00Z"), ("choices", ["a", "b"]), ("decimal", 2.5)],
)
def test_fixed_values_that_fit(value_type: str, value: Any) -> None:
    doc = valid_doc()
    doc["fieldMapping"]["contacts"][1].update(value=value, valueType=value_type)
    assert problems_of(doc) == {}


def test_manual_export_with_a_value_is_refused_and_never_stored() -> None:
    doc = valid_doc()
    doc["fieldMapping"]["contacts"][2]["value"] = "x"
    assert list(problems_of(doc)) == ["/fieldMapping/contacts/2/value"]
    stored = DynamicsConfig.model_validate(valid_doc()).to_json()
    assert "value" not in stored["fieldMapping"]["contacts"][2]


def test_custom_identifier_needs_a_rule_and_empty_groups_are_refused() -> None:
    doc = valid_doc()
    doc["syncIdentifiers"]["contactRule"] = None
    doc["syncIdentifiers"]["companyIdentifier"] = "custom"
    doc["syncIdentifiers"]["companyDomainAnyExtension"] = False
    assert problems_of(doc).keys() == {"/syncIdentifiers/contactRule", "/syncIdentifiers/companyRule"}
    doc["syncIdentifiers"]["companyRule"] = {"operator": "and", "conditions": []}
    assert list(problems_of(doc))[-1] == "/syncIdentifiers/companyRule/conditions"


def _nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"platformField": "domain", "dynamicsField": "websiteurl"}
    for _ in range(depth):
        node = {"operator": "and", "conditions": [node]}
    return node


def test_rule_depth_limit() -> None:
    doc = valid_doc()
    doc["syncIdentifiers"].update(companyIdentifier="custom", companyDomainAnyExtension=False)
    doc["syncIdentifiers"]["companyRule"] = _nested(4)
    assert problems_of(doc) == {}
    doc["syncIdentifiers"]["companyRule"] = _nested(5)
    pointer = "/syncIdentifiers/companyRule" + "/conditions/0" * 4
    assert list(problems_of(doc)) == [pointer]


def test_rule_condition_count_limit() -> None:
    doc = valid_doc()
    cond = {"platformField": "firstName", "dynamicsField": "firstname"}
    doc["syncIdentifiers"]["contactRule"] = {"operator": "or", "conditions": [cond] * 20}
    assert problems_of(doc) == {}
    doc["syncIdentifiers"]["contactRule"]["conditions"].append(cond)
    assert list(problems_of(doc)) == ["/syncIdentifiers/contactRule/conditions/20"]


def test_company_rule_cannot_use_contact_fields() -> None:
    doc = valid_doc()
    doc["syncIdentifiers"].update(companyIdentifier="custom", companyDomainAnyExtension=False)
    doc["syncIdentifiers"]["companyRule"] = {
        "operator": "or",
        "conditions": [{"platformField": "firstName", "dynamicsField": "name"}],
    }
    assert list(problems_of(doc)) == ["/syncIdentifiers/companyRule/conditions/0/platformField"]


def test_linkedin_identifier_needs_its_column() -> None:
    doc = valid_doc()
    doc["syncIdentifiers"].update(contactIdentifier="linkedin_or_name_company")
    doc["syncIdentifiers"]["columns"]["contactLinkedinUrl"] = None
    assert list(problems_of(doc)) == ["/syncIdentifiers/columns/contactLinkedinUrl"]


def test_campaign_properties_on_the_same_column() -> None:
    doc = valid_doc()
    doc["campaignMapping"]["campaignClicks"] = "new_opens"
    assert list(problems_of(doc)) == ["/campaignMapping/campaignClicks"]


def test_identity_or_user_mapped_twice() -> None:
    doc = valid_doc()
    doc["userMapping"]["identities"].append({"identityId": "idt-1", "dynamicsUserId": GUID2})
    doc["userMapping"]["users"].append({"userId": "u-1", "dynamicsUserId": GUID})
    assert problems_of(doc).keys() == {"/userMapping/identities/1/identityId", "/userMapping/users/1/userId"}


def test_all_problems_are_reported_together() -> None:
    doc = valid_doc()
    doc["fieldMapping"]["contacts"][0]["platformField"] = "nope"
    doc["campaignMapping"]["campaignClicks"] = "new_opens"
    doc["userMapping"]["identities"].append({"identityId": "idt-1", "dynamicsUserId": GUID2})
    doc["fieldMapping"]["contacts"][2]["value"] = 1
    assert len(problems_of(doc)) == 4


def test_diff_summary_names_what_changed() -> None:
    from core.domain.config import diff_documents

    old = {"a": 1, "b": [1, 2], "c": {"x/y": True}, "gone": 0}
    new = {"a": 2, "b": [1, 2, 3], "c": {"x/y": True}, "new": None}
    assert diff_documents(old, new) == [
        {"op": "replace", "path": "/a"},
        {"op": "add", "path": "/b/2"},
        {"op": "remove", "path": "/gone"},
        {"op": "add", "path": "/new"},
    ]
    assert diff_documents(old, old) == []
    assert diff_documents({"n": 1}, {"n": 1.0}) == [{"op": "replace", "path": "/n"}]
    assert len(diff_documents({"l": list(range(50))}, {"l": []}, limit=10)) == 10
