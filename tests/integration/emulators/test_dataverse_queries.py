"""Queries over HTTP: $select, $filter, $orderby, $top, $expand, $count, paging and the query limits.

Pages followed (MicrosoftDocs/powerapps-docs, developer/data-platform/webapi/query/): overview.md,
select-columns.md, filter-rows.md, order-rows.md, join-tables.md, page-results.md, count-rows.md, and
webapi/compose-http-requests-handle-errors.md (URL length limits).
"""

from __future__ import annotations

from urllib.parse import quote

import pytest

pytestmark = pytest.mark.integration


def _create(dv, entity_set: str, body: dict) -> str:  # type: ignore[no-untyped-def]
    r = dv.post(entity_set, json=body)
    assert r.status_code == 204, r.text
    return r.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")


def _names(response) -> list[str]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.text
    return [row["lastname"] for row in response.json()["value"]]


@pytest.fixture()
def people(dv) -> dict[str, str]:  # type: ignore[no-untyped-def]
    acme = _create(dv, "accounts", {"name": "Acme Ltd", "websiteurl": "https://acme.com"})
    other = _create(dv, "accounts", {"name": "Globex"})
    ids = {}
    for first, last, account, employees in [
        ("Ana", "O'Brien", acme, 3),
        ("José", "Muñoz", acme, 1),
        ("bob", "SMITH", other, 0),
        ("Zoë", "Adams", None, None),
    ]:
        body: dict = {"firstname": first, "lastname": last, "numberofchildren": employees}
        if account:
            body["parentcustomerid_account@odata.bind"] = f"/accounts({account})"
        ids[last] = _create(dv, "contacts", body)
    ids["acme"] = acme
    return ids


def test_filter_is_case_insensitive_and_escapes_quotes(dv, people) -> None:  # type: ignore[no-untyped-def]
    """filter-rows.md: string comparisons ignore case; a single quote is doubled inside a literal."""
    assert _names(dv.get("contacts?$select=lastname&$filter=lastname eq 'smith'")) == ["SMITH"]
    assert _names(dv.get("contacts?$select=lastname&$filter=lastname eq 'o''brien'")) == ["O'Brien"]
    assert _names(dv.get("contacts?$select=lastname&$filter=startswith(firstname,'JO')")) == ["Muñoz"]
    assert _names(dv.get("contacts?$select=lastname&$filter=contains(lastname,'dam')")) == ["Adams"]


def test_unterminated_literal_is_the_services_400(dv, people) -> None:  # type: ignore[no-untyped-def]
    """query/filter-rows.md#use-single-quotes: an unescaped quote -> "There is an unterminated literal"."""
    r = dv.get("contacts?$filter=lastname eq 'O'Brien'")
    assert r.status_code == 400
    assert "unterminated literal" in r.json()["error"]["message"]


def test_comparisons_null_and_boolean_logic(dv, people) -> None:  # type: ignore[no-untyped-def]
    """query/filter-rows.md: comparison and logical operators, null values, parentheses."""
    r = dv.get("contacts?$select=lastname&$filter=numberofchildren ge 1 and not (lastname eq 'Muñoz')")
    assert _names(r) == ["O'Brien"]
    assert _names(dv.get("contacts?$select=lastname&$filter=numberofchildren eq null")) == ["Adams"]
    both = dv.get(
        "contacts?$select=lastname&$filter=lastname eq 'Adams' or numberofchildren gt 2&$orderby=lastname"
    )
    assert _names(both) == ["Adams", "O'Brien"]


def test_lookup_value_and_navigation_filters(dv, people) -> None:  # type: ignore[no-untyped-def]
    """filter-rows.md: `_x_value` for the lookup id, `nav/column` for the related row's columns."""
    by_id = dv.get(
        f"contacts?$select=lastname&$filter=_parentcustomerid_value eq {people['acme']}&$orderby=lastname"
    )
    assert _names(by_id) == ["Muñoz", "O'Brien"]
    by_name = dv.get(
        "contacts?$select=lastname&$filter=parentcustomerid_account/name eq 'ACME LTD'&$orderby=lastname"
    )
    assert _names(by_name) == ["Muñoz", "O'Brien"]


