"""Metadata: EntityDefinitions, Attributes, typed casts, option sets, keys (webapi/query-metadata-web-api.md,
webapi/query-metadata-web-api.md#querying-attribute-definitions, entity-attribute-metadata.md)."""

from __future__ import annotations

import json

import pytest

from emulators.dataverse import DataverseEmulator
from emulators.tls import trusting_session

pytestmark = pytest.mark.integration


def test_entity_definition_by_logical_name_and_by_filter(dv) -> None:  # type: ignore[no-untyped-def]
    """query-metadata-web-api.md: EntityDefinitions(LogicalName=...) and $filter; MetadataId is always
    returned."""
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
    """query-metadata-web-api.md#use-enum-types-in-filter-operations: AttributeTypeCode'...' enum literals."""
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
    """query-metadata-web-api.md#retrieving-attributes: StringAttributeMetadata cast for MaxLength."""
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
    """query-metadata-web-api.md: PicklistAttributeMetadata?$expand=OptionSet,GlobalOptionSet."""
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
    """define-alternate-keys-entity.md, query-metadata-web-api.md: custom columns, activity tables, /Keys."""
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


# Every typed cast the issue lists, with the type-specific properties each one exists to expose
# (query-metadata-web-api.md#retrieving-attributes: "cast the attribute to its type to get type-specific
# properties"; property names from the *AttributeMetadata EntityType reference pages). Decimal has no
# standard contact/account column in the emulator's default schema, so a schema file declares one.
CAST_CASES = [
    ("StringAttributeMetadata", "contact", "emailaddress1", {"MaxLength": 100, "Format": "Email"}),
    ("MemoAttributeMetadata", "contact", "description", {"MaxLength": 2000, "Format": "TextArea"}),
    ("PicklistAttributeMetadata", "contact", "new_seniority", {}),
    ("MultiSelectPicklistAttributeMetadata", "contact", "new_languages", {}),
    ("StateAttributeMetadata", "contact", "statecode", {}),
    ("StatusAttributeMetadata", "contact", "statuscode", {}),
    ("IntegerAttributeMetadata", "account", "numberofemployees", {"MinValue": 0, "MaxValue": 1000000000}),
    ("DecimalAttributeMetadata", "contact", "new_score", {"Precision": 3, "MinValue": 0, "MaxValue": 10}),
    ("MoneyAttributeMetadata", "account", "revenue", {"Precision": 2}),
    ("DateTimeAttributeMetadata", "contact", "birthdate", {"Format": "DateOnly"}),
    ("BooleanAttributeMetadata", "contact", "donotemail", {"DefaultValue": False}),
]


