"""The icons of a whole table (``core.domain.icon_matrix``) and whether a company can be identified."""

from __future__ import annotations

from core.domain.catalog import (
    CAMPAIGN_PROPERTIES,
    COMPANY_FIELDS,
    CONTACT_FIELDS,
    Entity,
    FieldType,
    PlatformField,
)
from core.domain.compatibility import Level, campaign_compatibility, check_compatibility
from core.domain.dynamics_metadata import AttributeType as A
from core.domain.dynamics_metadata import DynamicsColumn
from core.domain.icon_matrix import TargetKind, icon_matrix, metadata_version, targets
from core.domain.matching import IdentifierConfig, company_rule, identifiable, parse_rule

COLUMNS = {
    "jobtitle": DynamicsColumn("jobtitle", A.STRING, max_length=100),
    "fullname": DynamicsColumn("fullname", A.STRING, is_valid_for_create=False, is_valid_for_update=False),
    "numberofchildren": DynamicsColumn("numberofchildren", A.INTEGER),
    "donotemail": DynamicsColumn("donotemail", A.BOOLEAN),
}


def test_targets_cover_every_field_value_kind_and_campaign_property() -> None:
    contact = targets(Entity.CONTACT)
    value_kinds = 3 * len(FieldType)
    assert len(contact) == len(CONTACT_FIELDS) + len(COMPANY_FIELDS) + value_kinds + len(CAMPAIGN_PROPERTIES)
    assert [t.key for t in contact if t.kind is TargetKind.CAMPAIGN_PROPERTY] == [
        f"campaign:{p}" for p in CAMPAIGN_PROPERTIES
    ]
    account = targets(Entity.COMPANY, [PlatformField("tier", Entity.COMPANY, FieldType.CHOICE, custom=True)])
    assert len(account) == len(COMPANY_FIELDS) + 1 + value_kinds
    assert not any(t.key.startswith("company.") or t.key.startswith("campaign:") for t in account)


def test_every_cell_is_the_domain_decision_and_each_outcome_is_stored_once() -> None:
    wanted = targets(Entity.CONTACT)
    matrix = icon_matrix(COLUMNS, wanted)
    assert [c.logical_name for c in matrix.columns] == sorted(COLUMNS)
    assert len(set(matrix.outcomes)) == len(matrix.outcomes)
    for column, row in zip(matrix.columns, matrix.cells, strict=True):
        for target, index in zip(wanted, row, strict=True):
            expected = (
                campaign_compatibility(target.key.removeprefix("campaign:"), column)
                if target.kind is TargetKind.CAMPAIGN_PROPERTY
                else check_compatibility(target.type or FieldType.TEXT, column)
            )
            assert matrix.outcomes[index] == expected
    assert {matrix.outcomes[i].level for i in matrix.cells[1]} == {Level.ERROR}  # fullname is read-only
    assert matrix.cell("donotemail", "campaign:campaignOpens").level is Level.ERROR
    assert matrix.cell("numberofchildren", "fixed_value:text").level is Level.WARNING


def test_the_metadata_version_changes_with_any_column() -> None:
    changed = {**COLUMNS, "jobtitle": DynamicsColumn("jobtitle", A.STRING, max_length=200)}
    assert metadata_version(COLUMNS) == metadata_version(dict(reversed(list(COLUMNS.items()))))
    assert metadata_version(changed) != metadata_version(COLUMNS)


def test_a_company_is_identifiable_only_with_a_value_the_identifier_compares() -> None:
    domain = company_rule(IdentifierConfig(company_identifier="domain"))
    assert not identifiable(domain, {"id": "co-1", "name": "Acme Corp"})
    assert identifiable(domain, {"name": "Acme Corp", "website": "https://www.acme.com/about"})
    either = company_rule(IdentifierConfig(company_identifier="domain_or_name"))
    assert identifiable(either, {"name": "Acme Corp"}) and not identifiable(either, {"id": "co-1"})
    rule = parse_rule(
        {
            "operator": "and",
            "conditions": [
                {"platformField": "name", "dynamicsField": "name"},
                {"platformField": "city", "dynamicsField": "address1_city"},
            ],
        },
        Entity.COMPANY,
    )
    assert not identifiable(rule, {"name": "Acme Corp"})
    assert identifiable(rule, {"name": "Acme Corp", "city": "Lyon"})
