"""The one settings loader.

Every app setting the code reads is declared in ``SETTING_SPECS`` (name, default, meaning). Code reads
settings only through ``get_settings()`` / ``Settings.get*``; a test checks that each declared setting is
documented in ``local.settings.json.example``, the README and provisioned in ``infra/``.

Values come from the process environment. Locally the devhost loads ``local.settings.json`` ("Values")
into the environment first, exactly as Azure Functions Core Tools and App Service do.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class SettingSpec:
    name: str
    default: str | None
    meaning: str
    secret: bool = False


SETTING_SPECS: tuple[SettingSpec, ...] = (
    SettingSpec(
        "AzureWebJobsStorage",
        "UseDevelopmentStorage=true",
        "Storage connection string (tables, queues, blobs). Azure uses AzureWebJobsStorage__* identity "
        "settings instead; see README.",
        secret=True,
    ),
    SettingSpec(
        "AzureWebJobsStorage__accountName",
        None,
        "Storage account name when the app authenticates to storage with its managed identity.",
    ),
    *(
        SettingSpec(
            f"AzureWebJobsStorage__{service}ServiceUri",
            None,
            f"{service.capitalize()} endpoint of that account (identity-based; read by the host too). "
            f"Empty: https://<accountName>.{service}.core.windows.net.",
        )
        for service in ("blob", "queue", "table")
    ),
    SettingSpec("PLATFORM_JWT_AUDIENCE", "dynamics-integration", "Expected `aud` of platform caller tokens."),
    SettingSpec(
        "PLATFORM_JWT_SERVICE_AUDIENCE",
        "dynamics-integration-service",
        "Expected `aud` of the platform backend's own (service) tokens; must differ from "
        "PLATFORM_JWT_AUDIENCE.",
    ),
    SettingSpec("PLATFORM_JWT_ISSUER", "https://platform.local", "Expected `iss` of platform caller tokens."),
    SettingSpec("PLATFORM_JWT_JWKS_URL", None, "JWKS URL with the platform's RS256 signing keys."),
    SettingSpec("PLATFORM_JWT_PUBLIC_KEY", None, "PEM public key for RS256 caller tokens (instead of JWKS)."),
    SettingSpec(
        "PLATFORM_JWT_DEV_HS256_SECRET",
        None,
        "Local development only: shared secret for HS256 caller tokens. Ignored unless "
        "PLATFORM_JWT_ALLOW_DEV_HS256=true.",
        secret=True,
    ),
    SettingSpec(
        "PLATFORM_JWT_ALLOW_DEV_HS256",
        "false",
        "Allow HS256 caller tokens (local development only; refused on Azure and whenever "
        "PLATFORM_JWT_JWKS_URL or PLATFORM_JWT_PUBLIC_KEY is set).",
    ),
    # --- Dynamics OAuth connection ---
    SettingSpec("DYNAMICS_CLIENT_ID", None, "Entra ID application (client) id of the Dynamics integration."),
    SettingSpec(
        "DYNAMICS_CLIENT_SECRET",
        None,
        "Client secret of that application (in Azure: a Key Vault reference app setting).",
        secret=True,
    ),
    SettingSpec(
        "DYNAMICS_AUTHORITY",
        "https://login.microsoftonline.com/organizations",
        "Entra ID authority for the auth-code flow (locally: the Entra stand-in's https URL + tenant).",
    ),
    SettingSpec(
        "DYNAMICS_REDIRECT_URI",
        None,
        "Public URL of GET /api/dynamics/oauth/callback, registered as a redirect URI on the app.",
    ),
    SettingSpec(
        "DYNAMICS_ALLOWED_HOST_PATTERNS",
        "*.crm.dynamics.com,*.crm?.dynamics.com,*.crm??.dynamics.com,*.crm.microsoftdynamics.us",
        "Comma-separated shell patterns (host or host:port) an environment URL must match "
        "(locally add 127.0.0.1:* for the Dataverse stand-in). The URL must be `https://` + DNS labels "
        "(IDNA-encoded), port 443 unless a host:port pattern names another, with no user info, path, query, "
        "fragment, backslash, space or control character; it is parsed by urllib3, the parser requests "
        "sends with.",
    ),
    SettingSpec(
        "FRONTEND_URL",
        "http://localhost:3000/settings/integrations/dynamics",
        "Where the OAuth callback redirects the browser (?dynamics=confirm&handle=... for "
        "POST /api/dynamics/oauth/complete, or ?dynamics=error&code=...).",
    ),
    SettingSpec(
        "KEY_VAULT_URL", None, "Key Vault for the encrypted token caches (https://<vault>.vault.azure.net)."
    ),
    SettingSpec(
        "KEY_VAULT_LOCAL_TOKEN",
        None,
        "Local development only: bearer token for the Key Vault stand-in instead of DefaultAzureCredential.",
        secret=True,
    ),
    SettingSpec(
        "TOKEN_WRAPPING_KEY_ID",
        None,
        "Key Vault key (https://<vault>.vault.azure.net/keys/<name>, no version) that wraps each token "
        "cache's AES-256-GCM data key inside the vault (RSA-OAEP-256); infra creates it.",
    ),
    SettingSpec(
        "TOKEN_ENCRYPTION_KEY",
        None,
        "Legacy: base64 of the 32-byte key-encryption key of caches sealed before TOKEN_WRAPPING_KEY_ID "
        "(kept to open them; each is resealed under the vault key at its next refresh). Without "
        "TOKEN_WRAPPING_KEY_ID it is the key-encryption key (local development).",
        secret=True,
    ),
    SettingSpec("TOKEN_REFRESH_SCHEDULE", "0 */15 * * * *", "NCRONTAB schedule of the token refresh timer."),
    SettingSpec(
        "TOKEN_PROACTIVE_REFRESH_DAYS",
        "7",
        "The timer refreshes any connection not refreshed for this many days (inactivity kills at 90).",
    ),
    SettingSpec(
        "TOKEN_EXPIRY_MARGIN_MINUTES",
        "20",
        "The timer refreshes access tokens expiring within this many minutes.",
    ),
    SettingSpec("TOKEN_REFRESH_CONCURRENCY", "8", "Workspaces refreshed in parallel by one timer run."),
    SettingSpec(
        "DYNAMICS_MAX_CONCURRENCY",
        "16",
        "Most parallel Dataverse requests one instance makes for a workspace (lowered at once by 429s).",
    ),
    SettingSpec(
        "EXPORT_CHUNK_SIZE",
        "500",
        "Records per export chunk (one queue message; the unit of retry and checkpointing).",
    ),
    SettingSpec(
        "AUTOMATIC_EXPORT_WINDOW_SECONDS",
        "30",
        "Seconds an automatic export waits before it runs; later changes of the same records received "
        "meanwhile replace it, so several changes of one record within the window are one write.",
    ),
    SettingSpec(
        "JOBS_MAX_ACTIVE_PER_WORKSPACE",
        "20",
        "Jobs of one kind (exports, activities) a workspace may have queued or running at once; one more "
        "is refused with 429 and Retry-After.",
    ),
    SettingSpec(
        "ACTIVITY_CHUNK_SIZE",
        "1000",
        "Engagement events per activity chunk (one queue message; the unit of retry).",
    ),
    SettingSpec(
        "ACTIVITY_LINKEDIN_TABLE",
        "auto",
        "Activity table LinkedIn events are logged in: a custom activity's logical name, `task`, or `auto` "
        "(new_linkedinactivity when the organisation has it, else task).",
    ),
    SettingSpec(
        "EXPORT_MAX_ATTEMPTS",
        "5",
        "Deliveries of an export chunk before it fails with its reason (keep equal to host.json "
        "extensions.queues.maxDequeueCount).",
    ),
    SettingSpec(
        "DYNAMICS_BUDGET_ENABLED",
        "true",
        "Share each Dynamics user's API budget between instances through Table Storage (DynamicsBudget).",
    ),
    SettingSpec(
        "DYNAMICS_BUDGET_SLOTS",
        "4",
        "Instances that may work for one workspace at once; each sizes its concurrency to its share.",
    ),
    SettingSpec(
        "DYNAMICS_LIMIT_REQUESTS",
        "6000",
        "Dataverse service protection: requests per user per window (lower only to test throttling).",
    ),
    SettingSpec(
        "DYNAMICS_LIMIT_EXECUTION_S",
        "1200",
        "Dataverse service protection: seconds of execution time per user per window.",
    ),
    SettingSpec("DYNAMICS_LIMIT_CONCURRENT", "52", "Dataverse service protection: concurrent requests."),
    SettingSpec("DYNAMICS_LIMIT_WINDOW_S", "300", "Dataverse service protection: sliding window in seconds."),
    # --- Alerts ---
    SettingSpec(
        "ALERT_WEBHOOK_MAX_ATTEMPTS",
        "8",
        "Attempts at one webhook delivery (the first included) before it is logged dead.",
    ),
    SettingSpec(
        "ALERT_WEBHOOK_BACKOFF_S",
        "30",
        "Seconds before the second attempt at a webhook delivery; doubled for each further one, at most "
        "3600.",
    ),
    SettingSpec(
        "ALERT_WEBHOOK_TIMEOUT_S",
        "10",
        "Seconds a webhook receiver has to answer one attempt (connect at most 5 of them).",
    ),
    SettingSpec(
        "ALERT_WEBHOOK_ALLOW_LOCAL",
        "false",
        "Local development only: also admit webhook URLs on 127.0.0.1, over http or https (ignored on "
        "Azure).",
    ),
    # --- Retention ---
    SettingSpec(
        "RESULTS_RETENTION_DAYS",
        "30",
        "Days a finished job's per-record results, staged records and download files are kept; then the "
        "retention timer deletes them (the job's summary stays).",
    ),
    SettingSpec(
        "JOB_SUMMARY_RETENTION_DAYS",
        "400",
        "Days a job's summary (state, counts, who, when) is kept; then the retention timer deletes it. At "
        "least RESULTS_RETENTION_DAYS.",
    ),
    SettingSpec("RETENTION_SCHEDULE", "0 */10 * * * *", "NCRONTAB schedule of the retention timer."),
    SettingSpec(
        "RETENTION_MAX_DELETES_PER_RUN",
        "20000",
        "Rows and blobs one retention timer run deletes at most; the next run goes on where it stopped.",
    ),
    # --- Observability ---
    SettingSpec(
        "APPLICATIONINSIGHTS_CONNECTION_STRING",
        None,
        "Application Insights connection string: when set, logs, traces and metrics are exported with "
        "OpenTelemetry (azure-monitor-opentelemetry); unset, nothing is imported or started.",
        secret=True,
    ),
)

_SPECS_BY_NAME = {spec.name: spec for spec in SETTING_SPECS}


# Set by App Service / Azure Functions on every instance, never by local tools (read-only platform
# variables: https://learn.microsoft.com/azure/app-service/reference-app-settings#app-environment).
AZURE_PLATFORM_VARIABLES = ("WEBSITE_INSTANCE_ID", "WEBSITE_SITE_NAME")


class SettingsError(RuntimeError):
    """A required setting is missing or malformed (names the setting, never its value)."""


@dataclass(frozen=True)
class Settings:
    values: Mapping[str, str]

    def get(self, name: str) -> str | None:
        if name not in _SPECS_BY_NAME:
            raise KeyError(f"setting {name!r} is not declared in core.settings.SETTING_SPECS")
        value = self.values.get(name)
        if value is None or value == "":
            return _SPECS_BY_NAME[name].default
        return value

    def require(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise SettingsError(f"setting {name} is required but not set")
        return value

    def get_bool(self, name: str) -> bool:
        value = (self.get(name) or "").strip().lower()
        return value in {"1", "true", "yes", "on"}

    @property
    def on_azure(self) -> bool:
        """Running in App Service / Azure Functions (a platform variable is set), not on a developer box."""
        return any((self.values.get(name) or "").strip() for name in AZURE_PLATFORM_VARIABLES)

    def get_int(self, name: str) -> int | None:
        value = self.get(name)
        if value is None:
            return None
        try:
            return int(value)
        except ValueError as exc:
            raise SettingsError(f"setting {name} must be an integer") from exc


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    return Settings(dict(os.environ if environ is None else environ))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings, read once. Tests call ``get_settings.cache_clear()`` after changing env."""
    return load_settings()
