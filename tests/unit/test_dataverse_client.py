"""DataverseClient against a scripted fake transport (a requests adapter): headers, paging, writes,
error mapping, retries, throttling and that the bearer token never leaks."""

from __future__ import annotations

import json
import logging
import random
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from core.adapters.dataverse import (
    DataverseClient,
    DataverseError,
    NotFound,
    PreconditionFailed,
    PrivilegeDenied,
    RequestEvent,
    Throttled,
    TransientError,
    Unauthorized,
    odata_literal,
    token_source_for,
)
from core.adapters.dataverse.limiter import AdaptiveLimiter
from core.domain.retry import FailureKind, RetryPolicy

ENV = "https://org.example.crm.dynamics.com"
API = ENV + "/api/data/v9.2/"
TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.SECRET-TOKEN-VALUE.sig"
REFRESHED = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.REFRESHED-TOKEN.sig"
GUID = "8d2f1a3e-5b6c-4d7e-9f80-112233445566"

Handler = Callable[[requests.PreparedRequest], requests.Response]


def response(
    status: int = 200,
    body: Any = None,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> Handler:
    def handler(request: requests.PreparedRequest) -> requests.Response:
        resp = requests.Response()
        resp.status_code = status
        resp.headers = CaseInsensitiveDict(headers or {})
        if raw is not None:
            resp._content = raw
        elif body is not None:
            resp._content = json.dumps(body).encode()
            resp.headers.setdefault("Content-Type", "application/json; odata.metadata=minimal")
        else:
            resp._content = b""
        resp.url = request.url or ""
        resp.request = request
        return resp

    return handler


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Handler:
    return response(status, {"error": {"code": code, "message": message}}, headers)


def raises(exc: Exception) -> Handler:
    def handler(request: requests.PreparedRequest) -> requests.Response:
        raise exc

    return handler


class FakeTransport(BaseAdapter):
    """Answers requests from a script (one handler per request, in order) and records them."""

    def __init__(self, *script: Handler) -> None:
        super().__init__()
        self.script = list(script)
        self.requests: list[requests.PreparedRequest] = []
        self._lock = threading.Lock()

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        with self._lock:
            self.requests.append(request)
            if not self.script:
                raise AssertionError(f"unexpected request {request.method} {request.url}")
            handler = self.script.pop(0)
        return handler(request)

    def close(self) -> None:
        pass


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Tokens:
    def __init__(self) -> None:
        self.calls: list[bool] = []

    def __call__(self, force_refresh: bool) -> str:
        self.calls.append(force_refresh)
        return REFRESHED if force_refresh else TOKEN


def make_client(
    *script: Handler, events: list[RequestEvent] | None = None, **kwargs: Any
) -> tuple[DataverseClient, FakeTransport, FakeClock, Tokens]:
    transport = FakeTransport(*script)
    session = requests.Session()
    session.mount(ENV + "/api/", transport)
    clock = FakeClock()
    tokens = Tokens()
    kwargs.setdefault(
        "retry", RetryPolicy(max_attempts=4, base_delay=0.5, max_delay=4.0, max_retry_after=120)
    )
    client = DataverseClient(
        ENV,
        tokens,
        session=session,
        rng=random.Random(5),
        sleep=clock.sleep,
        clock=clock.monotonic,
        on_request=events.append if events is not None else None,
        user_agent="test-agent/1",
        **kwargs,
    )
    return client, transport, clock, tokens


def body_of(request: requests.PreparedRequest) -> Any:
    raw = request.body
    assert raw is not None
    return json.loads(raw if isinstance(raw, bytes | str) else b"")


def query_of(request: requests.PreparedRequest) -> dict[str, list[str]]:
    return parse_qs(urlsplit(request.url or "").query)


# ---------------------------------------------------------------------------- headers, reads


def test_every_request_carries_odata_headers_and_the_bearer_token() -> None:
    ids = {"UserId": GUID, "BusinessUnitId": GUID, "OrganizationId": GUID}
    client, transport, _, _ = make_client(response(200, ids))
    me = client.who_am_i()
    assert me.user_id == GUID
    sent = transport.requests[0]
    assert sent.url == API + "WhoAmI"
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    assert sent.headers["OData-MaxVersion"] == "4.0"
    assert sent.headers["OData-Version"] == "4.0"
    assert sent.headers["Accept"] == "application/json"
    assert sent.headers["User-Agent"] == "test-agent/1"
    assert "CallerObjectId" not in sent.headers


def test_query_follows_next_links_with_the_page_size_preference_and_escaped_filter() -> None:
    next_link = API + "contacts?$select=fullname&$skiptoken=%3Ccookie%20pagenumber=%222%22/%3E"
    client, transport, _, _ = make_client(
        response(200, {"value": [{"fullname": "A"}, {"fullname": "B"}], "@odata.nextLink": next_link}),
        response(200, {"value": [{"fullname": "C"}]}),
    )
    name = "O'Bryan +1 & co"
    rows = list(
        client.query(
            "contacts",
            filter=f"lastname eq {odata_literal(name)}",
            select=["fullname", "lastname"],
            orderby="fullname asc",
            page_size=2,
            caller_object_id="aad-object-1",
        )
    )
    assert [r["fullname"] for r in rows] == ["A", "B", "C"]
    first, second = transport.requests
    assert query_of(first)["$filter"] == ["lastname eq 'O''Bryan +1 & co'"]
    assert query_of(first)["$select"] == ["fullname,lastname"]
    assert query_of(first)["$orderby"] == ["fullname asc"]
    assert second.url == next_link
    for sent in (first, second):
        assert sent.headers["Prefer"] == "odata.maxpagesize=2"
        assert sent.headers["CallerObjectId"] == "aad-object-1"


def test_next_link_to_another_host_is_refused_and_gets_no_token() -> None:
    client, transport, _, _ = make_client(
        response(200, {"value": [{"a": 1}], "@odata.nextLink": "https://evil.example.com/api/data/v9.2/x"}),
    )
    pages = client.query_pages("contacts")
    assert next(pages) == [{"a": 1}]
    with pytest.raises(DataverseError, match="outside the environment"):
        next(pages)
    assert len(transport.requests) == 1


def test_get_by_id_and_by_alternate_key() -> None:
    client, transport, _, _ = make_client(
        response(200, {"contactid": GUID}), response(200, {"accountid": GUID})
    )
    assert client.get("contacts", GUID.upper(), select=["fullname"]) == {"contactid": GUID}
    client.get("accounts", {"accountnumber": "A'1", "name": "Contoso"})
    assert transport.requests[0].url == API + f"contacts({GUID})?$select=fullname"
    assert unquote(transport.requests[1].url or "") == API + "accounts(accountnumber='A''1',name='Contoso')"
    with pytest.raises(ValueError):
        client.get("contacts", "not-a-guid")


# ---------------------------------------------------------------------------- writes


def test_create_with_client_id_puts_it_in_the_body_and_reads_the_new_id() -> None:
    client, transport, _, _ = make_client(
        response(204, headers={"OData-EntityId": API + f"contacts({GUID})"}),
        response(204, headers={"OData-EntityId": API + "accounts(11111111-2222-3333-4444-555555555555)"}),
    )
    assert (
        client.create("contacts", {"firstname": "Zoë"}, record_id=GUID, suppress_duplicate_detection=False)
        == GUID
    )
    sent = transport.requests[0]
    assert sent.method == "POST" and sent.url == API + "contacts"
    assert body_of(sent) == {"firstname": "Zoë", "contactid": GUID}
    assert sent.headers["Content-Type"].startswith("application/json")
    assert sent.headers["MSCRM.SuppressDuplicateDetection"] == "false"
    assert client.create("accounts", {"name": "X"}) == "11111111-2222-3333-4444-555555555555"
    assert "accountid" not in body_of(transport.requests[1])


def test_update_never_creates_and_maps_not_found() -> None:
    client, transport, _, _ = make_client(
        response(204),
        error(404, "0x80040217", f"Contact With Ids = {GUID} Do Not Exist"),
    )
    client.update("contacts", GUID, {"jobtitle": "CTO"}, caller_object_id="aad-7")
    sent = transport.requests[0]
    assert sent.method == "PATCH" and sent.headers["If-Match"] == "*"
    assert sent.headers["CallerObjectId"] == "aad-7"
    with pytest.raises(NotFound) as caught:
        client.update("contacts", GUID, {"jobtitle": "CTO"})
    assert caught.value.status == 404 and caught.value.code == "0x80040217"
    assert "Do Not Exist" in str(caught.value)


def test_upsert_has_no_if_match() -> None:
    client, transport, _, _ = make_client(
        response(204, headers={"OData-EntityId": API + f"contacts({GUID})"})
    )
    assert client.upsert("contacts", GUID, {"lastname": "Doe"}) == GUID
    assert "If-Match" not in transport.requests[0].headers
    assert transport.requests[0].method == "PATCH"


def test_bulk_messages_send_typed_targets() -> None:
    other = "99999999-8888-7777-6666-555555555555"
    client, transport, _, _ = make_client(
        response(200, {"Ids": [GUID.upper(), other]}), response(204), response(204)
    )
    ids = client.create_multiple("contact", [{"contactid": GUID, "lastname": "A"}, {"lastname": "B"}])
    assert ids == [GUID, other]
    sent = transport.requests[0]
    assert sent.url == API + "contacts/Microsoft.Dynamics.CRM.CreateMultiple"
    assert body_of(sent) == {
        "Targets": [
            {"@odata.type": "Microsoft.Dynamics.CRM.contact", "contactid": GUID, "lastname": "A"},
            {"@odata.type": "Microsoft.Dynamics.CRM.contact", "lastname": "B"},
        ]
    }
    client.update_multiple("account", [{"accountid": GUID, "name": "N"}])
    assert transport.requests[1].url == API + "accounts/Microsoft.Dynamics.CRM.UpdateMultiple"
    client.upsert_multiple("contact", [{"@odata.id": "contacts(new_key='k1')", "lastname": "C"}])
    assert transport.requests[2].url == API + "contacts/Microsoft.Dynamics.CRM.UpsertMultiple"
    assert body_of(transport.requests[2])["Targets"][0]["@odata.id"] == "contacts(new_key='k1')"


def test_supports_bulk_asks_sdkmessagefilters_once_per_table_and_message() -> None:
    client, transport, _, _ = make_client(
        response(200, {"value": [{"sdkmessagefilterid": GUID}]}), response(200, {"value": []})
    )
    assert client.supports_bulk("contact") is True
    assert client.supports_bulk("contact") is True
    assert client.supports_bulk("new_custom") is False
    assert client.supports_bulk("new_custom") is False
    assert len(transport.requests) == 2
    assert query_of(transport.requests[0])["$filter"] == [
        "sdkmessageid/name eq 'CreateMultiple' and primaryobjecttypecode eq 'contact'"
    ]


def test_attribute_metadata_merges_type_casts() -> None:
    base = {
        "value": [
            {
                "LogicalName": "firstname",
                "AttributeType": "String",
                "AttributeTypeName": {"Value": "StringType"},
                "RequiredLevel": {"Value": "None"},
                "IsValidForCreate": True,
                "IsValidForUpdate": True,
                "IsValidForRead": True,
                "DisplayName": {"UserLocalizedLabel": {"Label": "First Name"}},
            },
            {
                "LogicalName": "preferredcontactmethodcode",
                "AttributeType": "Picklist",
                "AttributeTypeName": {"Value": "PicklistType"},
                "RequiredLevel": {"Value": "None"},
                "IsValidForCreate": True,
                "IsValidForUpdate": True,
            },
            {
                "LogicalName": "fullname",
                "AttributeType": "String",
                "AttributeTypeName": {"Value": "StringType"},
                "RequiredLevel": {"Value": "None"},
                "IsValidForCreate": False,
                "IsValidForUpdate": False,
            },
        ]
    }
    strings = {
        "value": [
            {"LogicalName": "firstname", "MaxLength": 50},
            {"LogicalName": "fullname", "MaxLength": 160},
        ]
    }
    picklists = {
        "value": [
            {
                "LogicalName": "preferredcontactmethodcode",
                "OptionSet": {"Options": [{"Value": 1, "Label": {"UserLocalizedLabel": {"Label": "Any"}}}]},
                "GlobalOptionSet": None,
            }
        ]
    }
    boundary = "batchresponse_meta"
    parts = "".join(
        f"--{boundary}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        f"HTTP/1.1 200 OK\r\nContent-Type: application/json; odata.metadata=minimal\r\n\r\n"
        f"{json.dumps(part)}\r\n"
        for part in (strings, picklists)
    )
    batch = response(
        200,
        raw=f"{parts}--{boundary}--\r\n".encode(),
        headers={"Content-Type": f"multipart/mixed; boundary={boundary}"},
    )
    client, transport, _, _ = make_client(response(200, base), batch)
    columns = {a.logical_name: a for a in client.attributes("contact")}
    assert columns["firstname"].max_length == 50
    assert columns["firstname"].display_name == "First Name"
    assert columns["fullname"].is_valid_for_create is False
    assert [(o.value, o.label) for o in columns["preferredcontactmethodcode"].options] == [(1, "Any")]
    # two requests whatever the number of attribute types: the common properties, then one $batch
    # holding a GET per type cast present
    assert len(transport.requests) == 2
    urls = [unquote(r.url or "") for r in transport.requests]
    assert urls[0].startswith(
        API + "EntityDefinitions(LogicalName='contact')/Attributes?$select=LogicalName,"
    )
    assert urls[1] == API + "$batch"
    body = unquote(bytes(transport.requests[1].body or b"").decode())
    gets = [line for line in body.split("\r\n") if line.startswith("GET ")]
    assert len(gets) == 2
    assert (
        "/Attributes/Microsoft.Dynamics.CRM.StringAttributeMetadata?$select=LogicalName,MaxLength" in gets[0]
    )
    assert "/Microsoft.Dynamics.CRM.PicklistAttributeMetadata?" in gets[1]
    assert "$expand=OptionSet,GlobalOptionSet" in gets[1]


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (400, "0x80044331", DataverseError),
        (403, "0x80040220", PrivilegeDenied),
        (400, "0x80040220", PrivilegeDenied),
        (404, "0x80040217", NotFound),
        (412, "0x80060892", PreconditionFailed),
        (501, "0x0", TransientError),
    ],
)
def test_error_mapping(status: int, code: str, kind: type[DataverseError]) -> None:
    client, _, _, _ = make_client(error(status, code, "went wrong"))
    with pytest.raises(kind) as caught:
        client.create("contacts", {"lastname": "x"})
    assert type(caught.value) is kind
    assert (caught.value.status, caught.value.code, caught.value.message) == (status, code, "went wrong")
    assert caught.value.path == "/api/data/v9.2/contacts"


