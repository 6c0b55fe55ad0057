"""The composition root: builds every adapter, service and worker of the app from ``Settings``, once.

``app()`` is the ``App`` of the current settings (``get_settings()``; a new settings object -- tests clear
its cache -- gets a new ``App``). Entrypoints, queue and timer functions ask it for their service
(``bootstrap.app().export_service``); nothing else in ``core/`` caches a client or a service, and no
service module imports this one or builds its own collaborators: they take them in their constructors.

Each part is built on first use and then kept for the life of the ``App``; parts build in a few
milliseconds without calling the network, except ``connection``, which creates its tables once. A part
whose settings are missing (``SettingsError``, e.g. a server without the Dynamics app registration) fails
the same way until the settings change, so that failure is remembered too: every configuration save asks
for the connection (the live metadata check) and rebuilding the storage clients to fail again would cost
each save milliseconds.

It is longer than the usual module on purpose: it is the one place that names every part and what it is
built from, a few lines each; splitting it would hide the wiring again.

Tests build an ``App`` with their own parts (``App(settings, connection=..., metadata_checks=[])``) and
make ``app()`` return it with ``install`` (``tests.support.app``), instead of patching modules.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import requests
from azure.data.tables import TableServiceClient
from pydantic import ValidationError

from core.adapters.dataverse.budget import BudgetLimits, DynamicsBudget
from core.adapters.dataverse.client import DataverseClient
from core.adapters.identity.auth import TokenVerifier
from core.adapters.identity.keyvault import SecretStore, secret_store_from_settings
from core.adapters.identity.msal_app import DataverseWhoAmI, MsalAppFactory, MsalConfig
from core.adapters.identity.token_crypto import KeyWrapper, TokenCipher
from core.adapters.storage.alert_repository import AlertRepository
from core.adapters.storage.config_repository import ConfigRepository
from core.adapters.storage.connection_repository import (
    CONNECTIONS_TABLE,
    FLOWS_TABLE,
    AuthFlowRepository,
    ConnectionRepository,
)
from core.adapters.storage.integrations_repository import IntegrationsRepository
from core.adapters.storage.job_store import JobStore
from core.adapters.storage.leases import LEASES_TABLE, TableLeases
from core.adapters.storage.notification_repository import NOTIFICATIONS_TABLE, NotificationRepository
from core.adapters.storage.queues import queue_service
from core.adapters.storage.record_versions import RecordVersions
from core.adapters.storage.result_files import ResultFiles
from core.adapters.storage.tables import Storage
from core.adapters.webhook_http import WebhookSender
from core.adapters.window_files import WindowFiles
from core.domain.caller import Caller
from core.domain.config import DynamicsConfig, IntegrationUser
from core.domain.config_validation import MetadataCheck
from core.domain.connection import (
    ConnectionRecord,
    ConnectionStatus,
    DynamicsConnection,
    ReconnectRequired,
    RefreshPolicy,
    parse_host_patterns,
)
from core.domain.integration_switch import DYNAMICS
from core.domain.job_status import JobStatus
from core.domain.jobs import DEFAULT_CHUNK_SIZE
from core.services.activities.service import ACTIVITY_CHUNK_SIZE, ACTIVITY_NAMES, ActivityService
from core.services.activities.worker import ActivityWorker
from core.services.alerts.delivery import DEFAULT_BACKOFF_S, DEFAULT_MAX_ATTEMPTS, WebhookDeliveryWorker
from core.services.alerts.service import AlertService
from core.services.config.metadata_check import DynamicsMetadataCheck
from core.services.config.service import ConfigService, CustomFields, IntegrationUserLookup
from core.services.connection.refresh import TokenRefresher
from core.services.connection.service import (
    ConnectionComponents,
    ConnectionService,
    PausedWorkSource,
    resume_marked,
    resume_workspace,
)
from core.services.connection.tokens import TokenService, utcnow
from core.services.dynamics.access import DynamicsAccess
from core.services.dynamics.fields import FieldsService
from core.services.dynamics.metadata_cache import MetadataCache
from core.services.dynamics.usage import DynamicsUsage
from core.services.dynamics.users import DynamicsUsers, PageCache
from core.services.exports.contacts_for_jobs import ContactExport
from core.services.exports.service import DEFAULT_AUTOMATIC_EXPORT_WINDOW, EXPORT_NAMES, ExportService
from core.services.exports.worker import ExportWorker
from core.services.health.service import PROBE_TIMEOUT_S, HealthService
from core.services.integrations.service import IntegrationsService, SavedVersion
from core.services.jobs import stopping
from core.services.jobs.downloads import ResultsDownloads
from core.services.jobs.queries import DEFAULT_MAX_ACTIVE_JOBS
from core.services.jobs.retention import (
    DEFAULT_MAX_DELETES,
    DEFAULT_RESULTS_DAYS,
    DEFAULT_SUMMARY_DAYS,
    JobRetention,
    RetentionPolicy,
)
from core.settings import Settings, SettingsError, get_settings

log = logging.getLogger(__name__)

T = TypeVar("T")

_UNSET: Any = object()


class App:
    """Every part of the app for one ``Settings``; each built on first use, then kept.

    Keyword arguments replace a part with the caller's own (tests); ``metadata_checks`` replaces the
    live-Dynamics check that every configuration save and validate runs; ``custom_fields`` and
    ``integration_user`` are the lookups of a workspace's custom platform fields (none in this
    deployment) and of the read-only ``syncIdentifiers.integrationUser`` (by default the stored
    connection's user: one table read).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        storage: Storage | None = None,
        connection: ConnectionComponents | None = None,
        dynamics_access: DynamicsAccess | None = None,
        dynamics_budget: DynamicsBudget | None = _UNSET,
        fields_service: FieldsService | None = None,
        config_service: ConfigService | None = None,
        export_service: ExportService | None = None,
        activity_service: ActivityService | None = None,
        metadata_checks: Sequence[MetadataCheck] | None = None,
        custom_fields: CustomFields | None = None,
        integration_user: IntegrationUserLookup | None = None,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._building: dict[str, threading.Lock] = {}
        self._parts: dict[str, Any] = {}
        self._failed: dict[str, SettingsError] = {}
        given = {
            "storage": storage,
            "connection": connection,
            "dynamics_access": dynamics_access,
            "fields_service": fields_service,
            "config_service": config_service,
            "export_service": export_service,
            "activity_service": activity_service,
        }
        self._parts.update({name: part for name, part in given.items() if part is not None})
        if dynamics_budget is not _UNSET:
            self._parts["dynamics_budget"] = dynamics_budget
        self._metadata_checks = metadata_checks
        self._custom_fields = custom_fields
        self._integration_user = integration_user
        self._monotonic = monotonic

    def _once(self, name: str, build: Callable[[], T]) -> T:
        """The part ``name``, built by ``build`` the first time. One lock per part: a part whose build
        waits on the network (the connection creates its tables) never holds up the others (health)."""
        with self._lock:
            if name in self._parts:
                return self._parts[name]  # type: ignore[no-any-return]
            part_lock = self._building.setdefault(name, threading.Lock())
        with part_lock:
            with self._lock:
                if name in self._parts:
                    return self._parts[name]  # type: ignore[no-any-return]
                if name in self._failed:
                    raise SettingsError(str(self._failed[name]))
            try:
                part = build()
            except SettingsError as exc:
                with self._lock:
                    self._failed[name] = exc
                raise
            with self._lock:
                self._parts[name] = part
            return part

    # --- adapters ---------------------------------------------------------------------------------

    @property
    def storage(self) -> Storage:
        """Table and blob clients of the app's storage account."""
        return self._once("storage", lambda: Storage.from_settings(self.settings))

    @property
    def window_files(self) -> WindowFiles:
        """The built setup window (``static/`` at the repository root, shipped with the app)."""
        return self._once("window_files", lambda: WindowFiles(WINDOW_ROOT))

    @property
    def verifier(self) -> TokenVerifier:
        """Verifies the platform's caller tokens (``AuthConfigurationError`` when not configured)."""
        return self._once("verifier", lambda: TokenVerifier.from_settings(self.settings))

    @property
    def dynamics_budget(self) -> DynamicsBudget | None:
        """The Dynamics API budget shared through Table Storage; ``None`` when ``DYNAMICS_BUDGET_ENABLED``
        is false (each client's adaptive limiter alone then keeps to the service protection limits)."""
        return self._once("dynamics_budget", self._build_dynamics_budget)

    def _build_dynamics_budget(self) -> DynamicsBudget | None:
        if not self.settings.get_bool("DYNAMICS_BUDGET_ENABLED"):
            return None
        return DynamicsBudget(self.storage.table_service, budget_limits(self.settings))

    @property
    def dynamics_usage(self) -> DynamicsUsage:
        """What the integration spent of each workspace's Dynamics API budget (the budget's counts)."""
        return self._once(
            "dynamics_usage", lambda: DynamicsUsage(self.dynamics_budget, budget_limits(self.settings))
        )

    @property
    def metadata_cache(self) -> MetadataCache:
        """Dynamics column metadata shared by exports, activities, the fields endpoint and config checks."""
        return self._once("metadata_cache", MetadataCache)

    @property
    def export_store(self) -> JobStore:
        return self._once(
            "export_store",
            lambda: JobStore(
                self.storage.table_service,
                self.storage.blob_service,
                queue_service(self.settings),
                EXPORT_NAMES,
            ),
        )

    @property
    def activity_store(self) -> JobStore:
        return self._once(
            "activity_store",
            lambda: JobStore(
                self.storage.table_service,
                self.storage.blob_service,
                queue_service(self.settings),
                ACTIVITY_NAMES,
            ),
        )

    @property
    def alert_repository(self) -> AlertRepository:
        """Webhooks, their deliveries and attempts (tables), and the queue of deliveries."""
        return self._once("alert_repository", self._build_alert_repository)

    def _build_alert_repository(self) -> AlertRepository:
        repository = AlertRepository(self.storage.table_service, queue_service(self.settings))
        repository.ensure_ready()
        return repository

    @property
    def notification_store(self) -> NotificationRepository:
        """In-app notifications; the same table the connection's reconnect notices are in."""
        return self._once("notification_store", self._build_notification_store)

    def _build_notification_store(self) -> NotificationRepository:
        store = NotificationRepository(self.storage.table_service)
        store.ensure_ready()
        return store

    def alert_secrets(self) -> SecretStore:
        """Key Vault for webhook signing secrets (``SettingsError`` without ``KEY_VAULT_URL``); built when a
        webhook is first configured or sent, so alerts without a webhook never need it."""
        return self._once("alert_secrets", lambda: secret_store_from_settings(self.settings))

    def _allow_local_webhooks(self) -> bool:
        # Never on Azure, whatever the setting says: 127.0.0.1 there is the instance itself.
        return self.settings.get_bool("ALERT_WEBHOOK_ALLOW_LOCAL") and not self.settings.on_azure

    @property
    def export_downloads(self) -> ResultsDownloads:
        """Finished exports' per-record results as CSV/NDJSON files in the staging container."""
        return self._once(
            "export_downloads",
            lambda: ResultsDownloads(
                self.export_store,
                ResultFiles(self.storage.blob_service, EXPORT_NAMES.container),
                kind="export",
            ),
        )

    @property
    def retention(self) -> JobRetention:
        """Deletes finished jobs' results, then their summaries, once older than the settings say."""
        return self._once(
            "retention",
            lambda: JobRetention(
                [self.export_store, self.activity_store],
                RetentionPolicy(
                    results_days=self.settings.get_int("RESULTS_RETENTION_DAYS") or DEFAULT_RESULTS_DAYS,
                    summary_days=self.settings.get_int("JOB_SUMMARY_RETENTION_DAYS") or DEFAULT_SUMMARY_DAYS,
                    max_deletes=self.settings.get_int("RETENTION_MAX_DELETES_PER_RUN") or DEFAULT_MAX_DELETES,
                ),
                usage_days=self.dynamics_budget.purge_usage_days if self.dynamics_budget else None,
            ),
        )

    # --- connection and Dynamics access -------------------------------------------------------------

    @property
    def connection(self) -> ConnectionComponents:
        """Connect/callback/disconnect, tokens and the refresh timer (``SettingsError`` when this
        deployment has no Dynamics app registration or token encryption key)."""
        return self._once(
            "connection",
            lambda: build_connection(
                self.settings,
                tables=self.storage.table_service,
                on_reconnected=self._resume_paused_work,
                paused_work=self._paused_work_kinds,
                active_crm=self.active_crm,
            ),
        )

    def _paused_work_kinds(self) -> list[tuple[str, PausedWorkSource]]:
        return [("export", lambda: self.export_service), ("activity", lambda: self.activity_service)]

    def _resume_paused_work(self, workspace_id: str) -> None:
        """Exports and activity logs paused for the token continue once the workspace reconnects."""
        resume_workspace(workspace_id, self._paused_work_kinds())

    def reconnected_since(self, workspace_id: str, paused: ReconnectRequired) -> bool:
        """A worker's re-check after it paused a chunk: did the workspace reconnect meanwhile?"""
        return self.connection.tokens.reconnected_since(workspace_id, paused)

    @property
    def dynamics_access(self) -> DynamicsAccess:
        """One Dataverse client per workspace and environment, on the connection's tokens."""
        return self._once("dynamics_access", self._build_dynamics_access)

    def _build_dynamics_access(self) -> DynamicsAccess:
        budget = self.dynamics_budget
        return DynamicsAccess(
            self.connection.tokens,
            max_concurrency=self.settings.get_int("DYNAMICS_MAX_CONCURRENCY") or 16,
            on_request_for=budget.observer if budget else None,
            before_send_for=lambda ws: _before_send(budget, ws),
        )

    def client_for(self, workspace_id: str) -> tuple[DataverseClient, DynamicsConnection]:
        """The workspace's Dataverse client (``NotConnected``, ``SettingsError`` when there is none)."""
        return self.dynamics_access.client_for(workspace_id)

    # --- services -----------------------------------------------------------------------------------

    @property
    def alerts(self) -> AlertService:
        """Notifications (job alerts and their listing) and the workspace's webhook."""
        return self._once(
            "alerts",
            lambda: AlertService(
                self.notification_store,
                self.alert_repository,
                self.alert_secrets,
                allow_local=self._allow_local_webhooks(),
            ),
        )

    @property
    def health(self) -> HealthService:
        return self._once("health", self._build_health)

    def _build_health(self) -> HealthService:
        vault_url = self.settings.get("KEY_VAULT_URL")

        def key_vault() -> SecretStore:
            # Its own client (no retries, 1 s timeouts), kept: it holds its credential's token and the
            # vault's challenge, so a probe is one request.
            return self._once(
                "health_key_vault",
                lambda: secret_store_from_settings(
                    self.settings,
                    retry_total=0,
                    connection_timeout=PROBE_TIMEOUT_S,
                    read_timeout=PROBE_TIMEOUT_S,
                ),
            )

        return HealthService(
            storage=lambda: self.storage,
            key_vault=key_vault if vault_url else None,
            connection=lambda: self.connection,
            **({"monotonic": self._monotonic} if self._monotonic else {}),
        )

    @property
    def integrations_repository(self) -> IntegrationsRepository:
        return self._once("integrations_repository", lambda: IntegrationsRepository(self.storage))

    def active_crm(self, workspace_id: str) -> str | None:
        """The workspace's enabled CRM (one table read): connecting, exports and activities need it to be
        Dynamics, and chunks halt while it is not."""
        return self.integrations_repository.active(workspace_id)

    def dynamics_enabled(self, workspace_id: str) -> bool:
        return self.active_crm(workspace_id) == DYNAMICS

    @property
    def integrations_service(self) -> IntegrationsService:
        return self._once(
            "integrations_service",
            lambda: IntegrationsService(
                self.integrations_repository,
                connection=self.connection_record,
                saved_config=self._saved_config,
                last_export=self._last_export,
                on_dynamics_enabled=self._resume_paused_work,
            ),
        )

    def connection_record(self, workspace_id: str) -> ConnectionRecord | None:
        """The workspace's stored connection: one table read, no call to Dynamics or Microsoft sign-in.
        A deployment without the Dynamics app registration has no connection to show."""
        try:
            connections = self.connection.connections
        except SettingsError:
            return None
        found = connections.get(workspace_id)
        return found.record if found is not None else None

    def _integration_user_of(self, workspace_id: str) -> IntegrationUser | None:
        """``syncIdentifiers.integrationUser``: who the connection signs in as (none when not connected)."""
        record = self.connection_record(workspace_id)
        if record is None or record.status is ConnectionStatus.DISCONNECTED:
            return None
        try:
            return IntegrationUser.model_validate(
                {"email": record.integration_user_email, "dynamics_user_id": record.dynamics_user_id}
            )
        except ValidationError:  # WhoAmI answered something that is not a GUID: the e-mail still holds
            return IntegrationUser(email=record.integration_user_email)

    def _saved_config(self, workspace_id: str) -> SavedVersion | None:
        saved = self.config_service.saved_version(workspace_id)
        return None if saved is None else SavedVersion(*saved)

    def _last_export(self, workspace_id: str) -> JobStatus | None:
        jobs = self.export_service.jobs_page(workspace_id, None, 1).jobs
        return jobs[0] if jobs else None

    @property
    def fields_service(self) -> FieldsService:
        return self._once(
            "fields_service",
            lambda: FieldsService(self.client_for, self.metadata_cache, custom_fields=self._custom_fields),
        )

    @property
    def dynamics_users(self) -> DynamicsUsers:
        """The environment's users for the users-mapping step; pages cached per workspace for a minute."""
        return self._once(
            "dynamics_users",
            lambda: DynamicsUsers(self.client_for, PageCache(monotonic=self._monotonic or time.monotonic)),
        )

    @property
    def config_service(self) -> ConfigService:
        return self._once("config_service", self._build_config_service)

    def _build_config_service(self) -> ConfigService:
        checks = self._metadata_checks
        if checks is None:  # every save and validate is checked against live Dynamics metadata
            checks = [DynamicsMetadataCheck(self.fields_service)]
        return ConfigService(
            ConfigRepository(self.storage),
            checks,
            custom_fields=self._custom_fields,
            integration_user=self._integration_user or self._integration_user_of,
        )

    def _load_config(self, caller: Caller) -> DynamicsConfig:
        """The configuration a job snapshots when it is submitted."""
        return self.config_service.get(caller).config

    def _max_active_jobs(self) -> int:
        return self.settings.get_int("JOBS_MAX_ACTIVE_PER_WORKSPACE") or DEFAULT_MAX_ACTIVE_JOBS

    @property
    def export_service(self) -> ExportService:
        return self._once(
            "export_service",
            lambda: ExportService(
                self.export_store,
                self._load_config,
                chunk_size=self.settings.get_int("EXPORT_CHUNK_SIZE") or DEFAULT_CHUNK_SIZE,
                max_active_jobs=self._max_active_jobs(),
                active_crm=self.active_crm,
                events=self.alerts,
                versions=self.record_versions,
                window_seconds=self._automatic_export_window(),
                **({"custom_fields": self._custom_fields} if self._custom_fields else {}),
            ),
        )

    @property
    def record_versions(self) -> RecordVersions:
        """The order of each record's automatic-export changes (latest received, being written)."""
        return self._once("record_versions", lambda: RecordVersions(self.storage.table_service))

    def _automatic_export_window(self) -> int:
        value = self.settings.get_int("AUTOMATIC_EXPORT_WINDOW_SECONDS")
        return DEFAULT_AUTOMATIC_EXPORT_WINDOW if value is None else value

    @property
    def activity_service(self) -> ActivityService:
        return self._once(
            "activity_service",
            lambda: ActivityService(
                self.activity_store,
                self._load_config,
                chunk_size=self.settings.get_int("ACTIVITY_CHUNK_SIZE") or ACTIVITY_CHUNK_SIZE,
                max_active_jobs=self._max_active_jobs(),
                active_crm=self.active_crm,
                events=self.alerts,
            ),
        )

    # --- workers ------------------------------------------------------------------------------------

    @property
    def export_worker(self) -> ExportWorker:
        return self._once(
            "export_worker",
            lambda: ExportWorker(
                self.export_store,
                self.client_for,
                max_attempts=self.settings.get_int("EXPORT_MAX_ATTEMPTS") or 5,
                metadata=self.metadata_cache,
                budget=self.dynamics_budget,
                reconnected=self.reconnected_since,
                dynamics_enabled=self.dynamics_enabled,
                events=self.alerts,
                versions=self.record_versions,
            ),
        )

    @property
    def activity_worker(self) -> ActivityWorker:
        return self._once(
            "activity_worker",
            lambda: ActivityWorker(
                self.activity_store,
                self.client_for,
                # Contacts its events need are exported by the export pipeline, checkpointed beside the job.
                export_contacts=ContactExport(self.activity_store, self.metadata_cache),
                max_attempts=self.settings.get_int("EXPORT_MAX_ATTEMPTS") or 5,
                metadata=self.metadata_cache,
                linkedin_table=self.settings.get("ACTIVITY_LINKEDIN_TABLE"),
                budget=self.dynamics_budget,
                reconnected=self.reconnected_since,
                dynamics_enabled=self.dynamics_enabled,
                events=self.alerts,
            ),
        )

    @property
    def webhook_worker(self) -> WebhookDeliveryWorker:
        """Sends queued webhook deliveries, one attempt per message."""
        return self._once("webhook_worker", self._build_webhook_worker)

    def _build_webhook_worker(self) -> WebhookDeliveryWorker:
        timeout_s = float(self.settings.get_int("ALERT_WEBHOOK_TIMEOUT_S") or 10)
        return WebhookDeliveryWorker(
            self.alert_repository,
            self.alert_secrets,
            WebhookSender(timeout_s=timeout_s, allow_local=self._allow_local_webhooks()),
            max_attempts=self.settings.get_int("ALERT_WEBHOOK_MAX_ATTEMPTS") or DEFAULT_MAX_ATTEMPTS,
            backoff_s=_int_or(self.settings.get_int("ALERT_WEBHOOK_BACKOFF_S"), DEFAULT_BACKOFF_S),
            timeout_s=timeout_s,
        )


def _int_or(value: int | None, default: int) -> int:
    """A setting where 0 means something (no delay) rather than "use the default"."""
    return default if value is None else value


def _before_send(budget: DynamicsBudget | None, workspace_id: str) -> Callable[[], None]:
    """Right before each request of a workspace's client: a cancelled job's running chunk stops
    (``stopping``), then the shared budget holds the request while a 429's pause lasts."""
    gate = budget.gate(workspace_id) if budget is not None else None

    def before_send() -> None:
        stopping.before_request()
        if gate is not None:
            gate()

    return before_send


def budget_limits(settings: Settings) -> BudgetLimits:
    """The Dynamics budget's limits: the service protection limits unless a setting lowers them."""

    def number(name: str, default: float) -> float:
        value = settings.get(name)
        return float(value) if value else default

    defaults = BudgetLimits()
    return BudgetLimits(
        max_concurrent=int(number("DYNAMICS_LIMIT_CONCURRENT", defaults.max_concurrent)),
        max_requests=int(number("DYNAMICS_LIMIT_REQUESTS", defaults.max_requests)),
        max_execution_s=number("DYNAMICS_LIMIT_EXECUTION_S", defaults.max_execution_s),
        window_s=number("DYNAMICS_LIMIT_WINDOW_S", defaults.window_s),
        slots=int(number("DYNAMICS_BUDGET_SLOTS", defaults.slots)),
    )


def build_connection(
    settings: Settings,
    *,
    tables: TableServiceClient | None = None,
    secret_store: SecretStore | None = None,
    key_wrapper: KeyWrapper | None = None,
    http_session: requests.Session | None = None,
    table_prefix: str = "",
    clock: Callable[[], dt.datetime] = utcnow,
    on_reconnected: Callable[[str], None] | None = None,
    paused_work: Callable[[], Sequence[tuple[str, PausedWorkSource]]] | None = None,
    active_crm: Callable[[str], str | None] | None = None,
) -> ConnectionComponents:
    """The connection's parts from settings; tests pass their own tables/secret store/key wrapper/HTTP
    session/prefix.
    ``paused_work`` lists the kinds of work the token timer resumes for marked, connected workspaces."""
    tables = tables or Storage.from_settings(settings).table_service
    store = secret_store or secret_store_from_settings(settings)
    session = http_session or requests.Session()
    cipher = TokenCipher.from_settings(settings, wrapper=key_wrapper)
    factory = MsalAppFactory(MsalConfig.from_settings(settings), http_client=session)
    connections = ConnectionRepository(tables, table_prefix + CONNECTIONS_TABLE)
    flows = AuthFlowRepository(tables, table_prefix + FLOWS_TABLE)
    notifications = NotificationRepository(tables, table_prefix + NOTIFICATIONS_TABLE)
    leases = TableLeases(tables, "token-refresh", table_prefix + LEASES_TABLE, clock=clock)
    tokens = TokenService(
        connections=connections,
        secrets=store,
        cipher=cipher,
        msal_factory=factory,
        notifications=notifications,
        leases=leases,
        clock=clock,
    )
    service = ConnectionService(
        connections=connections,
        flows=flows,
        notifications=notifications,
        secrets=store,
        cipher=cipher,
        msal_factory=factory,
        whoami=DataverseWhoAmI(session),
        allowed_hosts=parse_host_patterns(settings.get("DYNAMICS_ALLOWED_HOST_PATTERNS")),
        clock=clock,
        on_reconnected=on_reconnected,
        active_crm=active_crm,
    )
    policy = RefreshPolicy(
        expiry_margin=dt.timedelta(minutes=settings.get_int("TOKEN_EXPIRY_MARGIN_MINUTES") or 20),
        proactive_after=dt.timedelta(days=settings.get_int("TOKEN_PROACTIVE_REFRESH_DAYS") or 7),
    )
    refresher = TokenRefresher(
        connections=connections,
        tokens=tokens,
        leases=leases,
        policy=policy,
        concurrency=settings.get_int("TOKEN_REFRESH_CONCURRENCY") or 8,
        clock=clock,
        resume_paused=(lambda: resume_marked(connections, paused_work()))
        if paused_work is not None
        else None,
    )
    components = ConnectionComponents(connections, flows, notifications, leases, service, tokens, refresher)
    components.ensure_ready()
    return components


WINDOW_ROOT = Path(__file__).resolve().parent.parent / "static"

# --- the App of the current settings ------------------------------------------------------------------

_lock = threading.Lock()
_current: App | None = None
_make: Callable[[Settings], App] = App


def app() -> App:
    """The ``App`` of the current settings (a new one when ``get_settings`` returns new settings)."""
    global _current
    settings = get_settings()
    with _lock:
        if _current is None or _current.settings is not settings:
            _current = _make(settings)
        return _current


def install(make: Callable[[Settings], App] | None) -> None:
    """How ``app()`` builds the ``App`` for new settings (tests: their own parts); ``None`` restores
    the production ``App``. The current ``App`` is dropped either way."""
    global _current, _make
    with _lock:
        _make = make or App
        _current = None
