"""The configuration check against Dynamics metadata, on metadata given as data (no I/O).

What an admin sees when saving: a mapping that cannot work is refused at its pointer, one that may not fit
comes back as a warning, a good one says nothing; identifier, campaign and user columns are checked too.
"""

from __future__ import annotations

from typing import Any

import pytest

from core.domain.catalog import Entity, FieldType, PlatformField
from core.domain.config import DynamicsConfig
from core.domain.config_validation import Problem, Severity, validate_config
from core.domain.dynamics_metadata import AttributeType, DynamicsColumn, OptionValue
from core.services.config.metadata_check import DynamicsMetadata, metadata_problems
from core.services.dynamics.fields import SystemUser

A = AttributeType
USER = "6f1c1f7e-8d3a-4c6b-9a53-2f5c1e0d9b11"
DISABLED = "0b8e5d1e-2a44-4f0e-8f1b-7d2c9c3e4a55"
MISSING = "9d9d9d9d-0000-4000-8000-000000000001"


def col(name: str, kind: AttributeType, **kw: Any) -> DynamicsColumn:
    return DynamicsColumn(name, kind, **kw)


SENIORITY = (OptionValue(1, "Entry"), OptionValue(2, "Senior"))
CONTACT = {
    c.logical_name: c
    for c in (
        col("firstname", A.STRING, max_length=50),
        col("lastname", A.STRING, max_length=50),
        col("jobtitle", A.STRING, max_length=100),
        col("emailaddress1", A.STRING, max_length=100),
        col("fullname", A.STRING, max_length=160, is_valid_for_create=False, is_valid_for_update=False),
        col("new_linkedinurl", A.STRING, max_length=400),
        col("new_source", A.STRING, max_length=10),
        col("new_seniority", A.PICKLIST, options=SENIORITY),
        col("new_languages", A.MULTI_SELECT_PICKLIST, options=(OptionValue(7, "English"),)),
        col("numberofchildren", A.INTEGER),
        col("birthdate", A.DATETIME, format="DateOnly"),
        col("parentcustomerid", A.CUSTOMER, targets=("account", "contact")),
        col("new_createonly", A.STRING, max_length=100, is_valid_for_update=False),
        col("new_campaignopens", A.INTEGER),
        col("new_campaigns", A.MEMO, max_length=4000),
        col("new_flag", A.BOOLEAN),
    )
}
ACCOUNT = {
    c.logical_name: c
    for c in (
        col("name", A.STRING, max_length=160),
        col("websiteurl", A.STRING, max_length=200),
        col("numberofemployees", A.INTEGER),
        col("primarycontactid", A.LOOKUP, targets=("contact",)),
    )
}
METADATA = DynamicsMetadata(
    CONTACT,
    ACCOUNT,
    {
        USER: SystemUser(USER, "Ann Owner", "ann@contoso.com", True),
        DISABLED: SystemUser(DISABLED, "Old Owner", "old@contoso.com", False),
    },
)


def doc(
    contacts: list[dict[str, Any]] | None = None,
    companies: list[dict[str, Any]] | None = None,
    **sections: Any,
) -> DynamicsConfig:
    base: dict[str, Any] = {
        "syncIdentifiers": {"companyIdentifier": "domain", "columns": {"companyDomain": "websiteurl"}},
        "fieldMapping": {"contacts": contacts or [], "companies": companies or []},
        "campaignMapping": {},
        "userMapping": {},
    }
    base.update(sections)
    config = DynamicsConfig.model_validate(base)
    assert validate_config(config) == []  # the pure rules pass: what follows is the metadata check alone
    return config


def pf(platform_field: str, column: str) -> dict[str, Any]:
    return {"kind": "platform_field", "platformField": platform_field, "dynamicsField": column}


def fixed(column: str, value: Any, value_type: str = "text", kind: str = "fixed_value") -> dict[str, Any]:
    return {"kind": kind, "dynamicsField": column, "value": value, "valueType": value_type}


def by_pointer(problems: list[Problem]) -> dict[str, tuple[Severity, str]]:
    assert len({p.pointer for p in problems}) == len(problems), problems
    return {p.pointer: (p.severity, p.message) for p in problems}


def test_good_mappings_say_nothing() -> None:
    config = doc(
        contacts=[
            pf("firstName", "firstname"),
            pf("seniority", "new_seniority"),
            pf("languages", "new_languages"),
            pf("lastName", "new_source"),  # 10 chars: a field's length is unknown until export
            fixed("numberofchildren", 3, "integer"),
            fixed("new_flag", True, "boolean"),
            {"kind": "manual_export", "dynamicsField": "jobtitle", "valueType": "text"},
        ],
        companies=[pf("name", "name"), pf("employeeCount", "numberofemployees")],
    )
    assert metadata_problems(config, METADATA) == []