def test_in_function_with_parameter_aliases(dv, people) -> None:  # type: ignore[no-untyped-def]
    """filter-rows.md: Microsoft.Dynamics.CRM.In with @p1/@p2 aliases, array values double-quoted."""
    query = (
        "contacts?$select=lastname&$orderby=lastname"
        "&$filter=Microsoft.Dynamics.CRM.In(PropertyName=@p1,PropertyValues=@p2)"
        "&@p1='lastname'&@p2=" + quote('["smith","adams","nobody"]')
    )
    assert _names(dv.get(query)) == ["Adams", "SMITH"]


def test_select_orderby_top_and_unknown_columns(dv, people) -> None:  # type: ignore[no-untyped-def]
    """query/select-columns.md, query/order-rows.md, query/overview.md ($top)."""
    r = dv.get("contacts?$select=lastname,firstname&$orderby=lastname desc&$top=2")
    assert _names(r) == ["SMITH", "O'Brien"]
    row = r.json()["value"][0]
    assert set(row) == {"@odata.etag", "lastname", "firstname", "contactid"}
    bad = dv.get("contacts?$select=nosuch")
    assert bad.status_code == 400
    assert bad.json()["error"]["message"] == (
        "Could not find a property named 'nosuch' on type 'Microsoft.Dynamics.CRM.contact'."
    )
    assert dv.get("contacts?$filter=nosuch eq 1").status_code == 400
    # a lookup is read as _x_value, not by its logical name
    assert dv.get("contacts?$select=parentcustomerid").status_code == 400


@pytest.mark.parametrize("option", ["$skip=1", "$search=x", "$format=json", "$Filter=lastname eq 'x'"])
def test_unsupported_options_are_refused(dv, people, option) -> None:  # type: ignore[no-untyped-def]
    """overview.md: no $skip/$search/$format; option names are case-sensitive."""
    assert dv.get(f"contacts?{option}").status_code == 400


def test_expand_single_valued_navigation(dv, people) -> None:  # type: ignore[no-untyped-def]
    """query/join-tables.md: $expand of single-valued navigation properties."""
    r = dv.get(
        "contacts?$select=lastname&$filter=lastname eq 'SMITH'&$expand=parentcustomerid_account($select=name)"
    )
    row = r.json()["value"][0]
    assert row["parentcustomerid_account"]["name"] == "Globex"
    adams = dv.get("contacts?$select=lastname&$filter=lastname eq 'Adams'&$expand=parentcustomerid_account")
    assert adams.json()["value"][0]["parentcustomerid_account"] is None
    assert dv.get("contacts?$expand=nosuchnav").status_code == 400


def test_paging_with_maxpagesize_and_next_link(dv) -> None:  # type: ignore[no-untyped-def]
    """page-results.md: Prefer odata.maxpagesize, Preference-Applied, opaque @odata.nextLink with
    $skiptoken."""
    targets = [{"@odata.type": "Microsoft.Dynamics.CRM.contact", "lastname": f"P{i:03d}"} for i in range(25)]
    assert (
        dv.post("contacts/Microsoft.Dynamics.CRM.CreateMultiple", json={"Targets": targets}).status_code
        == 200
    )
    seen: list[str] = []
    url = "contacts?$select=lastname&$filter=startswith(lastname,'P')&$count=true"
    pages = 0
    while url:
        r = dv.get(url, headers={"Prefer": "odata.maxpagesize=10"})
        assert r.status_code == 200, r.text
        assert r.headers["Preference-Applied"] == "odata.maxpagesize=10"
        body = r.json()
        assert body["@odata.count"] == 25
        seen.extend(row["lastname"] for row in body["value"])
        url = body.get("@odata.nextLink")
        if url:
            assert "$skiptoken=" in url and url.startswith(dv.api)
        pages += 1
    assert pages == 3
    assert seen == [f"P{i:03d}" for i in range(25)]


