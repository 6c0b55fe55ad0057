"""$batch wire format, checked against the examples of Microsoft's page "Execute batch operations using
the Web API" (powerapps-docs/developer/data-platform/webapi/execute-batch-operations-using-web-api.md) and
against the serializer/parser of Microsoft's Python SDK (PowerPlatform-Dataverse-Client) and the LF-only
format of npm dynamics-web-api."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import pytest
from PowerPlatform.Dataverse.data._batch_base import _BatchBase, _ChangeSetBatchItem
from PowerPlatform.Dataverse.data._raw_request import _RawRequest

from emulators.dataverse.batch import (
    BatchOperation,
    ChangeSet,
    ChangeSetResult,
    OperationResult,
    count_operations,
    parse_batch,
    render_batch_response,
    request_target,
    substitute_content_ids,
)
from emulators.dataverse.odata import ODataError

ACCOUNT = "00000000-0000-0000-0000-000000000001"

# The "Change sets" request example of the docs page (verbatim apart from line endings).
DOC_CHANGESET_REQUEST = f"""--batch_22975cad-7f57-410d-be15-6363209367ea
Content-Type: multipart/mixed; boundary="changeset_246e6bfe-89a4-4c77-b293-7a433f082e8a"

--changeset_246e6bfe-89a4-4c77-b293-7a433f082e8a
Content-Type: application/http
Content-Transfer-Encoding: binary
Content-ID: 1

POST /api/data/v9.2/tasks HTTP/1.1
Content-Type: application/json; type=entry

{{
  "subject": "Task 1 in batch",
  "regardingobjectid_account_task@odata.bind": "accounts({ACCOUNT})"
}}
--changeset_246e6bfe-89a4-4c77-b293-7a433f082e8a
Content-Type: application/http
Content-Transfer-Encoding: binary
Content-ID: 2

POST /api/data/v9.2/tasks HTTP/1.1
Content-Type: application/json; type=entry

{{
  "subject": "Task 2 in batch",
  "regardingobjectid_account_task@odata.bind": "accounts({ACCOUNT})"
}}
--changeset_246e6bfe-89a4-4c77-b293-7a433f082e8a--

--batch_22975cad-7f57-410d-be15-6363209367ea
Content-Type: application/http
Content-Transfer-Encoding: binary

GET /api/data/v9.2/accounts({ACCOUNT})/Account_Tasks?$select=subject HTTP/1.1


--batch_22975cad-7f57-410d-be15-6363209367ea--
"""
DOC_CHANGESET_CT = 'multipart/mixed; boundary="batch_22975cad-7f57-410d-be15-6363209367ea"'


def _crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode()


@pytest.mark.parametrize("line_ending", ["crlf", "lf"])
def test_docs_change_set_example_parses_with_either_line_ending(line_ending: str) -> None:
    body = _crlf(DOC_CHANGESET_REQUEST) if line_ending == "crlf" else DOC_CHANGESET_REQUEST.encode()
    items = parse_batch(body, DOC_CHANGESET_CT)
    assert len(items) == 2
    change_set, get = items
    assert isinstance(change_set, ChangeSet)
    assert [op.content_id for op in change_set.operations] == ["1", "2"]
    first = change_set.operations[0]
    assert (first.method, first.url) == ("POST", "/api/data/v9.2/tasks")
    assert first.headers == {"content-type": "application/json; type=entry"}
    assert json.loads(first.body) == {
        "subject": "Task 1 in batch",
        "regardingobjectid_account_task@odata.bind": f"accounts({ACCOUNT})",
    }
    assert isinstance(get, BatchOperation)
    assert get.method == "GET"
    assert get.url == f"/api/data/v9.2/accounts({ACCOUNT})/Account_Tasks?$select=subject"
    assert get.body == b"" and get.content_id is None
    assert count_operations(items) == 3


def test_unquoted_boundary_and_reference_examples_of_the_docs() -> None:
    # "Reference URI in request URL": unquoted boundary, header order swapped, PUT $1/lastname.
    body = """--batch_AAA123
Content-Type: multipart/mixed; boundary=changeset_dd81

--changeset_dd81
Content-Type: application/http
Content-Transfer-Encoding: binary
Content-ID: 1

POST https://org.crm.dynamics.com/api/data/v9.2/contacts HTTP/1.1
Content-Type: application/json

{"firstname":"First Name","lastname":"Last name"}

--changeset_dd81
Content-Transfer-Encoding: binary
Content-Type: application/http
Content-ID: 2

PUT $1/lastname HTTP/1.1
Content-Type: application/json

{"value":"BBBBB"}

