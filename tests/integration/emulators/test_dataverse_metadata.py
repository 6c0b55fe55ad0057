"""Metadata: EntityDefinitions, Attributes, typed casts, option sets, keys (webapi/query-metadata-web-api.md,
webapi/query-metadata-web-api.md#querying-attribute-definitions, entity-attribute-metadata.md)."""

from __future__ import annotations

import json

import pytest

from emulators.dataverse import DataverseEmulator
from emulators.tls import trusting_session

pytestmark = pytest.mark.integration


def test_entity_definition_by_logical_name_and_by_filter(dv) -> None:  # type: ignore[no-untyped-def]
    one = dv.get(
        "EntityDefinitions(LogicalName='contact')?$select=EntitySetName,PrimaryIdAttribute,PrimaryNameAttribute"
    )
    assert one.status_code == 200, one.text
    body = one.json()
    assert (body["EntitySetName"], body["PrimaryIdAttribute"], body["PrimaryNameAttribute"]) == (
        "contacts",
        "contactid",
        "fullname",
    )
    assert "MetadataId" in body  # always returned
    listed = dv.get(
        "EntityDefinitions?$filter=LogicalName eq 'account'&$select=LogicalName,EntitySetName"
    ).json()
    assert [v["EntitySetName"] for v in listed["value"]] == ["accounts"]
    by_id = dv.get(f"EntityDefinitions({body['MetadataId']})?$select=LogicalName").json()
    assert by_id["LogicalName"] == "contact"
    assert dv.get("EntityDefinitions(LogicalName='nosuchtable')").status_code == 404


def test_attributes_with_enum_filter_and_flags(dv) -> None:  # type: ignore[no-untyped-def]
    r = dv.get(
        "EntityDefinitions(LogicalName='contact')/Attributes"
        "?$select=LogicalName,AttributeType,IsValidForCreate,RequiredLevel"
        "&$filter=AttributeType eq Microsoft.Dynamics.CRM.AttributeTypeCode'Picklist'"
    )
    assert r.status_code == 200, r.text
    names = {a["LogicalName"] for a in r.json()["value"]}
    assert "new_seniority" in names and "firstname" not in names
    attrs = {
        a["LogicalName"]: a
        for a in dv.get("EntityDefinitions(LogicalName='contact')/Attributes").json()["value"]
    }
    assert attrs["fullname"]["IsValidForCreate"] is False and attrs["fullname"]["IsValidForUpdate"] is False
    assert attrs["lastname"]["RequiredLevel"]["Value"] == "ApplicationRequired"
    assert attrs["statecode"]["AttributeType"] == "State"
    assert attrs["new_languages"]["AttributeType"] == "Virtual"
    assert attrs["new_languages"]["AttributeTypeName"]["Value"] == "MultiSelectPicklistType"
    assert attrs["parentcustomerid"]["AttributeType"] == "Customer"
    assert attrs["parentcustomerid"]["Targets"] == ["account", "contact"]
    assert attrs["new_linkedinurl"]["IsCustomAttribute"] is True


def test_string_cast_gives_max_length(dv) -> None:  # type: ignore[no-untyped-def]
    r = dv.get(
        "EntityDefinitions(LogicalName='contact')/Attributes/Microsoft.Dynamics.CRM.StringAttributeMetadata"
        "?$select=LogicalName,MaxLength"
    )
    lengths = {a["LogicalName"]: a["MaxLength"] for a in r.json()["value"]}
    assert (
        lengths["firstname"] == 50 and lengths["emailaddress1"] == 100 and lengths["new_linkedinurl"] == 400
    )
    assert "numberofchildren" not in lengths
    single = dv.get(
        "EntityDefinitions(LogicalName='account')/Attributes(LogicalName='name')"
        "/Microsoft.Dynamics.CRM.StringAttributeMetadata?$select=MaxLength"
    ).json()
    assert single["MaxLength"] == 160


def test_picklist_cast_with_option_set(dv) -> None:  # type: ignore[no-untyped-def]
    r = dv.get(
        "EntityDefinitions(LogicalName='contact')/Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata"
        "?$select=LogicalName&$expand=OptionSet,GlobalOptionSet"
    )
    assert r.status_code == 200, r.text
    by_name = {a["LogicalName"]: a for a in r.json()["value"]}
    options = by_name["new_seniority"]["OptionSet"]["Options"]
    assert (options[0]["Value"], options[0]["Label"]["UserLocalizedLabel"]["Label"]) == (100000000, "Entry")
    assert by_name["new_seniority"]["GlobalOptionSet"] is None
    status = dv.get(
        "EntityDefinitions(LogicalName='contact')/Attributes(LogicalName='statuscode')"
        "/Microsoft.Dynamics.CRM.StatusAttributeMetadata?$expand=OptionSet"
    ).json()
    assert {(o["Value"], o["State"]) for o in status["OptionSet"]["Options"]} == {(1, 0), (2, 1)}
    multi = dv.get(
        "EntityDefinitions(LogicalName='contact')/Attributes/Microsoft.Dynamics.CRM.MultiSelectPicklistAttributeMetadata"
        "?$select=LogicalName&$expand=OptionSet"
    ).json()
    assert [a["LogicalName"] for a in multi["value"]] == ["new_languages"]
    wrong_cast = dv.get(
        "EntityDefinitions(LogicalName='contact')/Attributes(LogicalName='firstname')"
        "/Microsoft.Dynamics.CRM.PicklistAttributeMetadata"
    )
    assert wrong_cast.status_code == 404


def test_custom_schema_file_adds_columns_tables_and_keys(tmp_path) -> None:  # type: ignore[no-untyped-def]
    schema = {
        "tables": {
            "contact": {
                "columns": {"new_score": {"type": "Integer", "min": 0, "max": 100}},
                "keys": [{"name": "new_email_key", "columns": ["emailaddress1"]}],
            },
            "new_meeting": {"activity": True, "entity_set": "new_meetings"},
        }
    }
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(schema))
    with DataverseEmulator(schema_path=path) as emulator:
        s = trusting_session()
        s.headers["Authorization"] = "Bearer static-test-token"
        api = emulator.api_url
        keys = s.get(f"{api}EntityDefinitions(LogicalName='contact')/Keys").json()["value"]
        assert keys[0]["KeyAttributes"] == ["emailaddress1"] and keys[0]["EntityKeyIndexStatus"] == "Active"
        meta = s.get(
            f"{api}EntityDefinitions(LogicalName='new_meeting')?$select=IsActivity,EntitySetName"
        ).json()
        assert meta["IsActivity"] is True and meta["EntitySetName"] == "new_meetings"
        assert s.post(f"{api}contacts", json={"lastname": "S", "new_score": 101}).status_code == 400
        assert s.post(f"{api}contacts", json={"lastname": "S", "new_score": 99}).status_code == 204
        assert s.post(f"{api}new_meetings", json={"subject": "Intro"}).status_code == 204
