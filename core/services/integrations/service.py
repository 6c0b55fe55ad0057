"""The CRM cards of the Integrations page and the one-active-CRM rule.

The Dynamics card also says where the workspace stands, from what is already stored -- never a call to
Dynamics: the connection (one table read: status, the integration user's e-mail, why a reconnect is
needed), the saved configuration (one read: version, when and by whom) and the newest export (one job
query and one chunk query). Each of these is a lookup the composition root passes in; a card without
them shows ``enabled`` only.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from core.adapters.storage.integrations_repository import ActiveCrmConflict, IntegrationsRepository
from core.domain.caller import Caller
from core.domain.connection import ConnectionRecord, ConnectionStatus
from core.domain.integration_switch import DYNAMICS
from core.domain.job_status import JobStatus

log = logging.getLogger(__name__)

CRMS: dict[str, str] = {
    "dynamics": "Microsoft Dynamics 365",
    "hubspot": "HubSpot",
    "salesforce": "Salesforce",
    "pipedrive": "Pipedrive",
}

__all__ = [
    "CRMS",
    "ActiveCrmConflict",
    "CardConnection",
    "CardConnectionStatus",
    "DynamicsCardState",
    "IntegrationCard",
    "IntegrationsService",
    "SavedVersion",
    "UnknownCrm",
]


class UnknownCrm(Exception):
    pass


class CardConnectionStatus(StrEnum):
    NOT_CONNECTED = "not_connected"
    CONNECTED = "connected"
    RECONNECT_REQUIRED = "reconnect_required"


@dataclass(frozen=True)
class CardConnection:
    status: CardConnectionStatus
    integration_user_email: str | None = None
    reconnect_reason: str | None = None
    since: dt.datetime | None = None


@dataclass(frozen=True)
class SavedVersion:
    version: int
    saved_at: dt.datetime
    saved_by: str


@dataclass(frozen=True)
class DynamicsCardState:
    connection: CardConnection
    configured: SavedVersion | None  # None: the configuration was never saved
    last_export: JobStatus | None  # the newest export's status


@dataclass(frozen=True)
class IntegrationCard:
    crm: str
    name: str
    enabled: bool
    dynamics: DynamicsCardState | None = None


ConnectionLookup = Callable[[str], ConnectionRecord | None]
SavedVersionLookup = Callable[[str], SavedVersion | None]
LastExportLookup = Callable[[str], JobStatus | None]


def card_connection(record: ConnectionRecord | None) -> CardConnection:
    if record is None or record.status is ConnectionStatus.DISCONNECTED:
        return CardConnection(CardConnectionStatus.NOT_CONNECTED)
    if record.status is ConnectionStatus.RECONNECT_REQUIRED:
        return CardConnection(
            CardConnectionStatus.RECONNECT_REQUIRED,
            record.integration_user_email,
            record.reason,
            record.status_changed_at,
        )
    return CardConnection(
        CardConnectionStatus.CONNECTED,
        record.integration_user_email,
        None,
        record.status_changed_at or record.connected_at,
    )


class IntegrationsService:
    def __init__(
        self,
        repository: IntegrationsRepository,
        *,
        connection: ConnectionLookup | None = None,
        saved_config: SavedVersionLookup | None = None,
        last_export: LastExportLookup | None = None,
        on_dynamics_enabled: Callable[[str], None] | None = None,
    ) -> None:
        self._repo = repository
        # Work paused while Dynamics was disabled continues (exports, activities), each kind in its own try.
        self._on_dynamics_enabled = on_dynamics_enabled
        self._connection = connection
        self._saved_config = saved_config
        self._last_export = last_export

    def list(self, caller: Caller) -> list[IntegrationCard]:
        active = self._repo.active(caller.workspace_id)
        dynamics = self.dynamics_state(caller.workspace_id)
        return [
            IntegrationCard(crm, name, crm == active, dynamics if crm == "dynamics" else None)
            for crm, name in CRMS.items()
        ]

    def dynamics_state(self, workspace_id: str) -> DynamicsCardState:
        record = self._connection(workspace_id) if self._connection is not None else None
        return DynamicsCardState(
            card_connection(record),
            self._saved_config(workspace_id) if self._saved_config is not None else None,
            self._last_export(workspace_id) if self._last_export is not None else None,
        )

    def set_enabled(self, caller: Caller, crm: str, enabled: bool) -> IntegrationCard:
        """Enable or disable ``crm``; ``ActiveCrmConflict`` when another CRM is enabled."""
        if crm not in CRMS:
            raise UnknownCrm(crm)
        if enabled:
            self._repo.enable(caller.workspace_id, crm, caller.user_id)
        else:
            self._repo.disable(caller.workspace_id, crm, caller.user_id)
        if enabled and crm == DYNAMICS and self._on_dynamics_enabled is not None:
            try:
                self._on_dynamics_enabled(caller.workspace_id)
            except Exception:  # the switch is on; the token timer resumes what this could not
                log.exception("workspace %s: resuming paused work after enabling failed", caller.workspace_id)
        return IntegrationCard(crm, CRMS[crm], enabled)

    def active(self, workspace_id: str) -> str | None:
        return self._repo.active(workspace_id)
