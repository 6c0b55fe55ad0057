"""The Dataverse client against the Dataverse emulator over HTTPS (local CA): CRUD, impersonation,
paging, bulk messages, $batch with a change set, metadata, throttling, faults and token refresh."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import requests

from core.adapters.dataverse import (
    BatchOperation,
    ChangeSet,
    DataverseClient,
    DataverseError,
    NotFound,
    RequestEvent,
    TransientError,
    odata_literal,
)
from core.domain.retry import FailureKind, RetryPolicy
from emulators.dataverse import DataverseEmulator, LimitConfig
from emulators.tls import trusting_session

pytestmark = pytest.mark.integration

TOKEN = "static-test-token"


@pytest.fixture(scope="module")
def emulator() -> Iterator[DataverseEmulator]:
    instance = DataverseEmulator(accepted_tokens=(TOKEN,))
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture()
def dataverse(emulator: DataverseEmulator) -> DataverseEmulator:
    emulator.reset()  # data, accounting, simulation; limit settings and the clock are kept: restore them
    emulator.limits.configure(**LimitConfig().to_dict())
    emulator.clock.unfreeze()
    emulator.clock.set(time.time())
    return emulator


def make_client(emulator: DataverseEmulator, **kwargs: object) -> DataverseClient:
    kwargs.setdefault("retry", RetryPolicy(base_delay=0.01, max_delay=0.05))
    kwargs.setdefault("rng", random.Random(11))
    return DataverseClient(
        emulator.url,
        lambda force_refresh: TOKEN,
        session=trusting_session(),
        **kwargs,  # type: ignore[arg-type]
    )


def contact_count(emulator: DataverseEmulator) -> int:
    return int(emulator.stats()["records"]["contact"])


def test_crud_with_client_ids(dataverse: DataverseEmulator) -> None:
    client = make_client(dataverse)
    contact_id = str(uuid.uuid4())
    assert (
        client.create("contacts", {"firstname": "Zoë", "lastname": "O'Neil"}, record_id=contact_id)
        == contact_id
    )
    row = client.get("contacts", contact_id, select=["fullname", "lastname"])
    assert row["fullname"] == "Zoë O'Neil"
    client.update("contacts", contact_id, {"jobtitle": "CTO"})
    assert client.get("contacts", contact_id, select=["jobtitle"])["jobtitle"] == "CTO"
    missing = str(uuid.uuid4())
    with pytest.raises(NotFound) as caught:
        client.update("contacts", missing, {"jobtitle": "CTO"})  # If-Match: * never creates
    assert caught.value.code == "0x80040217"
    assert client.upsert("contacts", missing, {"lastname": "Upserted"}) == missing  # no If-Match: creates
    client.upsert("contacts", missing, {"lastname": "Again"})
    assert client.get("contacts", missing, select=["lastname"])["lastname"] == "Again"
    with pytest.raises(DataverseError) as duplicate:
        client.create("contacts", {"lastname": "Twice"}, record_id=contact_id)
    assert duplicate.value.is_duplicate_record
    client.delete("contacts", missing)
    with pytest.raises(NotFound):
        client.get("contacts", missing)
    assert contact_count(dataverse) == 1


def test_impersonation_writes_on_behalf_of_the_mapped_user(dataverse: DataverseEmulator) -> None:
    object_id = str(uuid.uuid4())
    user_id = dataverse.add_user(object_id=object_id, firstname="Ada", lastname="Lovelace")
    client = make_client(dataverse)
    me = client.who_am_i()
    contact_id = client.create("contacts", {"lastname": "Babbage"}, caller_object_id=object_id)
    row = client.get("contacts", contact_id, select=["_createdby_value", "_createdonbehalfby_value"])
    assert row["_createdby_value"] == user_id
    assert row["_createdonbehalfby_value"] == me.user_id


def test_query_pages_through_next_links_with_escaped_values(dataverse: DataverseEmulator) -> None:
    client = make_client(dataverse)
    names = [f"O'Brien {i:02d}" for i in range(23)] + ["Other"]
    client.create_multiple("contact", [{"lastname": name} for name in names])
    before = dataverse.stats()["requests"]
    pages = list(
        client.query_pages(
            "contacts",
            filter=f"startswith(lastname,{odata_literal(chr(39).join(['O', 'Brien']))})",
            select=["lastname"],
            orderby="lastname asc",
            page_size=10,
        )
    )
    assert [len(p) for p in pages] == [10, 10, 3]
    assert [row["lastname"] for page in pages for row in page] == names[:23]
    assert dataverse.stats()["requests"] - before == 3


def test_bulk_messages(dataverse: DataverseEmulator) -> None:
    client = make_client(dataverse)
    ids = [str(uuid.uuid4()) for _ in range(5)]
    created = client.create_multiple(
        "contact", [{"contactid": i, "lastname": f"Bulk {n}"} for n, i in enumerate(ids)]
    )
    assert created == ids
    client.update_multiple("contact", [{"contactid": i, "jobtitle": "Engineer"} for i in ids])
    assert {r["jobtitle"] for r in client.query("contacts", select=["jobtitle"])} == {"Engineer"}
    new_id = str(uuid.uuid4())
    client.upsert_multiple(
        "contact",
        [
            {"@odata.id": f"contacts({ids[0]})", "jobtitle": "Lead"},
            {"@odata.id": f"contacts({new_id})", "lastname": "Upserted"},
        ],
    )
    assert client.get("contacts", ids[0], select=["jobtitle"])["jobtitle"] == "Lead"
    assert client.get("contacts", new_id, select=["lastname"])["lastname"] == "Upserted"
    with pytest.raises(DataverseError) as caught:  # one bad target rolls the whole call back
        client.create_multiple("contact", [{"lastname": "fine"}, {"lastname": "x" * 51}])
    assert caught.value.code == "0x80044331"
    assert contact_count(dataverse) == 6


def test_custom_table_names_come_from_metadata_and_its_bulk_create_is_repeatable(
    dataverse: DataverseEmulator,
) -> None:
    client = make_client(dataverse)
    table = client.table("new_linkedinactivity")
    assert (table.entity_set_name, table.primary_id_attribute) == ("new_linkedinactivities", "activityid")
    ids = [str(uuid.uuid4()) for _ in range(3)]
    dataverse.simulator.inject(503, count=1, kinds=["bulk"])
    # every target carries its primary key (activityid, found in metadata): safe to send again after 503
    created = client.create_multiple(
        "new_linkedinactivity", [{"activityid": i, "subject": "Viewed"} for i in ids]
    )
    assert created == ids
    assert len(list(client.query("new_linkedinactivities", select=["subject"]))) == 3


def test_batch_with_change_set_and_content_id_reference(dataverse: DataverseEmulator) -> None:
    client = make_client(dataverse)
    parts = client.execute_batch(
        [
            ChangeSet(
                [
                    BatchOperation("POST", "accounts", {"name": "Contoso"}, content_id="1"),
                    BatchOperation(
                        "POST",
                        "contacts",
                        {"lastname": "Linked", "parentcustomerid_account@odata.bind": "$1"},
                    ),
                ]
            ),
            BatchOperation(
                "GET",
                "contacts",
                params=[("$select", "_parentcustomerid_value"), ("$filter", "lastname eq 'Linked'")],
            ),
        ]
    )
    assert [p.status for p in parts] == [204, 204, 200]
    account_id = parts[0].entity_id
    assert account_id and parts[0].content_id == "1"
    assert parts[2].body["value"][0]["_parentcustomerid_value"] == account_id
    failed = client.execute_batch(
        [
            ChangeSet(
                [
                    BatchOperation("POST", "accounts", {"name": "Fabrikam"}),
                    BatchOperation("POST", "contacts", {"lastname": "x" * 51}),
                ]
            ),
            BatchOperation("GET", "WhoAmI"),
        ],
        continue_on_error=True,
    )
    assert [p.status for p in failed] == [400, 200]
    assert failed[0].error is not None and failed[0].error.code == "0x80044331"
    assert [r["name"] for r in client.query("accounts", select=["name"])] == ["Contoso"]  # rolled back


def test_attribute_metadata(dataverse: DataverseEmulator) -> None:
    columns = {a.logical_name: a for a in make_client(dataverse).attributes("contact")}
    assert columns["firstname"].attribute_type == "String" and columns["firstname"].max_length == 50
    assert columns["description"].max_length == 2000
    assert not columns["fullname"].is_valid_for_create and not columns["fullname"].is_valid_for_update
    assert columns["lastname"].required_level == "ApplicationRequired"
    assert set(columns["parentcustomerid"].targets) == {"account", "contact"}
    assert {o.value for o in columns["statecode"].options} == {0, 1}
    assert (
        columns["new_languages"].attribute_type == "MultiSelectPicklist" and columns["new_languages"].options
    )
    assert columns["new_seniority"].attribute_type == "Picklist" and columns["new_seniority"].options
    assert all(o.label for o in columns["new_seniority"].options)
    assert (
        columns["numberofchildren"].max_value is not None
        and columns["numberofchildren"].min_value is not None
    )
    assert columns["birthdate"].format
    rows = {r["LogicalName"]: r for r in make_client(dataverse).attribute_rows("contact")}
    assert rows["firstname"]["MaxLength"] == 50 and rows["firstname"]["AttributeType"] == "String"


def test_supports_bulk_from_sdkmessagefilters(dataverse: DataverseEmulator) -> None:
    if "sdkmessagefilter" not in dataverse.schema.tables:
        pytest.skip("the emulator does not serve sdkmessagefilters yet")
    client = make_client(dataverse)
    assert client.supports_bulk("contact") is True
    before = dataverse.stats()["requests"]
    assert client.supports_bulk("contact") is True
    assert dataverse.stats()["requests"] == before  # cached


def test_faults_are_retried_only_where_safe(dataverse: DataverseEmulator) -> None:
    events: list[RequestEvent] = []
    client = make_client(dataverse, on_request=events.append)
    dataverse.simulator.inject(503, count=2, kinds=["read"])
    assert list(client.query("contacts")) == []
    assert [e.status for e in events] == [503, 503, 200]
    # a dropped connection after the server ran the create: the retry finds the record, no duplicate
    record_id = str(uuid.uuid4())
    dataverse.simulator.inject("drop", count=1, kinds=["write"])
    assert client.create("contacts", {"lastname": "Once"}, record_id=record_id) == record_id
    # without a client id the create is not repeated (it did run: the record exists once)
    dataverse.simulator.inject("drop", count=1, kinds=["write"])
    with pytest.raises(TransientError):
        client.create("contacts", {"lastname": "Maybe"})
    rows = list(client.query("contacts", select=["lastname"]))
    assert sorted(r["lastname"] for r in rows) == ["Maybe", "Once"]


def test_token_refresh_on_401(dataverse: DataverseEmulator) -> None:
    calls: list[bool] = []

    def tokens(force_refresh: bool) -> str:
        calls.append(force_refresh)
        return TOKEN if force_refresh else "stale-token"

    client = DataverseClient(dataverse.url, tokens, session=trusting_session())
    assert client.who_am_i().user_id
    assert calls == [False, True]


def test_an_untrusted_certificate_fails_at_once_without_retries(dataverse: DataverseEmulator) -> None:
    session = requests.Session()
    session.trust_env = False  # system roots only: the local CA is not trusted
    waits: list[float] = []
    client = DataverseClient(dataverse.url, lambda force_refresh: TOKEN, session=session, sleep=waits.append)
    with pytest.raises(DataverseError, match="SSLError") as caught:
        client.who_am_i()
    assert not isinstance(caught.value, TransientError)
    assert caught.value.attempts == 1 and waits == []


def test_429_from_the_request_limit_waits_retry_after_and_finishes(dataverse: DataverseEmulator) -> None:
    dataverse.limits.configure(max_requests=5, window_s=20)
    dataverse.clock.freeze()  # only the client's waits move time, so every wait is measured exactly
    waits: list[float] = []

    def sleep(seconds: float) -> None:  # time passes on the emulator's clock, not the test's
        waits.append(seconds)
        dataverse.clock.advance(seconds)

    events: list[RequestEvent] = []
    client = make_client(dataverse, sleep=sleep, clock=dataverse.clock.now, on_request=events.append)
    ids = [str(uuid.uuid4()) for _ in range(12)]
    for record_id in ids:
        client.create("contacts", {"lastname": "Throttled"}, record_id=record_id)
    throttled = [e for e in events if e.failure is FailureKind.THROTTLED]
    assert throttled and all(e.retry_after for e in throttled)
    assert waits and all(w >= e.retry_after for w, e in zip(waits, throttled, strict=True) if e.retry_after)
    assert contact_count(dataverse) == 12
    assert client.concurrency_limit < 16


def test_concurrency_limit_429s_lower_parallelism_and_lose_nothing(dataverse: DataverseEmulator) -> None:
    dataverse.limits.configure(max_concurrent=3)
    dataverse.simulator.update(latency_ms=30)
    client = make_client(dataverse, max_concurrency=12, honor_dop_hint=False, sleep=lambda s: None)
    ids = [str(uuid.uuid4()) for _ in range(48)]
    errors: list[BaseException] = []

    def work(chunk: list[str]) -> None:
        try:
            for record_id in chunk:
                client.create("contacts", {"lastname": "Parallel"}, record_id=record_id)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(ids[i::12],)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert contact_count(dataverse) == 48
    assert client.throttle_events > 0
    assert client.concurrency_limit <= 6


def test_the_next_pages_of_a_query_too_long_for_a_direct_get_are_read_inside_batch(
    dataverse: DataverseEmulator,
) -> None:
    # A lookup's filter may be up to 64 KB inside $batch but only 32 KB in a direct GET; its next-page
    # link repeats the filter, so following that link directly was refused with 414 and failed the chunk.
    client = make_client(dataverse)
    names = [f"Page{i}" for i in range(5)]
    client.create_multiple("contact", [{"lastname": name} for name in names])
    padding = [f"nobody-{i:05d}-{'x' * 20}" for i in range(1_300)]  # ~40 KB of In values
    in_values = ",".join(odata_literal(v) for v in names + padding)
    operation = BatchOperation(
        "GET",
        "contacts",
        headers={"Prefer": "odata.maxpagesize=2"},
        params=[
            ("$select", "lastname"),
            ("$filter", f"Microsoft.Dynamics.CRM.In(PropertyName='lastname',PropertyValues=[{in_values}])"),
        ],
    )
    [first] = client.execute_batch([operation])
    first.raise_for_error()
    link = first.body["@odata.nextLink"]
    assert len(link) > 33_000  # too long to be sent as a direct GET
    rows = [row for page in client.query_pages(link, page_size=2) for row in page]
    assert sorted(r["lastname"] for r in first.body["value"] + rows) == sorted(names)
