"""Real-client conformance: Microsoft's Python SDK (PyPI ``PowerPlatform-Dataverse-Client``) runs UNCHANGED
against the emulator over HTTPS.

The SDK is used exactly as an application would use it (public ``DataverseClient`` API, an azure-core
``TokenCredential``, TLS verified against the local CA through ``REQUESTS_CA_BUNDLE``). Each test states the
Web API behaviour the SDK depends on; when one fails, the emulator is wrong (or the SDK and Microsoft's
documentation disagree — such differences are written down next to the test).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from PowerPlatform.Dataverse import DataverseClient, col
from PowerPlatform.Dataverse.core.errors import HttpError
from PowerPlatform.Dataverse.models.upsert import UpsertItem

from emulators.dataverse import DataverseEmulator, LimitConfig
from emulators.tls import ensure_ca

pytestmark = pytest.mark.integration

TOKEN = "static-test-token"

# The default schema plus an alternate key, so the SDK's upsert-by-key can run (schema files add keys).
SCHEMA = {"tables": {"contact": {"keys": [{"name": "new_contact_email_key", "columns": ["emailaddress1"]}]}}}


class StaticCredential:
    """The smallest azure-core TokenCredential: always the emulator's accepted static token."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(TOKEN, int(time.time()) + 3600)


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DataverseEmulator]:
    schema_path = tmp_path_factory.mktemp("schema") / "schema.json"
    schema_path.write_text(json.dumps(SCHEMA))
    emu = DataverseEmulator(schema_path=schema_path, accepted_tokens=(TOKEN,))
    emu.start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def credential() -> StaticCredential:
    return StaticCredential()


@pytest.fixture
def client(
    emulator: DataverseEmulator, credential: StaticCredential, monkeypatch: pytest.MonkeyPatch
) -> Iterator[DataverseClient]:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ensure_ca().bundle_path))
    with DataverseClient(emulator.url, credential) as c:  # type: ignore[arg-type]
        yield c


def _tag() -> str:
    """A unique last name per test so tests never see each other's rows."""
    return f"Conf{uuid.uuid4().hex[:10]}"


def _lastnames(client: DataverseClient, tag: str) -> list[dict[str, Any]]:
    result = client.records.list(
        "contact", select=["contactid", "firstname", "lastname", "jobtitle"], filter=f"lastname eq '{tag}'"
    )
    return [dict(r) for r in result]


def _get(client: DataverseClient, contact_id: str, column: str) -> Any:
    record = client.records.retrieve("contact", contact_id, select=[column])
    assert record is not None
    return record[column]


# ---------------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------------


def test_create_retrieve_update_delete(client: DataverseClient, credential: StaticCredential) -> None:
    """create-entity-web-api.md: 204 + OData-EntityId (the SDK reads the new id from it);
    update/delete send If-Match: * (update-delete-entities-using-web-api.md)."""
    tag = _tag()
    contact_id = client.records.create(
        "contact", {"firstname": "Zoë", "lastname": tag, "emailaddress1": f"{tag}@example.com"}
    )
    uuid.UUID(contact_id)

    record = client.records.retrieve("contact", contact_id, select=["firstname", "lastname", "fullname"])
    assert record is not None
    assert record["firstname"] == "Zoë"
    assert record["lastname"] == tag
    assert record["fullname"] == f"Zoë {tag}"  # computed by the service

    client.records.update("contact", contact_id, {"jobtitle": "CTO"})
    assert _get(client, contact_id, "jobtitle") == "CTO"

    client.records.delete("contact", contact_id)
    assert client.records.retrieve("contact", contact_id) is None  # the SDK maps the 404 to None
    with pytest.raises(HttpError) as info:
        client.records.delete("contact", contact_id)
    assert info.value.status_code == 404
    # The SDK asked for the org's .default scope of the emulator URL.
    assert credential.scopes and credential.scopes[0][0].endswith("/.default")


def test_update_of_missing_record_is_404_not_an_upsert(client: DataverseClient) -> None:
    """The SDK's update sends If-Match: *, which forbids the PATCH from creating the record
    (perform-conditional-operations-using-web-api.md#prevent-create-in-upsert: 404)."""
    missing = str(uuid.uuid4())
    with pytest.raises(HttpError) as info:
        client.records.update("contact", missing, {"jobtitle": "x"})
    assert info.value.status_code == 404
    assert client.records.retrieve("contact", missing) is None


def _kind_delta(before: dict[str, Any], after: dict[str, Any], section: str, kind: str) -> int:
    return int(after[section].get(kind, 0)) - int(before[section].get(kind, 0))


def test_list_create_uses_create_multiple_and_returns_ids_in_order(
    client: DataverseClient, emulator: DataverseEmulator
) -> None:
    """bulk-operations.md: CreateMultiple answers {"Ids": [...]} in target order; one HTTP request."""
    tag = _tag()
    firsts = [f"P{i}" for i in range(7)]
    client.tables.get("contact")  # resolve the entity set first so only the create is counted
    before = emulator.stats()
    ids = client.records.create("contact", [{"firstname": f, "lastname": tag} for f in firsts])
    after = emulator.stats()
    assert _kind_delta(before, after, "requests_by_kind", "bulk") == 1
    assert _kind_delta(before, after, "inner_operations", "bulk") == 7
    assert len(ids) == 7 and len(set(ids)) == 7
    for contact_id, first in zip(ids, firsts, strict=True):
        assert _get(client, contact_id, "firstname") == first


