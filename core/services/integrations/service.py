"""The CRM cards of the Integrations page and the one-active-CRM rule."""

from __future__ import annotations

from dataclasses import dataclass

from core.adapters.storage.integrations_repository import ActiveCrmConflict, IntegrationsRepository
from core.domain.caller import Caller

CRMS: dict[str, str] = {
    "dynamics": "Microsoft Dynamics 365",
    "hubspot": "HubSpot",
    "salesforce": "Salesforce",
    "pipedrive": "Pipedrive",
}

__all__ = ["CRMS", "ActiveCrmConflict", "IntegrationCard", "IntegrationsService", "UnknownCrm"]


class UnknownCrm(Exception):
    pass


@dataclass(frozen=True)
class IntegrationCard:
    crm: str
    name: str
    enabled: bool


class IntegrationsService:
    def __init__(self, repository: IntegrationsRepository) -> None:
        self._repo = repository

    def list(self, caller: Caller) -> list[IntegrationCard]:
        active = self._repo.active(caller.workspace_id)
        return [IntegrationCard(crm, name, crm == active) for crm, name in CRMS.items()]

    def set_enabled(self, caller: Caller, crm: str, enabled: bool) -> IntegrationCard:
        """Enable or disable ``crm``; ``ActiveCrmConflict`` when another CRM is enabled."""
        if crm not in CRMS:
            raise UnknownCrm(crm)
        if enabled:
            self._repo.enable(caller.workspace_id, crm, caller.user_id)
        else:
            self._repo.disable(caller.workspace_id, crm, caller.user_id)
        return IntegrationCard(crm, CRMS[crm], enabled)

    def active(self, workspace_id: str) -> str | None:
        return self._repo.active(workspace_id)
