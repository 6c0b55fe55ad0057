"""The Dynamics connection of a workspace: states, reconnect reasons, token-failure classification and
the environment URL's validation.

Pure: no I/O, no Azure SDK. The adapters store a ``ConnectionRecord`` (metadata only, never tokens) and
the services decide with the functions here when a token is due and what a failed refresh means.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Protocol

# urllib3's parser is pure string work (no I/O); it is the one requests uses (PreparedRequest.prepare_url,
# HTTPAdapter's connection pool key), so the environment URL is judged exactly as it will be sent.
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from core.domain.values import ascii_whole_number


class ConnectionStatus(StrEnum):
    CONNECTED = "connected"
    RECONNECT_REQUIRED = "reconnect_required"
    DISCONNECTED = "disconnected"


class ReconnectReason(StrEnum):
    INACTIVITY = "inactivity"  # AADSTS700082: refresh token unused for 90+ days
    REVOKED = "revoked"  # AADSTS50173 (password change) and any other dead grant
    CONSENT_OR_MFA_REQUIRED = "consent_or_mfa_required"  # interaction_required (AADSTS50076/50079/65001)


class ReconnectRequired(Exception):
    """The workspace's Dynamics grant is dead: exports pause until an admin reconnects.

    ``connection_id`` names the dead connection when known, so a worker that paused can tell a reconnect
    (a new connection id) from the connection it saw die."""

    def __init__(self, workspace_id: str, reason: str, connection_id: str | None = None) -> None:
        super().__init__(f"workspace {workspace_id}: Dynamics connection needs to be reconnected ({reason})")
        self.workspace_id = workspace_id
        self.reason = reason
        self.connection_id = connection_id


class NotConnected(Exception):
    """The workspace has no Dynamics connection at all."""

    def __init__(self, workspace_id: str) -> None:
        super().__init__(f"workspace {workspace_id} has no Dynamics connection")
        self.workspace_id = workspace_id


class TransientTokenError(Exception):
    """Entra ID or the network failed in a way worth retrying later (5xx, timeouts, connection errors)."""


class TokenConfigurationError(TransientTokenError):
    """This deployment's own configuration fails (``setting`` names it): a bad or expired client secret,
    a wrong or half-rotated token encryption key. Not a dead grant: no state changes and no workspace
    notice (an admin of the workspace cannot fix it); retried like a transient failure once fixed."""

    def __init__(self, message: str, setting: str) -> None:
        super().__init__(message)
        self.setting = setting


@dataclass(frozen=True)
class DynamicsConnection:
    """What exports need to know about a connection (docs/contracts.md)."""

    workspace_id: str
    environment_url: str
    integration_user_email: str | None
    dynamics_user_id: str | None


class TokenProvider(Protocol):
    """A workspace's Dynamics access tokens and connection (docs/contracts.md), implemented by
    ``core.services.connection.tokens.TokenService``. ``access_token`` raises ``ReconnectRequired`` when an
    admin must sign in again and ``TransientTokenError`` when a token cannot be had right now."""

    def access_token(self, workspace_id: str, *, force_refresh: bool = False) -> str: ...

    def connection(self, workspace_id: str) -> DynamicsConnection | None: ...


@dataclass(frozen=True)
class ConnectionRecord:
    """Metadata of a connection as stored in Table Storage. Holds no token and no key material."""

    workspace_id: str
    connection_id: str  # new for every successful connect; names the incident of a later failure
    status: ConnectionStatus
    environment_url: str
    secret_name: str  # Key Vault secret holding the encrypted MSAL token cache
    account_id: str  # MSAL home_account_id ("<oid>.<tid>"): identifiers, not credentials
    integration_user_email: str | None
    dynamics_user_id: str | None
    connected_by: str
    connected_at: dt.datetime
    last_refresh_at: dt.datetime
    access_token_expires_at: dt.datetime
    reason: str | None = None
    status_changed_at: dt.datetime | None = None

    @property
    def tenant_id(self) -> str | None:
        """Entra tenant of the signed-in account: MSAL's ``home_account_id`` is ``<oid>.<tid>``."""
        _, dot, tid = self.account_id.rpartition(".")
        return tid if dot and tid else None

    def as_connection(self) -> DynamicsConnection:
        return DynamicsConnection(
            workspace_id=self.workspace_id,
            environment_url=self.environment_url,
            integration_user_email=self.integration_user_email,
            dynamics_user_id=self.dynamics_user_id,
        )

    def refreshed(self, now: dt.datetime, access_token_expires_at: dt.datetime) -> ConnectionRecord:
        return replace(self, last_refresh_at=now, access_token_expires_at=access_token_expires_at)

    def needs_reconnect(self, reason: str, now: dt.datetime) -> ConnectionRecord:
        return replace(self, status=ConnectionStatus.RECONNECT_REQUIRED, reason=reason, status_changed_at=now)


