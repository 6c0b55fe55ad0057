"""The problems an operation that reads live Dynamics answers when it cannot: one wording for all of them.

409 ``code: not_connected`` (the workspace has no Dynamics connection), 409 ``code: reconnect_required``
(with the ``reason``), 503 ``code: dynamics_unavailable`` (with ``Retry-After`` when Dynamics gave one);
and 409 ``code: integration_disabled`` when Dynamics is not the workspace's enabled CRM (with ``activeCrm``).
"""

from __future__ import annotations

import math

from core.domain.connection import NotConnected, ReconnectRequired
from core.domain.integration_switch import DISABLED_CODE, IntegrationDisabled
from core.entrypoints.http_support import HttpProblem
from core.services.dynamics.fields import DynamicsUnavailable

DYNAMICS_FAILURES = (NotConnected, ReconnectRequired, DynamicsUnavailable)


def dynamics_problem(exc: NotConnected | ReconnectRequired | DynamicsUnavailable) -> HttpProblem:
    if isinstance(exc, NotConnected):
        return HttpProblem(
            409,
            "Dynamics not connected",
            "this workspace has no Dynamics connection: an admin connects it first",
            extra={"code": "not_connected"},
        )
    if isinstance(exc, ReconnectRequired):
        return HttpProblem(
            409,
            "Dynamics reconnection required",
            "the workspace's Dynamics connection must be reconnected by an admin",
            extra={"code": "reconnect_required", "reason": exc.reason},
        )
    headers: dict[str, str] = {}
    if exc.retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    return HttpProblem(
        503, "Dynamics unavailable", exc.reason, headers=headers, extra={"code": "dynamics_unavailable"}
    )


def disabled_problem(exc: IntegrationDisabled) -> HttpProblem:
    """Dynamics is switched off for the workspace: nothing was sent or queued."""
    return HttpProblem(
        409, "Dynamics is disabled", str(exc), extra={"code": DISABLED_CODE, "activeCrm": exc.active}
    )
