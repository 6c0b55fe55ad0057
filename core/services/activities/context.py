"""What the steps of an activity run (contacts, missing contacts, writes) read from the run: its chunk,
its collaborators and what earlier steps found. ``ActivityRun`` is the one implementation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from core.adapters.dataverse.batch import BatchOperation
from core.adapters.dataverse.client import DataverseClient
from core.adapters.storage.job_store import JobStore
from core.domain.activities import ActivityEvent
from core.domain.config import DynamicsConfig
from core.domain.connection import DynamicsConnection
from core.domain.dynamics_metadata import DynamicsColumn
from core.domain.matching import IdentifierConfig
from core.services.activities.items import EventItem
from core.services.jobs.checkpoints import Checkpoints
from core.services.jobs.contact_export import ContactExporter


class ActivityContext(Protocol):
    client: DataverseClient
    connection: DynamicsConnection
    store: JobStore
    checkpoints: Checkpoints
    export_contacts: ContactExporter
    ws: str
    job_id: str
    user_id: str
    config: DynamicsConfig
    identifiers: IdentifierConfig
    items: list[EventItem]
    existing: dict[str, Mapping[str, Any]]  # activities found by id: activityid -> row
    identity_users: dict[str, str]  # identity -> mapped Dynamics user
    user_users: dict[str, str]  # platform user -> mapped Dynamics user

    def columns(self, table: str) -> dict[str, DynamicsColumn]: ...

    def with_table(self, table: str) -> list[EventItem]: ...

    def platform_user(self, event: ActivityEvent) -> str | None: ...

    def batch_gets(self, operations: Sequence[BatchOperation]) -> list[list[dict[str, Any]]]: ...