--changeset_dd81--
--batch_AAA123--
"""
    (cs,) = parse_batch(_crlf(body), "multipart/mixed;boundary=batch_AAA123")
    assert isinstance(cs, ChangeSet)
    put = cs.operations[1]
    assert (put.method, put.url, put.content_id) == ("PUT", "$1/lastname", "2")
    assert json.loads(put.body) == {"value": "BBBBB"}
    ids = {"1": "https://org/api/data/v9.2/contacts(f8ea5d2c-8c75-e911-a97a-000d3a34a1bd)"}
    assert substitute_content_ids(put.url, ids) == ids["1"] + "/lastname"


def test_sdk_serialized_batch_parses() -> None:
    """Body written by PowerPlatform-Dataverse-Client's own serializer (CRLF, quoted boundaries)."""
    base = "https://org.crm.dynamics.com/api/data/v9.2"
    requests: list[_RawRequest | _ChangeSetBatchItem] = [
        # The SDK does not percent-encode query strings inside a batch: the URL contains spaces and quotes.
        _RawRequest(method="GET", url=f"{base}/contacts?$select=fullname&$filter=lastname eq 'O''Bryan'"),
        _ChangeSetBatchItem(
            requests=[
                _RawRequest(method="POST", url=f"{base}/accounts", body='{"name":"Contoso"}', content_id=1),
                _RawRequest(
                    method="POST",
                    url=f"{base}/contacts",
                    body='{"lastname":"O\'Bryan","parentcustomerid_account@odata.bind":"$1"}',
                    content_id=2,
                ),
                _RawRequest(
                    method="DELETE", url=f"{base}/contacts(1)", headers={"If-Match": "*"}, content_id=3
                ),
            ]
        ),
    ]
    boundary = "batch_0f1e"
    body = _BatchBase(None)._build_batch_body(requests, boundary)  # type: ignore[arg-type]
    assert "\r\n" in body
    items = parse_batch(body.encode(), f'multipart/mixed; boundary="{boundary}"')
    get, cs = items
    assert isinstance(get, BatchOperation) and request_target(get.url) == (
        "/api/data/v9.2/contacts?$select=fullname&$filter=lastname eq 'O''Bryan'"
    )
    assert isinstance(cs, ChangeSet)
    assert [(o.method, o.content_id) for o in cs.operations] == [
        ("POST", "1"),
        ("POST", "2"),
        ("DELETE", "3"),
    ]
    assert cs.operations[2].headers["if-match"] == "*"
    assert json.loads(cs.operations[1].body)["lastname"] == "O'Bryan"
    new_body = substitute_content_ids(cs.operations[1].body.decode(), {"1": f"{base}/accounts(abc)"})
    assert json.loads(new_body)["parentcustomerid_account@odata.bind"] == f"{base}/accounts(abc)"


