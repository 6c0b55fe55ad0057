"""Every export option of the setup guide against the Dataverse emulator: company identifiers and the
"associate companies with contacts" toggle, custom AND/OR rules, fixed and manual values, owners from user
mapping (written on that user's behalf), the default-owner fallback, ambiguous matches and dry runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.domain.caller import Caller, Role
from core.domain.config import DynamicsConfig
from tests.integration.exports.conftest import CALLER, WS, ExportHarness
from tests.support.dataverse import create, rows


def _config(
    sync: dict[str, Any],
    contacts: list[dict[str, Any]],
    companies: list[dict[str, Any]],
    users: dict[str, Any] | None = None,
) -> DynamicsConfig:
    return DynamicsConfig.model_validate(
        {
            "syncIdentifiers": sync,
            "fieldMapping": {"contacts": contacts, "companies": companies},
            "campaignMapping": {},
            "userMapping": users or {},
        }
    )


def _pf(platform: str, column: str, mode: str = "overwrite") -> dict[str, Any]:
    return {"kind": "platform_field", "platformField": platform, "dynamicsField": column, "mode": mode}


EMAIL_OR_LINKEDIN = {
    "operator": "or",
    "conditions": [
        {"platformField": "professionalEmail", "dynamicsField": "emailaddress1"},
        {"platformField": "linkedinUrl", "dynamicsField": "new_linkedinurl"},
    ],
}


def test_companies_by_domain_or_name_and_linking_their_contacts(
    harness_for: Callable[[DynamicsConfig], ExportHarness],
) -> None:
    config = _config(
        {
            "contactIdentifier": "custom",
            "contactRule": EMAIL_OR_LINKEDIN,
            "companyIdentifier": "domain_or_name",
            "columns": {"contactLinkedinUrl": "new_linkedinurl", "companyDomain": "websiteurl"},
            "associateContactsWithCompanies": False,
            "associateCompaniesWithContacts": True,
        },
        [_pf("professionalEmail", "emailaddress1")],
        [
            _pf("name", "name"),
            _pf("domain", "websiteurl", "fill_if_empty"),
            _pf("employeeCount", "numberofemployees"),
        ],
    )
    h = harness_for(config)
    globex = create(h.emulator, "accounts", {"name": "Globex", "websiteurl": "http://www.globex.com/"})
    umbrella = create(h.emulator, "accounts", {"name": "UMBRELLA Corp"})
    ann = create(
        h.emulator, "contacts", {"firstname": "Ann", "lastname": "Lee", "emailaddress1": "ANN@globex.com"}
    )
    result = h.run(
        {
            "entity": "companies",
            "records": [
                {
                    "id": "k-globex",
                    "name": "Globex",
                    "domain": "globex.com",
                    "employeeCount": 50,
                    "contacts": [
                        {"id": "c-ann", "professionalEmail": "ann@globex.com"},
                        {"id": "c-ghost", "professionalEmail": "ghost@globex.com"},
                    ],
                },
                {"id": "k-umbrella", "name": "umbrella corp", "domain": "umbrella.example"},
                {"id": "k-initech", "name": "Initech", "domain": "initech.com", "employeeCount": 7},
            ],
        }
    )
    records = result["records"]
    assert records["k-globex"]["action"] == "updated" and records["k-globex"]["dynamicsId"] == globex
    assert records["k-globex"]["match"]["rule"] == "domain"
    # Matched by name (case differs); its empty website is filled, the name is overwritten.
    assert records["k-umbrella"]["dynamicsId"] == umbrella
    assert records["k-initech"]["action"] == "created"
    accounts = {r["accountid"]: r for r in rows(h.emulator, "accounts")}
    assert len(accounts) == 3
    assert accounts[globex]["numberofemployees"] == 50
    assert accounts[umbrella]["websiteurl"] == "umbrella.example"
    # Ann is linked to Globex; the unknown contact is reported and never created.
    [ann_row] = rows(h.emulator, "contacts", f"?$filter=contactid eq {ann}")
    assert ann_row["_parentcustomerid_value"] == globex
    assert len(rows(h.emulator, "contacts")) == 1
    assert "c-ghost not found" in records["k-globex"]["note"]


def test_custom_rule_fixed_and_manual_values(harness_for: Callable[[DynamicsConfig], ExportHarness]) -> None:
    config = _config(
        {
            "contactIdentifier": "custom",
            "contactRule": {
                "operator": "and",
                "conditions": [
                    {"platformField": "firstName", "dynamicsField": "firstname"},
                    {"platformField": "lastName", "dynamicsField": "lastname"},
                ],
            },
            "associateContactsWithCompanies": False,
        },
        [
            _pf("firstName", "firstname"),
            _pf("lastName", "lastname"),
            {
                "kind": "fixed_value",
                "dynamicsField": "description",
                "value": "Source: Enginy",
                "valueType": "text",
            },
            {"kind": "manual_export", "dynamicsField": "jobtitle", "valueType": "text"},
            {
                "kind": "engagement",
                "dynamicsField": "new_engagement",
                "value": "Engaged",
                "valueType": "text",
            },
        ],
        [],
    )
    h = harness_for(config)
    existing = create(h.emulator, "contacts", {"firstname": "José", "lastname": "Núñez"})
    result = h.run(
        {
            "entity": "contacts",
            "records": [
                {"id": "p1", "firstName": "jose", "lastName": "NUNEZ"},
                {"id": "p2", "firstName": "Eve", "lastName": "Ng"},
            ],
            "manualValues": {"jobtitle": "Webinar lead"},
        }
    )
    records = result["records"]
    # Dataverse compares accent- and case-insensitively (its _CI_AI collation): José Núñez is the same person.
    assert records["p1"]["dynamicsId"] == existing and records["p1"]["action"] == "updated"
    by_name = {r["lastname"]: r for r in rows(h.emulator, "contacts")}
    assert set(by_name) == {"NUNEZ", "Ng"}
    for row in by_name.values():
        assert row["description"] == "Source: Enginy" and row["jobtitle"] == "Webinar lead"
        assert row.get("new_engagement") is None  # engagement values are written by activities, never exports


def test_owner_from_user_mapping_writes_on_that_users_behalf(
    harness_for: Callable[[DynamicsConfig], ExportHarness],
) -> None:
    h = harness_for(DynamicsConfig.default())
    seller = h.emulator.add_user(
        firstname="Sam", lastname="Seller", object_id="6a1c1d47-95c4-4b8e-9d52-0b7f4a0f1c11"
    )
    disabled = h.emulator.add_user(firstname="Old", lastname="Timer", disabled=True)
    default_owner = h.emulator.add_user(firstname="Default", lastname="Owner")
    h.config = DynamicsConfig.model_validate(
        {
            **DynamicsConfig.default().to_json(),
            "userMapping": {
                "users": [
                    {"userId": "platform-user-1", "dynamicsUserId": seller},
                    {"userId": "platform-user-2", "dynamicsUserId": disabled},
                ],
                "defaultOwnerId": default_owner,
            },
        }
    )
    h.config = h.config.model_copy(
        update={
            "field_mapping": DynamicsConfig.model_validate(
                {
                    **h.config.to_json(),
                    "fieldMapping": {
                        "contacts": [_pf("firstName", "firstname"), _pf("lastName", "lastname")],
                        "companies": [],
                    },
                }
            ).field_mapping
        }
    )
    first = h.run({"entity": "contacts", "records": [{"id": "a", "firstName": "Ada", "lastName": "One"}]})
    second = h.run(
        {"entity": "contacts", "records": [{"id": "b", "firstName": "Bea", "lastName": "Two"}]},
        caller=Caller(WS, "platform-user-2", Role.MEMBER),
    )
    third = h.run(
        {"entity": "contacts", "records": [{"id": "c", "firstName": "Cy", "lastName": "Three"}]},
        caller=Caller(WS, "platform-user-unmapped", Role.MEMBER),
    )
    by_name = {r["lastname"]: r for r in rows(h.emulator, "contacts")}
    assert by_name["One"]["_ownerid_value"] == seller
    assert by_name["One"]["_createdby_value"] == seller  # impersonated: Dynamics applied Sam's rights
    assert by_name["One"]["_createdonbehalfby_value"] == h.integration_user_id
    assert first["records"]["a"]["action"] == "created"
    # A disabled mapped owner falls back to the default owner, and the record says so.
    assert by_name["Two"]["_ownerid_value"] == default_owner
    assert "disabled" in second["records"]["b"]["note"]
    assert by_name["Three"]["_ownerid_value"] == default_owner
    assert third["records"]["c"]["action"] == "created"


def test_dry_run_reports_what_would_change_and_writes_nothing(
    harness_for: Callable[[DynamicsConfig], ExportHarness],
) -> None:
    config = _config(
        {"contactIdentifier": "name_company", "associateContactsWithCompanies": True},
        [_pf("firstName", "firstname"), _pf("lastName", "lastname"), _pf("jobTitle", "jobtitle")],
        [_pf("name", "name")],
    )
    h = harness_for(config)
    acme = create(h.emulator, "accounts", {"name": "Acme", "websiteurl": "acme.com"})
    create(
        h.emulator,
        "contacts",
        {
            "firstname": "Jo",
            "lastname": "Lee",
            "jobtitle": "CTO",
            "parentcustomerid_account@odata.bind": f"/accounts({acme})",
        },
    )
    before = h.emulator.snapshot()
    result = h.run(
        {
            "entity": "contacts",
            "dryRun": True,
            "records": [
                {
                    "id": "p1",
                    "firstName": "Jo",
                    "lastName": "Lee",
                    "jobTitle": "CEO",
                    "company": {"name": "Acme", "domain": "acme.com"},
                },
                {
                    "id": "p2",
                    "firstName": "New",
                    "lastName": "Person",
                    "company": {"name": "Acme", "domain": "acme.com"},
                },
            ],
        }
    )
    assert h.emulator.snapshot() == before
    records = result["records"]
    assert records["p1"]["action"] == "would_update"
    assert records["p1"]["changes"] == {"jobtitle": {"before": "CTO", "after": "CEO"}}
    assert records["p2"]["action"] == "would_create"
    assert result["status"].dry_run is True


def test_ambiguous_matches_pick_deterministically_and_say_so(
    harness_for: Callable[[DynamicsConfig], ExportHarness],
) -> None:
    config = _config(
        {
            "contactIdentifier": "custom",
            "contactRule": EMAIL_OR_LINKEDIN,
            "associateContactsWithCompanies": False,
        },
        [_pf("jobTitle", "jobtitle")],
        [],
    )
    h = harness_for(config)
    first = create(h.emulator, "contacts", {"lastname": "Dup", "emailaddress1": "dup@x.com"})
    second = create(h.emulator, "contacts", {"lastname": "Dup", "emailaddress1": "Dup@X.com"})
    result = h.run(
        {"entity": "contacts", "records": [{"id": "p", "professionalEmail": "dup@x.com", "jobTitle": "VP"}]}
    )
    record = result["records"]["p"]
    assert record["match"]["status"] == "ambiguous"
    assert set(record["match"]["candidates"]) == {first, second}
    assert record["dynamicsId"] == record["match"]["candidates"][0]
    assert "ambiguous" in record["note"]
    assert len(rows(h.emulator, "contacts")) == 2


def test_the_workspace_of_the_job_is_the_callers(
    harness_for: Callable[[DynamicsConfig], ExportHarness],
) -> None:
    h = harness_for(_config({}, [_pf("lastName", "lastname")], []))
    service = h.service()
    from core.domain.export_request import ExportRequest

    job = service.submit(
        CALLER, ExportRequest.model_validate({"entity": "contacts", "records": [{"id": "x"}]})
    )
    assert service.status("another-workspace", job.job_id) is None
    assert service.records("another-workspace", job.job_id, None, None, 10) is None


def test_a_privilege_error_fails_the_record_and_names_the_user(
    harness_for: Callable[[DynamicsConfig], ExportHarness],
) -> None:
    h = harness_for(DynamicsConfig.default())
    seller = h.emulator.add_user(
        firstname="No", lastname="Rights", object_id="0f3c2b1a-1111-4c2d-9e8f-222233334444"
    )
    h.emulator.records.denied[seller] = {("contact", "Create")}
    h.config = _config(
        {
            "contactIdentifier": "custom",
            "contactRule": {
                "operator": "and",
                "conditions": [
                    {"platformField": "firstName", "dynamicsField": "firstname"},
                    {"platformField": "lastName", "dynamicsField": "lastname"},
                ],
            },
        },
        [_pf("firstName", "firstname"), _pf("lastName", "lastname"), _pf("jobTitle", "jobtitle")],
        [],
        {"users": [{"userId": "platform-user-1", "dynamicsUserId": seller}]},
    )
    existing = create(h.emulator, "contacts", {"firstname": "Ex", "lastname": "Isting"})
    result = h.run(
        {
            "entity": "contacts",
            "records": [
                {"id": "new", "firstName": "Fresh", "lastName": "Lead"},
                {"id": "old", "firstName": "Ex", "lastName": "Isting", "jobTitle": "Buyer"},
            ],
        }
    )
    new = result["records"]["new"]
    assert new["action"] == "failed" and new["dynamicsId"] is None
    assert new["errors"][0]["code"] == "0x80040220"
    assert seller in new["errors"][0]["message"] and "user_mapping" in new["errors"][0]["message"]
    # Only the create privilege is missing: the matched record is still updated on the user's behalf.
    assert result["records"]["old"]["dynamicsId"] == existing
    assert result["records"]["old"]["action"] == "updated"
    assert [(r["lastname"], r["jobtitle"]) for r in rows(h.emulator, "contacts")] == [("Isting", "Buyer")]
    assert result["status"].state == "partially_failed"


def test_the_same_person_twice_in_one_list_is_created_once(
    harness_for: Callable[[DynamicsConfig], ExportHarness],
) -> None:
    config = _config(
        {
            "contactIdentifier": "linkedin_or_name_company",
            "columns": {"contactLinkedinUrl": "new_linkedinurl", "companyDomain": "websiteurl"},
            "associateContactsWithCompanies": True,
        },
        [_pf("firstName", "firstname"), _pf("lastName", "lastname"), _pf("linkedinUrl", "new_linkedinurl")],
        [_pf("name", "name"), _pf("domain", "websiteurl")],
    )
    h = harness_for(config)
    records = [
        {
            "id": "a1",
            "firstName": "Kim",
            "lastName": "Park",
            "linkedinUrl": "https://www.linkedin.com/in/kim-park/",
            "company": {"id": "co-1", "name": "Hooli", "domain": "hooli.com"},
        },
        {
            "id": "x1",
            "firstName": "Lee",
            "lastName": "Chan",
            "company": {"id": "co-2", "name": "Hooli Inc", "domain": "www.hooli.com"},
        },
        {
            "id": "a2",
            "firstName": "Kimberly",
            "lastName": "Park",
            "linkedinUrl": "http://linkedin.com/in/Kim-Park?src=x",
            "company": {"id": "co-1", "name": "Hooli", "domain": "hooli.com"},
        },
    ]
    # One record per chunk: the three chunks run separately, as on three instances.
    result = h.run({"entity": "contacts", "records": records}, chunk_size=1)
    by_id = result["records"]
    assert by_id["a1"]["action"] == "created" and by_id["x1"]["action"] == "created"
    assert by_id["a2"]["action"] == "skipped" and "a1" in by_id["a2"]["note"]
    assert result["status"].counts["skipped"] == 1 and result["status"].state == "succeeded"
    assert sorted(r["lastname"] for r in rows(h.emulator, "contacts")) == ["Chan", "Park"]
    # Two platform company ids with one domain are one company in Dynamics.
    assert len(rows(h.emulator, "accounts")) == 1


def test_a_skipped_duplicate_carries_the_dynamics_id_and_action_of_the_record_it_was_merged_into(
    harness_for: Callable[[DynamicsConfig], ExportHarness],
) -> None:
    config = _config(
        {
            "contactIdentifier": "linkedin_or_name_company",
            "columns": {"contactLinkedinUrl": "new_linkedinurl"},
        },
        [_pf("lastName", "lastname"), _pf("linkedinUrl", "new_linkedinurl")],
        [_pf("name", "name")],
    )
    h = harness_for(config)
    records = [
        {"id": "p1", "lastName": "Park", "linkedinUrl": "https://www.linkedin.com/in/kim-park/"},
        {"id": "x1", "lastName": "Chan", "linkedinUrl": "https://www.linkedin.com/in/lee-chan/"},
        {"id": "p2", "lastName": "Park", "linkedinUrl": "http://linkedin.com/in/Kim-Park?src=x"},
    ]
    result = h.run({"entity": "contacts", "records": records}, chunk_size=1)
    keeper, skipped = result["records"]["p1"], result["records"]["p2"]
    assert keeper["action"] == "created" and keeper["dynamicsId"]
    # The platform links the skipped record to the same Dynamics contact the first one became.
    assert skipped["action"] == "skipped"
    assert skipped["dynamicsId"] == keeper["dynamicsId"]
    assert skipped["mergedInto"] == {
        "seq": 0,
        "platformId": "p1",
        "action": "created",
        "dynamicsId": keeper["dynamicsId"],
    }
    assert [r["contactid"] for r in rows(h.emulator, "contacts") if r["lastname"] == "Park"] == [
        keeper["dynamicsId"]
    ]
    # Listing only the skipped records (the record merged into is on no page read) still joins it; the
    # same list again finds the contact, and the duplicate carries that action.
    again = h.service().submit(
        CALLER, h.kind.request.model_validate({"entity": "contacts", "records": records})
    )
    h.drain()
    page = h.service().records(WS, again.job_id, "skipped", None, 10)
    h.kind.page_model.model_validate({"records": page.records, "nextCursor": page.next_cursor})
    [only] = page.records
    assert only["platformId"] == "p2" and only["dynamicsId"] == keeper["dynamicsId"]
    assert only["mergedInto"]["action"] == "unchanged"
    assert only["mergedInto"]["dynamicsId"] == keeper["dynamicsId"]
