"""After a realistic flow through the real devhost, no secret is anywhere it should not be.

The flow: an admin connects Dynamics (the Entra stand-in signs in, msal redeems the code with PKCE, the
Dataverse emulator answers WhoAmI for the Entra token), saves a configuration (checked against live
metadata), exports contacts (the queue worker writes them with the workspace's access token), the refresh
timer rotates the refresh token, the admin reads the connection, fields and job. Every value the flow
handled that must stay secret — access/refresh/id tokens, the authorization code, the PKCE verifier, the
client secret, the token-encryption key, the Key Vault token — is then searched in every Azurite table
entity, blob and queue message (poison queues included), the devhost's log, and every HTTP response (body
and headers) the app gave.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from devhost.launcher import DevHostProcess
from emulators.dataverse import DataverseEmulator
from emulators.entra import EntraEmulator
from emulators.entra.httpd import Reply, Request
from emulators.keyvault import KeyVaultEmulator
from emulators.tls import ensure_ca, trusting_session
from tests.support.azurite import Azurite

pytestmark = pytest.mark.integration

AUDIENCE = "dynamics-integration"
ISSUER = "https://platform.local"
REDIRECT_URI = "https://app.local/api/dynamics/oauth/callback"
FRONTEND_URL = "https://app.local/settings/dynamics"


class RecordingEntra(EntraEmulator):
    """The Entra stand-in, remembering every credential it handed out or was shown."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seen: dict[str, str] = {}

    def _app(self, req: Request) -> Reply:
        reply = super()._app(req)
        if req.path.endswith("/oauth2/v2.0/token"):
            form = req.form()
            for name in ("code", "code_verifier", "refresh_token", "client_secret"):
                if form.get(name):
                    self.seen[f"{name} sent to Entra #{len(self.seen)}"] = form[name]
            try:
                answer = json.loads(reply.body)
            except ValueError:
                answer = {}
            for name in ("access_token", "refresh_token", "id_token"):
                if isinstance(answer, dict) and answer.get(name):
                    self.seen[f"{name} from Entra #{len(self.seen)}"] = str(answer[name])
        return reply