def test_each_icon_of_platform_field_mappings_lands_on_its_pointer() -> None:
    config = doc(
        contacts=[
            pf("jobTitle", "jobtitle"),  # ok
            pf("jobTitle", "new_seniority"),  # text -> choice: warning
            pf("fullName", "fullname"),  # read-only: error
            pf("createdAt", "birthdate"),  # date only: warning
            pf("verified", "parentcustomerid"),  # lookup: error
            pf("lastName", "new_createonly"),  # create-only: warning
        ],
        companies=[pf("domain", "primarycontactid")],
    )
    found = by_pointer(metadata_problems(config, METADATA))
    assert set(found) == {
        "/fieldMapping/contacts/1/dynamicsField",
        "/fieldMapping/contacts/2/dynamicsField",
        "/fieldMapping/contacts/3/dynamicsField",
        "/fieldMapping/contacts/4/dynamicsField",
        "/fieldMapping/contacts/5/dynamicsField",
        "/fieldMapping/companies/0/dynamicsField",
    }
    severity = {pointer: level for pointer, (level, _) in found.items()}
    assert severity["/fieldMapping/contacts/1/dynamicsField"] is Severity.WARNING
    assert severity["/fieldMapping/contacts/2/dynamicsField"] is Severity.ERROR
    assert "read-only" in found["/fieldMapping/contacts/2/dynamicsField"][1]
    assert severity["/fieldMapping/contacts/3/dynamicsField"] is Severity.WARNING
    assert "date only" in found["/fieldMapping/contacts/3/dynamicsField"][1]
    assert severity["/fieldMapping/contacts/4/dynamicsField"] is Severity.ERROR
    assert severity["/fieldMapping/contacts/5/dynamicsField"] is Severity.WARNING
    assert "created" in found["/fieldMapping/contacts/5/dynamicsField"][1]
    assert severity["/fieldMapping/companies/0/dynamicsField"] is Severity.ERROR


def test_missing_columns_are_errors_with_a_suggestion() -> None:
    config = doc(contacts=[pf("jobTitle", "jobtitel")], companies=[pf("name", "new_nothing_like_it")])
    found = by_pointer(metadata_problems(config, METADATA))
    level, message = found["/fieldMapping/contacts/0/dynamicsField"]
    assert level is Severity.ERROR and "does not exist in the Dynamics contact table" in message
    assert "did you mean 'jobtitle'" in message
    level, message = found["/fieldMapping/companies/0/dynamicsField"]
    assert "account table" in message and "did you mean" not in message


@pytest.mark.parametrize(
    ("mapping", "pointer", "fragment"),
    [
        (fixed("new_seniority", "Principal"), "/fieldMapping/contacts/0/value", "not an option"),
        (fixed("new_source", "Enginy outbound"), "/fieldMapping/contacts/0/value", "15 characters"),
        (fixed("numberofchildren", "many"), "/fieldMapping/contacts/0/value", "not a number"),
        (
            fixed("new_languages", ["English", "Klingon"], "choices"),
            "/fieldMapping/contacts/0/value",
            "Klingon",
        ),
        (fixed("fullname", "x"), "/fieldMapping/contacts/0/dynamicsField", "read-only"),
        (fixed("parentcustomerid", "x"), "/fieldMapping/contacts/0/dynamicsField", "customer lookup"),
        (
            fixed("new_seniority", "Nope", kind="engagement"),
            "/fieldMapping/contacts/0/value",
            "not an option",
        ),
    ],
)
def test_fixed_and_engagement_values_are_converted_at_save(
    mapping: dict[str, Any], pointer: str, fragment: str
) -> None:
    found = by_pointer(metadata_problems(doc(contacts=[mapping]), METADATA))
    assert list(found) == [pointer]
    level, message = found[pointer]
    assert level is Severity.ERROR and fragment in message


def test_fixed_values_that_convert_drop_the_type_warning_but_keep_column_limits() -> None:
    config = doc(
        contacts=[
            fixed("new_seniority", "senior"),  # text -> choice would be yellow; this label exists
            fixed("numberofchildren", "3"),  # text -> number: this one is a number
            fixed("new_createonly", "x"),  # converts, but the column is create-only
            fixed("new_flag", "   "),  # blank: nothing would ever be written
        ]
    )
    found = by_pointer(metadata_problems(config, METADATA))
    assert set(found) == {"/fieldMapping/contacts/2/dynamicsField", "/fieldMapping/contacts/3/value"}
    assert all(level is Severity.WARNING for level, _ in found.values())


def test_manual_export_types_are_checked_like_fields() -> None:
    config = doc(
        contacts=[
            {"kind": "manual_export", "dynamicsField": "birthdate", "valueType": "boolean"},
            {"kind": "manual_export", "dynamicsField": "numberofchildren", "valueType": "text"},
        ]
    )
    found = by_pointer(metadata_problems(config, METADATA))
    assert found["/fieldMapping/contacts/0/dynamicsField"][0] is Severity.ERROR
    assert found["/fieldMapping/contacts/1/dynamicsField"][0] is Severity.WARNING