def test_dynamics_web_api_style_lf_only_batch_parses() -> None:
    """npm dynamics-web-api: leading blank line, unquoted `;boundary=`, dwa_batch_ boundary, LF only,
    Content-ID 100001 and `$100001` references, absolute URLs."""
    body = (
        "\n--dwa_batch_5c1b\n"
        "Content-Type: multipart/mixed;boundary=changeset_9a\n"
        "\n--changeset_9a\n"
        "Content-Type: application/http\nContent-Transfer-Encoding: binary\nContent-ID: 100001\n"
        "\nPOST https://org.crm.dynamics.com/api/data/v9.2/accounts HTTP/1.1\n"
        "Content-Type: application/json\nPrefer: return=representation\n"
        '\n{"name":"A"}\n'
        "\n--changeset_9a\n"
        "Content-Type: application/http\nContent-Transfer-Encoding: binary\nContent-ID: 100002\n"
        "\nPATCH $100001 HTTP/1.1\nContent-Type: application/json\n"
        '\n{"telephone1":"1"}\n'
        "\n--changeset_9a--\n"
        "\n--dwa_batch_5c1b\n"
        "Content-Type: application/http\nContent-Transfer-Encoding: binary\n"
        "\nGET https://org.crm.dynamics.com/api/data/v9.2/accounts?$filter=name%20eq%20'A' HTTP/1.1\n"
        "Accept: application/json\n"
        "\n--dwa_batch_5c1b--\n"
    )
    cs, get = parse_batch(body.encode(), "multipart/mixed;boundary=dwa_batch_5c1b")
    assert isinstance(cs, ChangeSet) and isinstance(get, BatchOperation)
    create, patch = cs.operations
    assert create.headers["prefer"] == "return=representation"
    assert create.content_id == "100001" and json.loads(create.body) == {"name": "A"}
    assert substitute_content_ids(patch.url, {"100001": "https://x/api/data/v9.2/accounts(1)"}).endswith(
        "(1)"
    )
    assert get.headers == {"accept": "application/json"} and get.body == b""


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (
            "--b\nContent-Type: application/http\n\nGET /x HTTP/1.1\n\n--b--\n",
            "application/json",
            "multipart",
        ),
        (
            "--b\nContent-Type: application/http\n\nGET /x HTTP/1.1\n\n",
            "multipart/mixed; boundary=b",
            "--b--",
        ),
        ("nothing here", "multipart/mixed; boundary=b", "boundary"),
        (
            "--b\nContent-Type: text/plain\n\nGET /x HTTP/1.1\n--b--\n",
            "multipart/mixed; boundary=b",
            "text/plain",
        ),
        (
            "--b\nContent-Type: application/http\n\nFETCH /x HTTP/1.1\n--b--\n",
            "multipart/mixed; boundary=b",
            "FETCH",
        ),
        (
            "--b\nContent-Type: application/http\n\nnot a request line\n--b--\n",
            "multipart/mixed; boundary=b",
            "line",
        ),
        (
            "--b\nContent-Type: application/http\n\nPOST /api/data/v9.2/$batch HTTP/1.1\n\n--b--\n",
            "multipart/mixed; boundary=b",
            "Nested batch",
        ),
        (
            "--b\nContent-Type: multipart/mixed; boundary=c\n\n--c\nContent-Type: application/http\n\n"
            "GET /api/data/v9.2/contacts HTTP/1.1\n\n--c--\n--b--\n",
            "multipart/mixed; boundary=b",
            "An invalid HTTP method 'GET' was detected for a request in a change set.",
        ),
        (
            "--b\nContent-Type: multipart/mixed; boundary=c\n\n"
            "--c\nContent-Type: multipart/mixed; boundary=d\n\n"
            "--d--\n--c--\n--b--\n",
            "multipart/mixed; boundary=b",
            "Nested change sets",
        ),
    ],
)
def test_malformed_batches_are_400(body: str, content_type: str, message: str) -> None:
    with pytest.raises(ODataError) as info:
        parse_batch(body.encode(), content_type)
    assert info.value.status == 400
    assert message in info.value.message


def _ops(n: int, change_set: bool) -> str:
    parts = []
    for i in range(n):
        parts.append(
            f"--{'c' if change_set else 'b'}\nContent-Type: application/http\n"
            "Content-Transfer-Encoding: binary\n"
            f"\nDELETE /api/data/v9.2/contacts({i}) HTTP/1.1\n\n"
        )
    inner = "".join(parts)
    if change_set:
        return f"--b\nContent-Type: multipart/mixed; boundary=c\n\n{inner}--c--\n--b--\n"
    return f"{inner}--b--\n"


@pytest.mark.parametrize("change_set", [False, True])
def test_thousand_requests_allowed_one_more_refused(change_set: bool) -> None:
    ct = "multipart/mixed; boundary=b"
    assert count_operations(parse_batch(_ops(1000, change_set).encode(), ct)) == 1000
    with pytest.raises(ODataError) as info:
        parse_batch(_ops(1001, change_set).encode(), ct)
    assert info.value.status == 400
    assert "'1000'" in info.value.message


def test_content_id_substitution() -> None:
    ids = {"1": "https://h/api/data/v9.2/accounts(a)", "2": "https://h/api/data/v9.2/contacts(c)"}
    assert substitute_content_ids("$1", ids) == ids["1"]
    assert substitute_content_ids("$1/primarycontactid/$ref", ids) == ids["1"] + "/primarycontactid/$ref"
    body = json.dumps(
        {
            "name": "Costs $1 million",  # data, not a reference
            "originatingleadid@odata.bind": "$1",
            "primarycontactid@odata.bind": "$2",
            "nested": {"@odata.id": "$2"},
        }
    )
    out = json.loads(substitute_content_ids(body, ids))
    assert out["name"] == "Costs $1 million"
    assert out["originatingleadid@odata.bind"] == ids["1"]
    assert out["primarycontactid@odata.bind"] == ids["2"]
    assert out["nested"]["@odata.id"] == ids["2"]
    untouched = '{"name":"x","primarycontactid@odata.bind":"/contacts(1)"}'
    assert substitute_content_ids(untouched, ids) == untouched
    assert (
        substitute_content_ids("/api/data/v9.2/contacts?$select=a", ids)
        == "/api/data/v9.2/contacts?$select=a"
    )


