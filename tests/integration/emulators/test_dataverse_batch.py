"""$batch over HTTP (webapi/execute-batch-operations-using-web-api.md): change sets are atomic, Content-ID
references, GETs outside change sets, continue-on-error, the 1,000-request limit, CRLF and LF-only bodies."""

from __future__ import annotations

import json
import re
import uuid

import pytest

pytestmark = pytest.mark.integration


def _part(
    method: str, url: str, body: dict | None = None, content_id: str | None = None, nl: str = "\r\n"
) -> str:
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id:
        lines.append(f"Content-ID: {content_id}")
    lines += ["", f"{method} {url} HTTP/1.1"]
    if body is not None:
        lines += ["Content-Type: application/json", "", json.dumps(body)]
    else:
        lines += ["Accept: application/json", ""]
    return nl.join(lines) + nl


def _batch(parts: list[str | list[str]], nl: str = "\r\n") -> tuple[bytes, str]:
    boundary = f"batch_{uuid.uuid4()}"
    out = []
    for item in parts:
        if isinstance(item, list):
            change = f"changeset_{uuid.uuid4()}"
            out.append(f"--{boundary}{nl}Content-Type: multipart/mixed; boundary={change}{nl}{nl}")
            for part in item:
                out.append(f"--{change}{nl}{part}")
            out.append(f"--{change}--{nl}")
        else:
            out.append(f"--{boundary}{nl}{item}")
    out.append(f"--{boundary}--{nl}")
    return "".join(out).encode(), f"multipart/mixed; boundary={boundary}"


def _statuses(text: str) -> list[int]:
    return [int(s) for s in re.findall(r"^HTTP/1\.1 (\d{3})", text, re.M)]


@pytest.mark.parametrize("nl", ["\r\n", "\n"], ids=["crlf", "lf"])
def test_change_set_with_content_id_references(dv, nl) -> None:  # type: ignore[no-untyped-def]
    """execute-batch-operations-using-web-api.md#reference-uris-in-request-body: Content-ID $n in URLs and
    @odata.bind."""
    api = dv.api
    body, ctype = _batch(
        [
            [
                _part("POST", f"{api}accounts", {"name": "Batch Co"}, "1", nl),
                _part(
                    "POST",
                    f"{api}contacts",
                    {"lastname": "Inside", "parentcustomerid_account@odata.bind": "$1"},
                    "2",
                    nl,
                ),
                _part("PATCH", "$1", {"primarycontactid@odata.bind": "$2"}, "3", nl),
            ],
            _part("GET", f"{api}contacts?$select=lastname,_parentcustomerid_value", nl=nl),
        ],
        nl,
    )
    r = dv.post("$batch", data=body, headers={"Content-Type": ctype})
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("multipart/mixed; boundary=batchresponse_")
    assert _statuses(r.text) == [204, 204, 204, 200]
    assert "Content-ID: 1" in r.text and "Content-ID: 2" in r.text
    account = dv.get("accounts?$select=name,_primarycontactid_value").json()["value"][0]
    contact = dv.get("contacts?$select=_parentcustomerid_value").json()["value"][0]
    assert contact["_parentcustomerid_value"] == account["accountid"]
    assert account["_primarycontactid_value"] == contact["contactid"]


def test_failing_change_set_rolls_back_and_stops_the_batch(dv) -> None:  # type: ignore[no-untyped-def]
    """execute-batch-operations-using-web-api.md#change-sets: a change set is atomic; #handling-errors:
    without odata.continue-on-error the batch stops at the first failure and answers 400 Bad Request, its
    body holding the failing part."""
    api = dv.api
    body, ctype = _batch(
        [
            [
                _part("POST", f"{api}contacts", {"lastname": "Rolled"}, "1"),
                _part("POST", f"{api}contacts", {"lastname": "Back", "nosuchcolumn": 1}, "2"),
            ],
            _part("POST", f"{api}contacts", {"lastname": "NeverRun"}),
        ]
    )
    r = dv.post("$batch", data=body, headers={"Content-Type": ctype})
    assert r.status_code == 400
    assert r.headers["Content-Type"].startswith("multipart/mixed; boundary=batchresponse_")
    assert _statuses(r.text) == [400]
    assert "0x80048d19" in r.text
    assert dv.get("contacts").json()["value"] == []


