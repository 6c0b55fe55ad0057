"""Connection and notification endpoints end to end (blueprint functions called directly), plus the
secret scan of a full connect → refresh → use cycle."""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import threading
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from azure.data.tables import TableServiceClient
from azure.functions.timer import TimerRequest
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from core import bootstrap, observability
from core.adapters.identity.token_crypto import TokenCipher
from core.adapters.storage.connection_repository import PendingFlow
from core.entrypoints import (
    config_api,
    connection_api,
    exports_api,
    integrations_api,
    notifications_api,
    token_timer,
)
from core.services.connection.service import ConnectionComponents
from core.settings import get_settings
from emulators.entra import EntraEmulator
from emulators.keyvault import KeyVaultEmulator
from emulators.tls import ensure_ca, trusting_session
from tests.support.app import enable_dynamics, use_app
from tests.support.azurite import Azurite
from tests.support.http import body_json, call, request
from tests.support.identity import FRONTEND_URL, REDIRECT_URI, CaptureLogs, WhoAmIStandIn, identity_settings
from tests.support.tokens import bearer, configured
from tests.unit.test_config_validation import valid_doc

pytestmark = pytest.mark.integration
pytest_plugins = ["tests.support.identity"]


class Api:
    """The endpoints as a browser/frontend would use them; every response body is kept for the scan."""

    def __init__(self, entra: EntraEmulator, env: WhoAmIStandIn) -> None:
        self.entra = entra
        self.env = env
        self.session = trusting_session()
        self.bodies: list[str] = []

    def _keep(self, resp):  # type: ignore[no-untyped-def]
        self.bodies.append(
            (resp.get_body() or b"").decode("utf-8", "replace") + json.dumps(dict(resp.headers))
        )
        return resp

    def connect(
        self,
        workspace_id: str,
        role: str = "admin",
        env_url: str | None = None,
        user: str = "user-1",
        enable: bool = True,
    ):  # type: ignore[no-untyped-def]
        if enable:
            enable_dynamics(workspace_id)  # the admin's toggle on the Integrations page comes first
        req = request(
            "POST",
            "dynamics/connect",
            json_body={"environmentUrl": env_url or self.env.url},
            headers=bearer(workspace_id, role=role, user_id=user),
        )
        return self._keep(call(connection_api.dynamics_connect, req))

    def sign_in(self, authorization_url: str) -> dict[str, str]:
        answer = self.session.get(authorization_url, allow_redirects=False, timeout=10)
        location = answer.headers["Location"]
        assert location.startswith(REDIRECT_URI)
        return {k: v[-1] for k, v in parse_qs(urlsplit(location).query).items()}

    def callback(self, params: dict[str, str]) -> dict[str, str]:
        resp = self._keep(
            call(
                connection_api.dynamics_oauth_callback,
                request("GET", "dynamics/oauth/callback", params=params),
            )
        )
        assert resp.status_code == 302
        location = resp.headers["Location"]
        assert location.startswith(FRONTEND_URL)
        return {k: v[-1] for k, v in parse_qs(urlsplit(location).query).items()}

    def complete(self, workspace_id: str, handle: str, role: str = "admin", user: str = "user-1"):  # type: ignore[no-untyped-def]
        req = request(
            "POST",
            "dynamics/oauth/complete",
            json_body={"handle": handle},
            headers=bearer(workspace_id, role=role, user_id=user),
        )
        return self._keep(call(connection_api.dynamics_oauth_complete, req))

    def connect_fully(self, workspace_id: str) -> dict[str, object]:
        """Start, sign in, callback, and the same admin completes; returns the completion's answer."""
        resp = self.connect(workspace_id)
        assert resp.status_code == 200, resp.get_body()
        back = self.callback(self.sign_in(body_json(resp)["authorizationUrl"]))
        assert back["dynamics"] == "confirm", back
        done = self.complete(workspace_id, back["handle"])
        assert done.status_code == 200, done.get_body()
        return body_json(done)  # type: ignore[no-any-return]

    def connection(self, workspace_id: str, role: str = "admin"):  # type: ignore[no-untyped-def]
        req = request("GET", "dynamics/connection", headers=bearer(workspace_id, role=role))
        return self._keep(call(connection_api.dynamics_connection_get, req))

    def disconnect(self, workspace_id: str, role: str = "admin"):  # type: ignore[no-untyped-def]
        req = request("DELETE", "dynamics/connection", headers=bearer(workspace_id, role=role))
        return self._keep(call(connection_api.dynamics_connection_delete, req))

    def notifications(self, workspace_id: str) -> list[dict[str, object]]:
        resp = self._keep(
            call(
                notifications_api.notifications_list,
                request("GET", "notifications", headers=bearer(workspace_id)),
            )
        )
        assert resp.status_code == 200
        return body_json(resp)["notifications"]  # type: ignore[no-any-return]

    def mark_read(self, workspace_id: str, notification_id: str):  # type: ignore[no-untyped-def]
        req = request(
            "POST",
            f"notifications/{notification_id}/read",
            headers=bearer(workspace_id),
            route_params={"notification_id": notification_id},
        )
        return self._keep(call(notifications_api.notifications_mark_read, req))