def test_duplicate_record_on_create_with_id_is_recognisable() -> None:
    client, _, _, _ = make_client(
        error(412, "0x80040237", "A record with matching key values already exists.")
    )
    with pytest.raises(DataverseError) as caught:
        client.create("contacts", {"lastname": "x"}, record_id=GUID)
    assert caught.value.is_duplicate_record and not caught.value.maybe_applied_earlier


def test_retried_create_that_finds_its_own_record_returns_the_id() -> None:
    duplicate = error(412, "0x80040237", "A record with matching key values already exists.")
    dropped = raises(requests.exceptions.ConnectionError("Connection aborted"))
    client, transport, _, _ = make_client(dropped, duplicate)
    assert client.create("contacts", {"lastname": "x"}, record_id=GUID) == GUID
    assert len(transport.requests) == 2


def test_retried_bulk_create_that_meets_a_duplicate_says_an_earlier_attempt_may_have_applied() -> None:
    duplicate = error(400, "0x80040237", "Cannot insert duplicate key.")
    client, _, _, _ = make_client(error(502, "0x0", "bad gateway"), duplicate)
    with pytest.raises(DataverseError) as caught:
        client.create_multiple("contact", [{"contactid": GUID}])
    assert caught.value.is_duplicate_record and caught.value.maybe_applied_earlier
    assert caught.value.attempts == 2