def test_continue_on_error_runs_every_request(dv) -> None:  # type: ignore[no-untyped-def]
    """execute-batch-operations-using-web-api.md#handling-errors: Prefer odata.continue-on-error."""
    api = dv.api
    body, ctype = _batch(
        [
            _part("POST", f"{api}contacts", {"lastname": "One"}),
            _part("POST", f"{api}contacts", {"lastname": "x" * 51}),
            _part("POST", f"{api}contacts", {"lastname": "Three"}),
        ]
    )
    r = dv.post("$batch", data=body, headers={"Content-Type": ctype, "Prefer": "odata.continue-on-error"})
    assert r.status_code == 200
    assert _statuses(r.text) == [204, 400, 204]
    names = sorted(row["lastname"] for row in dv.get("contacts?$select=lastname").json()["value"])
    assert names == ["One", "Three"]


@pytest.mark.parametrize("continue_on_error", [False, True], ids=["stop", "continue-on-error"])
def test_the_handling_errors_example(dv, continue_on_error) -> None:  # type: ignore[no-untyped-def]
    """execute-batch-operations-using-web-api.md#handling-errors, its example verbatim: three tasks, the first
    with a subject over the task's 200 characters. Without the preference: 400 Bad Request whose body holds
    only the failing part; with it: 200 OK, the error part and two 204s."""
    account = dv.post("accounts", json={"name": "Batch errors"}).headers["OData-EntityId"].rsplit("/", 1)[1]
    bind = {"regardingobjectid_account_task@odata.bind": account}
    body, ctype = _batch(
        [
            _part("POST", "/api/data/v9.2/tasks", {"subject": "Subject is too long " + "x" * 181, **bind}),
            _part("POST", "/api/data/v9.2/tasks", {"subject": "Task 2 in batch", **bind}),
            _part("POST", "/api/data/v9.2/tasks", {"subject": "Task 3 in batch", **bind}),
        ]
    )
    headers = {"Content-Type": ctype}
    if continue_on_error:
        headers["Prefer"] = "odata.continue-on-error"
    r = dv.post("$batch", data=body, headers=headers)
    assert r.headers["Content-Type"].startswith("multipart/mixed; boundary=batchresponse_")
    errors = [json.loads(line) for line in r.text.splitlines() if line.startswith('{"error"')]
    assert errors == [
        {
            "error": {
                "code": "0x80044331",
                "message": "A validation error occurred.  The length of the 'subject' attribute of the "
                "'task' entity exceeded the maximum allowed length of '200'.",
            }
        }
    ]
    if continue_on_error:
        assert (r.status_code, _statuses(r.text)) == (200, [400, 204, 204])
        assert len(dv.get("tasks").json()["value"]) == 2
    else:
        assert (r.status_code, _statuses(r.text)) == (400, [400])
        assert dv.get("tasks").json()["value"] == []


def test_undeclared_content_id_reference(dv) -> None:  # type: ignore[no-untyped-def]
    """execute-batch-operations-using-web-api.md: an undeclared $n -> 400 "Content-ID Reference ... does not
    exist"."""
    body, ctype = _batch(
        [
            [
                _part(
                    "POST",
                    f"{dv.api}contacts",
                    {"lastname": "L", "parentcustomerid_account@odata.bind": "$9"},
                    "1",
                )
            ]
        ]
    )
    r = dv.post("$batch", data=body, headers={"Content-Type": ctype})
    assert "Content-ID Reference: '$9' does not exist in the batch context." in r.text
    assert dv.get("contacts").json()["value"] == []


