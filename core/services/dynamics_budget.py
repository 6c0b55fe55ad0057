"""The process-wide Dynamics budget (see :mod:`core.adapters.dynamics_budget`), built from the settings.

``get_dynamics_budget()`` returns ``None`` when ``DYNAMICS_BUDGET_ENABLED`` is false: callers then rely on
each client's adaptive limiter alone. The Dataverse clients of :mod:`core.services.dynamics_access` report
every attempt to it and the export worker holds a share of it while a chunk runs.
"""

from __future__ import annotations

import threading

from core.adapters.dynamics_budget import BudgetLimits, DynamicsBudget
from core.settings import Settings, get_settings

_lock = threading.Lock()
_cached: tuple[Settings, DynamicsBudget | None] | None = None


def limits_from_settings(settings: Settings) -> BudgetLimits:
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


def build_dynamics_budget(settings: Settings) -> DynamicsBudget | None:
    if not settings.get_bool("DYNAMICS_BUDGET_ENABLED"):
        return None
    from core.adapters.tables import Storage

    return DynamicsBudget(Storage.from_settings(settings).table_service, limits_from_settings(settings))


def get_dynamics_budget() -> DynamicsBudget | None:
    global _cached
    settings = get_settings()
    with _lock:
        if _cached is None or _cached[0] is not settings:
            _cached = (settings, build_dynamics_budget(settings))
        return _cached[1]