@pytest.fixture()
def api(
    entra: EntraEmulator,
    keyvault: KeyVaultEmulator,
    dynamics_env: WhoAmIStandIn,
    azurite: Azurite,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Api]:
    extra = identity_settings(entra, keyvault, azurite, keyvault.issue_token())
    # Libraries building their own requests.Session (azure-core, our default msal session) trust the
    # stand-ins through the bundle (system roots + local CA), exactly as local development does.
    extra["REQUESTS_CA_BUNDLE"] = str(ensure_ca().bundle_path)
    extra["TOKEN_REFRESH_SCHEDULE"] = "0 */15 * * * *"
    with configured(monkeypatch, extra=extra):
        yield Api(entra, dynamics_env)


def ws() -> str:
    return "ws-" + uuid.uuid4().hex[:12]


def make_due(components: ConnectionComponents, workspace_id: str) -> None:
    found = components.connections.get(workspace_id)
    assert found is not None
    stale = found.record.last_refresh_at - dt.timedelta(days=8)
    components.connections.replace(
        found.record.refreshed(stale, found.record.access_token_expires_at), found.etag
    )


def test_connect_callback_and_state_shown_for_step_1(api: Api) -> None:
    workspace = ws()
    assert body_json(api.connection(workspace))["status"] == "disconnected"
    connected = api.connect_fully(workspace)
    # the admin sees which Microsoft account, tenant and environment were connected
    assert connected["status"] == "connected"
    assert connected["signedInAs"] == api.entra.current_user.email
    assert connected["environmentUrl"] == api.env.url
    assert connected["tenantId"] and str(connected["tenantId"]) in api.entra.authority
    view = body_json(api.connection(workspace, role="member"))  # members see the integration user too
    assert view["status"] == "connected"
    assert view["integrationUser"]["email"] == api.entra.current_user.email
    assert view["integrationUser"]["dynamicsUserId"] == api.env.user_ids[api.entra.current_user.object_id]
    assert view["environmentUrl"] == api.env.url
    assert view["connectedAt"] and view["lastRefreshAt"] and view["reason"] is None


def test_member_cannot_connect_or_disconnect(api: Api) -> None:
    workspace = ws()
    assert api.connect(workspace, role="member").status_code == 403
    api.connect_fully(workspace)
    assert api.disconnect(workspace, role="member").status_code == 403
    assert body_json(api.connection(workspace))["status"] == "connected"


