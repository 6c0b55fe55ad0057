"""$batch: the request body is multipart/mixed with CRLF line ends; responses (CRLF or LF, nested change
sets, 400 with parts) are parsed into per-operation status, headers, JSON body and Content-ID."""

from __future__ import annotations

import json
import re

import pytest
import requests

from core.adapters.dataverse import BatchOperation, ChangeSet, NotFound
from core.adapters.dataverse.batch import build_batch_body, parse_batch_response
from core.adapters.dataverse.errors import TransientError
from tests.unit.test_dataverse_client import API, GUID, error, make_client, raises, response

TASK_ID = "a59c24f3-fafc-e411-80dd-00155d2a68cb"

SAMPLE_RESPONSE = f"""--batchresponse_c1bd45c1
Content-Type: multipart/mixed; boundary=changesetresponse_ff83b4f1

--changesetresponse_ff83b4f1
Content-Type: application/http
Content-Transfer-Encoding: binary
Content-ID: 1

HTTP/1.1 204 No Content
OData-Version: 4.0
OData-EntityId: {API}tasks({TASK_ID})


--changesetresponse_ff83b4f1
Content-Type: application/http
Content-Transfer-Encoding: binary
Content-ID: 2

HTTP/1.1 400 Bad Request
Content-Type: application/json; odata.metadata=minimal

{{"error":{{"code":"0x80044331","message":"A validation error occurred."}}}}
--changesetresponse_ff83b4f1--
--batchresponse_c1bd45c1
Content-Type: application/http
Content-Transfer-Encoding: binary

HTTP/1.1 200 OK
Content-Type: application/json; odata.metadata=minimal
OData-Version: 4.0

{{"@odata.context":"x","value":[{{"subject":"Task 1"}}]}}
--batchresponse_c1bd45c1--
"""
CONTENT_TYPE = "multipart/mixed; boundary=batchresponse_c1bd45c1"


def _operations() -> list[BatchOperation | ChangeSet]:
    return [
        ChangeSet(
            [
                BatchOperation("POST", "accounts", {"name": "Contoso"}, content_id="1"),
                BatchOperation(
                    "POST",
                    "contacts",
                    {"lastname": "Doe", "parentcustomerid_account@odata.bind": "$1"},
                    headers={"MSCRM.SuppressDuplicateDetection": "false"},
                ),
                BatchOperation("PATCH", "$1", {"description": "linked"}),
            ]
        ),
        BatchOperation("GET", "contacts?$select=fullname&$filter=lastname eq 'O''Neil'"),
        BatchOperation("GET", "contacts", params=[("$filter", "telephone1 eq '+1 & 2#'")]),
    ]


def test_request_body_uses_crlf_everywhere_and_the_documented_layout() -> None:
    boundary, body = build_batch_body(_operations(), "/api/data/v9.2/", boundary="batch_test")
    assert boundary == "batch_test"
    text = body.decode()
    assert "\n" not in text.replace("\r\n", "")  # no bare LF anywhere
    lines = text.split("\r\n")
    assert lines[0] == "--batch_test" and lines[-2] == "--batch_test--" and lines[-1] == ""
    changeset = re.search(r"boundary=(changeset_[0-9a-f-]+)", text)
    assert changeset
    cs = changeset.group(1)
    assert lines.count(f"--{cs}") == 3 and lines.count(f"--{cs}--") == 1
    assert "Content-ID: 1" in lines and "Content-ID: 2" in lines and "Content-ID: 3" in lines
    assert "POST /api/data/v9.2/accounts HTTP/1.1" in lines
    assert "PATCH $1 HTTP/1.1" in lines  # a Content-ID reference is not prefixed
    # request lines are percent-encoded: no raw space, and & + # inside values cannot break the query
    assert "GET /api/data/v9.2/contacts?$select=fullname&$filter=lastname%20eq%20'O''Neil' HTTP/1.1" in lines
    assert "GET /api/data/v9.2/contacts?$filter=telephone1%20eq%20'%2B1%20%26%202%23' HTTP/1.1" in lines
    assert "MSCRM.SuppressDuplicateDetection: false" in lines
    assert "Content-Type: application/json; type=entry" in lines
    index = lines.index("POST /api/data/v9.2/contacts HTTP/1.1")
    blank = lines.index("", index)
    assert json.loads(lines[blank + 1]) == {"lastname": "Doe", "parentcustomerid_account@odata.bind": "$1"}
    # each part: MIME headers, blank line, request line
    first_part = lines.index(f"--{cs}")
    assert lines[first_part + 1 : first_part + 5] == [
        "Content-Type: application/http",
        "Content-Transfer-Encoding: binary",
        "Content-ID: 1",
        "",
    ]


