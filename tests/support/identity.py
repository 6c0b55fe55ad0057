"""Fixtures for the identity stand-ins: Entra ID, Key Vault and a Dynamics environment (WhoAmI), plus
the issue-4 wiring against them and Azurite.

Everything is real: msal talks HTTPS to the Entra stand-in, ``SecretClient`` to the Key Vault stand-in
(bearer challenge included), azure-data-tables to Azurite. Each test gets its own table names.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from azure.data.tables import TableServiceClient

from core.adapters.identity.key_wrapping import VaultKeyWrapper
from core.adapters.identity.keyvault import KeyVaultSecretStore, StaticTokenCredential, secret_client
from core.bootstrap import build_connection
from core.domain.connection import ConnectionRecord
from core.services.connection.service import ConnectionComponents, ConnectionService
from core.settings import load_settings
from emulators.entra import EntraEmulator
from emulators.entra.httpd import HttpsServer, Reply, Request
from emulators.keyvault import KeyVaultEmulator
from emulators.tls import ensure_ca, trusting_session
from tests.support.azurite import Azurite

REDIRECT_URI = "https://app.local/api/dynamics/oauth/callback"
FRONTEND_URL = "https://app.local/settings/dynamics"


class WhoAmIStandIn:
    """A Dynamics environment answering WhoAmI for tokens the Entra stand-in signed for its URL.

    Stands in until the full Dataverse emulator is wired here: it checks signature (JWKS), audience
    (= this environment's URL), expiry, and maps the token's ``oid`` to a stable systemuserid.
    """

    def __init__(self, entra: EntraEmulator) -> None:
        self._entra = entra
        self._server = HttpsServer(self._app)
        self.user_ids: dict[str, str] = {}
        self.calls = 0

    def start(self) -> str:
        return self._server.start()

    def stop(self) -> None:
        self._server.stop()

    @property
    def url(self) -> str:
        return self._server.base_url

    def _app(self, req: Request) -> Reply:
        self.calls += 1
        auth = req.headers.get("authorization", "")
        key = jwt.PyJWK(self._entra.public_jwk()).key
        try:
            claims = jwt.decode(auth.removeprefix("Bearer "), key, algorithms=["RS256"], audience=self.url)
        except jwt.PyJWTError:
            return Reply.json({"error": {"code": "0x80072243", "message": "Invalid token"}}, 401)
        if req.path != "/api/data/v9.2/WhoAmI":
            return Reply.json({"error": {"code": "0x80060888", "message": "Resource not found"}}, 404)
        user_id = self.user_ids.setdefault(claims["oid"], str(uuid.uuid4()))
        return Reply.json(
            {"UserId": user_id, "BusinessUnitId": str(uuid.uuid4()), "OrganizationId": str(uuid.uuid4())}
        )


@pytest.fixture()
def entra() -> Iterator[EntraEmulator]:
    emulator = EntraEmulator(access_token_lifetime=3600, redirect_uris=(REDIRECT_URI,))
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture()
def keyvault(entra: EntraEmulator) -> Iterator[KeyVaultEmulator]:
    emulator = KeyVaultEmulator(authority=entra.authority)
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture()
def dynamics_env(entra: EntraEmulator) -> Iterator[WhoAmIStandIn]:
    env = WhoAmIStandIn(entra)
    env.start()
    yield env
    env.stop()


class CaptureLogs(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        self.lines.append(text)


@dataclass
class IdentityStack:
    entra: EntraEmulator
    keyvault: KeyVaultEmulator
    env: WhoAmIStandIn
    azurite: Azurite
    settings_env: dict[str, str]
    components: ConnectionComponents
    tables: TableServiceClient
    prefix: str
    session: requests.Session
    logs: CaptureLogs
    responses: list[str] = field(default_factory=list)

    def connect(self, workspace_id: str = "ws-a") -> None:
        """An admin of the workspace connects Dynamics: start, sign in at the Entra stand-in, callback,
        then the same admin completes with the handle."""
        admin = caller(workspace_id)
        url = self.components.service.start_connect(admin, self.env.url)
        finish_sign_in(self.components.service, admin, self.browser_sign_in(url))

    def browser_sign_in(self, authorization_url: str) -> dict[str, str]:
        """What the admin's browser does: follow the sign-in URL, read the redirect back to us."""
        answer = self.session.get(authorization_url, allow_redirects=False, timeout=10)
        assert answer.status_code == 302, answer.text
        location = answer.headers["Location"]
        assert location.startswith(REDIRECT_URI)
        return {k: v[-1] for k, v in parse_qs(urlsplit(location).query).items()}

    def table_dump(self) -> list[str]:
        """Every entity of every table of this test, as text."""
        out = []
        for table in self.tables.list_tables():
            if table.name.startswith(self.prefix):
                client = self.tables.get_table_client(table.name)
                out.extend(repr(dict(e)) for e in client.list_entities())
        return out


def finish_sign_in(service: ConnectionService, admin: Any, answer: dict[str, str]) -> ConnectionRecord:
    """After the browser came back from Microsoft: the callback keeps the sign-in under a handle, and the
    admin who started completes with it (``ConnectError`` from either step propagates)."""
    return service.complete_connect(admin, service.receive_callback(answer))


def local_secret_store(vault_url: str, token: str) -> KeyVaultSecretStore:
    """The product's secret store on the Key Vault stand-in (static token, local CA, no retries)."""
    return KeyVaultSecretStore(
        secret_client(
            vault_url,
            StaticTokenCredential(token),
            local=True,
            connection_verify=str(ensure_ca().bundle_path),
            retry_total=0,
        )
    )


def local_key_wrapper(key_id: str, token: str, **kwargs: Any) -> VaultKeyWrapper:
    """The vault-key wrapper of the app, against the stand-in (trusting the local CA)."""
    return VaultKeyWrapper(
        key_id,
        StaticTokenCredential(token),
        **kwargs,
        verify_challenge_resource=False,
        connection_verify=str(ensure_ca().bundle_path),
        retry_total=0,
    )


def key_wrapper_for(settings: Any) -> VaultKeyWrapper | None:
    """``local_key_wrapper`` for settings naming a wrapping key, else None (legacy key only)."""
    key_id = settings.get("TOKEN_WRAPPING_KEY_ID")
    return local_key_wrapper(key_id, settings.require("KEY_VAULT_LOCAL_TOKEN")) if key_id else None


def identity_settings(
    entra: EntraEmulator, keyvault: KeyVaultEmulator, azurite: Azurite, kv_token: str
) -> dict[str, str]:
    return {
        "AzureWebJobsStorage": azurite.connection_string,
        "DYNAMICS_CLIENT_ID": entra.client_id,
        "DYNAMICS_CLIENT_SECRET": entra.client_secret,
        "DYNAMICS_AUTHORITY": entra.authority,
        "DYNAMICS_REDIRECT_URI": REDIRECT_URI,
        "DYNAMICS_ALLOWED_HOST_PATTERNS": "*.crm.dynamics.com,127.0.0.1:*",
        "FRONTEND_URL": FRONTEND_URL,
        "KEY_VAULT_URL": keyvault.vault_url,
        "KEY_VAULT_LOCAL_TOKEN": kv_token,
        "TOKEN_WRAPPING_KEY_ID": keyvault.create_key("token-wrapping-key"),
    }


@pytest.fixture()
def identity_stack(
    entra: EntraEmulator, keyvault: KeyVaultEmulator, dynamics_env: WhoAmIStandIn, azurite: Azurite
) -> Iterator[IdentityStack]:
    kv_token = keyvault.issue_token()
    env = identity_settings(entra, keyvault, azurite, kv_token)
    settings = load_settings(env)
    session = trusting_session()
    store = local_secret_store(keyvault.vault_url, kv_token)
    tables = TableServiceClient.from_connection_string(azurite.connection_string)
    prefix = "t" + uuid.uuid4().hex[:10]
    components = build_connection(
        settings,
        tables=tables,
        secret_store=store,
        key_wrapper=key_wrapper_for(settings),
        http_session=session,
        table_prefix=prefix,
    )
    logs = CaptureLogs()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(logs)
    root.setLevel(logging.DEBUG)
    try:
        yield IdentityStack(
            entra, keyvault, dynamics_env, azurite, env, components, tables, prefix, session, logs
        )
    finally:
        root.removeHandler(logs)
        root.setLevel(old_level)
        for table in list(tables.list_tables()):
            if table.name.startswith(prefix):
                tables.delete_table(table.name)


def scan_for(secrets_: list[str], haystacks: list[str]) -> list[tuple[str, str]]:
    """(secret prefix, where) for every occurrence of any secret in any haystack."""
    hits = []
    for secret in secrets_:
        for hay in haystacks:
            if secret and secret in hay:
                hits.append((secret[:12], hay[:80]))
    return hits


def caller(workspace_id: str = "ws-a", user_id: str = "admin-1", role: str = "admin") -> Any:
    from core.domain.caller import Caller, Role

    return Caller(workspace_id=workspace_id, user_id=user_id, role=Role(role))
