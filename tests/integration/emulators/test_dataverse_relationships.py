"""Relationships: collection-valued ``$ref`` associate and disassociate for one-to-many and many-to-many
relationships, the standard ``teammembership_association`` N:N, and relationship metadata.

Pages followed (MicrosoftDocs/powerapps-docs, developer/data-platform/):
webapi/associate-disassociate-entities-using-web-api.md ("Add a reference to a collection-valued navigation
property", "Remove a reference to a table row": both DELETE forms, all answering 204 No Content),
webapi/query-metadata-web-api.md#retrieve-relationships, reference/entities/team.md and systemuser.md
(``teammembership_association``: systemuser and team through the ``teammembership`` intersect table).
"""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.integration

PART = "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
GUID = re.compile(r"\(([0-9a-f-]{36})\)$")


def _id(response) -> str:  # type: ignore[no-untyped-def]
    assert response.status_code == 204, response.text
    match = GUID.search(response.headers["OData-EntityId"])
    assert match, response.headers
    return match.group(1)


def _parent_of(dv, contact: str) -> str | None:  # type: ignore[no-untyped-def]
    value: str | None = dv.get(f"contacts({contact})?$select=_parentcustomerid_value").json()[
        "_parentcustomerid_value"
    ]
    return value


def test_one_to_many_associate_then_both_disassociate_forms(dv) -> None:  # type: ignore[no-untyped-def]
    """POST accounts(id)/contact_customer_accounts/$ref sets the contact's parentcustomerid; DELETE
    .../contact_customer_accounts(id)/$ref and DELETE .../contact_customer_accounts/$ref?$id=<url> clear it.
    Every one answers 204 with no body."""
    account = _id(dv.post("accounts", json={"name": "Contoso"}))
    first = _id(dv.post("contacts", json={"lastname": "First"}))
    second = _id(dv.post("contacts", json={"lastname": "Second"}))

    for contact in (first, second):
        r = dv.post(
            f"accounts({account})/contact_customer_accounts/$ref",
            json={"@odata.id": f"{dv.api}contacts({contact})"},
        )
        assert r.status_code == 204, r.text
        assert r.text == ""
        assert _parent_of(dv, contact) == account
    listed = dv.get(f"accounts({account})/contact_customer_accounts?$select=lastname").json()["value"]
    assert sorted(c["lastname"] for c in listed) == ["First", "Second"]

    r = dv.delete(f"accounts({account})/contact_customer_accounts({first})/$ref")
    assert r.status_code == 204, r.text
    assert _parent_of(dv, first) is None
    r = dv.delete(
        f"accounts({account})/contact_customer_accounts/$ref", params={"$id": f"{dv.api}contacts({second})"}
    )
    assert r.status_code == 204, r.text
    assert _parent_of(dv, second) is None
    assert dv.get(f"accounts({account})/contact_customer_accounts").json()["value"] == []


def test_one_to_many_associate_with_a_relative_reference_and_activities(dv) -> None:  # type: ignore[no-untyped-def]
    """The @odata.id may be relative to the service root (the page's single-valued example uses
    ``accounts(<id>)``); Account_Tasks is the same kind of relationship through regardingobjectid."""
    account = _id(dv.post("accounts", json={"name": "Fabrikam"}))
    task = _id(dv.post("tasks", json={"subject": "Call back"}))
    r = dv.post(f"accounts({account})/Account_Tasks/$ref", json={"@odata.id": f"tasks({task})"})
    assert r.status_code == 204, r.text
    row = dv.get(f"tasks({task})?$select=_regardingobjectid_value").json()
    assert row["_regardingobjectid_value"] == account
    assert dv.delete(f"accounts({account})/Account_Tasks({task})/$ref").status_code == 204
    assert (
        dv.get(f"tasks({task})?$select=_regardingobjectid_value").json()["_regardingobjectid_value"] is None
    )