def test_custom_fields_are_checked_with_their_declared_type() -> None:
    custom = [PlatformField("intentScore", Entity.CONTACT, FieldType.DECIMAL, custom=True)]
    config = DynamicsConfig.model_validate(
        {
            "syncIdentifiers": {},
            "fieldMapping": {
                "contacts": [pf("intentScore", "numberofchildren"), pf("intentScore", "new_flag")]
            },
            "campaignMapping": {},
            "userMapping": {},
        }
    )
    found = by_pointer(metadata_problems(config, METADATA, custom))
    assert found["/fieldMapping/contacts/0/dynamicsField"][0] is Severity.WARNING  # fractions fail
    assert found["/fieldMapping/contacts/1/dynamicsField"][0] is Severity.ERROR


def test_identifier_columns_and_rule_columns_must_exist_and_hold_text() -> None:
    config = doc(
        syncIdentifiers={
            "contactIdentifier": "custom",
            "contactRule": {
                "operator": "or",
                "conditions": [
                    {"platformField": "professionalEmail", "dynamicsField": "emailaddress1"},
                    {
                        "operator": "and",
                        "conditions": [
                            {"platformField": "firstName", "dynamicsField": "firstname"},
                            {"platformField": "lastName", "dynamicsField": "lastnaem"},
                            {"platformField": "company.name", "dynamicsField": "parentcustomerid"},
                        ],
                    },
                ],
            },
            "companyIdentifier": "domain",
            "columns": {
                "contactLinkedinUrl": "numberofchildren",
                "companyDomain": "websiteurl",
                "companyLinkedinUrl": "new_linkedinurl",  # exists on contact, not on account
            },
        }
    )
    found = by_pointer(metadata_problems(config, METADATA))
    assert set(found) == {
        "/syncIdentifiers/columns/contactLinkedinUrl",
        "/syncIdentifiers/columns/companyLinkedinUrl",
        "/syncIdentifiers/contactRule/conditions/1/conditions/1/dynamicsField",
        "/syncIdentifiers/contactRule/conditions/1/conditions/2/dynamicsField",
    }
    assert all(level is Severity.ERROR for level, _ in found.values())
    assert "text" in found["/syncIdentifiers/columns/contactLinkedinUrl"][1]
    assert "account table" in found["/syncIdentifiers/columns/companyLinkedinUrl"][1]


def test_campaign_columns_exist_on_contact_and_fit_the_property() -> None:
    config = doc(
        campaignMapping={
            "campaignOpens": "new_campaignopens",  # count -> whole number: ok
            "campaignClicks": "jobtitle",  # count -> text: ok
            "campaigns": "new_campaigns",  # text -> memo: ok
            "senders": "numberofchildren",  # text -> number: refused
            "activities": "new_nowhere",  # missing
            "conversationTags": "fullname",  # read-only
            "campaignOpenAnalysis": "new_createonly",  # create-only: warning
            "sequenceStatus": "new_seniority",  # a choice column takes one label: warning
            "conversationTagCategories": "new_languages",  # multi-select takes labels: warning
            "campaignClickAnalysis": "parentcustomerid",  # a lookup: refused
            "campaignEngagementStatus": "new_flag",  # yes/no: refused
        }
    )
    found = by_pointer(metadata_problems(config, METADATA))
    assert {p: level for p, (level, _) in found.items()} == {
        "/campaignMapping/senders": Severity.ERROR,
        "/campaignMapping/activities": Severity.ERROR,
        "/campaignMapping/conversationTags": Severity.ERROR,
        "/campaignMapping/campaignOpenAnalysis": Severity.WARNING,
        "/campaignMapping/sequenceStatus": Severity.WARNING,
        "/campaignMapping/conversationTagCategories": Severity.WARNING,
        "/campaignMapping/campaignClickAnalysis": Severity.ERROR,
        "/campaignMapping/campaignEngagementStatus": Severity.ERROR,
    }
    assert "option label" in found["/campaignMapping/sequenceStatus"][1]


def test_mapped_users_must_exist_and_be_enabled() -> None:
    config = doc(
        userMapping={
            "identities": [{"identityId": "li-1", "dynamicsUserId": USER}],
            "users": [
                {"userId": "u-1", "dynamicsUserId": USER.upper()},
                {"userId": "u-2", "dynamicsUserId": DISABLED},
                {"userId": "u-3", "dynamicsUserId": MISSING},
            ],
            "defaultOwnerId": MISSING,
        }
    )
    found = by_pointer(metadata_problems(config, METADATA))
    assert set(found) == {
        "/userMapping/users/1/dynamicsUserId",
        "/userMapping/users/2/dynamicsUserId",
        "/userMapping/defaultOwnerId",
    }
    assert "old@contoso.com is disabled" in found["/userMapping/users/1/dynamicsUserId"][1]
    assert "does not exist" in found["/userMapping/defaultOwnerId"][1]