def test_invalid_environment_url_is_400_with_pointer(api: Api) -> None:
    resp = api.connect(ws(), env_url="http://contoso.crm.dynamics.com")
    assert resp.status_code == 400
    assert body_json(resp)["errors"][0]["pointer"] == "/environmentUrl"
    assert api.connect(ws(), env_url="https://contoso.evil.example").status_code == 400
    # hostile spellings: each a 400 naming the field, none a 500, none reaching a sign-in
    for hostile in (
        "https://evil.com\\.crm.dynamics.com",  # requests would send the bearer token to evil.com
        "https://evil.com＃.crm.dynamics.com",  # a ValueError from NFKC checking, answered 500, before
        "https://contoso.crm.dynamics.com:8443",
        "https://contoso .crm.dynamics.com",
        "https://contoso\x00.crm.dynamics.com",
    ):
        resp = api.connect(ws(), env_url=hostile)
        assert resp.status_code == 400, (hostile, resp.get_body())
        assert body_json(resp)["errors"][0]["pointer"] == "/environmentUrl"


def test_forged_replayed_and_foreign_state(api: Api) -> None:
    a, b = ws(), ws()
    url_a = body_json(api.connect(a))["authorizationUrl"]
    url_b = body_json(api.connect(b))["authorizationUrl"]
    answer_a, answer_b = api.sign_in(url_a), api.sign_in(url_b)
    # forged state
    assert api.callback({**answer_a, "state": "x" * 43}) == {"dynamics": "error", "code": "invalid_state"}
    # B's code presented with A's state: A's flow is consumed, the code does not match A's PKCE/redirect
    result = api.callback({"code": answer_b["code"], "state": answer_a["state"]})
    refused = api.complete(a, result["handle"])
    assert refused.status_code == 502 and body_json(refused)["code"] == "token_exchange_failed"
    assert body_json(api.connection(a))["status"] == "disconnected"
    # A's state can never be used again (replay), even with its own code
    assert api.callback(answer_a) == {"dynamics": "error", "code": "invalid_state"}
    assert body_json(api.connection(a))["status"] == "disconnected"
    assert body_json(api.connection(b))["status"] == "disconnected"


def test_key_vault_unavailable_is_503_and_nothing_changes(api: Api, keyvault: KeyVaultEmulator) -> None:
    workspace = ws()
    keyvault.fail_with(503)
    resp = api.connect(workspace)
    assert resp.status_code == 503 and resp.headers.get("Retry-After")
    assert "Key Vault" in body_json(resp)["detail"]
    keyvault.fail_with(None)
    api.connect_fully(workspace)
    keyvault.fail_with(503)
    assert api.disconnect(workspace).status_code == 503
    keyvault.fail_with(None)
    assert body_json(api.connection(workspace))["status"] == "connected"
    assert api.disconnect(workspace).status_code == 204
    assert body_json(api.connection(workspace))["status"] == "disconnected"


def test_notifications_flow_and_isolation(api: Api, entra: EntraEmulator) -> None:
    workspace, other = ws(), ws()
    api.connect_fully(workspace)
    components = bootstrap.app().connection
    make_due(components, workspace)
    entra.revoke_user(entra.current_user.object_id)  # password change
    components.refresher.run()
    components.refresher.run()
    notes = api.notifications(workspace)
    assert len(notes) == 1 and notes[0]["reason"] == "revoked" and notes[0]["read"] is False
    assert body_json(api.connection(workspace))["status"] == "reconnect_required"
    assert api.notifications(other) == []
    assert api.mark_read(other, str(notes[0]["id"])).status_code == 404
    marked = api.mark_read(workspace, str(notes[0]["id"]))
    assert marked.status_code == 200 and body_json(marked)["read"] is True
    # the bodies are what the OpenAPI document says, field for field
    notifications_api.NotificationList.model_validate({"notifications": api.notifications(workspace)})
    notifications_api.NotificationView.model_validate(body_json(marked))
    assert api.notifications(workspace)[0]["read"] is True
    api.connect_fully(workspace)  # reconnect clears the notice
    assert api.notifications(workspace) == []
    assert body_json(api.connection(workspace))["status"] == "connected"