def test_collection_reference_errors(dv) -> None:  # type: ignore[no-untyped-def]
    """A reference to a row of the wrong table, a missing row, or an unknown navigation property fails and
    changes nothing."""
    account = _id(dv.post("accounts", json={"name": "Litware"}))
    other = _id(dv.post("accounts", json={"name": "Other"}))
    r = dv.post(
        f"accounts({account})/contact_customer_accounts/$ref", json={"@odata.id": f"accounts({other})"}
    )
    assert r.status_code == 400
    r = dv.post(
        f"accounts({account})/contact_customer_accounts/$ref",
        json={"@odata.id": "contacts(00000000-0000-0000-0000-000000000001)"},
    )
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "0x80040217"
    r = dv.post(f"accounts({account})/no_such_relationship/$ref", json={"@odata.id": f"accounts({other})"})
    assert r.status_code == 400
    assert "no_such_relationship" in r.json()["error"]["message"]
    r = dv.delete(f"accounts({account})/contact_customer_accounts/$ref")  # neither (id) nor $id
    assert r.status_code == 400


def test_many_to_many_teammembership_associate_list_expand_and_disassociate(dv, dataverse) -> None:  # type: ignore[no-untyped-def]
    """teammembership_association (systemuser N:N team): POST $ref from either side links the rows, both
    sides list each other, both DELETE forms unlink; deleting a team removes its links."""
    unit = dv.get("businessunits?$select=businessunitid").json()["value"][0]["businessunitid"]
    team = _id(
        dv.post("teams", json={"name": "Sales", "businessunitid@odata.bind": f"/businessunits({unit})"})
    )
    ada = dataverse.add_user(firstname="Ada", lastname="Lovelace")
    bob = dataverse.add_user(firstname="Bob", lastname="Builder")

    r = dv.post(
        f"teams({team})/teammembership_association/$ref", json={"@odata.id": f"{dv.api}systemusers({ada})"}
    )
    assert r.status_code == 204, r.text
    r = dv.post(
        f"systemusers({bob})/teammembership_association/$ref", json={"@odata.id": f"{dv.api}teams({team})"}
    )
    assert r.status_code == 204, r.text

    members = dv.get(f"teams({team})/teammembership_association?$select=fullname").json()["value"]
    assert sorted(m["fullname"] for m in members) == ["Ada Lovelace", "Bob Builder"]
    teams = dv.get(f"systemusers({ada})?$select=fullname&$expand=teammembership_association($select=name)")
    assert [t["name"] for t in teams.json()["teammembership_association"]] == ["Sales"]

    assert dv.delete(f"teams({team})/teammembership_association({ada})/$ref").status_code == 204
    r = dv.delete(
        f"systemusers({bob})/teammembership_association/$ref", params={"$id": f"{dv.api}teams({team})"}
    )
    assert r.status_code == 204, r.text
    assert dv.get(f"teams({team})/teammembership_association").json()["value"] == []

    dv.post(f"teams({team})/teammembership_association/$ref", json={"@odata.id": f"systemusers({ada})"})
    assert dv.delete(f"teams({team})").status_code == 204
    assert dv.get(f"systemusers({ada})/teammembership_association").json()["value"] == []


def test_many_to_many_link_to_the_wrong_table_is_refused(dv, dataverse) -> None:  # type: ignore[no-untyped-def]
    unit = dv.get("businessunits?$select=businessunitid").json()["value"][0]["businessunitid"]
    team = _id(dv.post("teams", json={"name": "Ops", "businessunitid@odata.bind": f"/businessunits({unit})"}))
    account = _id(dv.post("accounts", json={"name": "Not a user"}))
    r = dv.post(f"teams({team})/teammembership_association/$ref", json={"@odata.id": f"accounts({account})"})
    assert r.status_code == 400
    assert dv.get(f"teams({team})/teammembership_association").json()["value"] == []