def test_non_json_error_body_still_gives_a_message() -> None:
    client, _, _, _ = make_client(response(400, raw=b"<html>Bad Request</html>"))
    with pytest.raises(DataverseError, match="Bad Request") as caught:
        client.get("contacts", GUID)
    assert caught.value.code is None


# ---------------------------------------------------------------------------- retries


def test_5xx_on_a_read_is_retried_with_backoff_then_succeeds() -> None:
    events: list[RequestEvent] = []
    client, transport, clock, _ = make_client(
        error(503, "0x0", "busy"),
        error(502, "0x0", "bad gateway"),
        response(200, {"value": []}),
        events=events,
    )
    assert list(client.query("contacts")) == []
    assert len(transport.requests) == 3
    assert len(clock.sleeps) == 2
    assert 0.25 <= clock.sleeps[0] <= 0.5 and 0.5 <= clock.sleeps[1] <= 1.0
    assert [e.status for e in events] == [503, 502, 200]
    assert [e.will_retry for e in events] == [True, True, False]


def test_5xx_retries_are_bounded() -> None:
    client, transport, _, _ = make_client(*[error(500, "0x80040216", "SQL timeout")] * 4)
    with pytest.raises(TransientError) as caught:
        client.get("contacts", GUID)
    assert len(transport.requests) == 4 and caught.value.attempts == 4