def test_two_timer_runs_at_once_refresh_each_workspace_once(api: Api, entra: EntraEmulator) -> None:
    workspaces = [ws() for _ in range(6)]
    for workspace in workspaces:
        api.connect_fully(workspace)
    components = bootstrap.app().connection
    for workspace in workspaces:
        make_due(components, workspace)
    before = entra.stats.refresh_token
    reports = []
    barrier = threading.Barrier(2)

    def run() -> None:
        barrier.wait()
        reports.append(components.refresher.run())

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert entra.stats.refresh_token - before == 6
    assert sum(r.refreshed for r in reports) == 6
    assert sum(r.reconnect_required + r.transient + r.failed for r in reports) == 0
    for workspace in workspaces:
        assert body_json(api.connection(workspace))["status"] == "connected"


def test_timer_function_and_secret_scan_of_the_cycle(
    api: Api, entra: EntraEmulator, keyvault: KeyVaultEmulator, azurite: Azurite
) -> None:
    logs = CaptureLogs()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(logs)
    root.setLevel(logging.DEBUG)
    # The libraries' own debug lines (msal, azure, urllib3) are scanned too, even when the app's logging
    # set-up (run by any earlier import of function_app) quieted them for this process.
    library_levels = {name: logging.getLogger(name).level for name in observability.LIBRARY_LOGGERS}
    for name in library_levels:
        logging.getLogger(name).setLevel(logging.DEBUG)
    issued: list[str] = []
    original_issue = entra._issue

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        reply = original_issue(*args, **kwargs)
        body = json.loads(reply.body)
        issued.extend([body["access_token"], body["refresh_token"], body.get("id_token", "")])
        return reply

    entra._issue = spy  # type: ignore[method-assign]
    try:
        workspace = ws()
        api.connect_fully(workspace)
        components = bootstrap.app().connection
        make_due(components, workspace)
        token_timer.token_refresh_timer.build().get_user_function()(TimerRequest(past_due=False))
        token = components.tokens.access_token(workspace)  # what an export would use
        assert token in issued
        assert body_json(api.connection(workspace))["status"] == "connected"
        api.notifications(workspace)
    finally:
        root.removeHandler(logs)
        root.setLevel(old_level)
        for name, level in library_levels.items():
            logging.getLogger(name).setLevel(level)
        entra._issue = original_issue  # type: ignore[method-assign]
    assert entra.stats.refresh_token >= 1 and len(issued) >= 6
    secrets_ = [s for s in issued if s]
    haystacks: list[str] = []
    tables = TableServiceClient.from_connection_string(azurite.connection_string)
    for table in tables.list_tables():
        haystacks.extend(repr(dict(e)) for e in tables.get_table_client(table.name).list_entities())
    blobs = BlobServiceClient.from_connection_string(azurite.connection_string)
    for container in blobs.list_containers():
        client = blobs.get_container_client(container.name)
        for blob in client.list_blobs():
            haystacks.append(client.download_blob(blob.name).readall().decode("utf-8", "replace"))
    queues = QueueServiceClient.from_connection_string(azurite.connection_string)
    for queue in queues.list_queues():
        for message in queues.get_queue_client(queue.name).peek_messages(max_messages=32):
            text = message.content or ""
            haystacks.append(text)
            try:
                haystacks.append(base64.b64decode(text).decode("utf-8", "replace"))
            except ValueError:
                pass
    haystacks.extend(keyvault.all_values())
    haystacks.extend(logs.lines)
    haystacks.extend(api.bodies)
    assert len(logs.lines) > 10 and any("token refresh" in line for line in logs.lines)
    hits = [(s[:10], h[:60]) for s in secrets_ for h in haystacks if s in h]
    assert hits == []
    # the scan can see: decrypted, the Key Vault value does hold the current refresh token
    plaintext = TokenCipher.from_settings(get_settings()).open(keyvault.all_values()[-1], workspace).decode()
    assert any(s in plaintext for s in secrets_ if s.startswith("rt."))