def test_many_to_many_links_roll_back_with_their_change_set(dv, dataverse) -> None:  # type: ignore[no-untyped-def]
    """execute-batch-operations-using-web-api.md#change-sets: a failing change set leaves no link behind."""
    unit = dv.get("businessunits?$select=businessunitid").json()["value"][0]["businessunitid"]
    team = _id(
        dv.post("teams", json={"name": "Atomic", "businessunitid@odata.bind": f"/businessunits({unit})"})
    )
    user = dataverse.add_user(firstname="Cy", lastname="Atomic")
    body = (
        "--batch_b\r\nContent-Type: multipart/mixed; boundary=changeset_c\r\n\r\n"
        f"--changeset_c\r\n{PART}Content-ID: 1\r\n\r\n"
        f"POST {dv.api}teams({team})/teammembership_association/$ref HTTP/1.1\r\n"
        "Content-Type: application/json\r\n\r\n"
        f'{{"@odata.id":"{dv.api}systemusers({user})"}}\r\n'
        f"--changeset_c\r\n{PART}Content-ID: 2\r\n\r\n"
        f"PATCH {dv.api}teams({team}) HTTP/1.1\r\nContent-Type: application/json\r\n\r\n"
        '{"no_such_column":1}\r\n'
        "--changeset_c--\r\n--batch_b--\r\n"
    )
    r = dv.post("$batch", data=body, headers={"Content-Type": "multipart/mixed; boundary=batch_b"})
    assert r.status_code == 400
    assert dv.get(f"teams({team})/teammembership_association").json()["value"] == []


def test_relationship_metadata(dv) -> None:  # type: ignore[no-untyped-def]
    """query-metadata-web-api.md: ManyToOneRelationships / OneToManyRelationships / ManyToManyRelationships
    of a table, with the navigation property names clients use for $expand and $ref."""
    one_to_many = dv.get("EntityDefinitions(LogicalName='account')/OneToManyRelationships").json()["value"]
    by_name = {r["SchemaName"]: r for r in one_to_many}
    customer = by_name["contact_customer_accounts"]
    assert customer["ReferencingEntity"] == "contact"
    assert customer["ReferencingAttribute"] == "parentcustomerid"
    assert customer["ReferencedEntityNavigationPropertyName"] == "contact_customer_accounts"
    assert customer["ReferencingEntityNavigationPropertyName"] == "parentcustomerid_account"
    assert customer["CascadeConfiguration"]["Delete"] == "Cascade"
    assert "Account_Tasks" in by_name
    many_to_one = dv.get(
        "EntityDefinitions(LogicalName='contact')/ManyToOneRelationships?$select=SchemaName,ReferencedEntity"
    ).json()["value"]
    assert {"SchemaName": "contact_customer_accounts", "ReferencedEntity": "account"} in [
        {k: r[k] for k in ("SchemaName", "ReferencedEntity")} for r in many_to_one
    ]
    for table in ("team", "systemuser"):
        n_to_n = dv.get(f"EntityDefinitions(LogicalName='{table}')/ManyToManyRelationships").json()["value"]
        rel = next(r for r in n_to_n if r["SchemaName"] == "teammembership_association")
        assert rel["IntersectEntityName"] == "teammembership"
        assert {rel["Entity1LogicalName"], rel["Entity2LogicalName"]} == {"systemuser", "team"}
        assert rel["Entity1NavigationPropertyName"] == "teammembership_association"
        by_id = dv.get(
            f"EntityDefinitions(LogicalName='{table}')/ManyToManyRelationships({rel['MetadataId']})"
        )
        assert by_id.json()["SchemaName"] == "teammembership_association"
    expanded = dv.get(
        "EntityDefinitions(LogicalName='team')?$select=LogicalName"
        "&$expand=ManyToManyRelationships($select=SchemaName,IntersectEntityName)"
    ).json()
    assert expanded["ManyToManyRelationships"][0]["IntersectEntityName"] == "teammembership"
    assert "Entity1LogicalName" not in expanded["ManyToManyRelationships"][0]