def test_create_without_client_id_is_not_repeated_after_5xx_or_a_dropped_connection() -> None:
    client, transport, clock, _ = make_client(error(503, "0x0", "busy"))
    with pytest.raises(TransientError):
        client.create("contacts", {"lastname": "x"})
    assert len(transport.requests) == 1 and clock.sleeps == []
    dropped = requests.exceptions.ConnectionError("Connection aborted: RemoteDisconnected")
    client, transport, _, _ = make_client(raises(dropped))
    with pytest.raises(TransientError, match="no response"):
        client.create("contacts", {"lastname": "x"})
    assert len(transport.requests) == 1


def test_create_with_client_id_is_repeated_after_a_dropped_connection_and_a_read_timeout() -> None:
    client, transport, clock, _ = make_client(
        raises(requests.exceptions.ConnectionError("Connection aborted")),
        raises(requests.exceptions.ReadTimeout("read timed out")),
        response(204, headers={"OData-EntityId": API + f"contacts({GUID})"}),
    )
    assert client.create("contacts", {"lastname": "x"}, record_id=GUID) == GUID
    assert len(transport.requests) == 3 and len(clock.sleeps) == 2
    assert all(body_of(r)["contactid"] == GUID for r in transport.requests)


def test_failed_connect_is_retried_even_for_a_plain_create() -> None:
    client, transport, _, _ = make_client(
        raises(requests.exceptions.ConnectTimeout("connect timed out")),
        response(204, headers={"OData-EntityId": API + f"contacts({GUID})"}),
    )
    assert client.create("contacts", {"lastname": "x"}) == GUID
    assert len(transport.requests) == 2


