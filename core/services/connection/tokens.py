"""Access tokens for exports (``TokenProvider``, docs/contracts.md) and the refresh primitive of the timer.

A workspace's MSAL ``SerializableTokenCache`` lives sealed (``TokenCipher``) in one Key Vault secret; the
table row holds only metadata. Getting a token: load + open the cache, ``acquire_token_silent_with_error``
(msal serves the cached access token, or redeems the refresh token when it is near expiry), and when the
cache changed (rotated refresh token) seal and store it again before the row is updated.

Network refreshes of one workspace are serialised with a lease (the timer holds it for its own runs), and
an ``invalid_grant`` seen right after someone else rotated the cache is retried with the new cache instead
of being taken for a dead grant. A dead grant (``invalid_grant``/``interaction_required``) marks the
connection ``reconnect_required`` with its classified reason, raises one notification for the incident and
raises ``ReconnectRequired``; callers pause the export. Network/5xx/Key Vault trouble raises
``TransientTokenError``: nothing is marked, try again later.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msal
import requests

from core.adapters.identity.keyvault import SecretStore, SecretStoreUnavailable
from core.adapters.identity.msal_app import MsalAppFactory
from core.adapters.identity.token_crypto import ForeignKeyEnvelope, TokenCipher, TokenDecryptError
from core.adapters.storage.connection_repository import ConcurrentUpdate, ConnectionRepository, Versioned
from core.adapters.storage.leases import TableLeases
from core.adapters.storage.notification_repository import NotificationRepository
from core.domain.connection import (
    ConnectionRecord,
    ConnectionStatus,
    DynamicsConnection,
    NotConnected,
    ReconnectReason,
    ReconnectRequired,
    TokenConfigurationError,
    TransientTokenError,
    classify_token_error,
    dataverse_scope,
)
from core.domain.notification import Notification

log = logging.getLogger(__name__)

RECONNECT_NOTIFICATION_KIND = "dynamics_reconnect_required"
LEASE_DURATION = dt.timedelta(minutes=2)
_MESSAGES = {
    ReconnectReason.INACTIVITY.value: "The Dynamics 365 connection expired after a long period without use.",
    ReconnectReason.REVOKED.value: "Dynamics 365 access was revoked, for example after a password change.",
    ReconnectReason.CONSENT_OR_MFA_REQUIRED.value: "Dynamics 365 needs the integration user to sign in again "
    "(multi-factor authentication or consent).",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def secret_name_for(workspace_id: str, connection_id: str) -> str:
    """Key Vault names allow [0-9a-zA-Z-]; workspace ids may hold more, so hash them."""
    digest = hashlib.sha256(workspace_id.encode("utf-8")).hexdigest()[:32]
    return f"dynamics-tokens-{digest}-{connection_id[:32]}"


def reconnect_notification_id(connection_id: str) -> str:
    return f"dynamics-reconnect-{connection_id}"


@dataclass(frozen=True)
class TokenResult:
    access_token: str
    expires_at: dt.datetime
    refreshed: bool  # True when a refresh token was redeemed

    def __repr__(self) -> str:  # keep the token out of logs and tracebacks
        return f"TokenResult(expires_at={self.expires_at.isoformat()}, refreshed={self.refreshed})"


class TokenService:
    """Implements ``TokenProvider``; also the refresh primitive of the timer."""

    def __init__(
        self,
        *,
        connections: ConnectionRepository,
        secrets: SecretStore,
        cipher: TokenCipher,
        msal_factory: MsalAppFactory,
        notifications: NotificationRepository,
        leases: TableLeases,
        clock: Callable[[], dt.datetime] = utcnow,
        lease_wait: float = 10.0,
    ) -> None:
        self._connections = connections
        self._secrets = secrets
        self._cipher = cipher
        self._msal = msal_factory
        self._notifications = notifications
        self._leases = leases
        self._clock = clock
        self._lease_wait = lease_wait
        # In-process cache of access tokens (memory only, never persisted or logged), keyed by workspace and
        # checked against the connection row on every call, so Dataverse requests of an export do not each
        # cost a Key Vault read, a decryption and an msal round.
        self._memo: dict[str, tuple[str, TokenResult]] = {}
        self._memo_lock = threading.Lock()

    # ------------------------------------------------------------------ TokenProvider
    def connection(self, workspace_id: str) -> DynamicsConnection | None:
        found = self._connections.get(workspace_id)
        if found is None or found.record.status is ConnectionStatus.DISCONNECTED:
            return None
        return found.record.as_connection()

    def access_token(self, workspace_id: str, *, force_refresh: bool = False) -> str:
        found = self._require(workspace_id)
        if not force_refresh:
            with self._memo_lock:
                memo = self._memo.get(workspace_id)
            if (
                memo is not None
                and memo[0] == found.record.connection_id
                and memo[1].expires_at > self._clock() + dt.timedelta(minutes=5)
            ):
                return memo[1].access_token
        near_expiry = found.record.access_token_expires_at <= self._clock() + dt.timedelta(minutes=5)
        if not (force_refresh or near_expiry):
            return self.acquire(found, force_refresh=False).access_token
        deadline = time.monotonic() + self._lease_wait
        while True:  # someone may be refreshing this workspace right now: wait for them, then reuse
            lease = self._leases.acquire(workspace_id, LEASE_DURATION)
            if lease is not None:
                try:
                    return self.acquire(self._require(workspace_id), force_refresh=force_refresh).access_token
                finally:
                    self._leases.release(lease)
            if time.monotonic() > deadline:
                raise TransientTokenError(f"workspace {workspace_id}: token refresh in progress elsewhere")
            time.sleep(0.2)
            found = self._require(workspace_id)
            if not force_refresh and found.record.access_token_expires_at > self._clock() + dt.timedelta(
                minutes=5
            ):
                return self.acquire(found, force_refresh=False).access_token

    def reconnected_since(self, workspace_id: str, paused: ReconnectRequired) -> bool:
        """True when the workspace is connected again by a newer connection than the one ``paused`` saw
        die (a worker that just paused a chunk asks: an admin may have reconnected meanwhile)."""
        found = self._connections.get(workspace_id)
        if found is None or found.record.status is not ConnectionStatus.CONNECTED:
            return False
        return paused.connection_id is None or found.record.connection_id != paused.connection_id

    def _require(self, workspace_id: str) -> Versioned:
        found = self._connections.get(workspace_id)
        if found is None or found.record.status is ConnectionStatus.DISCONNECTED:
            raise NotConnected(workspace_id)
        if found.record.status is ConnectionStatus.RECONNECT_REQUIRED:
            raise ReconnectRequired(
                workspace_id, found.record.reason or ReconnectReason.REVOKED.value, found.record.connection_id
            )
        return found

    # ------------------------------------------------------------------ refresh primitive
    def acquire(self, found: Versioned, *, force_refresh: bool, retried: bool = False) -> TokenResult:
        """Token for a connected workspace. The caller holds the lease when a refresh may happen."""
        record = found.record
        sealed = self._load_sealed(record)
        if sealed is None:
            return self._without_cache(found, force_refresh=force_refresh, retried=retried)
        cache = msal.SerializableTokenCache()
        try:
            cache.deserialize(self._cipher.open(sealed, record.workspace_id).decode("utf-8"))
        except ForeignKeyEnvelope as foreign:
            # Sealed under another key-encryption key: this instance's key is wrong (or half-rotated), the
            # grant is fine. Nothing is marked; other instances with the right key keep working.
            log.error(
                "workspace %s: the stored token cache was sealed under another key-encryption key; "
                "the setting %s of this instance is wrong or half-rotated "
                "(connection left unchanged)",
                record.workspace_id,
                foreign.setting,
            )
            raise TokenConfigurationError(
                f"workspace {record.workspace_id}: {foreign.setting} does not open the token cache",
                foreign.setting,
            ) from None
        except SecretStoreUnavailable:  # the vault could not unwrap the data key: nothing concluded
            raise TransientTokenError(f"workspace {record.workspace_id}: Key Vault unavailable") from None
        except (TokenDecryptError, ValueError):
            log.error("workspace %s: stored token cache cannot be opened", record.workspace_id)
            raise self._dead(found, ReconnectReason.REVOKED.value) from None
        app = self._msal.build(cache)
        try:
            accounts = [a for a in app.get_accounts() if a.get("home_account_id") == record.account_id]
            if not accounts:
                raise self._dead(found, ReconnectReason.REVOKED.value)
            result: dict[str, Any] | None = app.acquire_token_silent_with_error(
                [dataverse_scope(record.environment_url)], accounts[0], force_refresh=force_refresh
            )
        except (msal.exceptions.MsalServiceError, requests.RequestException, OSError) as exc:
            log.warning(
                "workspace %s: token endpoint unavailable (%s)", record.workspace_id, type(exc).__name__
            )
            raise TransientTokenError(
                f"workspace {record.workspace_id}: token endpoint unavailable"
            ) from None
        if result is None:
            raise self._dead(found, ReconnectReason.REVOKED.value)
        if "error" in result:
            failure = classify_token_error(result)
            codes = ",".join(str(c) for c in failure.codes)
            if failure.configuration:
                log.error(
                    "workspace %s: Entra ID refused the app's credentials (%s [%s]); check the settings "
                    "DYNAMICS_CLIENT_ID / DYNAMICS_CLIENT_SECRET (bad or expired client secret); "
                    "connection left unchanged",
                    record.workspace_id,
                    failure.error,
                    codes,
                )
                raise TokenConfigurationError(
                    f"workspace {record.workspace_id}: {failure.error}", "DYNAMICS_CLIENT_SECRET"
                )
            if failure.transient:
                log.warning(
                    "workspace %s: transient token failure %s [%s]", record.workspace_id, failure.error, codes
                )
                raise TransientTokenError(f"workspace {record.workspace_id}: {failure.error}")
            if not retried and self._load_sealed(record) != sealed:
                # another instance rotated the refresh token after we loaded the cache: use theirs
                fresh = self._connections.get(record.workspace_id)
                if fresh is not None and fresh.record.status is ConnectionStatus.CONNECTED:
                    return self.acquire(fresh, force_refresh=False, retried=True)
            log.warning("workspace %s: grant dead (%s [%s])", record.workspace_id, failure.reason, codes)
            raise self._dead(found, failure.reason or ReconnectReason.REVOKED.value)
        now = self._clock()
        expires_at = now + dt.timedelta(seconds=int(result.get("expires_in") or 0))
        refreshed = result.get("token_source") == "identity_provider"
        if cache.has_state_changed:
            self._store_cache(record, cache.serialize(), previous=sealed)
            self._update(found, lambda r: r.refreshed(now, expires_at))
        token = TokenResult(str(result["access_token"]), expires_at, refreshed)
        with self._memo_lock:
            if len(self._memo) >= 20_000:
                self._memo.clear()
            self._memo[record.workspace_id] = (record.connection_id, token)
        return token

    def _load_sealed(self, record: ConnectionRecord) -> str | None:
        try:
            return self._secrets.get(record.secret_name)
        except SecretStoreUnavailable:
            raise TransientTokenError(f"workspace {record.workspace_id}: Key Vault unavailable") from None

    def _without_cache(self, found: Versioned, *, force_refresh: bool, retried: bool) -> TokenResult:
        """The row names a token-cache secret that is gone. Reconnected meanwhile (the new connect deletes
        the old secret): use the new connection. Disconnected: ``NotConnected``. Still this connection:
        its tokens are lost, so it needs reconnecting (the export pauses instead of failing)."""
        workspace_id = found.record.workspace_id
        latest = self._connections.get(workspace_id)
        if latest is None or latest.record.status is ConnectionStatus.DISCONNECTED:
            raise NotConnected(workspace_id)
        if latest.record.connection_id != found.record.connection_id:
            if latest.record.status is ConnectionStatus.RECONNECT_REQUIRED:
                raise ReconnectRequired(
                    workspace_id,
                    latest.record.reason or ReconnectReason.REVOKED.value,
                    latest.record.connection_id,
                )
            if retried:
                raise TransientTokenError(f"workspace {workspace_id}: connection changing, try again")
            return self.acquire(latest, force_refresh=force_refresh, retried=True)
        log.error("workspace %s: the token cache secret of the connection is missing", workspace_id)
        raise self._dead(latest, ReconnectReason.REVOKED.value)

    def _store_cache(self, record: ConnectionRecord, serialized: str, previous: str | None) -> None:
        try:
            sealed = self._cipher.seal(serialized.encode("utf-8"), record.workspace_id, previous=previous)
            self._secrets.put(record.secret_name, sealed, tags={"kind": "dynamics-token-cache"})
        except SecretStoreUnavailable:
            log.error("workspace %s: rotated token cache could not be stored", record.workspace_id)
            raise TransientTokenError(f"workspace {record.workspace_id}: Key Vault unavailable") from None

    def _update(self, found: Versioned, change: Callable[[ConnectionRecord], ConnectionRecord]) -> None:
        current = found
        for _ in range(5):
            try:
                self._connections.replace(change(current.record), current.etag)
                return
            except ConcurrentUpdate:
                latest = self._connections.get(found.record.workspace_id)
                if latest is None or latest.record.connection_id != found.record.connection_id:
                    return  # disconnected or reconnected meanwhile: that row is not ours to touch
                current = latest
        log.warning(
            "workspace %s: connection row kept changing; metadata update skipped", found.record.workspace_id
        )

    def _dead(self, found: Versioned, reason: str) -> ReconnectRequired:
        with self._memo_lock:
            self._memo.pop(found.record.workspace_id, None)
        self.mark_reconnect_required(found, reason)
        return ReconnectRequired(found.record.workspace_id, reason, found.record.connection_id)

    def mark_reconnect_required(self, found: Versioned, reason: str) -> None:
        now = self._clock()

        def change(record: ConnectionRecord) -> ConnectionRecord:
            if record.status is ConnectionStatus.RECONNECT_REQUIRED:
                return record
            return record.needs_reconnect(reason, now)

        self._update(found, change)
        created = self._notifications.raise_once(
            Notification(
                workspace_id=found.record.workspace_id,
                id=reconnect_notification_id(found.record.connection_id),
                kind=RECONNECT_NOTIFICATION_KIND,
                reason=reason,
                title="Reconnect Dynamics 365",
                message=_MESSAGES.get(reason, "The Dynamics 365 connection must be reconnected.")
                + " Exports are paused until an admin reconnects.",
                created_at=now,
                read_at=None,
            )
        )
        if created:
            log.info("workspace %s: reconnect notification raised (%s)", found.record.workspace_id, reason)
