"""Hostile bodies are refused or marked invalid after bounded work, with small answers.

Each value is compared with its cap before any pattern runs, maps and lists in bodies have a maximum
size checked before their members are looked at, and the one error renderer lists at most 100 problems
(with their total). The timing of the worst case lives in ``bench/bounded_inputs.py``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from core.domain.values import MAX_EMAIL_LENGTH
from core.entrypoints import config_api, exports_api
from core.entrypoints.http_support import MAX_LISTED_PROBLEMS
from core.settings import get_settings
from tests.support import tokens
from tests.support.app import enable_dynamics
from tests.support.azurite import Azurite
from tests.support.http import body_json, call, configure_app, request
from tests.unit.test_config_validation import valid_doc

pytestmark = pytest.mark.integration


@pytest.fixture()
def workspace(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    configure_app(monkeypatch, azurite.connection_string)
    ws = f"ws-bounded-{uuid.uuid4().hex[:8]}"
    enable_dynamics(ws)
    saved = call(
        config_api.put_dynamics_config,
        request("PUT", "dynamics/config", json_body=valid_doc(), headers=tokens.bearer(ws)),
    )
    assert saved.status_code == 200
    yield ws
    get_settings.cache_clear()


def _post(fn: Any, ws: str, body: Any, **kw: Any) -> Any:
    return call(fn, request("POST", "dynamics/exports", json_body=body, headers=tokens.bearer(ws), **kw))


def test_a_200000_dot_email_is_one_invalid_record_not_a_stalled_request(workspace: str) -> None:
    hostile = "a@" + "." * 200_000 + "@"
    body = {
        "entity": "contacts",
        "records": [{"id": "c-hostile", "professionalEmail": hostile}, {"id": "c-fine", "lastName": "Ok"}],
    }
    response = _post(exports_api.post_export, workspace, body)
    assert response.status_code == 202, response.get_body()[:300]
    accepted = body_json(response)
    assert (accepted["accepted"], accepted["invalid"]) == (1, 1)
    records = call(
        exports_api.get_export_records,
        request(
            "GET",
            "x",
            headers=tokens.bearer(workspace),
            route_params={"jobId": accepted["jobId"]},
            params={"status": "invalid"},
        ),
    )
    (record,) = body_json(records)["records"]
    # The length cap answered, not the pattern: the value was never scanned by a regex.
    assert record["platformId"] == "c-hostile"
    assert record["errors"] == [
        {
            "field": "professionalEmail",
            "message": f"an email address is at most {MAX_EMAIL_LENGTH} characters",
        }
    ]


def test_500000_manual_values_keys_are_one_small_problem(workspace: str) -> None:
    manual = {f"field_{i}": "x" for i in range(500_000)}
    body = {"entity": "contacts", "records": [{"id": "c1"}], "manualValues": manual}
    raw = json.dumps(body).encode()
    assert len(raw) > 5_000_000
    response = call(
        exports_api.post_export,
        request(
            "POST",
            "dynamics/exports",
            body=raw,
            headers={**tokens.bearer(workspace), "Content-Type": "application/json"},
        ),
    )
    assert response.status_code == 400
    assert len(response.get_body()) < 4096
    problem = body_json(response)
    assert [e["pointer"] for e in problem["errors"]] == ["/manualValues"]


def test_the_error_renderer_lists_the_first_100_problems_and_their_total(workspace: str) -> None:
    # A configuration with thousands of bad members: each is a problem; the answer stays small.
    bad_users = [{"platformUserId": "", "dynamicsUserId": "not-a-guid"} for _ in range(5000)]
    response = call(
        config_api.put_dynamics_config,
        request(
            "PUT",
            "dynamics/config",
            json_body={"userMapping": {"users": bad_users}},
            headers=tokens.bearer(workspace),
        ),
    )
    assert response.status_code == 400
    problem = body_json(response)
    assert len(problem["errors"]) == MAX_LISTED_PROBLEMS
    assert problem["errorsTotal"] > MAX_LISTED_PROBLEMS
    assert len(response.get_body()) < 32_000


@pytest.mark.parametrize("digits", ["²", "١٢", "٣"])
def test_unicode_digits_in_a_query_are_a_400_naming_it(workspace: str, digits: str) -> None:
    response = call(
        config_api.get_dynamics_config_history,
        request("GET", "x", headers=tokens.bearer(workspace), params={"limit": digits}),
    )
    assert response.status_code == 400
    assert [e["pointer"] for e in body_json(response)["errors"]] == ["/limit"]


def _export(ws: str, n: int, key: str | None = None) -> Any:
    headers = {"Idempotency-Key": key} if key else {}
    body = {"entity": "contacts", "records": [{"id": f"c{n}", "lastName": "Ok"}]}
    return call(
        exports_api.post_export,
        request("POST", "dynamics/exports", json_body=body, headers={**tokens.bearer(ws), **headers}),
    )


def test_a_workspace_with_its_jobs_in_flight_is_told_when_to_come_back(
    workspace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOBS_MAX_ACTIVE_PER_WORKSPACE", "2")
    get_settings.cache_clear()
    # No worker runs here: both jobs stay queued.
    assert [_export(workspace, n, key=f"k{n}").status_code for n in (1, 2)] == [202, 202]
    refused = _export(workspace, 3)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert body_json(refused)["status"] == 429
    # A retry of an accepted request still answers its job; another workspace is not affected.
    assert _export(workspace, 1, key="k1").status_code == 202
    assert _export(workspace + "-other", 1).status_code != 429
    listed = call(exports_api.list_exports, request("GET", "x", headers=tokens.bearer(workspace)))
    assert len(body_json(listed)["jobs"]) == 2


def test_the_job_list_is_read_a_page_at_a_time(workspace: str) -> None:
    submitted = [body_json(_export(workspace, n))["jobId"] for n in range(5)]
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = body_json(
            call(
                exports_api.list_exports, request("GET", "x", headers=tokens.bearer(workspace), params=params)
            )
        )
        pages += 1
        assert len(page["jobs"]) <= 2
        seen += [j["jobId"] for j in page["jobs"]]
        cursor = page.get("nextCursor")
        if not cursor:
            break
    assert pages == 3
    assert seen == list(reversed(submitted))  # newest first, each once
    bad = call(
        exports_api.list_exports,
        request("GET", "x", headers=tokens.bearer(workspace), params={"cursor": "not-ours"}),
    )
    assert bad.status_code == 400
    assert [e["pointer"] for e in body_json(bad)["errors"]] == ["/cursor"]
