"""Job records queries: a 400 about a query parameter names it in ``errors[].pointer`` (as the fields API
and ``status`` do), so the frontend can show which one is wrong. The handlers refuse these before any
storage call, so no service is needed."""

from __future__ import annotations

from typing import Any

import pytest

from core.entrypoints import activities_api, exports_api
from tests.support import tokens
from tests.support.http import body_json, call, request

pytestmark = pytest.mark.integration

BAD_QUERIES = [({"cursor": "abc"}, "/cursor"), ({"limit": "0"}, "/limit"), ({"status": "nope"}, "/status")]


def _pointers(handler: Any, route: str, params: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    with tokens.configured(monkeypatch):
        req = request(
            "GET",
            route,
            headers=tokens.bearer("ws-query-errors"),
            params=params,
            route_params={"jobId": "0d5c7a4e-2f8b-4c61-a3f9-6e2b8d1c4f70"},
        )
        response = call(handler, req)
    assert response.status_code == 400
    return [e["pointer"] for e in body_json(response).get("errors", [])]


@pytest.mark.parametrize(("params", "pointer"), BAD_QUERIES)
def test_activity_records_name_the_bad_query_parameter(
    params: dict[str, str], pointer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    route = "dynamics/activities/x/records"
    assert _pointers(activities_api.get_activity_records, route, params, monkeypatch) == [pointer]


@pytest.mark.parametrize(("params", "pointer"), BAD_QUERIES)
def test_export_records_name_the_bad_query_parameter(
    params: dict[str, str], pointer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    route = "dynamics/exports/x/records"
    assert _pointers(exports_api.get_export_records, route, params, monkeypatch) == [pointer]
