"""Bulk messages (bulk-operations.md; reference pages of CreateMultiple, UpdateMultiple, UpsertMultiple):
all-or-nothing on standard tables, the same validation as single writes, the real response shapes."""

from __future__ import annotations

import json
import uuid

import pytest

from emulators.dataverse import DataverseEmulator
from emulators.tls import trusting_session

pytestmark = pytest.mark.integration

T = "Microsoft.Dynamics.CRM.contact"


def test_create_multiple_returns_ids_in_order(dv) -> None:  # type: ignore[no-untyped-def]
    """bulk-operations.md, webapi/reference/createmultiple.md: 200 {"Ids": [...]} in target order."""
    targets = [{"@odata.type": T, "lastname": f"B{i}", "emailaddress1": f"b{i}@x.com"} for i in range(50)]
    r = dv.post("contacts/Microsoft.Dynamics.CRM.CreateMultiple", json={"Targets": targets})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["@odata.context"].endswith("$metadata#Microsoft.Dynamics.CRM.CreateMultipleResponse")
    assert len(body["Ids"]) == 50
    for index in (0, 49):
        assert dv.get(f"contacts({body['Ids'][index]})?$select=lastname").json()["lastname"] == f"B{index}"


def test_one_bad_target_rolls_back_the_whole_call(dv) -> None:  # type: ignore[no-untyped-def]
    """bulk-operations.md#standard-and-elastic-table-usage: on standard tables one failure rolls back the
    call."""
    targets = [{"@odata.type": T, "lastname": "Good"}, {"@odata.type": T, "lastname": "x" * 51}]
    r = dv.post("contacts/Microsoft.Dynamics.CRM.CreateMultiple", json={"Targets": targets})
    assert r.status_code == 400 and r.json()["error"]["code"] == "0x80044331"
    assert dv.get("contacts").json()["value"] == []
    same_id = str(uuid.uuid4())
    dup = [
        {"@odata.type": T, "contactid": same_id, "lastname": "A"},
        {"@odata.type": T, "contactid": same_id, "lastname": "B"},
    ]
    r = dv.post("contacts/Microsoft.Dynamics.CRM.CreateMultiple", json={"Targets": dup})
    # troubleshoot/power-platform/power-apps/dataverse/client-errors: "Cannot insert duplicate key."
    assert r.status_code == 412 and r.json()["error"] == {
        "code": "0x80040237",
        "message": "Cannot insert duplicate key.",
    }
    assert dv.get("contacts").json()["value"] == []


def test_update_multiple_and_missing_ids(dv) -> None:  # type: ignore[no-untyped-def]
    """bulk-operations.md, webapi/reference/updatemultiple.md: 204; a missing id fails the call."""
    ids = dv.post(
        "contacts/Microsoft.Dynamics.CRM.CreateMultiple",
        json={"Targets": [{"@odata.type": T, "lastname": f"U{i}"} for i in range(3)]},
    ).json()["Ids"]
    r = dv.post(
        "contacts/Microsoft.Dynamics.CRM.UpdateMultiple",
        json={"Targets": [{"@odata.type": T, "contactid": i, "jobtitle": "CTO"} for i in ids]},
    )
    assert r.status_code == 204, r.text
    assert {row["jobtitle"] for row in dv.get("contacts?$select=jobtitle").json()["value"]} == {"CTO"}
    missing = str(uuid.uuid4())
    r = dv.post(
        "contacts/Microsoft.Dynamics.CRM.UpdateMultiple",
        json={
            "Targets": [
                {"@odata.type": T, "contactid": ids[0], "jobtitle": "CEO"},
                {"@odata.type": T, "contactid": missing, "jobtitle": "CEO"},
            ]
        },
    )
    assert r.status_code == 404 and missing in r.json()["error"]["message"]
    assert dv.get(f"contacts({ids[0]})?$select=jobtitle").json()["jobtitle"] == "CTO"


def test_upsert_multiple_by_alternate_key(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """bulk-operations.md, webapi/reference/upsertmultiple.md: targets name records by @odata.id."""
    schema = tmp_path / "s.json"
    schema.write_text(
        json.dumps({"tables": {"contact": {"keys": [{"name": "k", "columns": ["emailaddress1"]}]}}})
    )
    with DataverseEmulator(schema_path=schema) as emulator:
        s = trusting_session()
        s.headers["Authorization"] = "Bearer static-test-token"
        api = emulator.api_url
        assert (
            s.post(f"{api}contacts", json={"lastname": "Old", "emailaddress1": "a@x.com"}).status_code == 204
        )
        targets = [
            {"@odata.type": T, "@odata.id": "contacts(emailaddress1='a@x.com')", "lastname": "Updated"},
            {"@odata.type": T, "@odata.id": "contacts(emailaddress1='b@x.com')", "lastname": "Created"},
        ]
        r = s.post(f"{api}contacts/Microsoft.Dynamics.CRM.UpsertMultiple", json={"Targets": targets})
        assert r.status_code in (200, 204), r.text
        rows = s.get(f"{api}contacts?$select=lastname,emailaddress1&$orderby=emailaddress1").json()["value"]
        assert [(x["emailaddress1"], x["lastname"]) for x in rows] == [
            ("a@x.com", "Updated"),
            ("b@x.com", "Created"),
        ]


def test_unsupported_table_and_malformed_body(dv) -> None:  # type: ignore[no-untyped-def]
    """bulk-operations.md#availability-with-standard-tables: not every table supports the messages."""
    r = dv.post("systemusers/Microsoft.Dynamics.CRM.CreateMultiple", json={"Targets": [{"lastname": "x"}]})
    assert r.status_code == 400 and "does not support entities of type 'systemuser'" in r.text
    assert dv.post("contacts/Microsoft.Dynamics.CRM.CreateMultiple", json={"targets": []}).status_code == 400
    wrong_type = dv.post(
        "contacts/Microsoft.Dynamics.CRM.CreateMultiple",
        json={"Targets": [{"@odata.type": "Microsoft.Dynamics.CRM.account", "name": "x"}]},
    )
    assert wrong_type.status_code == 400


def test_create_multiple_of_1000_counts_as_one_request(dataverse, dv) -> None:  # type: ignore[no-untyped-def]
    """One request toward the limits (api-limits.md and bulk-operations.md: each CreateMultiple call
    counts as one request). Its speed is a figure of ``python -m bench.emulator``, not asserted here."""
    targets = [{"@odata.type": T, "firstname": f"F{i}", "lastname": f"L{i}"} for i in range(1000)]
    r = dv.post("contacts/Microsoft.Dynamics.CRM.CreateMultiple", json={"Targets": targets})
    assert r.status_code == 200 and len(r.json()["Ids"]) == 1000
    stats = dv.get("/_emulator/stats").json()
    assert stats["inner_operations"]["bulk"] == 1000 and stats["limits"]["admitted"] == 1
