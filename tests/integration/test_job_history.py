"""Export history over 500 jobs: filters (state, entity, trigger, period, requester), newest first, cursor
pages that neither skip nor repeat a job while new jobs arrive, and problem+json naming a bad parameter.

The jobs are written through the job store (job row + index row, as a submission writes them), not run:
the history reads what the store holds. Calls go through the function as the host calls it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from core import bootstrap
from core.adapters.storage.job_store import JobRow
from core.domain.jobs import ChunkState
from core.entrypoints import exports_api
from core.settings import get_settings
from tests.support import tokens
from tests.support.azurite import Azurite
from tests.support.http import body_json, call, configure_app, request

pytestmark = pytest.mark.integration

JOBS = 500
START = dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.UTC)


@pytest.fixture()
def ws(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    configure_app(monkeypatch, azurite.connection_string)
    yield f"ws-{uuid.uuid4().hex[:12]}"
    get_settings.cache_clear()


def _job(ws: str, n: int) -> JobRow:
    """Job ``n``: every 2nd companies, every 5th automatic, every 3rd by u-a; every 4th ended failed (all
    its records invalid), every 50th still queued (one chunk, not started), the others succeeded."""
    queued = n % 50 == 0
    return JobRow(
        workspace_id=ws,
        job_id=str(uuid.UUID(int=n + 1)),
        entity="companies" if n % 2 else "contacts",
        trigger="automatic" if n % 5 == 0 else "manual",
        dry_run=False,
        user_id="u-a" if n % 3 == 0 else "u-b",
        total_records=2,
        total_chunks=1 if queued else 0,
        created_at=(START + dt.timedelta(minutes=n)).isoformat(),
        invalid_count=2 if n % 4 == 0 and not queued else 0,
    )


def _state(n: int) -> str:
    return "queued" if n % 50 == 0 else "failed" if n % 4 == 0 else "succeeded"


def _write(jobs: list[JobRow]) -> None:
    store = bootstrap.app().export_store
    store.ensure_ready()

    def one(job: JobRow) -> None:
        store.create_job(job)
        store.index_job(job)
        if job.total_chunks:
            store.put_chunk(job.workspace_id, job.job_id, 0, ChunkState.QUEUED)  # its row; no message

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(one, jobs))


def _get(ws: str, **params: str) -> Any:
    resp = call(
        exports_api.list_exports,
        request("GET", "dynamics/exports", headers=tokens.bearer(ws, role="member"), params=params),
    )
    return resp


def _all(ws: str, limit: str = "100", **params: str) -> tuple[list[str], int]:
    """Every job id the history lists, page by page; and how many pages it took."""
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        resp = _get(ws, limit=limit, **params, **({"cursor": cursor} if cursor else {}))
        assert resp.status_code == 200, resp.get_body()
        page = body_json(resp)
        pages += 1
        assert len(page["jobs"]) <= int(limit)
        seen += [j["jobId"] for j in page["jobs"]]
        cursor = page.get("nextCursor")
        if not cursor:
            return seen, pages


def _ids(ns: list[int]) -> list[str]:
    """Job ids of ``ns``, newest first."""
    return [str(uuid.UUID(int=n + 1)) for n in sorted(ns, reverse=True)]


def test_history_filters_and_pages_500_jobs_newest_first(ws: str) -> None:
    _write([_job(ws, n) for n in range(JOBS)])
    everything = list(range(JOBS))

    listed, pages = _all(ws)
    assert listed == _ids(everything) and pages == 5

    first = body_json(_get(ws, limit="1"))["jobs"][0]
    assert first["jobId"] == _ids([JOBS - 1])[0] and first["state"] == "succeeded"
    assert first["durationSeconds"] == 0 and first["topErrors"] == []  # nothing ran: finished on submit

    def expect(**params: str) -> list[str]:
        return _all(ws, **params)[0]

    assert expect(entity="companies") == _ids([n for n in everything if n % 2])
    assert expect(trigger="automatic") == _ids([n for n in everything if n % 5 == 0])
    assert expect(requestedBy="u-a") == _ids([n for n in everything if n % 3 == 0])
    assert expect(state="failed") == _ids([n for n in everything if _state(n) == "failed"])
    assert expect(state="queued", limit="3") == _ids([n for n in everything if _state(n) == "queued"])
    assert expect(state="running") == []
    period = {"from": (START + dt.timedelta(minutes=100)).isoformat(), "to": "2026-11-01T12:00:00+02:00"}
    assert expect(**period) == _ids(list(range(100, 120)))  # 12:00+02:00 is 08:00Z + 120 minutes
    combined = expect(entity="contacts", state="failed", requestedBy="u-a", limit="7")
    assert combined == _ids([n for n in everything if n % 2 == 0 and _state(n) == "failed" and n % 3 == 0])


def test_a_finished_job_whose_index_write_was_lost_is_listed_under_its_state(ws: str) -> None:
    # Index rows as written at submission only (the finish's write lost): the first read is filtered.
    _write([_job(ws, n) for n in range(8)])
    assert _all(ws, state="failed")[0] == _ids([4])
    assert _all(ws, state="succeeded", limit="2")[0] == _ids([1, 2, 3, 5, 6, 7])
    assert _all(ws, state="queued")[0] == _ids([0])
    assert _all(ws)[0] == _ids(list(range(8)))


def test_pages_neither_skip_nor_repeat_jobs_while_new_ones_arrive(ws: str) -> None:
    _write([_job(ws, n) for n in range(JOBS)])
    seen: list[str] = []
    cursor: str | None = None
    newer = 0
    while True:
        page = body_json(_get(ws, limit="60", **({"cursor": cursor} if cursor else {})))
        seen += [j["jobId"] for j in page["jobs"]]
        # Jobs submitted between two pages are newer than every job listed so far.
        _write([_job(ws, JOBS + 100 + newer)])
        newer += 1
        cursor = page.get("nextCursor")
        if not cursor:
            break
    assert seen == _ids(list(range(JOBS)))
    fresh = body_json(_get(ws, limit=str(newer)))["jobs"]
    assert [j["jobId"] for j in fresh] == _ids([JOBS + 100 + i for i in range(newer)])


@pytest.mark.parametrize(
    ("params", "pointer"),
    [
        ({"state": "exploded"}, "/state"),
        ({"entity": "leads"}, "/entity"),
        ({"trigger": "sometimes"}, "/trigger"),
        ({"from": "yesterday"}, "/from"),
        ({"to": "2026-11-01T08:00:00"}, "/to"),  # no offset: which day it is depends on where you are
        ({"from": "2026-11-02T00:00:00Z", "to": "2026-11-01T00:00:00Z"}, "/to"),
        ({"from": "9999-12-31T23:59:59-05:00"}, "/from"),  # past the calendar's end in UTC
        ({"to": "1970-01-01T00:00:00+01:00"}, "/to"),  # 1969 in UTC
        ({"requestedBy": "not a user id!"}, "/requestedBy"),
        ({"cursor": "bm90LW91cnM"}, "/cursor"),
        ({"limit": "101"}, "/limit"),
    ],
)
def test_a_bad_filter_is_a_problem_naming_it(ws: str, params: dict[str, str], pointer: str) -> None:
    resp = _get(ws, **params)
    assert resp.status_code == 400 and resp.mimetype == "application/problem+json"
    assert [e["pointer"] for e in body_json(resp)["errors"]] == [pointer]
