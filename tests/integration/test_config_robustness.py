"""Whatever a client sends to the configuration API, the answer is a clear 2xx/4xx — never a 500.

Seeded random mutations of a valid configuration (wrong types, unicode, deletions, huge and odd values)
go through PUT (whole and per step) and validate; a 500 would mean bad input reached the error path.
"""

from __future__ import annotations

import copy
import logging
import random
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from core.domain.config import Step
from core.entrypoints import config_api, meta_api
from core.settings import get_settings
from tests.support import tokens
from tests.support.azurite import Azurite, free_port
from tests.support.http import body_json, call, configure_app, request
from tests.unit.test_config_validation import valid_doc

pytestmark = pytest.mark.integration

ODD_VALUES: list[Any] = [
    None, True, 0, -1, 2**70, 1.5e308, "", " ", "ü", "🦄" * 50, "\u0000", "\u202e", "a" * 5000, [], [1, "x"],
    {}, {"operator": "and"}, {"kind": "engagement"}, "company.", "company.company.name",
    "00000000-0000-0000-0000-000000000000",
]  # fmt: skip


def _paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*path, i))


def _mutate(doc: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    for _ in range(rng.randint(1, 4)):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            break
        path = rng.choice(paths)
        parent: Any = doc
        for part in path[:-1]:
            parent = parent[part]
        action = rng.random()
        if action < 0.15 and isinstance(parent, dict):
            del parent[path[-1]]
        elif action < 0.25 and isinstance(parent, dict):
            parent[rng.choice(["ünknown", "value", "kind", "workspaceId", "__proto__"])] = rng.choice(
                ODD_VALUES
            )
        else:
            parent[path[-1]] = copy.deepcopy(rng.choice(ODD_VALUES))
    return doc


@pytest.fixture()
def ws(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    configure_app(monkeypatch, azurite.connection_string)
    yield f"ws-{uuid.uuid4().hex[:12]}"
    get_settings.cache_clear()


def test_random_bad_configurations_never_cause_a_500(ws: str, caplog: pytest.LogCaptureFixture) -> None:
    rng = random.Random(20261127)
    caplog.set_level(logging.ERROR)
    statuses: dict[int, int] = {}
    for i in range(150):
        doc = _mutate(valid_doc(), rng)
        headers = {**tokens.bearer(ws), "If-Match": "*"} if i % 2 else tokens.bearer(ws)
        if i % 3 == 0:
            step = rng.choice(list(Step))
            section = doc.get(step.member, rng.choice(ODD_VALUES))
            req = request("PUT", "x", json_body=section, headers=headers, route_params={"step": step.value})
            resp = call(config_api.put_dynamics_config_step, req)
        else:
            resp = call(config_api.put_dynamics_config, request("PUT", "x", json_body=doc, headers=headers))
        statuses[resp.status_code] = statuses.get(resp.status_code, 0) + 1
        assert resp.status_code in {200, 400, 412, 428}, (doc, resp.get_body())
        if resp.status_code == 400:
            assert body_json(resp)["errors"], resp.get_body()
        report = call(
            config_api.validate_dynamics_config, request("POST", "x", json_body=doc, headers=headers)
        )
        assert report.status_code == 200
    assert statuses.get(400, 0) > 50  # the mutations really were bad, mostly
    assert "unhandled error" not in caplog.text


def test_health_reports_unreachable_storage(monkeypatch: pytest.MonkeyPatch, azurite: Azurite) -> None:
    dead = azurite.connection_string.replace(str(azurite.table_port), str(free_port()))
    configure_app(monkeypatch, dead)
    try:
        resp = call(meta_api.get_health, request("GET", "health"))
        assert resp.status_code == 503 and body_json(resp)["storage"] == "unreachable"
    finally:
        get_settings.cache_clear()
