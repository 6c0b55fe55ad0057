"""Every operation the app registers answers what the served OpenAPI document says it answers.

One workspace goes through the product for real -- Azurite, the Entra ID, Key Vault and Dataverse stand-ins,
the app as the composition root builds it (live configuration checks, workers on the queues) -- and every
documented operation is called through its function. Each answer's status must be documented for the
operation, its media type documented for that status, and its body valid (jsonschema, JSON Schema 2020-12
as OpenAPI 3.1 uses it) against the schema that ``GET /api/openapi.json`` serves for it. An operation the
app registers but this walk does not call fails the test, so a new endpoint is covered when it is added.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import azure.functions as func
import pytest
import requests
from azure.functions.timer import TimerRequest
from azure.storage.queue import QueueServiceClient
from jsonschema import Draft202012Validator

import function_app  # noqa: F401 - registers every blueprint's operations
from core import bootstrap, openapi
from core.entrypoints import (
    activities_api,
    activity_queue,
    alerts_api,
    catalog_api,
    config_api,
    connection_api,
    export_queue,
    exports_api,
    fields_api,
    icons_api,
    integrations_api,
    meta_api,
    notifications_api,
    results_api,
    token_timer,
    usage_api,
    users_api,
)
from core.openapi_examples import EXAMPLES
from core.services.activities.service import ACTIVITY_QUEUE
from core.services.exports.service import EXPORT_QUEUE
from core.services.jobs.messages import ChunkMessage
from emulators.dataverse import DataverseEmulator
from emulators.entra import EntraEmulator
from emulators.keyvault import KeyVaultEmulator
from emulators.tls import ensure_ca, trusting_session
from tests.support.azurite import Azurite
from tests.support.http import body_json, call, request
from tests.support.identity import REDIRECT_URI, identity_settings
from tests.support.tokens import bearer, configured

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.support.identity"]


@pytest.fixture()
def dataverse(entra: EntraEmulator) -> Iterator[DataverseEmulator]:
    emulator = DataverseEmulator(accepted_tokens=())
    emulator.add_signing_key(entra.public_jwk())
    emulator.start()
    yield emulator
    emulator.stop()


class Walk:
    """Calls operations and checks each answer against the served document; remembers what it called."""

    def __init__(self, workspace: str) -> None:
        self.workspace = workspace
        self.document: dict[str, Any] = body_json(call(meta_api.get_openapi, request("GET", "openapi.json")))
        self.called: set[tuple[str, str]] = set()

    def __call__(
        self,
        method: str,
        path: str,
        fn: Any,
        *,
        role: str | None = "admin",
        json_body: Any = None,
        headers: dict[str, str] | None = None,
        route_params: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        expect: int | None = None,
    ) -> func.HttpResponse:
        all_headers = {**(bearer(self.workspace, role=role) if role else {}), **(headers or {})}
        extra: dict[str, Any] = {} if json_body is None else {"json_body": json_body}
        route = path.removeprefix("/api/").format(**(route_params or {}))
        req = request(method, route, headers=all_headers, route_params=route_params, params=params, **extra)
        response = call(fn, req)
        if expect is not None:
            assert response.status_code == expect, (method, path, response.get_body()[:500])
        self.check(method, path, response)
        self.called.add((method, path))
        return response

    def check(self, method: str, path: str, response: func.HttpResponse) -> None:
        operation = self.document["paths"][path][method.lower()]
        status = str(response.status_code)
        assert status in operation["responses"], f"{method} {path} answered undocumented {status}"
        content = operation["responses"][status].get("content")
        body = response.get_body()
        if not content:
            assert not body, f"{method} {path} {status} is documented without a body"
            return
        assert response.mimetype in content, (method, path, status, response.mimetype, list(content))
        schema = {**content[response.mimetype]["schema"], "components": self.document["components"]}
        errors = sorted(
            Draft202012Validator(schema).iter_errors(json.loads(body)), key=lambda e: list(e.absolute_path)
        )
        assert not errors, [f"{method} {path} {status}: {list(e.absolute_path)} {e.message}" for e in errors]


def deliver(queues: QueueServiceClient, queue_name: str, trigger: Callable[[func.QueueMessage], None]) -> int:
    """Hand every queued chunk message to the queue trigger function, as the host does; how many."""
    queue = queues.get_queue_client(queue_name)
    handled = 0
    while batch := list(queue.receive_messages(max_messages=32, visibility_timeout=60)):
        for message in batch:
            ChunkMessage.parse(base64.b64decode(message.content))  # ours: the queue is this test's
            trigger(func.QueueMessage(id=message.id, body=base64.b64decode(message.content)))
            queue.delete_message(message)
            handled += 1
    return handled


def queue_function(blueprint_function: Any) -> Callable[[func.QueueMessage], None]:
    return blueprint_function.build().get_user_function()  # type: ignore[no-any-return]


def test_every_operation_answers_what_the_openapi_document_describes(
    monkeypatch: pytest.MonkeyPatch,
    entra: EntraEmulator,
    keyvault: KeyVaultEmulator,
    dataverse: DataverseEmulator,
    azurite: Azurite,
) -> None:
    settings = {
        **identity_settings(entra, keyvault, azurite, keyvault.issue_token()),
        "REQUESTS_CA_BUNDLE": str(ensure_ca().bundle_path),
    }
    workspace = f"ws-{uuid.uuid4().hex[:12]}"
    queues = QueueServiceClient.from_connection_string(azurite.connection_string)
    with configured(monkeypatch, extra=settings):
        for name in (EXPORT_QUEUE, ACTIVITY_QUEUE):  # this test's messages only (one Azurite per run)
            try:
                queues.get_queue_client(name).clear_messages()
            except Exception:  # not created yet
                pass
        walk = Walk(workspace)
        walk.called.add(("GET", "/api/openapi.json"))
        walk.check("GET", "/api/openapi.json", call(meta_api.get_openapi, request("GET", "openapi.json")))

        # --- service
        walk("GET", "/api/health", meta_api.get_health, role=None, expect=200)
        walk("GET", "/api/health/dynamics", meta_api.get_dynamics_health, expect=200)  # not connected yet

        # --- integrations
        walk("GET", "/api/integrations", integrations_api.list_integrations, expect=200)
        walk(
            "PUT",
            "/api/integrations/{crm}",
            integrations_api.put_integration,
            route_params={"crm": "dynamics"},
            json_body={"enabled": True},
            expect=200,
        )

        # --- connection: the admin connects, signs in at Microsoft, comes back through the callback
        user = entra.current_user  # the integration user, a Dynamics user of the environment
        dataverse.add_user(object_id=user.object_id, domainname=user.email)
        walk("GET", "/api/dynamics/connection", connection_api.dynamics_connection_get, expect=200)
        started = walk(
            "POST",
            "/api/dynamics/connect",
            connection_api.dynamics_connect,
            json_body={"environmentUrl": dataverse.url},
            expect=200,
        )
        answer = trusting_session().get(
            body_json(started)["authorizationUrl"], allow_redirects=False, timeout=10
        )
        assert answer.headers["Location"].startswith(REDIRECT_URI)
        back = {k: v[-1] for k, v in parse_qs(urlsplit(answer.headers["Location"]).query).items()}
        callback = walk(
            "GET",
            "/api/dynamics/oauth/callback",
            connection_api.dynamics_oauth_callback,
            role=None,
            params=back,
            expect=302,
        )
        returned = parse_qs(urlsplit(callback.headers["Location"]).query)
        assert returned["dynamics"] == ["confirm"], callback.headers["Location"]
        completed = walk(
            "POST",
            "/api/dynamics/oauth/complete",
            connection_api.dynamics_oauth_complete,
            json_body={"handle": returned["handle"][0]},
            expect=200,
        )
        assert body_json(completed)["environmentUrl"] == dataverse.url
        walk("GET", "/api/dynamics/connection", connection_api.dynamics_connection_get, expect=200)
        health = walk("GET", "/api/health/dynamics", meta_api.get_dynamics_health, expect=200)
        assert body_json(health)["status"] == "connected", body_json(health)

        # --- fields and configuration, checked against the live Dynamics metadata
        fields = walk(
            "GET",
            "/api/dynamics/fields",
            fields_api.get_dynamics_fields,
            params={"entity": "contact", "platformField": "jobTitle"},
            expect=200,
        )
        assert body_json(fields)["counts"]["ok"] > 0
        icons = walk(
            "GET",
            "/api/dynamics/fields/icons",
            icons_api.get_dynamics_field_icons,
            params={"entity": "contact"},
            expect=200,
        )
        assert len(body_json(icons)["cells"]) == len(body_json(icons)["columns"])
        rules = walk("GET", "/api/dynamics/compatibility", icons_api.get_dynamics_compatibility, expect=200)
        assert body_json(rules)["pairs"]
        catalog = walk(
            "GET", "/api/dynamics/catalog", catalog_api.get_dynamics_catalog, role="member", expect=200
        )
        assert len([p for s in body_json(catalog)["campaignSections"] for p in s["properties"]]) == 13
        users = walk(
            "GET", "/api/dynamics/users", users_api.get_dynamics_users, params={"limit": "5"}, expect=200
        )
        assert body_json(users)["users"], body_json(users)
        walk(
            "POST",
            "/api/dynamics/users/suggestions",
            users_api.post_dynamics_user_suggestions,
            json_body={"people": [{"platformId": "u-1", "email": user.email.upper()}]},
            expect=200,
        )
        defaults = body_json(walk("GET", "/api/dynamics/config", config_api.get_dynamics_config, expect=200))
        document = copy.deepcopy(EXAMPLES[("PUT", "/api/dynamics/config")]["request"])
        document["userMapping"] = defaults["userMapping"]  # the example's users are not in this environment
        walk("POST", "/api/dynamics/config/validate", config_api.validate_dynamics_config, json_body=document)
        saved = walk(
            "PUT",
            "/api/dynamics/config",
            config_api.put_dynamics_config,
            json_body=document,
            expect=200,
        )
        step = {"step": "sync-identifiers"}
        walk(
            "GET",
            "/api/dynamics/config/{step}",
            config_api.get_dynamics_config_step,
            route_params=step,
            expect=200,
        )
        walk(
            "PUT",
            "/api/dynamics/config/{step}",
            config_api.put_dynamics_config_step,
            route_params=step,
            json_body=document["syncIdentifiers"],
            headers={"If-Match": saved.headers["ETag"]},
            expect=200,
        )
        walk(
            "GET",
            "/api/dynamics/config/history",
            config_api.get_dynamics_config_history,
            expect=200,
        )

        # --- an export, run by the export queue's worker
        export_request = copy.deepcopy(EXAMPLES[("POST", "/api/dynamics/exports")]["request"])
        export_request["records"].append({"id": "p-2"})  # nothing to match or write: skipped
        accepted = walk(
            "POST", "/api/dynamics/exports", exports_api.post_export, json_body=export_request, expect=202
        )
        job = {"jobId": body_json(accepted)["jobId"]}
        assert deliver(queues, EXPORT_QUEUE, queue_function(export_queue.export_chunk)) >= 1
        status = walk("GET", "/api/dynamics/exports/{jobId}", exports_api.get_export, route_params=job)
        assert body_json(status)["state"] in ("succeeded", "partially_failed"), body_json(status)
        walk("GET", "/api/dynamics/exports", exports_api.list_exports, expect=200)
        walk(
            "GET",
            "/api/dynamics/exports",
            exports_api.list_exports,
            params={"state": body_json(status)["state"], "entity": "contacts", "limit": "1"},
            expect=200,
        )
        retried = walk(
            "POST",
            "/api/dynamics/exports/{jobId}/retry",
            exports_api.retry_export,
            route_params=job,
            json_body={"include": ["skipped"]},
            expect=202,
        )
        retry_job = {"jobId": body_json(retried)["jobId"]}
        cancelled = walk(
            "POST",
            "/api/dynamics/exports/{jobId}/cancel",
            exports_api.cancel_export,
            route_params=retry_job,
            expect=200,
        )
        assert body_json(cancelled)["state"] == "cancelled", body_json(cancelled)
        walk(
            "POST",
            "/api/dynamics/exports/{jobId}/cancel",
            exports_api.cancel_export,
            route_params=job,
            expect=409,
        )
        records = walk(
            "GET",
            "/api/dynamics/exports/{jobId}/records",
            exports_api.get_export_records,
            route_params=job,
            expect=200,
        )
        assert [r["action"] for r in body_json(records)["records"]] == ["created", "skipped"]
        for fmt, fn in (
            ("csv", results_api.get_export_records_csv),
            ("ndjson", results_api.get_export_records_ndjson),
        ):
            link = walk(
                "GET", f"/api/dynamics/exports/{{jobId}}/records.{fmt}", fn, route_params=job, expect=302
            )
            file = requests.get(link.headers["Location"], timeout=10)
            assert file.status_code == 200 and export_request["records"][0]["id"] in file.text
            as_json = walk(
                "GET",
                f"/api/dynamics/exports/{{jobId}}/records.{fmt}",
                fn,
                route_params=job,
                headers={"Accept": "application/json"},
                expect=200,
            )
            assert body_json(as_json)["url"].split("?")[0] == link.headers["Location"].split("?")[0]
        usage = body_json(walk("GET", "/api/dynamics/usage", usage_api.get_dynamics_usage, expect=200))
        assert usage["window"]["busiestJob"]["jobId"] == job["jobId"], usage
        assert usage["days"][0]["requests"] >= usage["window"]["busiestJob"]["requests"] > 0

        # --- activities of the exported contact, run by the activity queue's worker
        activities_request = copy.deepcopy(EXAMPLES[("POST", "/api/dynamics/activities")]["request"])
        activities_request["events"][0]["contactId"] = export_request["records"][0]["id"]
        accepted = walk(
            "POST",
            "/api/dynamics/activities",
            activities_api.post_activities,
            role="service",
            json_body=activities_request,
            expect=202,
        )
        job = {"jobId": body_json(accepted)["jobId"]}
        assert deliver(queues, ACTIVITY_QUEUE, queue_function(activity_queue.activity_chunk)) >= 1
        walk(
            "GET",
            "/api/dynamics/activities/{jobId}",
            activities_api.get_activities,
            route_params=job,
            expect=200,
        )
        listed = walk("GET", "/api/dynamics/activities", activities_api.list_activities, expect=200)
        assert [j["jobId"] for j in body_json(listed)["jobs"]] == [job["jobId"]]
        walk(
            "POST",
            "/api/dynamics/activities/{jobId}/cancel",
            activities_api.cancel_activities,
            route_params=job,
            expect=409,
        )
        walk(
            "GET",
            "/api/dynamics/activities/{jobId}/records",
            activities_api.get_activity_records,
            route_params=job,
            expect=200,
        )

        # --- the grant dies (password change); the token timer raises the reconnect notice
        entra.revoke_user(entra.current_user.object_id)
        connections = bootstrap.app().connection.connections
        found = connections.get(workspace)
        assert found is not None
        stale = found.record.last_refresh_at - dt.timedelta(days=8)  # due for the timer's proactive refresh
        connections.replace(found.record.refreshed(stale, found.record.access_token_expires_at), found.etag)
        token_timer.token_refresh_timer.build().get_user_function()(TimerRequest(past_due=False))
        listed = walk("GET", "/api/notifications", notifications_api.notifications_list, expect=200)
        [notice] = body_json(listed)["notifications"]
        walk(
            "POST",
            "/api/notifications/{notification_id}/read",
            notifications_api.notifications_mark_read,
            route_params={"notification_id": notice["id"]},
            expect=200,
        )
        # --- the alert webhook: created (its secret shown once), read, rotated, tested, logged, removed
        hook = "/api/dynamics/alerts/webhook"
        walk("GET", hook, alerts_api.get_alert_webhook, expect=404)
        created = walk(
            "PUT",
            hook,
            alerts_api.put_alert_webhook,
            json_body={"url": "https://hooks.example.com/a"},
            expect=201,
        )
        assert body_json(created)["secret"].startswith("whsec_")
        assert "secret" not in body_json(walk("GET", hook, alerts_api.get_alert_webhook, expect=200))
        rotated = walk(
            "PUT",
            hook,
            alerts_api.put_alert_webhook,
            json_body={"url": "https://hooks.example.com/b", "rotateSecret": True},
            expect=200,
        )
        assert body_json(rotated)["secret"] not in (None, body_json(created)["secret"])
        walk(
            "PUT",
            hook,
            alerts_api.put_alert_webhook,
            json_body={"url": "http://169.254.169.254/latest"},
            expect=400,
        )
        walk("POST", f"{hook}/test", alerts_api.post_alert_webhook_test, expect=202)
        walk("GET", f"{hook}/deliveries", alerts_api.get_alert_webhook_deliveries, expect=200)
        walk("DELETE", hook, alerts_api.delete_alert_webhook, expect=204)
        walk("POST", f"{hook}/test", alerts_api.post_alert_webhook_test, expect=404)

        walk("DELETE", "/api/dynamics/connection", connection_api.dynamics_connection_delete, expect=204)

        # --- problems are problem+json as documented (one of each family)
        walk(
            "GET",
            "/api/dynamics/exports/{jobId}",
            exports_api.get_export,
            route_params={"jobId": "no-such-job"},
            expect=404,
        )
        walk("GET", "/api/integrations", integrations_api.list_integrations, role=None, expect=401)
        walk(
            "PUT",
            "/api/integrations/{crm}",
            integrations_api.put_integration,
            route_params={"crm": "dynamics"},
            json_body={"enabled": False},
            expect=200,
        )
        disabled = walk(
            "POST", "/api/dynamics/exports", exports_api.post_export, json_body=export_request, expect=409
        )
        assert body_json(disabled)["code"] == "integration_disabled"

    registered = {(op.method, op.path) for op in openapi.operations()}
    assert registered - walk.called == set(), "operations this walk does not call yet"