@pytest.fixture(scope="module")
def decimal_api(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    path = tmp_path_factory.mktemp("schema") / "schema.json"
    schema = {
        "tables": {
            "contact": {"columns": {"new_score": {"type": "Decimal", "min": 0, "max": 10, "precision": 3}}}
        }
    }
    path.write_text(json.dumps(schema))
    with DataverseEmulator(schema_path=path) as emulator:
        s = trusting_session()
        s.headers["Authorization"] = "Bearer static-test-token"
        yield s, emulator.api_url


@pytest.mark.parametrize(("cast", "table", "column", "expected"), CAST_CASES)
def test_every_listed_cast_answers_with_its_type_specific_properties(  # type: ignore[no-untyped-def]
    decimal_api, cast, table, column, expected
) -> None:
    """query-metadata-web-api.md#retrieving-attributes: each cast exposes its type's properties."""
    s, api = decimal_api
    base = f"{api}EntityDefinitions(LogicalName='{table}')/Attributes"
    listed = s.get(f"{base}/Microsoft.Dynamics.CRM.{cast}?$select=LogicalName")
    assert listed.status_code == 200, listed.text
    values = listed.json()["value"]
    assert column in {a["LogicalName"] for a in values}
    # The cast filters: every row in the answer is of the cast's type.
    assert {a["@odata.type"] for a in values} == {f"#Microsoft.Dynamics.CRM.{cast}"}
    one = s.get(f"{base}(LogicalName='{column}')/Microsoft.Dynamics.CRM.{cast}")
    assert one.status_code == 200, one.text
    body = one.json()
    assert body["LogicalName"] == column and "MetadataId" in body
    for name, value in expected.items():
        assert body[name] == value, (name, body.get(name))


@pytest.mark.parametrize(
    ("cast", "table", "column", "values"),
    [
        ("PicklistAttributeMetadata", "contact", "new_seniority", None),
        ("MultiSelectPicklistAttributeMetadata", "contact", "new_languages", None),
        ("StateAttributeMetadata", "contact", "statecode", [0, 1]),
        ("StatusAttributeMetadata", "contact", "statuscode", [1, 2]),
    ],
)
def test_option_set_casts_expand_their_options(dv, cast, table, column, values) -> None:  # type: ignore[no-untyped-def]
    """query-metadata-web-api.md: OptionSet/GlobalOptionSet are navigation properties (need $expand)."""
    r = dv.get(
        f"EntityDefinitions(LogicalName='{table}')/Attributes(LogicalName='{column}')"
        f"/Microsoft.Dynamics.CRM.{cast}?$select=LogicalName&$expand=OptionSet,GlobalOptionSet"
    )
    assert r.status_code == 200, r.text
    options = r.json()["OptionSet"]["Options"]
    assert options and all(isinstance(o["Value"], int) and o["Label"]["UserLocalizedLabel"] for o in options)
    if values is not None:
        assert [o["Value"] for o in options] == values


def test_boolean_cast_expands_true_and_false_options(dv) -> None:  # type: ignore[no-untyped-def]
    """webapi/reference/booleanattributemetadata.md and booleanoptionsetmetadata.md: the OptionSet of a
    BooleanAttributeMetadata is a BooleanOptionSetMetadata with TrueOption/FalseOption (values 1 and 0,
    reference/entities/contact.md DoNotEMail)."""
    r = dv.get(
        "EntityDefinitions(LogicalName='contact')/Attributes(LogicalName='donotemail')"
        "/Microsoft.Dynamics.CRM.BooleanAttributeMetadata?$select=LogicalName&$expand=OptionSet"
    )
    assert r.status_code == 200, r.text
    option_set = r.json()["OptionSet"]
    assert (option_set["TrueOption"]["Value"], option_set["FalseOption"]["Value"]) == (1, 0)


def test_schema_and_display_names_are_the_real_ones(dv) -> None:  # type: ignore[no-untyped-def]
    """reference/entities/contact.md, account.md, systemuser.md: SchemaName is Pascal case as the service
    spells it (contact WebSiteUrl but account WebSiteURL, DoNotEMail) and DisplayName is the English label."""

    def names(table: str) -> dict[str, tuple[str, str]]:
        rows = dv.get(
            f"EntityDefinitions(LogicalName='{table}')/Attributes?$select=LogicalName,SchemaName,DisplayName"
        ).json()["value"]
        return {
            a["LogicalName"]: (a["SchemaName"], a["DisplayName"]["UserLocalizedLabel"]["Label"]) for a in rows
        }

    contact, account, user = names("contact"), names("account"), names("systemuser")
    assert contact["websiteurl"] == ("WebSiteUrl", "Website")
    assert account["websiteurl"] == ("WebSiteURL", "Website")
    assert contact["donotemail"] == ("DoNotEMail", "Do not allow Emails")
    assert contact["emailaddress1"] == ("EMailAddress1", "Email")
    assert contact["jobtitle"] == ("JobTitle", "Job Title")
    assert account["name"] == ("Name", "Account Name")
    assert user["internalemailaddress"] == ("InternalEMailAddress", "Primary Email")
    assert user["azureactivedirectoryobjectid"] == ("AzureActiveDirectoryObjectId", "Azure AD Object ID")
    assert contact["new_linkedinurl"] == ("new_LinkedInUrl", "LinkedIn URL")  # from the schema file
    table = dv.get(
        "EntityDefinitions(LogicalName='systemuser')?$select=SchemaName,CollectionSchemaName,DisplayName"
    ).json()
    assert (table["SchemaName"], table["CollectionSchemaName"]) == ("SystemUser", "SystemUsers")
    assert table["DisplayName"]["UserLocalizedLabel"]["Label"] == "User"


def test_nested_select_inside_option_set_expand(dv) -> None:  # type: ignore[no-untyped-def]
    """query-metadata-web-api.md ("Retrieve attributes": ``$expand=OptionSet($select=Options)``): the nested
    $select trims the expanded option set; MetadataId stays; an option set is metadata of its own, so its
    MetadataId differs from its attribute's."""
    r = dv.get(
        "EntityDefinitions(LogicalName='contact')/Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata"
        "?$select=LogicalName&$expand=OptionSet($select=Options)"
    )
    assert r.status_code == 200, r.text
    seniority = next(a for a in r.json()["value"] if a["LogicalName"] == "new_seniority")
    assert set(seniority["OptionSet"]) == {"MetadataId", "Options"}
    assert seniority["OptionSet"]["MetadataId"] != seniority["MetadataId"]
    full = dv.get(
        "EntityDefinitions(LogicalName='contact')/Attributes(LogicalName='new_seniority')"
        "/Microsoft.Dynamics.CRM.PicklistAttributeMetadata?$expand=OptionSet"
    ).json()
    assert full["OptionSet"]["MetadataId"] == seniority["OptionSet"]["MetadataId"]
    assert {"Name", "OptionSetType", "IsGlobal"} <= set(full["OptionSet"])
    unknown = dv.get(
        "EntityDefinitions(LogicalName='contact')/Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata"
        "?$select=LogicalName&$expand=OptionSet($select=NoSuchProperty)"
    )
    assert unknown.status_code == 400


def test_select_on_a_typed_cast_accepts_its_own_properties_only(dv) -> None:  # type: ignore[no-untyped-def]
    """query-metadata-web-api.md: type-specific properties (MaxLength of StringAttributeMetadata, MinValue
    of IntegerAttributeMetadata) are selected through the cast; a property the cast's type does not have is
    refused with "Could not find a property named ..." naming that type."""
    strings = dv.get(
        "EntityDefinitions(LogicalName='contact')/Attributes/Microsoft.Dynamics.CRM.StringAttributeMetadata"
        "?$select=LogicalName,MaxLength"
    )
    assert strings.status_code == 200, strings.text
    first = strings.json()["value"][0]
    assert set(first) <= {"@odata.type", "MetadataId", "LogicalName", "MaxLength"}
    wrong = dv.get(
        "EntityDefinitions(LogicalName='contact')/Attributes/Microsoft.Dynamics.CRM.StringAttributeMetadata"
        "?$select=LogicalName,MinValue"
    )
    assert wrong.status_code == 400
    assert "MinValue" in wrong.json()["error"]["message"]
    assert "StringAttributeMetadata" in wrong.json()["error"]["message"]
    integers = dv.get(
        "EntityDefinitions(LogicalName='contact')/Attributes(LogicalName='numberofchildren')"
        "/Microsoft.Dynamics.CRM.IntegerAttributeMetadata?$select=MinValue,MaxValue"
    ).json()
    assert (integers["MinValue"], integers["MaxValue"]) == (0, 1000000000)
    assert "LogicalName" not in integers


def test_a_custom_column_can_be_deleted_and_is_then_unknown(dv, dataverse: DataverseEmulator) -> None:  # type: ignore[no-untyped-def]
    """DeleteAttributeRequest as the Web API sends it: DELETE EntityDefinitions(...)/Attributes(...) answers
    204; the column then is not in the metadata, and writing it is refused as an unknown property
    (0x80048d19), as after an admin deletes a column in the maker portal. Standard columns stay."""
    column = "EntityDefinitions(LogicalName='contact')/Attributes(LogicalName='new_engagement')"
    assert dv.get(column + "?$select=LogicalName").status_code == 200
    assert dv.delete(column).status_code == 204
    assert dv.get(column + "?$select=LogicalName").status_code == 404
    names = {
        a["LogicalName"]
        for a in dv.get("EntityDefinitions(LogicalName='contact')/Attributes").json()["value"]
    }
    assert "new_engagement" not in names and "lastname" in names
    refused = dv.post("contacts", json={"lastname": "Drift", "new_engagement": "hot"})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "0x80048d19"
    assert "new_engagement" in refused.json()["error"]["message"]
    assert dv.post("contacts", json={"lastname": "Drift"}).status_code == 204

    standard = dv.delete("EntityDefinitions(LogicalName='contact')/Attributes(LogicalName='lastname')")
    assert standard.status_code == 400
    assert dv.get(column.replace("new_engagement", "lastname")).status_code == 200

    dataverse.reset()  # the reset brings the emulator's schema back
    assert dv.get(column + "?$select=LogicalName").status_code == 200
