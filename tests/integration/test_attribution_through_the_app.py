"""Step 4's attribution through the app as the host runs it: the functions called as the host calls them,
the composition root's parts (real connection through the Entra, Key Vault and Dataverse stand-ins),
the export queue's trigger function running the chunks.

What a user sees in Dynamics: a campaign's export shows the identity's Dynamics user as created by and
the campaign owner's mapped user as owner; an automatic export of a platform user's change is owned by
that user's mapped Dynamics user, or by the default CRM owner when the user is not mapped; two changes
of one record sent one after the other leave the latest values, written once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from azure.storage.queue import QueueServiceClient

import function_app  # noqa: F401 - registers every blueprint's operations
from core.entrypoints import config_api, connection_api, export_queue, exports_api, integrations_api
from core.services.exports.service import EXPORT_QUEUE
from emulators.dataverse import DataverseEmulator
from emulators.entra import EntraEmulator
from emulators.keyvault import KeyVaultEmulator
from emulators.tls import ensure_ca, trusting_session
from tests.integration.test_openapi_responses import deliver, queue_function
from tests.support.azurite import Azurite
from tests.support.http import body_json, call, request
from tests.support.identity import identity_settings
from tests.support.tokens import bearer, configured

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.support.identity"]

U_SDR, OID_SDR = "5d000000-0000-4000-8000-0000000000c1", "5d5d5d5d-0000-4000-8000-0000000000c2"
U_ANA, OID_ANA = "a0000000-0000-4000-8000-0000000000c3", "a1a1a1a1-0000-4000-8000-0000000000c4"
U_DEF = "d0000000-0000-4000-8000-0000000000c5"


@pytest.fixture()
def dataverse(entra: EntraEmulator) -> Iterator[DataverseEmulator]:
    emulator = DataverseEmulator(accepted_tokens=())
    emulator.add_signing_key(entra.public_jwk())
    emulator.start()
    yield emulator
    emulator.stop()


def _call(fn: Any, method: str, route: str, ws: str, role: str = "admin", **kw: Any) -> Any:
    response = call(
        fn, request(method, route, headers={**bearer(ws, role=role), **kw.pop("headers", {})}, **kw)
    )
    return response


def _connect(ws: str, entra: EntraEmulator, dataverse: DataverseEmulator) -> None:
    _call(
        integrations_api.put_integration,
        "PUT",
        "integrations/dynamics",
        ws,
        route_params={"crm": "dynamics"},
        json_body={"enabled": True},
    )
    user = entra.current_user
    dataverse.add_user(object_id=user.object_id, domainname=user.email)
    started = _call(
        connection_api.dynamics_connect,
        "POST",
        "dynamics/connect",
        ws,
        json_body={"environmentUrl": dataverse.url},
    )
    answer = trusting_session().get(body_json(started)["authorizationUrl"], allow_redirects=False, timeout=10)
    back = {k: v[-1] for k, v in parse_qs(urlsplit(answer.headers["Location"]).query).items()}
    callback = call(
        connection_api.dynamics_oauth_callback, request("GET", "dynamics/oauth/callback", params=back)
    )
    handle = parse_qs(urlsplit(callback.headers["Location"]).query)["handle"][0]
    done = _call(
        connection_api.dynamics_oauth_complete,
        "POST",
        "dynamics/oauth/complete",
        ws,
        json_body={"handle": handle},
    )
    assert done.status_code == 200, done.get_body()


def _configure(ws: str) -> None:
    current = _call(config_api.get_dynamics_config, "GET", "dynamics/config", ws)
    config = body_json(current)
    config["fieldMapping"]["contacts"] = [
        {"kind": "platform_field", "platformField": name, "dynamicsField": column}
        for name, column in (("firstName", "firstname"), ("lastName", "lastname"), ("jobTitle", "jobtitle"))
    ]
    config["userMapping"] = {
        "identities": [{"identityId": "id-sdr", "dynamicsUserId": U_SDR}],
        "users": [{"userId": "pu-ana", "dynamicsUserId": U_ANA}],
        "defaultOwnerId": U_DEF,
    }
    saved = _call(
        config_api.put_dynamics_config,
        "PUT",
        "dynamics/config",
        ws,
        json_body=config,
        headers={"If-Match": current.headers["ETag"]},
    )
    assert saved.status_code == 200, saved.get_body()


def _export(ws: str, queues: QueueServiceClient, body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    accepted = _call(exports_api.post_export, "POST", "dynamics/exports", ws, role="service", json_body=body)
    assert accepted.status_code == 202, accepted.get_body()
    job_id = body_json(accepted)["jobId"]
    deliver(queues, EXPORT_QUEUE, queue_function(export_queue.export_chunk))
    page = _call(
        exports_api.get_export_records,
        "GET",
        f"dynamics/exports/{job_id}/records",
        ws,
        role="service",
        route_params={"jobId": job_id},
    )
    return {r["platformId"]: r for r in body_json(page)["records"]}


def test_campaign_and_automatic_exports_are_owned_and_written_as_step_4_says(
    monkeypatch: pytest.MonkeyPatch,
    entra: EntraEmulator,
    keyvault: KeyVaultEmulator,
    dataverse: DataverseEmulator,
    azurite: Azurite,
) -> None:
    settings = {
        **identity_settings(entra, keyvault, azurite, keyvault.issue_token()),
        "REQUESTS_CA_BUNDLE": str(ensure_ca().bundle_path),
        "AUTOMATIC_EXPORT_WINDOW_SECONDS": "0",  # the window itself: tests/integration/exports/
    }
    ws = f"ws-{uuid.uuid4().hex[:12]}"
    queues = QueueServiceClient.from_connection_string(azurite.connection_string)
    with configured(monkeypatch, extra=settings):
        try:
            queues.get_queue_client(EXPORT_QUEUE).clear_messages()
        except Exception:  # not created yet
            pass
        _connect(ws, entra, dataverse)
        dataverse.add_user(user_id=U_SDR, object_id=OID_SDR, firstname="Sam", lastname="Sdr")
        dataverse.add_user(user_id=U_ANA, object_id=OID_ANA, firstname="Ana", lastname="Ruiz")
        dataverse.add_user(user_id=U_DEF, firstname="Default", lastname="Owner")
        _configure(ws)
        integration_user = next(
            str(u["systemuserid"])
            for u in dataverse.records.store.rows("systemuser")
            if u.get("azureactivedirectoryobjectid") == entra.current_user.object_id
        )

        campaign = _export(
            ws,
            queues,
            {
                "entity": "contacts",
                "userId": "pu-ana",
                "identityId": "id-sdr",
                "records": [{"id": "p-1", "firstName": "Nora", "lastName": "Quist"}],
            },
        )
        assert campaign["p-1"]["action"] == "created"
        automatic = {
            "entity": "contacts",
            "trigger": "automatic",
            "userId": "pu-ana",
            "records": [
                {
                    "id": "p-2",
                    "firstName": "Ivo",
                    "lastName": "Lind",
                    "jobTitle": "Rep",
                    "changedAt": "2026-12-01T10:00:00Z",
                }
            ],
        }
        assert _export(ws, queues, automatic)["p-2"]["action"] == "created"
        unmapped = {
            "entity": "contacts",
            "trigger": "automatic",
            "userId": "pu-nobody",
            "records": [
                {"id": "p-3", "firstName": "Eli", "lastName": "Moss", "changedAt": "2026-12-01T10:00:00Z"}
            ],
        }
        assert _export(ws, queues, unmapped)["p-3"]["action"] == "created"
        newer = {
            **automatic,
            "records": [
                {**automatic["records"][0], "jobTitle": "Head of Sales", "changedAt": "2026-12-01T10:05:00Z"}
            ],
        }
        assert _export(ws, queues, newer)["p-2"]["action"] == "updated"
        older = {
            **automatic,
            "records": [
                {**automatic["records"][0], "jobTitle": "Intern", "changedAt": "2026-12-01T09:00:00Z"}
            ],
        }
        assert _export(ws, queues, older)["p-2"]["action"] == "skipped"

    by_name = {r["lastname"]: r for r in dataverse.records.store.rows("contact")}
    quist, lind, moss = by_name["Quist"], by_name["Lind"], by_name["Moss"]
    assert (quist["_createdby_value"], quist["_ownerid_value"]) == (U_SDR, U_ANA)
    assert quist["_createdonbehalfby_value"] == integration_user
    assert (lind["_createdby_value"], lind["_ownerid_value"]) == (U_ANA, U_ANA)
    assert lind["jobtitle"] == "Head of Sales"  # the older change that came last did not overwrite it
    assert (moss["_createdby_value"], moss["_ownerid_value"]) == (integration_user, U_DEF)
