"""The shared HTTP helpers: bad input always gets a clear 4xx problem, never a 500."""

from __future__ import annotations

import json
from typing import Any

import azure.functions as func
import pydantic
import pytest

from core.entrypoints.http_support import (
    HttpProblem,
    anonymous,
    json_pointer,
    json_response,
    read_json,
    read_model,
)
from tests.support.http import body_json, request


def raw(body: bytes, content_type: str | None = "application/json", **headers: str) -> func.HttpRequest:
    hdrs = dict(headers)
    if content_type:
        hdrs["Content-Type"] = content_type
    return request("PUT", "x", body=body, headers=hdrs)


def problem_of(req: func.HttpRequest, **kw: Any) -> HttpProblem:
    with pytest.raises(HttpProblem) as info:
        read_json(req, **kw)
    return info.value


def test_json_round_trip_with_unicode() -> None:
    data = {"name": "Zoë 🚀 日本語", "n": [1, 2.5, None, True]}
    assert read_json(request("PUT", "x", json_body=data)) == data
    assert read_json(raw('{"a":"ñ"}'.encode(), "application/json; charset=utf-8")) == {"a": "ñ"}
    assert read_json(raw(b'{"a":1}', "application/merge-patch+json")) == {"a": 1}


@pytest.mark.parametrize(
    "ctype", [None, "text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
def test_wrong_content_type_is_415(ctype: str | None) -> None:
    assert problem_of(raw(b"{}", ctype)).status == 415


def test_malformed_json_is_400_with_position() -> None:
    p = problem_of(raw(b'{"a": 1,\n "b": }'))
    assert p.status == 400 and "line 2 column" in (p.detail or "")


@pytest.mark.parametrize(
    "body",
    [b"", b"   ", b"\xff\xfe{}", b'{"a": NaN}', b"[" * 100_000, b'{"a": "\\ud800"}', b'{"\\udc00": 1}'],
)
def test_other_malformed_bodies_are_400(body: bytes) -> None:
    assert problem_of(raw(body)).status == 400


def test_ten_megabytes_is_413_without_being_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[int] = []
    loads = json.loads

    def counting_loads(text: str, **kw: Any) -> Any:
        parsed.append(len(text))
        return loads(text, **kw)

    monkeypatch.setattr(json, "loads", counting_loads)
    big = b'{"a":"' + b"x" * (10 * 1024 * 1024) + b'"}'
    assert problem_of(raw(big)).status == 413
    declared = raw(b"{}", **{"Content-Length": str(10 * 1024 * 1024)})
    assert problem_of(declared).status == 413
    assert parsed == []  # refused on its size, before any decoding or parsing
    assert read_json(raw(b'{"a":"' + b"x" * 2000 + b'"}'), max_bytes=4096)["a"] == "x" * 2000
    assert parsed == [2008]


class Thing(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    name: str
    items: list[int]


def test_model_errors_point_into_the_body() -> None:
    req = request("PUT", "x", json_body={"items": [1, "two", 3], "nope": True})
    with pytest.raises(HttpProblem) as info:
        read_model(req, Thing)
    pointers = {e["pointer"] for e in info.value.errors or []}
    assert pointers == {"/name", "/items/1", "/nope"}


def test_json_pointer_escapes() -> None:
    assert json_pointer(["a/b", "c~d", 3]) == "/a~1b/c~0d/3"


def test_unexpected_exception_is_500_with_correlation_id_and_no_internals(
    caplog: pytest.LogCaptureFixture,
) -> None:
    @anonymous
    def boom(req: func.HttpRequest) -> func.HttpResponse:
        raise RuntimeError("secret-internal-detail")

    resp = boom(request("GET", "x"))
    body = body_json(resp)
    assert resp.status_code == 500 and resp.mimetype == "application/problem+json"
    assert body["correlationId"] == resp.headers["X-Correlation-Id"]
    assert "secret-internal-detail" not in resp.get_body().decode()
    assert body["correlationId"] in caplog.text


def test_problem_rendering() -> None:
    @anonymous
    def conflict(req: func.HttpRequest) -> func.HttpResponse:
        raise HttpProblem(
            409, "Conflict", "x", errors=[{"pointer": "/a", "message": "m"}], headers={"A": "b"}
        )

    resp = conflict(request("GET", "x"))
    assert resp.status_code == 409 and resp.headers["A"] == "b"
    assert body_json(resp) == {
        "type": "about:blank",
        "title": "Conflict",
        "status": 409,
        "detail": "x",
        "errors": [{"pointer": "/a", "message": "m"}],
    }
    ok = json_response({"ü": 1}, status=201)
    assert ok.status_code == 201 and body_json(ok) == {"ü": 1}
