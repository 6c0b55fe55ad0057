"""Connect / callback / status / disconnect of a workspace's Dynamics connection.

Connect: validate the environment URL, check Key Vault answers, start an msal auth-code flow (PKCE +
nonce) and keep the flow server-side, sealed, bound to workspace and user, for 10 minutes.
Callback (anonymous: whoever signed in at Microsoft lands there, not necessarily the admin): take the
flow atomically (a replayed or forged state finds nothing) and redeem *nothing*: the code and the flow's
PKCE verifier are kept, sealed, under a new one-time handle bound to the same workspace and admin for 10
minutes, and the browser goes to the frontend with the handle. Completion (the initiating admin's bearer
token + the handle): take the handle atomically -- refused when it names another workspace or user, is
expired or was used; a refused handle is spent -- then redeem the code with msal, ask WhoAmI for the
Dynamics user id, store the sealed token cache in Key Vault *first* and only then the metadata row — if
Key Vault fails nothing is recorded; if Table Storage fails the secret just written is deleted again
(``storage_unavailable``). So a person an admin lured into signing in never becomes the workspace's
connection unless that admin, signed in to the platform, completes in the browser that got the handle.
Reconnecting clears the reconnect notices and tells listeners (exports paused for the token resume).

Paused work always resumes: the reconnect resumes exports and activities (each in its own try); a worker
that pauses a chunk marks its workspace (``JobStore.mark_paused``) and re-checks the connection itself,
and every token timer run resumes the marked workspaces that are connected (``resume_marked``), so a chunk
paused while the reconnect's own resume ran is never stuck.

Over 400 lines on purpose: connect, callback, completion and disconnect share one flow state and one
ordering rule (Key Vault before the table row), which read best in one class.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import msal
import requests
from azure.core.exceptions import AzureError

from core.adapters.identity.keyvault import SecretStore, SecretStoreUnavailable
from core.adapters.identity.msal_app import DataverseWhoAmI, MsalAppFactory, WhoAmIError
from core.adapters.identity.token_crypto import TokenCipher, TokenDecryptError
from core.adapters.storage.connection_repository import (
    AuthFlowRepository,
    ConnectionRepository,
    PendingFlow,
)
from core.adapters.storage.leases import TableLeases
from core.adapters.storage.notification_repository import NotificationRepository
from core.domain.caller import Caller
from core.domain.connection import (
    ConnectionRecord,
    ConnectionStatus,
    classify_token_error,
    dataverse_scope,
    normalize_environment_url,
)
from core.domain.integration_switch import DYNAMICS, IntegrationDisabled
from core.services.connection.refresh import TokenRefresher
from core.services.connection.tokens import RECONNECT_NOTIFICATION_KIND, TokenService, secret_name_for, utcnow

log = logging.getLogger(__name__)

FLOW_LIFETIME = dt.timedelta(minutes=10)
# Entra ID authorization codes are short lived ("typically expire after about 10 minutes",
# https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow#redeem-a-code-for-an-access-token);
# the frontend completes right after the redirect, so the handle need not outlive the code.
HANDLE_LIFETIME = dt.timedelta(minutes=10)


class ConnectError(Exception):
    """The callback or the completion failed; ``code`` goes to the frontend (``?dynamics=error&code=<code>``
    from the callback, the problem's ``code`` from the completion)."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code


class KeyVaultUnavailable(Exception):
    """Key Vault cannot be used right now (answered as 503)."""


def _flow_context(workspace_id: str, user_id: str) -> str:
    return f"oauth-flow|{workspace_id}|{user_id}"


def _completion_context(workspace_id: str, user_id: str) -> str:
    return f"oauth-completion|{workspace_id}|{user_id}"


def _handle_key(handle: str) -> str:
    """Handles share the flows table with states (and its purge of expired rows); the prefix keeps the two
    key spaces apart, and the repository stores only a hash of either."""
    return f"completion|{handle}"


class ConnectionService:
    def __init__(
        self,
        *,
        connections: ConnectionRepository,
        flows: AuthFlowRepository,
        notifications: NotificationRepository,
        secrets: SecretStore,
        cipher: TokenCipher,
        msal_factory: MsalAppFactory,
        whoami: DataverseWhoAmI,
        allowed_hosts: tuple[str, ...],
        clock: Callable[[], dt.datetime] = utcnow,
        on_reconnected: Callable[[str], None] | None = None,
        active_crm: Callable[[str], str | None] | None = None,
    ) -> None:
        # workspace -> its enabled CRM; connecting needs Dynamics enabled (None: not consulted)
        self._active_crm = active_crm
        self._connections = connections
        self._flows = flows
        self._notifications = notifications
        self._secrets = secrets
        self._cipher = cipher
        self._msal = msal_factory
        self._whoami = whoami
        self._allowed_hosts = allowed_hosts
        self._clock = clock
        self._on_reconnected = on_reconnected

    # ------------------------------------------------------------------ connect
    def start_connect(self, caller: Caller, environment_url: str) -> str:
        """Microsoft sign-in URL for the admin; raises ``IntegrationDisabled``, ``InvalidEnvironmentUrl``,
        ``KeyVaultUnavailable``."""
        self._require_enabled(caller.workspace_id)
        env = normalize_environment_url(environment_url, self._allowed_hosts)
        try:
            self._secrets.get("dynamics-connect-probe")  # fail now, not after the user signed in
        except SecretStoreUnavailable as exc:
            raise KeyVaultUnavailable(str(exc)) from None
        state = secrets.token_urlsafe(32)
        flow = self._msal.initiate_flow([dataverse_scope(env)], state)
        payload = json.dumps({"flow": flow, "environmentUrl": env}).encode("utf-8")
        try:  # the vault key wraps the flow's data key
            sealed = self._cipher.seal(payload, _flow_context(caller.workspace_id, caller.user_id))
        except SecretStoreUnavailable as exc:
            raise KeyVaultUnavailable(str(exc)) from None
        self._flows.add(
            state, PendingFlow(caller.workspace_id, caller.user_id, sealed, self._clock() + FLOW_LIFETIME)
        )
        return str(flow["auth_uri"])

    def _require_enabled(self, workspace_id: str) -> None:
        if self._active_crm is None:
            return
        active = self._active_crm(workspace_id)
        if active != DYNAMICS:
            raise IntegrationDisabled(active, "connecting")

    # ------------------------------------------------------------------ callback
    def receive_callback(self, params: Mapping[str, str]) -> str:
        """The redirect back from Microsoft: spend the state, keep code + flow sealed under a new one-time
        handle bound to the initiating admin; redeem nothing. Returns the handle; raises ``ConnectError``."""
        state = params.get("state") or ""
        if not state or len(state) > 200:
            raise ConnectError("invalid_state", "the callback carries no usable state")
        pending = self._take(state, "the flow")
        if pending is None:
            raise ConnectError("invalid_state", "unknown, forged or already used state")
        if pending.expires_at <= self._clock():
            raise ConnectError("expired_state", "the sign-in took longer than 10 minutes")
        try:
            payload = json.loads(
                self._cipher.open(pending.sealed_flow, _flow_context(pending.workspace_id, pending.user_id))
            )
        except (TokenDecryptError, ValueError):
            raise ConnectError("invalid_state", "the stored flow does not open") from None
        except SecretStoreUnavailable:  # the vault could not unwrap the flow's data key
            raise ConnectError("storage_unavailable", "the sign-in could not be kept; try again") from None
        if params.get("error"):
            error = str(params["error"])
            code = (
                "consent_required"
                if error in {"consent_required", "interaction_required"}
                else "access_denied"
            )
            raise ConnectError(code, "Microsoft sign-in did not grant access")
        code_param = params.get("code") or ""
        if not code_param or len(code_param) > 4096:
            raise ConnectError("invalid_request", "the callback carries no code")
        handle = secrets.token_urlsafe(32)
        kept = json.dumps({**payload, "code": code_param, "state": state}).encode("utf-8")
        try:
            sealed = self._cipher.seal(kept, _completion_context(pending.workspace_id, pending.user_id))
        except SecretStoreUnavailable:
            raise ConnectError("storage_unavailable", "the sign-in could not be kept; try again") from None
        try:
            self._flows.add(
                _handle_key(handle),
                PendingFlow(pending.workspace_id, pending.user_id, sealed, self._clock() + HANDLE_LIFETIME),
            )
        except AzureError as exc:
            log.error(
                "OAuth callback: Table Storage unavailable while keeping the sign-in (%s)", type(exc).__name__
            )
            raise ConnectError("storage_unavailable", "the sign-in could not be kept; try again") from None
        return handle

    def _take(self, key: str, what: str) -> PendingFlow | None:
        try:
            return self._flows.take(key)
        except AzureError as exc:
            log.error("OAuth: Table Storage unavailable while taking %s (%s)", what, type(exc).__name__)
            raise ConnectError(
                "storage_unavailable", "the sign-in could not be completed; try again"
            ) from None

    # ------------------------------------------------------------------ completion
    def complete_connect(self, caller: Caller, handle: str) -> ConnectionRecord:
        """The initiating admin confirms: redeem the kept code and store the connection. Raises
        ``ConnectError``: ``invalid_handle`` (unknown or used), ``expired_handle``, ``not_initiator``
        (another workspace or user: the handle is spent and nothing is stored), or a redemption failure."""
        if not handle or len(handle) > 200:
            raise ConnectError("invalid_handle", "unknown or already used sign-in")
        pending = self._take(_handle_key(handle), "the completion handle")
        if pending is None:
            raise ConnectError("invalid_handle", "unknown or already used sign-in")
        if (pending.workspace_id, pending.user_id) != (caller.workspace_id, caller.user_id):
            log.warning(
                "workspace %s: a sign-in started by another admin or workspace was presented; refused",
                caller.workspace_id,
            )
            raise ConnectError("not_initiator", "only the admin who started this sign-in can complete it")
        if pending.expires_at <= self._clock():
            raise ConnectError("expired_handle", "the sign-in was not completed within 10 minutes")
        self._require_enabled(caller.workspace_id)  # disabled while the admin was signing in
        try:
            payload = json.loads(
                self._cipher.open(
                    pending.sealed_flow, _completion_context(pending.workspace_id, pending.user_id)
                )
            )
        except (TokenDecryptError, ValueError):
            raise ConnectError("invalid_handle", "the kept sign-in does not open") from None
        except SecretStoreUnavailable:
            raise ConnectError("key_vault_unavailable", "the kept sign-in could not be opened") from None
        flow: dict[str, Any] = payload["flow"]
        env = str(payload["environmentUrl"])
        state = str(payload["state"])
        code = str(payload["code"])

        cache = msal.SerializableTokenCache()
        app = self._msal.build(cache)
        try:
            result: dict[str, Any] = app.acquire_token_by_auth_code_flow(
                flow, {"code": code, "state": state}, scopes=[dataverse_scope(env)]
            )
        except (ValueError, RuntimeError):  # state / nonce mismatch
            raise ConnectError("invalid_state", "the answer does not belong to this sign-in") from None
        except (msal.exceptions.MsalServiceError, requests.RequestException, OSError) as exc:
            log.warning("token endpoint unavailable during connect (%s)", type(exc).__name__)
            raise ConnectError("identity_provider_unavailable", "Microsoft sign-in is unavailable") from None
        if "error" in result:
            failure = classify_token_error(result)
            log.warning("auth code redemption failed: %s %s", failure.error, failure.codes)
            raise ConnectError("token_exchange_failed", f"{failure.error} {list(failure.codes)}")
        claims = result.get("id_token_claims") or {}
        email = claims.get("preferred_username") or claims.get("email") or claims.get("upn")
        accounts = app.get_accounts()
        if not accounts:
            raise ConnectError("token_exchange_failed", "no account in the token answer")
        try:
            dynamics_user_id = self._whoami.user_id(env, str(result["access_token"]))
        except WhoAmIError as exc:
            log.warning("WhoAmI failed during connect: %s", exc)
            raise ConnectError(
                "whoami_failed", "the Dynamics environment did not accept the sign-in"
            ) from None

        now = self._clock()
        connection_id = uuid.uuid4().hex
        record = ConnectionRecord(
            workspace_id=pending.workspace_id,
            connection_id=connection_id,
            status=ConnectionStatus.CONNECTED,
            environment_url=env,
            secret_name=secret_name_for(pending.workspace_id, connection_id),
            account_id=str(accounts[0]["home_account_id"]),
            integration_user_email=str(email) if email else None,
            dynamics_user_id=dynamics_user_id,
            connected_by=pending.user_id,
            connected_at=now,
            last_refresh_at=now,
            access_token_expires_at=now + dt.timedelta(seconds=int(result.get("expires_in") or 0)),
            reason=None,
            status_changed_at=now,
        )
        try:
            sealed = self._cipher.seal(cache.serialize().encode("utf-8"), pending.workspace_id)
            self._secrets.put(record.secret_name, sealed, tags={"kind": "dynamics-token-cache"})
        except SecretStoreUnavailable:
            raise ConnectError(
                "key_vault_unavailable", "tokens could not be stored; nothing was saved"
            ) from None
        try:
            previous = self._connections.get(pending.workspace_id)
            self._connections.put(record)
        except AzureError as exc:
            # The secret just written would be referenced by nothing: remove it (best effort).
            log.error(
                "OAuth callback: Table Storage unavailable while saving the connection (%s)",
                type(exc).__name__,
            )
            self._forget_secret(record.secret_name)
            raise ConnectError(
                "storage_unavailable", "the connection could not be saved; nothing was kept"
            ) from None
        if previous is not None and previous.record.secret_name != record.secret_name:
            self._forget_secret(previous.record.secret_name)
        self._notifications.clear(pending.workspace_id, RECONNECT_NOTIFICATION_KIND)
        if self._on_reconnected is not None:
            try:
                self._on_reconnected(pending.workspace_id)
            except Exception:
                log.exception("workspace %s: reconnect listener failed", pending.workspace_id)
        log.info("workspace %s: Dynamics connected", pending.workspace_id)
        return record

    # ------------------------------------------------------------------ state / disconnect
    def get(self, workspace_id: str) -> ConnectionRecord | None:
        found = self._connections.get(workspace_id)
        return found.record if found else None

    def disconnect(self, workspace_id: str) -> bool:
        """Remove the secret, then the row. Key Vault down → ``KeyVaultUnavailable`` and nothing changes."""
        found = self._connections.get(workspace_id)
        if found is None:
            return False
        try:
            self._secrets.delete(found.record.secret_name)
        except SecretStoreUnavailable as exc:
            raise KeyVaultUnavailable(str(exc)) from None
        self._connections.delete(workspace_id)
        self._notifications.clear(workspace_id, RECONNECT_NOTIFICATION_KIND)
        log.info("workspace %s: Dynamics disconnected", workspace_id)
        return True

    def _forget_secret(self, name: str) -> None:
        try:
            self._secrets.delete(name)
        except SecretStoreUnavailable:
            log.warning("old token cache secret could not be deleted now; it stays soft-deletable")


# ---------------------------------------------------------------------------------------------- parts


@dataclass
class ConnectionComponents:
    """The connection's parts, built together by the composition root (``core.bootstrap``)."""

    connections: ConnectionRepository
    flows: AuthFlowRepository
    notifications: NotificationRepository
    leases: TableLeases
    service: ConnectionService
    tokens: TokenService
    refresher: TokenRefresher

    def ensure_ready(self) -> None:
        for repo in (self.connections, self.flows, self.notifications, self.leases):
            repo.ensure_ready()


class PausedWork(Protocol):
    """Exports or activities: what can be paused for the token and resumed (``ExportService``)."""

    def resume_paused(self, workspace_id: str) -> int: ...

    def paused_workspaces(self) -> list[str]: ...


PausedWorkSource = Callable[[], PausedWork]


def resume_workspace(workspace_id: str, kinds: Sequence[tuple[str, PausedWorkSource]]) -> tuple[int, int]:
    """Resume every kind of paused work of a workspace, each in its own try: exports failing to resume
    never stop activities from resuming. Returns (chunks resumed, kinds that failed)."""
    resumed = failed = 0
    for kind, source in kinds:
        try:
            count = source().resume_paused(workspace_id)
        except Exception:
            log.exception(
                "workspace %s: resuming paused %s chunks failed; the token timer retries", workspace_id, kind
            )
            failed += 1
            continue
        if count:
            log.info("workspace %s: %d paused %s chunks resumed", workspace_id, count, kind)
        resumed += count
    return resumed, failed


def resume_marked(
    connections: ConnectionRepository, kinds: Sequence[tuple[str, PausedWorkSource]]
) -> tuple[int, int]:
    """The token timer's safety net: resume the paused work of every workspace marked paused that is
    connected now. Only marked workspaces are read (a marker is written when a chunk pauses and removed by
    a resume that saw no newer pause), so a run costs nothing when nothing is paused."""
    resumed = failed = 0
    for kind, source in kinds:
        try:
            work = source()
            workspaces = work.paused_workspaces()
        except Exception:
            log.exception("paused %s work could not be listed; the next run tries again", kind)
            failed += 1
            continue
        for workspace_id in workspaces:
            try:
                found = connections.get(workspace_id)
                if found is None or found.record.status is not ConnectionStatus.CONNECTED:
                    continue  # still waiting for a reconnect (which resumes it)
                count = work.resume_paused(workspace_id)
            except Exception:
                log.exception(
                    "workspace %s: resuming paused %s chunks failed; the next run tries again",
                    workspace_id,
                    kind,
                )
                failed += 1
                continue
            if count:
                log.info(
                    "workspace %s: %d paused %s chunks resumed by the token timer", workspace_id, count, kind
                )
            resumed += count
    return resumed, failed