class Receiver:
    """A webhook receiver on 127.0.0.1 answering 500 to its first request, then 200."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = 500 if not receiver.statuses else 200
                receiver.statuses.append(status)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Flow:
    base_url: str
    log_path: Any
    secret_values: dict[str, str]
    responses: list[str] = field(default_factory=list)


def _caller_token(secret: str, workspace: str) -> str:
    now = int(time.time())
    claims = {"sub": "admin-1", "workspace_id": workspace, "role": "admin", "aud": AUDIENCE, "iss": ISSUER}
    return jwt.encode(claims | {"iat": now, "nbf": now, "exp": now + 600}, secret, algorithm="HS256")


def _keep(flow: Flow, response: requests.Response) -> requests.Response:
    flow.responses.append(f"{response.status_code} {dict(response.headers)} {response.text}")
    return response


@pytest.fixture(scope="module")
def flow(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flow]:
    entra = RecordingEntra(access_token_lifetime=3600)
    entra.start()
    keyvault = KeyVaultEmulator(authority=entra.authority)
    keyvault.start()
    dataverse = DataverseEmulator(jwks={"keys": [entra.public_jwk()]})
    dataverse.start()
    user = entra.add_user("integration@contoso.com")
    dataverse.add_user(object_id=user.object_id, domainname=user.email)
    jwt_secret = secrets.token_urlsafe(32)
    encryption_key = base64.b64encode(secrets.token_bytes(32)).decode()
    kv_token = keyvault.issue_token()
    settings = {
        "AzureWebJobsStorage": azurite.connection_string,
        "PLATFORM_JWT_ALLOW_DEV_HS256": "true",
        "PLATFORM_JWT_DEV_HS256_SECRET": jwt_secret,
        "PLATFORM_JWT_AUDIENCE": AUDIENCE,
        "PLATFORM_JWT_ISSUER": ISSUER,
        "DYNAMICS_CLIENT_ID": entra.client_id,
        "DYNAMICS_CLIENT_SECRET": entra.client_secret,
        "DYNAMICS_AUTHORITY": entra.authority,
        "DYNAMICS_REDIRECT_URI": REDIRECT_URI,
        "DYNAMICS_ALLOWED_HOST_PATTERNS": "127.0.0.1:*",
        "FRONTEND_URL": FRONTEND_URL,
        "KEY_VAULT_URL": keyvault.vault_url,
        "KEY_VAULT_LOCAL_TOKEN": kv_token,
        "TOKEN_ENCRYPTION_KEY": encryption_key,
        "REQUESTS_CA_BUNDLE": str(ensure_ca().bundle_path),
        # The refresh timer every 2 s, and every access token counts as expiring: the refresh token is
        # redeemed and rotated through msal inside the devhost during the flow.
        "TOKEN_REFRESH_SCHEDULE": "*/2 * * * * *",
        "TOKEN_EXPIRY_MARGIN_MINUTES": "240",
        # Webhooks to the receiver on 127.0.0.1; a refused attempt is retried a second later.
        "ALERT_WEBHOOK_ALLOW_LOCAL": "true",
        "ALERT_WEBHOOK_BACKOFF_S": "1",
    }
    log_path = tmp_path_factory.mktemp("secrets") / "devhost.log"
    host = DevHostProcess(
        "function_app",
        settings,
        log_path=log_path,
        host_overrides={
            "extensions": {"queues": {"maxPollingInterval": "00:00:00.200", "visibilityTimeout": "00:00:00"}}
        },
    )
    host.start(timeout=60)
    flow = Flow(
        host.base_url,
        log_path,
        {
            "client secret": entra.client_secret,
            "token-encryption key": encryption_key,
            "token-encryption key (hex)": base64.b64decode(encryption_key).hex(),
            "Key Vault token": kv_token,
        },
    )
    receiver = Receiver()
    try:
        _run_flow(flow, entra, dataverse, jwt_secret, receiver)
        flow.secret_values.update(entra.seen)
        yield flow
    finally:
        receiver.stop()
        host.stop()
        dataverse.stop()
        keyvault.stop()
        entra.stop()


def _run_flow(
    flow: Flow, entra: RecordingEntra, dataverse: DataverseEmulator, jwt_secret: str, receiver: Receiver
) -> None:
    app = requests.Session()
    app.trust_env = False
    workspace = f"ws-secrets-{secrets.token_hex(4)}"
    auth = {"Authorization": f"Bearer {_caller_token(jwt_secret, workspace)}"}
    url = flow.base_url + "/api"

    enabled = _keep(flow, app.put(f"{url}/integrations/dynamics", json={"enabled": True}, headers=auth))
    assert enabled.status_code == 200, enabled.text
    started = _keep(
        flow, app.post(f"{url}/dynamics/connect", json={"environmentUrl": dataverse.url}, headers=auth)
    )
    assert started.status_code == 200, started.text
    browser = trusting_session()
    answer = browser.get(started.json()["authorizationUrl"], allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    back = {k: v[-1] for k, v in parse_qs(urlsplit(answer.headers["Location"]).query).items()}
    callback = _keep(flow, app.get(f"{url}/dynamics/oauth/callback", params=back, allow_redirects=False))
    returned = parse_qs(urlsplit(callback.headers["Location"]).query)
    assert callback.status_code == 302 and returned["dynamics"] == ["confirm"], callback.headers
    completed = _keep(
        flow,
        app.post(f"{url}/dynamics/oauth/complete", json={"handle": returned["handle"][0]}, headers=auth),
    )
    assert completed.status_code == 200, completed.text
    assert _keep(flow, app.get(f"{url}/dynamics/connection", headers=auth)).json()["status"] == "connected"

    current = _keep(flow, app.get(f"{url}/dynamics/config", headers=auth))
    config = current.json()
    config["fieldMapping"]["contacts"] = [
        {"kind": "platform_field", "platformField": "firstName", "dynamicsField": "firstname"},
        {"kind": "platform_field", "platformField": "lastName", "dynamicsField": "lastname"},
    ]
    saved = _keep(
        flow,
        app.put(f"{url}/dynamics/config", json=config, headers={**auth, "If-Match": current.headers["ETag"]}),
    )
    assert saved.status_code == 200, saved.text
    _keep(
        flow,
        app.get(
            f"{url}/dynamics/fields", params={"entity": "contact", "platformField": "firstName"}, headers=auth
        ),
    )
    records = [
        {"id": f"p-{i}", "firstName": "Ada", "lastName": f"Lovelace {i}", "company": {"name": "Acme"}}
        for i in range(3)
    ]
    job = _keep(
        flow,
        app.post(f"{url}/dynamics/exports", json={"entity": "contacts", "records": records}, headers=auth),
    )
    assert job.status_code == 202, job.text
    status: dict[str, Any] = {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = _keep(flow, app.get(f"{url}/dynamics/exports/{job.json()['jobId']}", headers=auth)).json()
        if status["state"] not in ("queued", "running"):
            break
        time.sleep(0.3)
    assert status["state"] == "succeeded", status
    _keep(flow, app.get(f"{url}/dynamics/exports/{job.json()['jobId']}/records", headers=auth))
    _keep(flow, app.get(f"{url}/notifications", headers=auth))
    deadline = time.monotonic() + 30
    while entra.stats.refresh_token < 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert entra.stats.refresh_token >= 1, "the refresh timer never redeemed the refresh token"
    assert _keep(flow, app.get(f"{url}/dynamics/connection", headers=auth)).json()["status"] == "connected"
    # The alert webhook: the PUT's answer is the one place its secret may appear (not kept for the scan).
    created = app.put(f"{url}/dynamics/alerts/webhook", json={"url": receiver.url}, headers=auth)
    assert created.status_code == 201, created.text
    flow.secret_values["webhook signing secret"] = created.json()["secret"]
    _keep(flow, app.get(f"{url}/dynamics/alerts/webhook", headers=auth))
    assert _keep(flow, app.post(f"{url}/dynamics/alerts/webhook/test", headers=auth)).status_code == 202
    deadline = time.monotonic() + 30
    while receiver.statuses != [500, 200] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert receiver.statuses == [500, 200], "the test event was not retried until delivered"
    log = _keep(flow, app.get(f"{url}/dynamics/alerts/webhook/deliveries", headers=auth)).json()
    assert [a["statusCode"] for a in log["attempts"]] == [200, 500]
    # A bad callback too: its error path must not echo what it was given.
    _keep(flow, app.get(f"{url}/dynamics/oauth/callback", params=back, allow_redirects=False))


def _storage_dump(connection_string: str) -> list[str]:
    out: list[str] = []
    tables = TableServiceClient.from_connection_string(connection_string)
    for table in tables.list_tables():
        out.extend(
            f"table {table.name}: {dict(e)!r}" for e in tables.get_table_client(table.name).list_entities()
        )
    blobs = BlobServiceClient.from_connection_string(connection_string)
    for container in blobs.list_containers():
        client = blobs.get_container_client(container.name)
        for blob in client.list_blobs():
            data = client.download_blob(blob.name).readall()
            out.append(f"blob {container.name}/{blob.name}: {data.decode('utf-8', 'replace')}")
    queues = QueueServiceClient.from_connection_string(connection_string)
    for queue in queues.list_queues():
        for message in queues.get_queue_client(queue.name).peek_messages(max_messages=32):
            text = str(message.content)
            try:
                text += " " + base64.b64decode(text).decode("utf-8", "replace")
            except ValueError:
                pass
            out.append(f"queue {queue.name}: {text}")
    return out


def _hits(values: dict[str, str], haystacks: list[str]) -> list[str]:
    found = []
    for name, value in values.items():
        probes = {value}
        if value.count(".") == 2:  # a JWT: its signature alone is as telling
            probes.add(value.rsplit(".", 1)[1])
        for hay in haystacks:
            if any(p and len(p) >= 16 and p in hay for p in probes):
                found.append(f"{name} in {hay[:60]!r}")
    return found


def test_the_flow_handled_real_credentials(flow: Flow) -> None:
    kinds = {name.split(" ")[0] for name in flow.secret_values}
    assert {"access_token", "refresh_token", "code", "code_verifier", "client_secret", "webhook"} <= kinds, (
        kinds
    )
    assert sum(name.startswith("refresh_token") for name in flow.secret_values) >= 2  # issued, then rotated


def test_no_secret_in_tables_blobs_or_queue_messages(flow: Flow, azurite: Azurite) -> None:
    dump = _storage_dump(azurite.connection_string)
    assert any("ExportJobs" in line or "export-staging" in line for line in dump)  # the scan sees the job
    assert any("AlertWebhooks" in line for line in dump) and any("AlertDeliveries" in line for line in dump)
    assert _hits(flow.secret_values, dump) == []


def test_no_secret_in_the_devhost_log(flow: Flow) -> None:
    log = flow.log_path.read_text(errors="replace")
    assert "/api/dynamics/oauth/callback" in log  # the log covers the flow
    assert _hits(flow.secret_values, [log]) == []


def test_no_secret_in_any_http_response(flow: Flow) -> None:
    assert len(flow.responses) >= 10
    assert _hits(flow.secret_values, flow.responses) == []


def test_the_scan_finds_what_it_looks_for() -> None:
    token = "eyJhbGciOi.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXBhcnQtMTIzNDU2"
    assert _hits({"access token": token}, ["log: Bearer " + token]) != []
    assert _hits({"access token": token}, ["sig only c2lnbmF0dXJlLXBhcnQtMTIzNDU2"]) != []
    assert _hits({"access token": token}, ["nothing here"]) == []