def test_invalid_batches_are_refused_before_sending() -> None:
    with pytest.raises(ValueError):
        ChangeSet([BatchOperation("GET", "contacts")])
    with pytest.raises(ValueError):
        build_batch_body([BatchOperation("GET", "WhoAmI")] * 1001, "/api/data/v9.2/")
    with pytest.raises(ValueError):
        build_batch_body([], "/api/data/v9.2/")


@pytest.mark.parametrize("newline", ["\r\n", "\n"])
def test_response_parsing_with_crlf_or_lf(newline: str) -> None:
    raw = SAMPLE_RESPONSE.replace("\n", newline).encode()
    parts = parse_batch_response(CONTENT_TYPE, raw)
    assert [p.status for p in parts] == [204, 400, 200]
    created, failed, read = parts
    assert created.content_id == "1" and created.ok and created.entity_id == TASK_ID
    assert created.body is None and created.headers["odata-version"] == "4.0"
    assert failed.content_id == "2" and not failed.ok
    assert failed.error is not None and failed.error.code == "0x80044331"
    assert read.content_id is None and read.body["value"] == [{"subject": "Task 1"}]


def test_unreadable_response_is_an_error() -> None:
    with pytest.raises(ValueError):
        parse_batch_response("application/json", b"{}")
    with pytest.raises(ValueError):
        parse_batch_response(
            CONTENT_TYPE, b"--batchresponse_c1bd45c1\r\n\r\nnot http\r\n--batchresponse_c1bd45c1--"
        )


def test_execute_batch_sends_multipart_and_returns_parts_even_on_overall_400() -> None:
    client, transport, _, _ = make_client(
        response(400, raw=SAMPLE_RESPONSE.encode(), headers={"Content-Type": CONTENT_TYPE})
    )
    parts = client.execute_batch(_operations(), caller_object_id="aad-1")
    assert [p.status for p in parts] == [204, 400, 200]
    sent = transport.requests[0]
    assert sent.url == API + "$batch" and sent.method == "POST"
    assert sent.headers["Content-Type"].startswith("multipart/mixed; boundary=batch_")
    assert sent.headers["CallerObjectId"] == "aad-1"
    assert "Prefer" not in sent.headers
    with pytest.raises(Exception, match="validation error"):
        parts[1].raise_for_error()


def test_continue_on_error_preference() -> None:
    client, transport, _, _ = make_client(
        response(200, raw=SAMPLE_RESPONSE.encode(), headers={"Content-Type": CONTENT_TYPE})
    )
    client.execute_batch([BatchOperation("GET", "WhoAmI")], continue_on_error=True)
    assert transport.requests[0].headers["Prefer"] == "odata.continue-on-error"


def test_a_batch_error_without_parts_is_raised() -> None:
    client, _, _, _ = make_client(error(404, "0x80060888", "Resource not found for the segment 'nope'."))
    with pytest.raises(NotFound):
        client.execute_batch([BatchOperation("GET", "nope")])


def test_batch_is_repeated_after_5xx_only_when_every_operation_is_safe() -> None:
    ok = response(200, raw=SAMPLE_RESPONSE.encode(), headers={"Content-Type": CONTENT_TYPE})
    client, transport, _, _ = make_client(error(503, "0x0", "busy"), ok)
    safe = [
        BatchOperation("GET", "WhoAmI"),
        ChangeSet([BatchOperation("PATCH", f"contacts({GUID})", {"a": 1}, headers={"If-Match": "*"})]),
        ChangeSet([BatchOperation("POST", "contacts", {"contactid": GUID}, idempotent=True)]),
    ]
    assert len(client.execute_batch(safe)) == 3
    assert len(transport.requests) == 2
    client, transport, _, _ = make_client(error(503, "0x0", "busy"))
    with pytest.raises(TransientError):
        client.execute_batch(_operations())  # contains POSTs without a client id
    assert len(transport.requests) == 1
    client, transport, _, _ = make_client(raises(requests.exceptions.ConnectionError("aborted")))
    with pytest.raises(TransientError):
        client.execute_batch(_operations())
    assert len(transport.requests) == 1
