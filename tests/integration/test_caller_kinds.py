"""Who may call what, through the functions as the host calls them (docs/contracts.md "Who may call what").

Three kinds of caller: an admin and a member (people in the platform's web app, who act only as
themselves) and the platform's service (its own token audience; the only caller that logs activities,
submits automatic exports and names the user it acts for). Every authenticated operation admits exactly
the kinds its OpenAPI entry lists (``x-callers`` / ``security``) and answers 403 problem+json to the
others; people naming someone else are refused before anything is staged.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import azure.functions as func
import pytest

import function_app
from core import bootstrap, openapi
from core.domain.jobs import RecordAction, RecordOutcome
from core.entrypoints import activities_api, exports_api
from core.settings import get_settings
from tests.support import tokens
from tests.support.app import enable_dynamics
from tests.support.azurite import Azurite
from tests.support.http import body_json, call, configure_app, request

pytestmark = pytest.mark.integration

KINDS = ("admin", "member", "service")
CONTACT = {"id": "p-1", "firstName": "Ada", "lastName": "Lovelace", "company": {"name": "Acme"}}


@pytest.fixture()
def ws(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    configure_app(monkeypatch, azurite.connection_string)
    workspace = f"ws-{uuid.uuid4().hex[:12]}"
    enable_dynamics(workspace)
    yield workspace
    get_settings.cache_clear()


def _handlers() -> dict[tuple[str, str], Any]:
    found: dict[tuple[str, str], Any] = {}
    for fn in function_app.app.get_functions():
        for binding in fn.get_bindings():
            if binding.type == "httpTrigger":
                for method in binding.methods:
                    found[(str(method).split(".")[-1].upper(), f"/{binding.route}")] = fn.get_user_function()
    return found


def _documented_callers() -> dict[tuple[str, str], set[str]]:
    doc = openapi.document()
    return {
        (method.upper(), path): set(op["x-callers"])
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if op.get("security") != []
    }


def test_every_operation_admits_exactly_the_callers_it_documents(ws: str) -> None:
    handlers = _handlers()
    documented = _documented_callers()
    assert len(documented) >= 20
    mismatches: list[str] = []
    for (method, path), callers in sorted(documented.items()):
        route = path.removeprefix("/api/")
        params = {name: "x" for name in re.findall(r"{(\w+)}", path)}
        for kind in KINDS:
            req = request(method, route, route_params=params, headers=tokens.bearer(ws, role=kind))
            response: func.HttpResponse = handlers[(method, path)](req)
            refused = response.status_code == 403 and body_json(response).get("title") == "Forbidden"
            if refused == (kind in callers):
                mismatches.append(f"{kind} {method} {path}: {response.status_code} but documented {callers}")
            if refused:
                assert response.mimetype == "application/problem+json"
                assert kind in body_json(response)["detail"]  # says which kind was refused
    assert not mismatches, "\n".join(mismatches)


@pytest.mark.parametrize("role", ["member", "admin"])
def test_people_cannot_log_activities_for_anyone(ws: str, role: str) -> None:
    body = {
        "events": [
            {
                "id": "e-1",
                "contactId": "p-1",
                "kind": "task",
                "at": "2026-11-20T10:00:00Z",
                "userId": "pu-director",
                "identityId": "id-director",
                "subject": "Approved",
            }
        ],
        "contacts": [CONTACT],
        "identities": [{"id": "id-director", "userId": "pu-director"}],
    }
    resp = call(
        activities_api.post_activities,
        request("POST", "dynamics/activities", json_body=body, headers=tokens.bearer(ws, role=role)),
    )
    assert resp.status_code == 403 and resp.mimetype == "application/problem+json"
    assert "platform's service" in body_json(resp)["detail"]
    assert bootstrap.app().activity_service.list_jobs(ws) == []


def _map_fields(ws: str) -> None:
    admin = tokens.bearer(ws)
    from core.entrypoints import config_api

    current = call(config_api.get_dynamics_config, request("GET", "dynamics/config", headers=admin))
    config = body_json(current)
    config["fieldMapping"]["contacts"] = [
        {"kind": "platform_field", "platformField": "firstName", "dynamicsField": "firstname"}
    ]
    saved = call(
        config_api.put_dynamics_config,
        request(
            "PUT",
            "dynamics/config",
            json_body=config,
            headers={**admin, "If-Match": current.headers["ETag"]},
        ),
    )
    assert saved.status_code == 200, saved.get_body()


def _export(ws: str, role: str, user_id: str = "user-1", **extra: Any) -> func.HttpResponse:
    body = {"entity": "contacts", "records": [CONTACT], **extra}
    headers = tokens.bearer(ws, role=role, user_id=user_id)
    return call(exports_api.post_export, request("POST", "dynamics/exports", json_body=body, headers=headers))


def _requested_by(ws: str, resp: func.HttpResponse) -> str:
    assert resp.status_code == 202, resp.get_body()
    status = bootstrap.app().export_service.status(ws, body_json(resp)["jobId"])
    assert status is not None
    return str(status.requested_by)


def test_automatic_exports_and_naming_the_requester_or_identity_are_the_services_only(ws: str) -> None:
    _map_fields(ws)
    for role in ("member", "admin"):
        automatic = _export(ws, role, trigger="automatic")
        assert automatic.status_code == 403 and "automatic export" in body_json(automatic)["detail"]
        forged = _export(ws, role, userId="pu-director")
        assert forged.status_code == 403 and "userId" in body_json(forged)["detail"]
        as_identity = _export(ws, role, identityId="id-director")
        assert as_identity.status_code == 403 and as_identity.mimetype == "application/problem+json"
        assert "identityId" in body_json(as_identity)["detail"]
    assert bootstrap.app().export_service.list_jobs(ws) == []

    assert _requested_by(ws, _export(ws, "member", user_id="pu-member")) == "pu-member"  # manual: themselves
    assert _requested_by(ws, _export(ws, "service", trigger="automatic", userId="pu-owner")) == "pu-owner"


def test_current_crm_values_are_shown_to_admins_only(ws: str) -> None:
    _map_fields(ws)
    job_id = body_json(_export(ws, "admin", dryRun=True))["jobId"]
    changes = {
        "firstname": {"before": "Ada (as Dynamics has it)", "after": "Ada"},
        "lastname": {"before": None, "after": "Lovelace"},
    }
    bootstrap.app().export_store.save_outcomes(
        ws, job_id, [RecordOutcome(0, "p-1", RecordAction.UPDATED, str(uuid.uuid4()), changes=changes)]
    )

    def seen_by(role: str) -> Any:
        resp = call(
            exports_api.get_export_records,
            request(
                "GET",
                f"dynamics/exports/{job_id}/records",
                headers=tokens.bearer(ws, role=role),
                route_params={"jobId": job_id},
            ),
        )
        assert resp.status_code == 200, resp.get_body()
        [record] = body_json(resp)["records"]
        return record["changes"]

    assert seen_by("admin") == changes
    hidden = {"firstname": {"after": "Ada"}, "lastname": {"after": "Lovelace"}}
    assert seen_by("member") == hidden
    assert seen_by("service") == hidden