def test_more_than_1000_requests_is_refused(dv) -> None:  # type: ignore[no-untyped-def]
    """execute-batch-operations-using-web-api.md#when-to-use-batch-requests: at most 1,000 requests."""
    body, ctype = _batch([_part("GET", f"{dv.api}WhoAmI") for _ in range(1001)])
    r = dv.post("$batch", data=body, headers={"Content-Type": ctype})
    assert r.status_code == 400
    ok_body, ok_type = _batch([_part("GET", f"{dv.api}WhoAmI") for _ in range(1000)])
    ok = dv.post("$batch", data=ok_body, headers={"Content-Type": ok_type})
    assert _statuses(ok.text) == [200] * 1000


def test_batch_counts_as_one_request_with_inner_operations(dataverse, dv) -> None:  # type: ignore[no-untyped-def]
    """api-limits.md: a batch is one request toward the limits; stats report its inner operations."""
    body, ctype = _batch([_part("POST", f"{dv.api}contacts", {"lastname": f"S{i}"}) for i in range(5)])
    dv.post("$batch", data=body, headers={"Content-Type": ctype})
    stats = dv.get("/_emulator/stats").json()
    assert stats["requests_by_kind"]["batch"] == 1
    assert stats["inner_operations"]["batch"] == 5
    assert stats["limits"]["admitted"] == 1


def test_impersonation_header_of_a_batch_part(dataverse, dv) -> None:  # type: ignore[no-untyped-def]
    """impersonate-another-user-web-api.md: the CallerObjectId header may be set on a request in a batch."""
    object_id = str(uuid.uuid4())
    user = dataverse.add_user(object_id=object_id)
    part = _part("POST", f"{dv.api}contacts", {"lastname": "ByPart"}).replace(
        "HTTP/1.1\r\n", f"HTTP/1.1\r\nCallerObjectId: {object_id}\r\n", 1
    )
    body, ctype = _batch([part])
    r = dv.post("$batch", data=body, headers={"Content-Type": ctype})
    assert _statuses(r.text) == [204]
    row = dv.get("contacts?$select=_createdby_value,_createdonbehalfby_value").json()["value"][0]
    assert row["_createdby_value"] == user
    assert row["_createdonbehalfby_value"] == dv.get("WhoAmI").json()["UserId"]


def test_a_get_inside_a_batch_may_be_up_to_64_kb(dv) -> None:  # type: ignore[no-untyped-def]
    """execute-batch-operations-using-web-api.md#when-to-use-batch-requests: a GET in a batch may carry a
    URL up to 64 KB, where a direct GET stops at 32 KB; past 64 KB the part is refused."""
    assert dv.post("contacts", json={"lastname": "Target"}).status_code == 204

    def url_of(length: int) -> str:
        head = f"{dv.api}contacts?$select=lastname&$filter=Microsoft.Dynamics.CRM.In(PropertyName='lastname',"
        values, i = ['"Target"'], 0
        while len(head) + len(",".join(values)) < length:
            values.append(f'"{"v" * 40}{i}"')
            i += 1
        return head + "PropertyValues=[" + ",".join(values) + "])"

    medium = url_of(48 * 1024)
    assert 32 * 1024 < len(medium) < 64 * 1024
    assert dv.get(medium).status_code == 414  # too long for a direct GET
    body, ctype = _batch([_part("GET", medium)])
    r = dv.post("$batch", data=body, headers={"Content-Type": ctype})
    assert r.status_code == 200 and _statuses(r.text) == [200]
    assert '"lastname":"Target"' in r.text.replace(" ", "")
    too_long = url_of(66 * 1024)
    body, ctype = _batch([_part("GET", too_long)])
    r = dv.post("$batch", data=body, headers={"Content-Type": ctype, "Prefer": "odata.continue-on-error"})
    assert _statuses(r.text) == [414]