def test_undeclared_content_id_reference_is_the_documented_400() -> None:
    # Docs: referencing a Content-ID before it is declared -> HTTP 400.
    body = '{"phonenumber":"911","regardingobjectid_account_phonecall@odata.bind":"$1"}'
    with pytest.raises(ODataError) as info:
        substitute_content_ids(body, {})
    assert info.value.status == 400
    assert info.value.message == "Content-ID Reference: '$1' does not exist in the batch context."
    with pytest.raises(ODataError):
        substitute_content_ids("$7/lastname", {"1": "x"})


def test_rendered_response_matches_the_documented_format() -> None:
    location = "https://org/api/data/v9.2/tasks(e73ffc82-e292-ed11-aad1-000d3a9933c9)"
    query_body = json.dumps({"value": [{"subject": "Task 1 in batch"}]}).encode()
    body, content_type = render_batch_response(
        [
            ChangeSetResult(
                [
                    OperationResult(
                        204,
                        {"OData-Version": "4.0", "Location": location, "OData-EntityId": location},
                        b"",
                        "1",
                    ),
                    OperationResult(204, {"OData-Version": "4.0"}, b"", "2"),
                ]
            ),
            OperationResult(
                200,
                {"Content-Type": "application/json; odata.metadata=minimal", "OData-Version": "4.0"},
                query_body,
            ),
        ]
    )
    text = body.decode()
    m = re.fullmatch(r"multipart/mixed; boundary=(batchresponse_[0-9a-f-]{36})", content_type)
    assert m, content_type
    outer = m.group(1)
    inner_m = re.search(r"boundary=(changesetresponse_[0-9a-f-]{36})\r\n", text)
    assert inner_m
    inner = inner_m.group(1)
    assert "\n" not in text.replace("\r\n", "")  # CRLF throughout
    part = "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
    expected = (
        f"--{outer}\r\nContent-Type: multipart/mixed; boundary={inner}\r\n\r\n"
        f"--{inner}\r\n{part}Content-ID: 1\r\n\r\n"
        "HTTP/1.1 204 No Content\r\nOData-Version: 4.0\r\n"
        f"Location: {location}\r\nOData-EntityId: {location}\r\n"
        "\r\n\r\n"
        f"--{inner}\r\n{part}Content-ID: 2\r\n\r\n"
        "HTTP/1.1 204 No Content\r\nOData-Version: 4.0\r\n\r\n\r\n"
        f"--{inner}--\r\n"
        f"--{outer}\r\n{part}\r\n"
        "HTTP/1.1 200 OK\r\nContent-Type: application/json; odata.metadata=minimal\r\n"
        "OData-Version: 4.0\r\n\r\n"
        f"{query_body.decode()}\r\n"
        f"--{outer}--\r\n"
    )
    assert text == expected


def test_sdk_reads_the_rendered_response() -> None:
    """PowerPlatform-Dataverse-Client's own response parser understands what the emulator writes."""
    location = "https://org/api/data/v9.2/contacts(6ed81853-7b75-e911-a97a-000d3a34a1bd)"
    error = json.dumps({"error": {"code": "0x80044331", "message": "A validation error occurred."}}).encode()
    body, content_type = render_batch_response(
        [
            ChangeSetResult([OperationResult(204, {"OData-EntityId": location}, b"", "1")]),
            OperationResult(400, {"Content-Type": "application/json; odata.metadata=minimal"}, error),
            OperationResult(200, {"Content-Type": "application/json"}, b'{"value":[{"fullname":"A B"}]}'),
        ]
    )
    response = SimpleNamespace(headers={"Content-Type": content_type}, text=body.decode(), status_code=200)
    result = _BatchBase(None)._parse_batch_response(response)  # type: ignore[arg-type]
    first, second, third = result.responses
    assert (first.status_code, first.content_id, first.entity_id) == (
        204,
        "1",
        "6ed81853-7b75-e911-a97a-000d3a34a1bd",
    )
    assert (second.status_code, second.error_code) == (400, "0x80044331")
    assert third.data == {"value": [{"fullname": "A B"}]}


def test_round_trip_parse_of_rendered_operations_keeps_order_and_bodies() -> None:
    results: list[OperationResult | ChangeSetResult] = [
        OperationResult(201, {"Content-Type": "application/json"}, '{"name":"Ünïcode"}'.encode(), None),
        ChangeSetResult([OperationResult(204, {}, b"", str(i)) for i in range(3)]),
    ]
    body, content_type = render_batch_response(results)
    # The response is itself valid multipart: split it with the same parser rules (status lines are not
    # requests, so only the structure is checked here).
    boundary = content_type.split("boundary=")[1]
    assert body.decode().count(f"--{boundary}\r\n") == 2
    assert "Ünïcode" in body.decode()