def test_bulk_update_broadcast_and_paired(client: DataverseClient) -> None:
    """bulk-operations.md (UpdateMultiple): every target carries its primary key; 204."""
    tag = _tag()
    ids = client.records.create("contact", [{"firstname": f"U{i}", "lastname": tag} for i in range(4)])
    client.records.update("contact", ids, {"jobtitle": "Engineer"})
    assert {r["jobtitle"] for r in _lastnames(client, tag)} == {"Engineer"}
    client.records.update("contact", ids[:2], [{"jobtitle": "A"}, {"jobtitle": "B"}])
    titles = {r["contactid"]: r["jobtitle"] for r in _lastnames(client, tag)}
    assert (titles[ids[0]], titles[ids[1]], titles[ids[2]]) == ("A", "B", "Engineer")


def test_upsert_by_alternate_key_single_and_multiple(client: DataverseClient) -> None:
    """use-alternate-key-reference-record.md: single upsert PATCH contacts(emailaddress1='...');
    bulk-operations.md: several with UpsertMultiple naming each record by @odata.id."""
    tag = _tag()
    email_a, email_b = f"a.{tag}@example.com".lower(), f"b.{tag}@example.com".lower()
    client.records.upsert(
        "contact",
        [UpsertItem(alternate_key={"emailaddress1": email_a}, record={"lastname": tag, "jobtitle": "v1"})],
    )
    rows = _lastnames(client, tag)
    assert [r["jobtitle"] for r in rows] == ["v1"]

    client.records.upsert(
        "contact",
        [
            UpsertItem(alternate_key={"emailaddress1": email_a}, record={"lastname": tag, "jobtitle": "v2"}),
            UpsertItem(alternate_key={"emailaddress1": email_b}, record={"lastname": tag, "jobtitle": "new"}),
        ],
    )
    rows = _lastnames(client, tag)
    assert sorted(r["jobtitle"] for r in rows) == ["new", "v2"]  # one updated, one created, no duplicate


def test_picklist_labels_resolved_through_metadata(client: DataverseClient) -> None:
    """The SDK turns a choice label into its value using the PicklistAttributeMetadata cast with
    $expand=OptionSet($select=Options) (query-metadata-web-api.md)."""
    tag = _tag()
    contact_id = client.records.create("contact", {"lastname": tag, "new_seniority": "Director"})
    assert _get(client, contact_id, "new_seniority") == 100000003


# ---------------------------------------------------------------------------------------------
# Queries
# ---------------------------------------------------------------------------------------------


def test_query_builder_in_filter_order_and_paging(client: DataverseClient) -> None:
    """Microsoft.Dynamics.CRM.In from the query builder; Prefer: odata.maxpagesize + @odata.nextLink paging
    (query/page-results.md)."""
    tag = _tag()
    client.records.create("contact", [{"firstname": f"F{i:02d}", "lastname": tag} for i in range(12)])
    other = _tag()
    client.records.create("contact", [{"firstname": "X", "lastname": other}])

    pages = list(
        client.query.builder("contact")
        .select("firstname", "lastname")
        .where(col("lastname").in_([tag.upper(), "nobody"]))  # case-insensitive like the service
        .order_by("firstname", descending=True)
        .page_size(5)
        .execute_pages()
    )
    assert [len(p) for p in pages] == [5, 5, 2]
    firsts = [r["firstname"] for p in pages for r in p]
    assert firsts == [f"F{i:02d}" for i in reversed(range(12))]

    flat = client.query.builder("contact").where(col("lastname") == other).execute()
    assert [r["firstname"] for r in flat] == ["X"]


def test_records_get_top_and_count(client: DataverseClient) -> None:
    """query/overview.md ($top), query/page-results.md, query/count-rows.md, through the SDK."""
    tag = _tag()
    client.records.create("contact", [{"firstname": f"T{i}", "lastname": tag} for i in range(6)])
    top = client.records.list("contact", filter=f"lastname eq '{tag}'", top=4, select=["firstname"])
    assert len(top) == 4
    pages = list(client.records.list_pages("contact", filter=f"lastname eq '{tag}'", page_size=4))
    assert [len(p) for p in pages] == [4, 2]
    counted = client.records.list("contact", filter=f"lastname eq '{tag}'", count=True, select=["firstname"])
    assert len(counted) == 6


def test_filter_error_surfaces_the_service_error(client: DataverseClient) -> None:
    """Unknown column -> 400 0x80060888 "Could not find a property named ..." (web-api-client-errors.md)."""
    with pytest.raises(HttpError) as info:
        client.records.list("contact", filter="nosuchcolumn eq 'x'")
    assert info.value.status_code == 400
    assert "nosuchcolumn" in str(info.value)


# ---------------------------------------------------------------------------------------------
# $batch
# ---------------------------------------------------------------------------------------------


