"""The integration switch: whether Dynamics is the workspace's enabled CRM (pure).

A workspace enables at most one CRM (the Integrations page's toggle). While Dynamics is not the enabled
one -- never enabled, disabled, or another CRM enabled -- nothing is sent to Dynamics on the workspace's
behalf: connecting, exports and activities are refused (``IntegrationDisabled``, answered 409
``integration_disabled``), and queued or running jobs pause until an admin enables Dynamics again.
"""

from __future__ import annotations

DYNAMICS = "dynamics"
DISABLED_CODE = "integration_disabled"


class IntegrationDisabled(Exception):
    """Dynamics is not the workspace's enabled CRM; ``active`` is the CRM that is (None: none is)."""

    def __init__(self, active: str | None, doing: str) -> None:
        self.active = active
        self.doing = doing
        super().__init__(disabled_message(active, doing))


def disabled_message(active: str | None, doing: str) -> str:
    other = f" ({active} is the enabled CRM: disable it first)" if active and active != DYNAMICS else ""
    return (
        f"Dynamics 365 is disabled for this workspace{other}: an admin enables it on the Integrations page "
        f"before {doing}"
    )