def test_count_and_top_without_paging(dv, people) -> None:  # type: ignore[no-untyped-def]
    """query/count-rows.md: $count=true adds @odata.count."""
    r = dv.get("contacts?$select=lastname&$count=true&$top=1")
    body = r.json()
    assert body["@odata.count"] == 4 and len(body["value"]) == 1 and "@odata.nextLink" not in body
    assert dv.get("contacts/$count").text == "4"


def test_url_length_limit(dv, people) -> None:  # type: ignore[no-untyped-def]
    """A direct GET URL may be up to 32 KB; longer is refused (batch GETs allow 64 KB).

    execute-batch-operations-using-web-api.md#when-to-use-batch-requests gives the 64 KB (65,536 characters)
    inside a batch and that a direct GET's limit is lower; the 32 KB figure and the 414 status are
    *unconfirmed* (no Microsoft page states them)."""
    values = ",".join(f'"{"x" * 30}{i}"' for i in range(1200))
    in_filter = f"Microsoft.Dynamics.CRM.In(PropertyName='lastname',PropertyValues=[{values}])"
    long_url = f"contacts?$select=lastname&$filter={in_filter}"
    assert len(long_url) > 32 * 1024
    assert dv.get(long_url).status_code == 414
    short = long_url[: 20 * 1024].rsplit(",", 1)[0] + "])"
    assert dv.get(short).status_code == 200


def test_paging_is_not_shifted_by_deletes_between_pages(dv) -> None:  # type: ignore[no-untyped-def]
    """page-results.md: the paging cookie carries the last record of the previous page, so deleting a row
    of page 1 while paging neither repeats nor skips rows on page 2."""
    targets = [{"@odata.type": "Microsoft.Dynamics.CRM.contact", "lastname": f"Q{i:02d}"} for i in range(20)]
    ids = dv.post("contacts/Microsoft.Dynamics.CRM.CreateMultiple", json={"Targets": targets}).json()["Ids"]
    first = dv.get("contacts?$select=lastname", headers={"Prefer": "odata.maxpagesize=10"}).json()
    assert [r["lastname"] for r in first["value"]] == [f"Q{i:02d}" for i in range(10)]
    assert dv.delete(f"contacts({ids[0]})").status_code == 204
    second = dv.get(first["@odata.nextLink"], headers={"Prefer": "odata.maxpagesize=10"}).json()
    assert [r["lastname"] for r in second["value"]] == [f"Q{i:02d}" for i in range(10, 20)]
    assert "@odata.nextLink" not in second


def test_collection_valued_navigation(dv, people) -> None:  # type: ignore[no-untyped-def]
    """query/join-tables.md: one-to-many navigation properties can be expanded or read as a collection."""
    acme = people["acme"]
    expanded = dv.get(
        f"accounts({acme})?$select=name&$expand=contact_customer_accounts($select=lastname)"
    ).json()
    assert sorted(c["lastname"] for c in expanded["contact_customer_accounts"]) == ["Muñoz", "O'Brien"]
    listed = dv.get(f"accounts({acme})/contact_customer_accounts?$select=lastname").json()
    assert sorted(c["lastname"] for c in listed["value"]) == ["Muñoz", "O'Brien"]
    task = dv.post(
        "tasks", json={"subject": "Call", "regardingobjectid_account_task@odata.bind": f"/accounts({acme})"}
    )
    assert task.status_code == 204
    tasks = dv.get(
        f"accounts?$select=name&$filter=accountid eq {acme}&$expand=Account_Tasks($select=subject)"
    ).json()
    assert [t["subject"] for t in tasks["value"][0]["Account_Tasks"]] == ["Call"]
