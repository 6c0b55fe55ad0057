"""Anonymous service endpoints: ``GET /api/openapi.json`` and ``GET /api/health``; and the caller's
on-demand Dynamics check ``GET /api/health/dynamics``.

``/api/health`` answers within about a second: storage (one table listing) and Key Vault (one read of a
secret that does not exist: 404 proves the vault answers and accepts our identity) run in parallel with
1 s timeouts and no retries. Storage down is ``503``; Key Vault down or slow is ``degraded`` (``200``):
the app still serves configuration, only connecting and exporting need the vault.

The endpoint is anonymous, so each probe's result is reused for ``PROBE_CACHE_S`` seconds (and callers
arriving while a probe runs share it): a flood of health requests costs each instance at most one vault
read per window, far below Key Vault's per-vault limits, and never throttles real token reads.
``/api/health/dynamics`` is per workspace and on demand, so it is never cached.
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
from typing import Literal

import azure.functions as func
import requests
from pydantic import BaseModel, Field

from core import openapi
from core.adapters.dataverse.client import DataverseClient, token_source_for
from core.adapters.dataverse.errors import DataverseError, PrivilegeDenied, Throttled, Unauthorized
from core.adapters.keyvault import KeyVaultSecretStore, SecretStoreUnavailable, secret_store_from_settings
from core.adapters.tables import get_storage
from core.domain.caller import Caller
from core.domain.catalog import CATALOG_VERSION
from core.domain.connection import (
    ConnectionStatus,
    NotConnected,
    ReconnectRequired,
    TokenConfigurationError,
    TransientTokenError,
)
from core.domain.retry import RetryPolicy
from core.entrypoints.http_support import anonymous, authenticated, json_response
from core.observability import in_current_context
from core.settings import Settings, SettingsError, get_settings

bp = func.Blueprint()  # type: ignore[no-untyped-call]
log = logging.getLogger(__name__)
TAG = ("Service",)

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


# ---------------------------------------------------------------------------------------------- probes

_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="health")
# Its own threads: on-demand Dynamics checks that hang never starve the storage and Key Vault probes.
_dynamics_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="health-dynamics")
_clock: Callable[[], float] = time.monotonic  # tests move time forward


@dataclass
class _ProbeRun:
    settings: Settings
    future: Future[HealthCheck] = field(default_factory=Future)
    finished_at: float | None = None  # by _clock, set before the future completes


_inflight_lock = threading.Lock()
_inflight: dict[str, _ProbeRun] = {}
_vault_lock = threading.Lock()
_vault: tuple[Settings, KeyVaultSecretStore] | None = None


def _key_vault_store(settings: Settings) -> KeyVaultSecretStore:
    """One store per settings object: the client keeps its credential's token and the vault's challenge."""
    global _vault
    with _vault_lock:
        if _vault is None or _vault[0] is not settings:
            store = secret_store_from_settings(
                settings, retry_total=0, connection_timeout=PROBE_TIMEOUT_S, read_timeout=PROBE_TIMEOUT_S
            )
            _vault = (settings, store)
        return _vault[1]


def _timed(probe: Callable[[], object]) -> HealthCheck:
    start = time.perf_counter()
    probe()
    return HealthCheck(status="ok", latencyMs=round((time.perf_counter() - start) * 1000, 1))


def _check_storage(_settings: Settings) -> HealthCheck:
    try:
        return _timed(lambda: get_storage().ping(timeout=PROBE_TIMEOUT_S))
    except Exception as exc:
        log.warning("health: storage unreachable (%s)", type(exc).__name__)
        return HealthCheck(status="unreachable", detail=f"storage did not answer ({type(exc).__name__})")


def _check_key_vault(settings: Settings) -> HealthCheck:
    if not settings.get("KEY_VAULT_URL"):
        return HealthCheck(status="not_configured", detail="KEY_VAULT_URL is not set")
    try:
        store = _key_vault_store(settings)
        return _timed(lambda: store.get(KEY_VAULT_PROBE_SECRET))
    except SecretStoreUnavailable as exc:  # already logged by the store, without secrets
        return HealthCheck(status="unreachable", detail=str(exc))
    except Exception as exc:
        log.warning("health: Key Vault check failed (%s)", type(exc).__name__)
        return HealthCheck(status="unreachable", detail=f"Key Vault check failed ({type(exc).__name__})")


def _probe(name: str, settings: Settings, check: Callable[[Settings], HealthCheck]) -> Future[HealthCheck]:
    """The running probe of ``name`` if there is one, or the one that answered less than ``PROBE_CACHE_S``
    ago, else a new one: however many health requests arrive while a dependency hangs, each check holds at
    most one thread (the pool never fills up with them), and a flood makes one probe per window."""
    with _inflight_lock:
        last = _inflight.get(name)
        if last is not None and last.settings is settings:
            if not last.future.done():
                return last.future
            if last.finished_at is not None and _clock() - last.finished_at < PROBE_CACHE_S:
                return last.future
        run = _ProbeRun(settings)

        def timed_check(settings: Settings) -> HealthCheck:
            try:
                return check(settings)
            finally:
                run.finished_at = _clock()

        run.future = _pool.submit(in_current_context(timed_check), settings)
        _inflight[name] = run
        return run.future


def _result(future: Future[HealthCheck], what: str) -> HealthCheck:
    if future.done():
        return future.result()
    log.warning("health: %s did not answer within %.1f s", what, HEALTH_BUDGET_S)
    return HealthCheck(status="timeout", detail=f"no answer within {HEALTH_BUDGET_S:.1f} s")


@bp.route(route="openapi.json", methods=["GET"])
@anonymous
def get_openapi(req: func.HttpRequest) -> func.HttpResponse:
    return json_response(openapi.document(), headers={"Cache-Control": "no-cache"})


@bp.route(route="health", methods=["GET"])
@anonymous
def get_health(req: func.HttpRequest) -> func.HttpResponse:
    start = time.perf_counter()
    settings = get_settings()
    storage_future = _probe("storage", settings, _check_storage)
    vault_future = _probe("keyVault", settings, _check_key_vault)
    wait([storage_future, vault_future], timeout=HEALTH_BUDGET_S)
    checks = HealthChecks(
        storage=_result(storage_future, "storage"), keyVault=_result(vault_future, "Key Vault")
    )
    storage_ok = checks.storage.status == "ok"
    vault_ok = checks.keyVault.status in ("ok", "not_configured")
    health = Health(
        status="ok" if storage_ok and vault_ok else "degraded" if storage_ok else "down",
        checks=checks,
        storage=checks.storage.status,
        catalogVersion=CATALOG_VERSION,
        elapsedMs=round((time.perf_counter() - start) * 1000, 1),
    )
    return json_response(
        health.model_dump(), status=200 if storage_ok else 503, headers={"Cache-Control": "no-store"}
    )


@bp.route(route="health/dynamics", methods=["GET"])
@authenticated()
def get_dynamics_health(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    start = time.perf_counter()
    check = _dynamics_pool.submit(in_current_context(_dynamics_health), caller.workspace_id)
    try:
        health = check.result(timeout=DYNAMICS_DEADLINE_S)
    except FuturesTimeout:
        # A hung Key Vault or Microsoft sign-in (their clients allow minutes) must not hold the caller:
        # the check goes on in the background and this answer says so.
        health = DynamicsHealth(
            status="unreachable",
            detail=f"no answer within {DYNAMICS_DEADLINE_S:g} s (token, Key Vault or Dynamics)",
            checkedAt=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            elapsedMs=0.0,
        )
    if health.status not in ("connected", "not_connected"):
        log.warning("Dynamics health check: %s (%s)", health.status, health.detail)
    health.elapsedMs = round((time.perf_counter() - start) * 1000, 1)
    return json_response(health.model_dump(), headers={"Cache-Control": "no-store"})


def _dynamics_health(workspace_id: str) -> DynamicsHealth:
    from core.services.connection_service import get_components  # imported late: a cold /health stays light

    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")

    def answer(status: str, detail: str | None = None, **fields: object) -> DynamicsHealth:
        return DynamicsHealth.model_validate(
            {"status": status, "detail": detail, "checkedAt": now, "elapsedMs": 0.0, **fields}
        )

    try:
        components = get_components()
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
        return answer("access_denied", f"Dynamics refused the integration user (HTTP {exc.status})", **known)
    except Throttled:
        return answer("throttled", "Dynamics asked to slow down (HTTP 429); try again shortly", **known)
    except DataverseError as exc:
        where = f"HTTP {exc.status}" if exc.status is not None else "no response"
        return answer("unreachable", f"Dynamics did not answer WhoAmI ({where})", **known)
    finally:
        session.close()
    return answer(
        "connected",
        whoAmI={
            "userId": who.user_id,
            "businessUnitId": who.business_unit_id,
            "organizationId": who.organization_id,
            "latencyMs": latency,
        },
        userMatches=record.dynamics_user_id is None or who.user_id == record.dynamics_user_id,
        **known,
    )


openapi.register(
    "GET", "/api/openapi.json", "This document", response={"type": "object"}, tags=TAG, anonymous=True
)
openapi.register(
    "GET",
    "/api/health",
    "Storage and Key Vault reachability, within about a second",
    response=Health,
    alternatives={503: (Health, "Storage does not answer: the same Health body, with status `down`")},
    tags=TAG,
    anonymous=True,
    description="Anonymous and cheap; 503 (same body) when storage does not answer, 200 with status "
    f"`degraded` when only Key Vault does not. Each probe's result is reused for {PROBE_CACHE_S:g} s.",
)
openapi.register(
    "GET",
    "/api/health/dynamics",
    "The caller's Dynamics connection, checked now with a WhoAmI round trip",
    response=DynamicsHealth,
    tags=TAG,
    description="On demand, for the caller's workspace (any role). Always 200 when the check ran: "
    "`status` says what the frontend should tell the user.",
)