def test_batch_with_change_set_and_content_id_reference(
    client: DataverseClient, emulator: DataverseEmulator
) -> None:
    """execute-batch-operations-using-web-api.md: a change set with Content-ID, "$1" used in @odata.bind, and
    a GET outside the change set; responses in request order."""
    tag = _tag()
    batch = client.batch.new()
    with batch.changeset() as cs:
        account_ref = cs.records.create("account", {"name": f"Acct {tag}"})
        cs.records.create(
            "contact",
            {"firstname": "Batch", "lastname": tag, "parentcustomerid_account@odata.bind": account_ref},
        )
    batch.records.list("contact", filter=f"lastname eq '{tag}'", select=["lastname"])
    before = emulator.stats()
    result = batch.execute()
    after = emulator.stats()
    assert (
        _kind_delta(before, after, "requests_by_kind", "batch") == 1
    )  # one HTTP request for three operations

    assert [r.status_code for r in result.responses[:2]] == [204, 204]
    assert [r.content_id for r in result.responses[:2]] == ["1", "2"]
    account_id, contact_id = (r.entity_id for r in result.responses[:2])
    assert account_id and contact_id
    assert _get(client, contact_id, "_parentcustomerid_value") == account_id
    listed = result.responses[2]
    assert listed.status_code == 200 and listed.data is not None
    assert [r["lastname"] for r in listed.data["value"]] == [tag]


def test_failing_change_set_rolls_back_every_operation(client: DataverseClient) -> None:
    """execute-batch-operations-using-web-api.md#change-sets: a change set is atomic; the second create
    fails (lastname over MaxLength 50, reference/entities/contact.md) so the first is undone."""
    tag = _tag()
    batch = client.batch.new()
    with batch.changeset() as cs:
        cs.records.create("contact", {"lastname": tag})
        cs.records.create("contact", {"lastname": tag + "x" * 60})
    result = batch.execute()
    assert result.has_errors
    assert any(r.status_code == 400 for r in result.responses)
    assert _lastnames(client, tag) == []


# ---------------------------------------------------------------------------------------------
# Metadata
# ---------------------------------------------------------------------------------------------


def test_table_metadata(client: DataverseClient) -> None:
    """query-metadata-web-api.md: EntityDefinitions?$filter=LogicalName eq ... as the SDK asks it."""
    info = client.tables.get("contact")
    assert info is not None
    assert info["entity_set_name"] == "contacts"
    assert info["table_logical_name"] == "contact"
    uuid.UUID(str(info["metadata_id"]))
    assert client.tables.get("new_doesnotexist") is None


def test_column_metadata(client: DataverseClient) -> None:
    """query-metadata-web-api.md#retrieving-attributes: the SDK's column listing."""
    columns = client.tables.list_columns("contact", select=["LogicalName", "AttributeType"])
    by_name = {c["LogicalName"]: c["AttributeType"] for c in columns}
    assert by_name["lastname"] == "String"
    assert by_name["parentcustomerid"] == "Customer"
    assert by_name["new_seniority"] == "Picklist"
    assert "new_linkedinurl" in by_name

    strings = client.tables.list_columns(
        "contact", filter="AttributeType eq 'String'", select=["LogicalName"]
    )
    names = {c["LogicalName"] for c in strings}
    assert "lastname" in names and "parentcustomerid" not in names

    lastname = client.tables.get_column("contact", "lastname")
    assert lastname is not None
    assert lastname["LogicalName"] == "lastname"


def test_alternate_keys_from_the_schema_file(client: DataverseClient, tmp_path: Path) -> None:
    """query-metadata-web-api.md (/Keys), use-alternate-key-reference-record.md."""
    keys = client.tables.get_alternate_keys("contact")
    assert [list(k.key_attributes) for k in keys] == [["emailaddress1"]]


# ---------------------------------------------------------------------------------------------
# Service protection limits, as the SDK sees them
# ---------------------------------------------------------------------------------------------


def test_429_reaches_the_sdk_with_code_and_retry_after(
    credential: StaticCredential, monkeypatch: pytest.MonkeyPatch
) -> None:
    """api-limits.md: over the request limit -> 429, code 0x80072322, Retry-After seconds. The SDK raises
    HttpError(429, retry_after=...) and does not retry by itself; the window slides with the clock."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ensure_ca().bundle_path))
    with DataverseEmulator(limits=LimitConfig(max_requests=5, window_s=300)) as emu:  # started here
        with DataverseClient(emu.url, credential) as c:  # type: ignore[arg-type]
            created = 0
            with pytest.raises(HttpError) as info:
                for i in range(20):
                    c.records.create("contact", {"lastname": f"Limit{i}"})
                    created += 1
            err = info.value
            assert err.status_code == 429
            assert err.details["service_error_code"] == "0x80072322"
            assert 0 < err.details["retry_after"] <= 300
            assert 1 <= created < 5  # the first call also resolved the entity set: it counts too
            assert emu.stats()["throttled"] == 1  # one 429 served: no hidden retry loop

            emu.clock.advance(301)
            c.records.create("contact", {"lastname": "AfterTheWindow"})