# ---------------------------------------------------------------------------------------------- due-ness


@dataclass(frozen=True)
class RefreshPolicy:
    """When the timer refreshes: access token close to expiry, or no refresh for ``proactive_after``."""

    expiry_margin: dt.timedelta = dt.timedelta(minutes=20)
    proactive_after: dt.timedelta = dt.timedelta(days=7)

    def due_before(self, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
        """(expires-at threshold, last-refresh threshold): due if either value is at or before it."""
        return now + self.expiry_margin, now - self.proactive_after

    def is_due(self, record: ConnectionRecord, now: dt.datetime) -> bool:
        if record.status is not ConnectionStatus.CONNECTED:
            return False
        expires_threshold, refreshed_threshold = self.due_before(now)
        return (
            record.access_token_expires_at <= expires_threshold
            or record.last_refresh_at <= refreshed_threshold
        )


# ---------------------------------------------------------------------------------------------- failures


@dataclass(frozen=True)
class TokenFailure:
    """A classified failed token request: ``reason`` set means reconnect required; ``configuration`` means
    the app's own credentials were refused (fix the deployment, not the grant); else transient."""

    reason: str | None
    error: str
    codes: tuple[int, ...]
    configuration: bool = False

    @property
    def transient(self) -> bool:
        return self.reason is None


_INTERACTION = {"interaction_required", "consent_required", "login_required"}
# invalid_client: AADSTS7000215 (invalid client secret), 7000222 (client secret expired), 7000216/700027
# (client assertion missing/invalid), 700016 (application not found in the tenant).
_CLIENT_CODES = (7000215, 7000222, 7000216, 700027, 700016)


def classify_token_error(result: Mapping[str, Any]) -> TokenFailure:
    """Classify an OAuth error answer (msal's error dict: ``error``, ``error_codes``, ``suberror``)."""
    error = str(result.get("error") or "")
    raw_codes = result.get("error_codes") or []
    codes = tuple(
        code
        for c in (raw_codes if isinstance(raw_codes, list) else [])
        if (code := ascii_whole_number(str(c)))
    )
    if not codes:
        codes = tuple(int(m) for m in re.findall(r"AADSTS(\d+)", str(result.get("error_description") or "")))
    if error in _INTERACTION or any(c in (50076, 50079, 50074, 65001, 50158) for c in codes):
        return TokenFailure(ReconnectReason.CONSENT_OR_MFA_REQUIRED.value, error, codes)
    if 700082 in codes:
        return TokenFailure(ReconnectReason.INACTIVITY.value, error, codes)
    if error == "invalid_client" or any(c in _CLIENT_CODES for c in codes):
        return TokenFailure(None, error or "invalid_client", codes, configuration=True)
    if error == "invalid_grant":
        # 50173 (grant revoked, e.g. password change), 70000/70008/54005/9002313: the grant is gone.
        return TokenFailure(ReconnectReason.REVOKED.value, error, codes)
    # temporarily_unavailable, server_error, anything else: retry later.
    return TokenFailure(None, error or "unknown_error", codes)


# ---------------------------------------------------------------------------------------------- env URL


class InvalidEnvironmentUrl(ValueError):
    pass


DEFAULT_ALLOWED_HOSTS = (
    "*.crm.dynamics.com,*.crm?.dynamics.com,*.crm??.dynamics.com,*.crm.microsoftdynamics.us"
)
MAX_ENVIRONMENT_URL_LENGTH = 300
# A DNS label as RFC 1123 allows it in host names (letters, digits, inner hyphens, 1-63 characters),
# after IDNA encoding (``xn--`` A-labels are LDH too). Checked label by label: linear in the input.
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_HTTPS_PORT = 443


def parse_host_patterns(value: str | None) -> tuple[str, ...]:
    return tuple(p.strip().lower() for p in (value or "").split(",") if p.strip())


def _is_dns_name(host: str) -> bool:
    return 0 < len(host) <= 253 and all(_LABEL.fullmatch(label) for label in host.split("."))


def _refuse_characters(url: str) -> None:
    for char in url:
        if char == "\\":
            # urllib3 (so requests) ends the host at a backslash, as browsers do: a backslash before
            # ".crm.dynamics.com" would send the request, bearer token included, to the host before it.
            raise InvalidEnvironmentUrl("environmentUrl must not contain a backslash")
        if char.isspace() or unicodedata.category(char)[0] in ("C", "Z"):
            raise InvalidEnvironmentUrl("environmentUrl must not contain spaces or control characters")


def normalize_environment_url(url: str, allowed_host_patterns: Iterable[str]) -> str:
    """``https://org.crm.dynamics.com/`` → ``https://org.crm.dynamics.com``; reject anything else with
    ``InvalidEnvironmentUrl`` (never another exception).

    One parser: urllib3's ``parse_url``, the one ``requests`` itself uses to prepare a URL and to pick the
    host and port it connects to, so what is checked here is what the bearer token is sent to. Non-ASCII
    host names are IDNA-encoded by it (``bücher`` → ``xn--bcher-kva``); what IDNA refuses (``＃``, fullwidth
    letters) is refused. The host must then be DNS labels only (no IP literal unless a pattern names it, no
    ``%``, no brackets); no user info, path, query or fragment; no backslash, space or control character
    anywhere. Patterns are shell-style (``*.crm?.dynamics.com``) on the host, and the port must be 443 (or
    absent) unless a pattern itself names a port (``127.0.0.1:*``, local stand-ins only): then
    ``host:port`` must match that pattern. Cost: linear in the URL, which is capped at 300 characters first.
    """
    if not isinstance(url, str) or not url or len(url) > MAX_ENVIRONMENT_URL_LENGTH:
        raise InvalidEnvironmentUrl(
            f"environmentUrl must be a URL of at most {MAX_ENVIRONMENT_URL_LENGTH} characters"
        )
    _refuse_characters(url)
    try:
        parts = parse_url(url)
    except LocationParseError:
        raise InvalidEnvironmentUrl("environmentUrl is not a valid URL") from None
    if parts.scheme != "https":
        raise InvalidEnvironmentUrl("environmentUrl must use https")
    if parts.auth is not None:
        raise InvalidEnvironmentUrl("environmentUrl must not contain a user name or password")
    if parts.query is not None or parts.fragment is not None or parts.path not in (None, "", "/"):
        raise InvalidEnvironmentUrl(
            "environmentUrl must be the environment's root URL, e.g. https://org.crm.dynamics.com"
        )
    host = parts.host or ""
    if not _is_dns_name(host):
        raise InvalidEnvironmentUrl("environmentUrl host must be a DNS name, e.g. org.crm.dynamics.com")
    port = parts.port
    patterns = list(allowed_host_patterns)
    if port in (None, _HTTPS_PORT):
        allowed = any(":" not in p and fnmatch.fnmatchcase(host, p) for p in patterns)
        canonical = f"https://{host}"
    else:
        netloc = f"{host}:{port}"
        allowed = any(":" in p and fnmatch.fnmatchcase(netloc, p) for p in patterns)
        if not allowed and any(":" not in p and fnmatch.fnmatchcase(host, p) for p in patterns):
            raise InvalidEnvironmentUrl("environmentUrl must not name a port other than 443")
        canonical = f"https://{netloc}"
    if not allowed:
        raise InvalidEnvironmentUrl(f"environmentUrl host {host!r} is not a Dynamics 365 environment host")
    again = parse_url(canonical)  # the stored form reads back as the same host and port
    if (again.scheme, again.host, again.port, again.auth) != (
        "https",
        host,
        None if port == 443 else port,
        None,
    ):
        raise InvalidEnvironmentUrl("environmentUrl is not a valid URL")
    return canonical


def dataverse_scope(environment_url: str) -> str:
    return f"{environment_url.rstrip('/')}/.default"
