"""Health probes: storage and Key Vault for the anonymous ``/api/health``; a workspace's Dynamics on demand.

``check()`` answers within about a second: storage (one table listing) and Key Vault (one read of a
secret that does not exist: 404 proves the vault answers and accepts our identity) run in parallel with
1 s timeouts and no retries. Storage down is ``down`` (the endpoint answers 503); Key Vault down or slow
is ``degraded``: the app still serves configuration, only connecting and exporting need the vault.

The endpoint is anonymous, so each probe's result is reused for ``PROBE_CACHE_S`` seconds (and callers
arriving while a probe runs share it): a flood of health requests costs each instance at most one vault
read per window, far below Key Vault's per-vault limits, and never throttles real token reads.
``check_dynamics`` is per workspace and on demand, so it is never cached; it runs on its own threads so a
hung Key Vault or Microsoft sign-in never starves the storage and Key Vault probes, and it answers within
``DYNAMICS_DEADLINE_S`` whatever hangs.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from concurrent.futures import TimeoutError as FuturesTimeout
from dataclasses import dataclass, field
from typing import Literal, Protocol

import requests
from pydantic import BaseModel, Field

from core.adapters.dataverse.client import DataverseClient, token_source_for
from core.adapters.dataverse.errors import DataverseError, PrivilegeDenied, Throttled, Unauthorized
from core.adapters.identity.keyvault import SecretStore, SecretStoreUnavailable
from core.domain.catalog import CATALOG_VERSION
from core.domain.connection import (
    ConnectionStatus,
    NotConnected,
    ReconnectRequired,
    TokenConfigurationError,
    TransientTokenError,
)
from core.domain.retry import RetryPolicy
from core.observability import in_current_context
from core.services.connection.service import ConnectionComponents
from core.settings import SettingsError

log = logging.getLogger(__name__)

HEALTH_BUDGET_S = 1.0  # the whole answer of /api/health
PROBE_TIMEOUT_S = 1.0  # connect / read timeout of each probe
PROBE_CACHE_S = 5.0  # a finished probe's result answers every health request for this long
KEY_VAULT_PROBE_SECRET = "health-probe"  # never created: a 404 is the healthy answer
DYNAMICS_TIMEOUT_S = (3.0, 5.0)  # WhoAmI: connect, read
DYNAMICS_DEADLINE_S = 10.0  # the whole on-demand check, token included

CheckStatus = Literal["ok", "unreachable", "timeout", "not_configured"]


class HealthCheck(BaseModel):
    status: CheckStatus
    latencyMs: float | None = Field(None, description="Round trip of the probe, when it finished")
    detail: str | None = Field(None, description="Why it is not ok (no secrets, no internals)")


class HealthChecks(BaseModel):
    storage: HealthCheck
    keyVault: HealthCheck


class Health(BaseModel):
    status: Literal["ok", "degraded", "down"] = Field(
        description="ok: everything answers; degraded: Key Vault does not (connect/export paused); "
        "down: storage does not (HTTP 503)"
    )
    checks: HealthChecks
    storage: CheckStatus = Field(description="Same as checks.storage.status (kept for existing clients)")
    catalogVersion: str
    elapsedMs: float


class WhoAmIResult(BaseModel):
    userId: str
    businessUnitId: str
    organizationId: str
    latencyMs: float


class DynamicsHealth(BaseModel):
    status: Literal[
        "connected",
        "not_connected",
        "reconnect_required",
        "unreachable",
        "access_denied",
        "throttled",
        "not_configured",
    ] = Field(
        description="connected: WhoAmI answered; not_connected: connect first; reconnect_required: an "
        "admin must sign in again (see reason); unreachable: Dynamics, Microsoft sign-in or Key Vault did "
        "not answer; access_denied: Dynamics refused the integration user; throttled: Dynamics asked to "
        "slow down; not_configured: a setting of this deployment is missing or refused (detail names it)"
    )
    detail: str | None = None
    reason: str | None = Field(None, description="inactivity | revoked | consent_or_mfa_required")
    environmentUrl: str | None = None
    dynamicsUserId: str | None = Field(None, description="The integration user recorded at connect time")
    userMatches: bool | None = Field(None, description="WhoAmI still answers with that user")
    whoAmI: WhoAmIResult | None = None
    checkedAt: str
    elapsedMs: float


class Pingable(Protocol):
    def ping(self, timeout: float = ...) -> None: ...


@dataclass
class _ProbeRun:
    future: Future[HealthCheck] = field(default_factory=Future)
    finished_at: float | None = None  # by the service's monotonic clock, set before the future completes


def _timed(probe: Callable[[], object]) -> HealthCheck:
    start = time.perf_counter()
    probe()
    return HealthCheck(status="ok", latencyMs=round((time.perf_counter() - start) * 1000, 1))


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class HealthService:
    """Probes built on the app's parts, each given as a callable so a part that cannot even be built
    (bad storage settings, no Dynamics app registration) is a probe result, not an exception."""

    def __init__(
        self,
        *,
        storage: Callable[[], Pingable],
        key_vault: Callable[[], SecretStore] | None,
        connection: Callable[[], ConnectionComponents],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._storage = storage
        self._key_vault = key_vault  # None: KEY_VAULT_URL is not set
        self._connection = connection
        self._monotonic = monotonic
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="health")
        self._dynamics_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="health-dynamics")
        self._inflight_lock = threading.Lock()
        self._inflight: dict[str, _ProbeRun] = {}

    # --- /api/health ------------------------------------------------------------------------------

    def check(self) -> Health:
        start = time.perf_counter()
        storage_future = self._probe("storage", self.check_storage)
        vault_future = self._probe("keyVault", self.check_key_vault)
        wait([storage_future, vault_future], timeout=HEALTH_BUDGET_S)
        checks = HealthChecks(
            storage=_result(storage_future, "storage"), keyVault=_result(vault_future, "Key Vault")
        )
        storage_ok = checks.storage.status == "ok"
        vault_ok = checks.keyVault.status in ("ok", "not_configured")
        return Health(
            status="ok" if storage_ok and vault_ok else "degraded" if storage_ok else "down",
            checks=checks,
            storage=checks.storage.status,
            catalogVersion=CATALOG_VERSION,
            elapsedMs=round((time.perf_counter() - start) * 1000, 1),
        )

    def check_storage(self) -> HealthCheck:
        try:
            return _timed(lambda: self._storage().ping(timeout=PROBE_TIMEOUT_S))
        except Exception as exc:
            log.warning("health: storage unreachable (%s)", type(exc).__name__)
            return HealthCheck(status="unreachable", detail=f"storage did not answer ({type(exc).__name__})")

    def check_key_vault(self) -> HealthCheck:
        if self._key_vault is None:
            return HealthCheck(status="not_configured", detail="KEY_VAULT_URL is not set")
        try:
            store = self._key_vault()
            return _timed(lambda: store.get(KEY_VAULT_PROBE_SECRET))
        except SecretStoreUnavailable as exc:  # already logged by the store, without secrets
            return HealthCheck(status="unreachable", detail=str(exc))
        except Exception as exc:
            log.warning("health: Key Vault check failed (%s)", type(exc).__name__)
            return HealthCheck(status="unreachable", detail=f"Key Vault check failed ({type(exc).__name__})")

    def _probe(self, name: str, check: Callable[[], HealthCheck]) -> Future[HealthCheck]:
        """The running probe of ``name`` if there is one, or the one that answered less than
        ``PROBE_CACHE_S`` ago, else a new one: however many health requests arrive while a dependency
        hangs, each check holds at most one thread (the pool never fills up with them), and a flood makes
        one probe per window."""
        with self._inflight_lock:
            last = self._inflight.get(name)
            if last is not None:
                if not last.future.done():
                    return last.future
                if last.finished_at is not None and self._monotonic() - last.finished_at < PROBE_CACHE_S:
                    return last.future
            run = _ProbeRun()

            def timed_check() -> HealthCheck:
                try:
                    return check()
                finally:
                    run.finished_at = self._monotonic()

            run.future = self._pool.submit(in_current_context(timed_check))
            self._inflight[name] = run
            return run.future

    # --- /api/health/dynamics -----------------------------------------------------------------------

    def check_dynamics(self, workspace_id: str) -> DynamicsHealth:
        """The workspace's Dynamics, checked now with a WhoAmI round trip (within the deadline)."""
        start = time.perf_counter()
        check = self._dynamics_pool.submit(in_current_context(self._dynamics_health), workspace_id)
        try:
            health = check.result(timeout=DYNAMICS_DEADLINE_S)
        except FuturesTimeout:
            # A hung Key Vault or Microsoft sign-in (their clients allow minutes) must not hold the caller:
            # the check goes on in the background and this answer says so.
            health = DynamicsHealth(
                status="unreachable",
                detail=f"no answer within {DYNAMICS_DEADLINE_S:g} s (token, Key Vault or Dynamics)",
                checkedAt=_now(),
                elapsedMs=0.0,
            )
        if health.status not in ("connected", "not_connected"):
            log.warning("Dynamics health check: %s (%s)", health.status, health.detail)
        health.elapsedMs = round((time.perf_counter() - start) * 1000, 1)
        return health

    def _dynamics_health(self, workspace_id: str) -> DynamicsHealth:
        now = _now()

        def answer(status: str, detail: str | None = None, **fields: object) -> DynamicsHealth:
            return DynamicsHealth.model_validate(
                {"status": status, "detail": detail, "checkedAt": now, "elapsedMs": 0.0, **fields}
            )

        try:
            components = self._connection()
        except SettingsError:
            return answer("not_configured", "the Dynamics integration is not configured on this deployment")
        record = components.service.get(workspace_id)
        if record is None or record.status is ConnectionStatus.DISCONNECTED:
            return answer("not_connected", "connect Dynamics 365 first")
        known = {"environmentUrl": record.environment_url, "dynamicsUserId": record.dynamics_user_id}
        if record.status is ConnectionStatus.RECONNECT_REQUIRED:
            return answer(
                "reconnect_required", "an admin must reconnect Dynamics 365", reason=record.reason, **known
            )
        session = requests.Session()
        client = DataverseClient(
            record.environment_url,
            token_source_for(components.tokens, workspace_id),
            session=session,
            retry=RetryPolicy(max_attempts=1, max_throttle_retries=0),
            timeout=DYNAMICS_TIMEOUT_S,
            max_concurrency=1,
        )
        try:
            started = time.perf_counter()
            who = client.who_am_i()
            latency = round((time.perf_counter() - started) * 1000, 1)
        except ReconnectRequired as exc:
            return answer(
                "reconnect_required", "an admin must reconnect Dynamics 365", reason=exc.reason, **known
            )
        except NotConnected:
            return answer("not_connected", "connect Dynamics 365 first")
        except TokenConfigurationError as exc:  # before its parent: the operator has something to fix
            return answer(
                "not_configured",
                f"this deployment's {exc.setting} is refused (e.g. an expired client secret or a changed "
                "encryption key): an operator must fix the setting; the connection itself is intact",
                **known,
            )
        except TransientTokenError:
            return answer(
                "unreachable", "no access token: Microsoft sign-in or Key Vault did not answer", **known
            )
        except (Unauthorized, PrivilegeDenied) as exc:
            return answer(
                "access_denied", f"Dynamics refused the integration user (HTTP {exc.status})", **known
            )
        except Throttled:
            return answer("throttled", "Dynamics asked to slow down (HTTP 429); try again shortly", **known)
        except DataverseError as exc:
            where = f"HTTP {exc.status}" if exc.status is not None else "no response"
            return answer("unreachable", f"Dynamics did not answer WhoAmI ({where})", **known)
        finally:
            session.close()
        return answer(
            "connected",
            whoAmI=WhoAmIResult(
                userId=who.user_id,
                businessUnitId=who.business_unit_id,
                organizationId=who.organization_id,
                latencyMs=latency,
            ),
            userMatches=record.dynamics_user_id is None or who.user_id == record.dynamics_user_id,
            **known,
        )


def _result(future: Future[HealthCheck], what: str) -> HealthCheck:
    if future.done():
        return future.result()
    log.warning("health: %s did not answer within %.1f s", what, HEALTH_BUDGET_S)
    return HealthCheck(status="timeout", detail=f"no answer within {HEALTH_BUDGET_S:.1f} s")