def test_bulk_create_is_retried_only_when_every_target_has_its_id() -> None:
    client, transport, _, _ = make_client(error(502, "0x0", "bad gateway"), response(200, {"Ids": [GUID]}))
    assert client.create_multiple("contact", [{"contactid": GUID}]) == [GUID]
    assert len(transport.requests) == 2
    client, transport, _, _ = make_client(error(502, "0x0", "bad gateway"))
    with pytest.raises(TransientError):
        client.create_multiple("contact", [{"contactid": GUID}, {"lastname": "no id"}])
    assert len(transport.requests) == 1


def test_429_waits_retry_after_and_lowers_parallelism() -> None:
    events: list[RequestEvent] = []
    throttle = error(
        429,
        "0x80072322",
        "Number of requests exceeded the limit of 6000 over time window of 300 seconds.",
        {"Retry-After": "7"},
    )
    created = response(204, headers={"OData-EntityId": API + f"contacts({GUID})"})
    client, transport, clock, _ = make_client(throttle, created, max_concurrency=16, events=events)
    client.create("contacts", {"lastname": "x"})  # not idempotent, but a 429 was never executed
    assert len(transport.requests) == 2
    assert len(clock.sleeps) == 1 and 7.0 <= clock.sleeps[0] <= 7.7
    assert client.concurrency_limit == 8
    assert events[0].failure is FailureKind.THROTTLED and events[0].retry_after == 7.0
    assert events[0].concurrency_limit == 8


def test_429_with_a_retry_after_beyond_the_cap_raises_throttled_at_once() -> None:
    client, transport, clock, _ = make_client(
        error(429, "0x80072321", "Combined execution time exceeded", {"Retry-After": "600"})
    )
    with pytest.raises(Throttled) as caught:
        client.get("contacts", GUID)
    assert caught.value.retry_after == 600.0 and caught.value.code == "0x80072321"
    assert len(transport.requests) == 1 and clock.sleeps == []


def test_401_forces_one_token_refresh_then_gives_up() -> None:
    client, transport, _, tokens = make_client(
        error(401, "0x80072560", "expired"), response(200, {"value": []})
    )
    assert list(client.query("contacts")) == []
    assert tokens.calls == [False, True]
    assert transport.requests[1].headers["Authorization"] == f"Bearer {REFRESHED}"
    client, transport, _, tokens = make_client(error(401, "0x0", "no"), error(401, "0x0", "still no"))
    with pytest.raises(Unauthorized):
        client.who_am_i()
    assert tokens.calls == [False, True] and len(transport.requests) == 2