def test_timer_removes_abandoned_sign_ins(api: Api) -> None:
    components = bootstrap.app().connection
    now = dt.datetime.now(dt.UTC)
    components.flows.add("abandoned", PendingFlow("ws-x", "u", "sealed", now - dt.timedelta(minutes=1)))
    components.flows.add("in-progress", PendingFlow("ws-x", "u", "sealed", now + dt.timedelta(minutes=9)))
    token_timer.token_refresh_timer.build().get_user_function()(TimerRequest(past_due=True))
    assert components.flows.take("abandoned") is None
    assert components.flows.take("in-progress") is not None


def test_reconnect_resumes_exports_paused_for_the_token(
    api: Api, entra: EntraEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    resumed: list[str] = []

    class Exports:
        def resume_paused(self, workspace_id: str) -> int:
            resumed.append(workspace_id)
            return 2

    use_app(monkeypatch, export_service=Exports())
    workspace = ws()
    api.connect_fully(workspace)
    assert resumed == [workspace]  # a first connect finds nothing paused; harmless
    entra.revoke_user(entra.current_user.object_id)
    components = bootstrap.app().connection
    make_due(components, workspace)
    components.refresher.run()
    assert body_json(api.connection(workspace))["status"] == "reconnect_required"
    assert api.connect_fully(workspace)["status"] == "connected"
    assert resumed == [workspace, workspace]


def test_callback_and_completion_failures_name_their_code_and_store_nothing(
    api: Api, entra: EntraEmulator, keyvault: KeyVaultEmulator
) -> None:
    workspace = ws()
    # the admin declines consent at Microsoft
    entra.set_fault("consent_required", count=1)
    answer = api.sign_in(body_json(api.connect(workspace))["authorizationUrl"])
    assert api.callback(answer) == {"dynamics": "error", "code": "consent_required"}
    # Key Vault fails while the tokens are stored (at completion)
    answer = api.sign_in(body_json(api.connect(workspace))["authorizationUrl"])
    back = api.callback(answer)
    keyvault.fail_with(503, methods=("PUT",))
    refused = api.complete(workspace, back["handle"])
    assert refused.status_code == 503 and refused.headers.get("Retry-After")
    assert body_json(refused)["code"] == "key_vault_unavailable"
    keyvault.fail_with(None)
    assert keyvault.live_names() == []
    # the callback without state or code
    assert api.callback({}) == {"dynamics": "error", "code": "invalid_state"}
    answer = api.sign_in(body_json(api.connect(workspace))["authorizationUrl"])
    assert api.callback({"state": answer["state"]}) == {"dynamics": "error", "code": "invalid_request"}
    assert body_json(api.connection(workspace))["status"] == "disconnected"


def test_a_victim_completing_an_attackers_sign_in_is_refused_and_nothing_is_stored(
    api: Api, entra: EntraEmulator, keyvault: KeyVaultEmulator, dynamics_env: WhoAmIStandIn
) -> None:
    """An admin of workspace X starts a connect and sends the Microsoft sign-in link to someone else; that
    person signs in and their browser comes back with the handle. Whoever they are on the platform, their
    completion is refused and the handle is spent: X never holds their tokens."""
    attacker_ws, victim_ws = ws(), ws()
    redeemed_before = entra.stats.authorization_code
    for workspace_id, user in (
        (victim_ws, "victim"),  # an admin of another workspace
        (attacker_ws, "another-admin"),  # another admin of the same workspace
    ):
        started = api.connect(attacker_ws, user="attacker")
        back = api.callback(api.sign_in(body_json(started)["authorizationUrl"]))  # the victim's browser
        assert back["dynamics"] == "confirm" and set(back) == {"dynamics", "handle"}
        refused = api.complete(workspace_id, back["handle"], user=user)
        assert refused.status_code == 403, refused.get_body()
        assert refused.mimetype == "application/problem+json"
        assert body_json(refused)["code"] == "not_initiator"
        # the handle was spent by the refusal: not even the admin who started can use it now
        late = api.complete(attacker_ws, back["handle"], user="attacker")
        assert late.status_code == 410 and body_json(late)["code"] == "invalid_handle"
    # nothing was redeemed, asked of Dynamics or stored
    assert entra.stats.authorization_code == redeemed_before
    assert dynamics_env.calls == 0
    assert keyvault.live_names() == []
    assert body_json(api.connection(attacker_ws))["status"] == "disconnected"
    assert body_json(api.connection(victim_ws))["status"] == "disconnected"


def test_completion_only_by_the_initiating_admin_once_and_in_time(
    api: Api, azurite: Azurite, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace = ws()
    answer = api.sign_in(body_json(api.connect(workspace, user="boss"))["authorizationUrl"])
    back = api.callback(answer)
    # while it waits for the admin, the kept sign-in is sealed: neither code nor handle is in any table
    tables = TableServiceClient.from_connection_string(azurite.connection_string)
    stored = [
        repr(dict(e)) for t in tables.list_tables() for e in tables.get_table_client(t.name).list_entities()
    ]
    assert stored and not [row for row in stored if answer["code"] in row or back["handle"] in row]
    # a member of the workspace cannot complete (and does not spend the handle)
    member = api.complete(workspace, back["handle"], role="member", user="boss")
    assert member.status_code == 403
    assert body_json(api.connection(workspace))["status"] == "disconnected"
    done = api.complete(workspace, back["handle"], user="boss")
    assert done.status_code == 200 and body_json(done)["status"] == "connected"
    again = api.complete(workspace, back["handle"], user="boss")
    assert again.status_code == 410 and body_json(again)["code"] == "invalid_handle"
    # unknown or malformed handles are refused the same way, never a 500
    assert api.complete(workspace, "x" * 43, user="boss").status_code == 410
    assert api.complete(workspace, "", user="boss").status_code == 400
    # a handle older than 10 minutes has expired: 410, nothing stored
    other = ws()
    back = api.callback(api.sign_in(body_json(api.connect(other, user="boss"))["authorizationUrl"]))
    service = bootstrap.app().connection.service
    monkeypatch.setattr(service, "_clock", lambda: dt.datetime.now(dt.UTC) + dt.timedelta(minutes=11))
    expired = api.complete(other, back["handle"], user="boss")
    assert expired.status_code == 410 and body_json(expired)["code"] == "expired_handle"
    monkeypatch.undo()
    assert body_json(api.connection(other))["status"] == "disconnected"


def _dynamics_card(workspace_id: str) -> dict[str, Any]:
    resp = call(
        integrations_api.list_integrations,
        request("GET", "integrations", headers=bearer(workspace_id, role="member")),
    )
    assert resp.status_code == 200
    cards = {c["crm"]: c for c in body_json(resp)["integrations"]}
    assert all(c["dynamics"] is None for crm, c in cards.items() if crm != "dynamics")
    return cards["dynamics"]["dynamics"]  # type: ignore[no-any-return]


def _integration_user(workspace_id: str) -> Any:
    resp = call(
        config_api.get_dynamics_config, request("GET", "dynamics/config", headers=bearer(workspace_id))
    )
    assert resp.status_code == 200
    return body_json(resp)["syncIdentifiers"]["integrationUser"]


def test_the_dynamics_card_shows_connection_configuration_and_last_export(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_app(monkeypatch, metadata_checks=[])  # the saves below are not about live Dynamics metadata
    workspace = ws()
    fresh = _dynamics_card(workspace)
    assert fresh == {
        "connection": {
            "status": "not_connected",
            "integrationUserEmail": None,
            "reconnectReason": None,
            "since": None,
        },
        "configured": None,
        "lastExport": None,
    }
    assert _integration_user(workspace) is None

    api.connect_fully(workspace)
    card = _dynamics_card(workspace)
    assert card["connection"]["status"] == "connected"
    assert card["connection"]["integrationUserEmail"] == api.entra.current_user.email
    # the configuration names the integration user from the connection, in every response
    assert _integration_user(workspace) == {
        "email": api.entra.current_user.email,
        "dynamicsUserId": api.env.user_ids[api.entra.current_user.object_id],
    }

    saved = call(
        config_api.put_dynamics_config,
        request(
            "PUT", "dynamics/config", json_body=valid_doc(), headers=bearer(workspace, user_id="admin-7")
        ),
    )
    assert saved.status_code == 200, saved.get_body()
    assert body_json(saved)["syncIdentifiers"]["integrationUser"]["email"] == api.entra.current_user.email
    configured = _dynamics_card(workspace)["configured"]
    assert configured["version"] == 1 and configured["savedBy"] == "admin-7" and configured["savedAt"]

    # An export whose every record is refused before sending: its summary is on the card.
    submitted = call(
        exports_api.post_export,
        request(
            "POST",
            "dynamics/exports",
            json_body={"entity": "contacts", "records": [{"id": "c1", "linkedinUrl": 7}]},
            headers=bearer(workspace),
        ),
    )
    assert submitted.status_code == 202, submitted.get_body()
    last = _dynamics_card(workspace)["lastExport"]
    assert last["jobId"] == body_json(submitted)["jobId"]
    assert last["state"] == "failed" and last["counts"]["invalid"] == 1 and last["entity"] == "contacts"

    # Microsoft stops accepting the sign-in: the card says reconnect, why, and for whom.
    components = bootstrap.app().connection
    found = components.connections.get(workspace)
    assert found is not None
    components.connections.replace(
        found.record.needs_reconnect("inactivity", dt.datetime.now(dt.UTC)), found.etag
    )
    card = _dynamics_card(workspace)
    assert card["connection"]["status"] == "reconnect_required"
    assert card["connection"]["reconnectReason"] == "inactivity"
    assert card["connection"]["integrationUserEmail"] == api.entra.current_user.email

    assert api.disconnect(workspace).status_code in (200, 204)
    assert _dynamics_card(workspace)["connection"]["status"] == "not_connected"
    assert _integration_user(workspace) is None


def test_connecting_needs_dynamics_enabled_and_a_disabled_workspace_keeps_its_tokens_fresh(
    api: Api, entra: EntraEmulator
) -> None:
    workspace = ws()
    refused = api.connect(workspace, enable=False)
    assert refused.status_code == 409 and body_json(refused)["code"] == "integration_disabled"
    assert "Integrations page" in body_json(refused)["detail"]

    # Disabled while the admin is at Microsoft's sign-in: the completion is refused, nothing is stored.
    started = api.connect(workspace)
    back = api.callback(api.sign_in(body_json(started)["authorizationUrl"]))
    repository = bootstrap.app().integrations_repository
    repository.disable(workspace, "dynamics", "admin-1")
    done = api.complete(workspace, back["handle"])
    assert done.status_code == 409 and body_json(done)["code"] == "integration_disabled"
    assert body_json(api.connection(workspace))["status"] == "disconnected"

    # Connected, then disabled: the token timer keeps refreshing the connection (a refresh token unused
    # for 90 days dies), so enabling Dynamics again weeks later finds it connected.
    api.connect_fully(workspace)
    repository.disable(workspace, "dynamics", "admin-1")
    components = bootstrap.app().connection
    make_due(components, workspace)
    before = entra.stats.refresh_token
    report = components.refresher.run()
    assert report.refreshed == 1 and entra.stats.refresh_token - before == 1
    assert body_json(api.connection(workspace))["status"] == "connected"
