"""The token refresh timer's work: refresh every connected workspace that is due, a few at a time.

Due = access token expiring within the margin, or no refresh for ``proactive_after`` (default 7 days, so
a refresh token never reaches Entra's 90-day inactivity limit). The table query returns only due rows.
Each workspace is refreshed under a lease and re-checked after the lease is taken, so two overlapping
runs (or instances) refresh it once. One workspace's failure never stops the others:
- dead grant → ``reconnect_required`` with its reason + one notification (``TokenService``);
- network / 5xx / Key Vault trouble → counted as transient, retried next run, no notification;
- the deployment's own configuration refused (``invalid_client``: bad or expired client secret; a token
  cache sealed under another ``TOKEN_WRAPPING_KEY_ID`` or legacy ``TOKEN_ENCRYPTION_KEY``) → counted as
  ``configuration_error`` and logged at error level every run until fixed; no state change, no
  workspace notice.
After refreshing, a run resumes work paused for the token of workspaces that are connected again (the
safety net of the reconnect's own resume, see ``connection_service.resume_marked``).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass

from core.adapters.storage.connection_repository import ConnectionRepository
from core.adapters.storage.leases import TableLeases
from core.domain.connection import (
    NotConnected,
    ReconnectRequired,
    RefreshPolicy,
    TokenConfigurationError,
    TransientTokenError,
)
from core.observability import in_current_context, log_context
from core.services.connection.tokens import LEASE_DURATION, TokenService, utcnow

log = logging.getLogger(__name__)


@dataclass
class RefreshRunReport:
    due: int = 0
    refreshed: int = 0
    not_due_anymore: int = 0
    locked: int = 0
    reconnect_required: int = 0
    transient: int = 0
    configuration_error: int = 0
    failed: int = 0
    resumed_chunks: int = 0
    resume_failed: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class TokenRefresher:
    def __init__(
        self,
        *,
        connections: ConnectionRepository,
        tokens: TokenService,
        leases: TableLeases,
        policy: RefreshPolicy,
        concurrency: int = 8,
        clock: Callable[[], dt.datetime] = utcnow,
        resume_paused: Callable[[], tuple[int, int]] | None = None,
    ) -> None:
        self._resume_paused = resume_paused  # -> (chunks resumed, failures)
        self._connections = connections
        self._tokens = tokens
        self._leases = leases
        self._policy = policy
        self._concurrency = max(1, concurrency)
        self._clock = clock

    def run(self) -> RefreshRunReport:
        report = RefreshRunReport()
        lock = threading.Lock()
        started = self._clock()
        expires_before, refreshed_before = self._policy.due_before(started)
        slots = threading.BoundedSemaphore(self._concurrency * 2)  # bounded backlog: memory stays flat

        def count(field: str) -> None:
            with lock:
                setattr(report, field, getattr(report, field) + 1)

        def work(workspace_id: str) -> None:
            # Pool threads start from the run's context (its correlation id) plus the workspace id, so
            # every line about this workspace can be filtered on both.
            with log_context(workspace_id=workspace_id):
                try:
                    count(self._refresh_one(workspace_id))
                except Exception:
                    log.exception("workspace %s: token refresh failed unexpectedly", workspace_id)
                    count("failed")
                finally:
                    slots.release()

        with ThreadPoolExecutor(max_workers=self._concurrency, thread_name_prefix="token-refresh") as pool:
            futures: list[Future[None]] = []
            for record in self._connections.iter_due(expires_before, refreshed_before):
                report.due += 1
                slots.acquire()
                futures.append(pool.submit(in_current_context(work), record.workspace_id))
                if len(futures) > 1000:
                    futures = [f for f in futures if not f.done()]
        if report.configuration_error:
            log.error(
                "token refresh run: %d workspace(s) failed on this deployment's configuration (client secret "
                "or TOKEN_WRAPPING_KEY_ID / TOKEN_ENCRYPTION_KEY; see the errors above); "
                "their connections were left unchanged",
                report.configuration_error,
            )
        if self._resume_paused is not None:
            try:
                report.resumed_chunks, report.resume_failed = self._resume_paused()
            except Exception:
                log.exception("token refresh run: resuming paused work failed; the next run tries again")
                report.resume_failed += 1
        log.info("token refresh run: %s", report.as_dict())
        return report

    def _refresh_one(self, workspace_id: str) -> str:
        lease = self._leases.acquire(workspace_id, LEASE_DURATION)
        if lease is None:
            return "locked"
        try:
            found = self._connections.get(workspace_id)
            if found is None or not self._policy.is_due(found.record, self._clock()):
                return "not_due_anymore"  # another run refreshed it, or it was disconnected
            self._tokens.acquire(found, force_refresh=True)
            return "refreshed"
        except ReconnectRequired as exc:
            log.warning("workspace %s: reconnect required (%s)", workspace_id, exc.reason)
            return "reconnect_required"
        except TokenConfigurationError as exc:
            log.error("workspace %s: refresh failed on configuration (%s)", workspace_id, exc.setting)
            return "configuration_error"
        except (TransientTokenError, NotConnected) as exc:
            log.warning("workspace %s: refresh postponed (%s)", workspace_id, type(exc).__name__)
            return "transient"
        finally:
            self._leases.release(lease)