def test_dop_hint_caps_parallelism() -> None:
    client, _, _, _ = make_client(response(200, {"value": []}, {"x-ms-dop-hint": "4"}), max_concurrency=16)
    list(client.query("contacts"))
    assert client.concurrency_limit == 4
    client, _, _, _ = make_client(
        response(200, {"value": []}, {"x-ms-dop-hint": "4"}), max_concurrency=16, honor_dop_hint=False
    )
    list(client.query("contacts"))
    assert client.concurrency_limit == 16


# ---------------------------------------------------------------------------- token never leaks


def test_token_appears_in_no_exception_log_record_or_event(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    events: list[RequestEvent] = []
    client, _, _, _ = make_client(
        error(401, "0x0", "bad token"),
        error(401, "0x0", "bad token"),
        error(429, "0x80072326", "concurrency", {"Retry-After": "9999"}),
        error(503, "0x0", "unavailable"),
        raises(requests.exceptions.ConnectionError(f"dropped while sending Bearer {TOKEN}")),
        error(403, "0x80040220", "privilege"),
        events=events,
        retry=RetryPolicy(max_attempts=1),
    )
    failures: list[BaseException] = []
    for call in (
        client.who_am_i,
        lambda: client.get("contacts", GUID),
        lambda: client.get("contacts", GUID),
        lambda: client.get("contacts", GUID),
        lambda: client.get("contacts", GUID),
    ):
        with pytest.raises(DataverseError) as caught:
            call()
        failures.append(caught.value)
    assert len(failures) == 5
    texts = [str(f) for f in failures] + [repr(f) for f in failures] + [repr(f.args) for f in failures]
    texts += [r.getMessage() for r in caplog.records] + [repr(e) for e in events] + [repr(client)]
    assert texts and all(TOKEN not in t and REFRESHED not in t for t in texts)
    assert all("SECRET-TOKEN" not in t for t in texts)


# ---------------------------------------------------------------------------- limiter


def test_limiter_halves_once_per_burst_and_regrows_additively() -> None:
    clock = FakeClock()
    limiter = AdaptiveLimiter(8, clock=clock.monotonic, sleep=clock.sleep)
    tickets = [limiter.acquire() for _ in range(8)]
    for ticket in tickets:  # 8 requests in flight together all throttled: one signal
        limiter.release(ticket, throttled=True)
    assert limiter.limit == 4
    limiter.release(limiter.acquire(), throttled=True)  # a later request throttled again: halve again
    assert limiter.limit == 2
    for _ in range(2):
        limiter.release(limiter.acquire())
    assert limiter.limit == 3
    limiter.cap(2)
    assert limiter.limit == 2


def test_limiter_pause_holds_every_new_attempt() -> None:
    clock = FakeClock()
    limiter = AdaptiveLimiter(4, clock=clock.monotonic, sleep=clock.sleep)
    limiter.release(limiter.acquire(), throttled=True, pause=5.0)
    limiter.release(limiter.acquire())
    assert clock.sleeps == [5.0]


def test_limiter_never_exceeds_its_limit_across_threads() -> None:
    limiter = AdaptiveLimiter(3)
    peak = 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal peak
        for _ in range(50):
            ticket = limiter.acquire()
            with lock:
                peak = max(peak, limiter.in_flight)
            limiter.release(ticket, succeeded=False)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak <= 3 and limiter.in_flight == 0


def test_token_provider_adapter_passes_workspace_and_refresh_flag_and_lets_reconnect_errors_through() -> None:
    class ReconnectRequired(Exception):
        pass

    calls: list[tuple[str, bool]] = []

    class Provider:
        def access_token(self, workspace_id: str, *, force_refresh: bool = False) -> str:
            calls.append((workspace_id, force_refresh))
            if force_refresh:
                raise ReconnectRequired(workspace_id)
            return TOKEN

    transport = FakeTransport(error(401, "0x0", "expired"))
    session = requests.Session()
    session.mount(ENV + "/api/", transport)
    client = DataverseClient(ENV, token_source_for(Provider(), "ws-1"), session=session)
    with pytest.raises(ReconnectRequired):
        client.who_am_i()
    assert calls == [("ws-1", False), ("ws-1", True)]
    assert client.transport.limiter.in_flight == 0
