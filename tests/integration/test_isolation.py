"""A token for workspace A can neither read nor change workspace B, by any route or id."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from core.entrypoints import config_api, integrations_api, meta_api
from core.settings import get_settings
from tests.support import tokens
from tests.support.azurite import Azurite
from tests.support.http import body_json, call, configure_app, request, user_function, without_warnings
from tests.unit.test_config_validation import valid_doc

pytestmark = pytest.mark.integration


@pytest.fixture()
def two(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    configure_app(monkeypatch, azurite.connection_string)
    suffix = uuid.uuid4().hex[:8]
    yield f"ws-a-{suffix}", f"ws-b-{suffix}"
    get_settings.cache_clear()


def _call(fn: Any, method: str, ws: str, role: str = "admin", **kw: Any) -> Any:
    return call(fn, request(method, "x", headers={**tokens.bearer(ws, role), **kw.pop("headers", {})}, **kw))


def test_workspace_b_sees_and_changes_nothing_of_a(two: tuple[str, str]) -> None:
    a, b = two
    saved = _call(config_api.put_dynamics_config, "PUT", a, json_body=valid_doc())
    assert saved.status_code == 200
    assert (
        _call(
            integrations_api.put_integration,
            "PUT",
            a,
            json_body={"enabled": True},
            route_params={"crm": "dynamics"},
        ).status_code
        == 200
    )

    # B reads: defaults, no history, no active CRM — whatever ids it puts in query, headers or body.
    spoof = {"params": {"workspace_id": a, "workspaceId": a}, "headers": {"X-Workspace-Id": a}}
    got = _call(config_api.get_dynamics_config, "GET", b, **spoof)
    assert got.headers["ETag"] == '"v0"' and body_json(got)["fieldMapping"]["contacts"] == []
    for step in ("sync-identifiers", "field-mapping", "campaign-mapping", "user-mapping"):
        step_resp = _call(config_api.get_dynamics_config_step, "GET", b, route_params={"step": step}, **spoof)
        assert step_resp.headers["ETag"] == '"v0"'
    assert body_json(_call(config_api.get_dynamics_config_history, "GET", b, **spoof))["versions"] == []
    listed = body_json(_call(integrations_api.list_integrations, "GET", b, **spoof))
    assert listed["activeCrm"] is None

    # B writes with A's ETag: refused, A untouched; a body naming A's workspace is refused as unknown.
    stale = _call(
        config_api.put_dynamics_config, "PUT", b, json_body=valid_doc(), headers={"If-Match": '"v1"'}
    )
    assert stale.status_code == 412
    spoofed_body = valid_doc() | {"workspaceId": a}
    refused = _call(config_api.put_dynamics_config, "PUT", b, json_body=spoofed_body)
    assert refused.status_code == 400 and body_json(refused)["errors"][0]["pointer"] == "/workspaceId"
    assert (
        _call(
            integrations_api.put_integration,
            "PUT",
            b,
            json_body={"enabled": False},
            route_params={"crm": "dynamics"},
        ).status_code
        == 200
    )
    mine = _call(
        integrations_api.put_integration,
        "PUT",
        b,
        json_body={"enabled": True},
        route_params={"crm": "hubspot"},
    )
    assert mine.status_code == 200  # B's own choice, independent of A's active Dynamics

    a_now = _call(config_api.get_dynamics_config, "GET", a)
    assert a_now.headers["ETag"] == '"v1"'
    assert without_warnings(body_json(a_now)) == without_warnings(body_json(saved))
    assert body_json(_call(integrations_api.list_integrations, "GET", a))["activeCrm"] == "dynamics"
    assert body_json(_call(integrations_api.list_integrations, "GET", b))["activeCrm"] == "hubspot"


def test_similar_workspace_ids_do_not_share_a_partition(two: tuple[str, str]) -> None:
    a, _ = two
    lookalikes = [a.upper(), a + ".", a.replace("-", "_"), a + "%2F", a + ":x"]
    assert _call(config_api.put_dynamics_config, "PUT", a, json_body=valid_doc()).status_code == 200
    for other in lookalikes:
        resp = _call(config_api.get_dynamics_config, "GET", other)
        assert resp.status_code in (200, 401)
        if resp.status_code == 200:
            assert resp.headers["ETag"] == '"v0"', other


ROUTES = [
    (config_api.get_dynamics_config, "GET", None, False),
    (config_api.put_dynamics_config, "PUT", None, True),
    (config_api.get_dynamics_config_step, "GET", "field-mapping", False),
    (config_api.put_dynamics_config_step, "PUT", "field-mapping", True),
    (config_api.validate_dynamics_config, "POST", None, False),
    (config_api.get_dynamics_config_history, "GET", None, False),
    (integrations_api.list_integrations, "GET", None, False),
    (integrations_api.put_integration, "PUT", "dynamics", True),
]


@pytest.mark.parametrize(
    ("fn", "method", "param", "admin_only"), ROUTES, ids=[user_function(r[0]).__name__ for r in ROUTES]
)
def test_every_route_needs_a_token_and_writes_need_admin(
    two: tuple[str, str], fn: Any, method: str, param: str | None, admin_only: bool
) -> None:
    a, _ = two
    params = {"step": param, "crm": param} if param else None
    body = {"enabled": True} if fn is integrations_api.put_integration else {}
    anonymous = call(fn, request(method, "x", json_body=body, route_params=params))
    assert anonymous.status_code == 401 and anonymous.mimetype == "application/problem+json"
    forged = tokens.rs256(tokens.claims(workspace_id=a), key_name="attacker")
    assert (
        call(
            fn,
            request(
                method,
                "x",
                json_body=body,
                route_params=params,
                headers={"Authorization": f"Bearer {forged}"},
            ),
        ).status_code
        == 401
    )
    member = call(
        fn, request(method, "x", json_body=body, route_params=params, headers=tokens.bearer(a, "member"))
    )
    assert (member.status_code == 403) is admin_only


def test_health_and_openapi_are_anonymous(two: tuple[str, str]) -> None:
    health = call(meta_api.get_health, request("GET", "health"))
    assert health.status_code == 200 and body_json(health)["storage"] == "ok"
    doc = call(meta_api.get_openapi, request("GET", "openapi.json"))
    assert doc.status_code == 200 and body_json(doc)["openapi"] == "3.1.0"
