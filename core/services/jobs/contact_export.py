"""Contacts exported for another job kind: what an activity chunk asks of the export pipeline.

Activities log engagement events against contacts; with ``syncIdentifiers.exportMissingContacts`` a
contact not in Dynamics is exported first by the export pipeline itself (not a copy of it). The two job
kinds meet only here: the activity worker is given a :class:`ContactExporter` (the exports package
provides it, the composition root wires it), so neither package imports the other.

The export's own checkpoints of those contacts (``creating`` / ``created``) are kept beside the activity
job's records, under ``<job>~contacts`` (row key = position of the contact's first event): a retried or
resumed chunk reads them (``created_earlier``) to tell a contact it created from one it found.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.adapters.dataverse.client import DataverseClient
from core.adapters.storage.job_store import JobStore
from core.domain.config import DynamicsConfig
from core.domain.connection import DynamicsConnection
from core.domain.jobs import FieldError, RecordAction
from core.services.jobs.checkpoints import Gate

CONTACTS_SUFFIX = "~contacts"


def contacts_job_id(job_id: str) -> str:
    """Where the export checkpoints of a job's contacts are kept (beside the job's records)."""
    return f"{job_id}{CONTACTS_SUFFIX}"


@dataclass(frozen=True)
class ContactToExport:
    platform_id: str
    data: Mapping[str, Any]
    seq: int  # position of its first event in the job: the row key of its export checkpoint
    user_id: str  # the exporting platform user (owner rules)
    identity_id: str | None = None  # the identity of its first event: its Dynamics user writes it


@dataclass
class ExportedContact:
    action: RecordAction  # the export's outcome: created / updated / unchanged / skipped / invalid / failed
    dynamics_id: str | None
    current: dict[str, Any] = field(default_factory=dict)  # the contact's columns as written
    match: dict[str, Any] | None = None
    errors: list[FieldError] = field(default_factory=list)
    note: str | None = None


class ContactExporter(Protocol):
    def __call__(
        self,
        *,
        client: DataverseClient,
        connection: DynamicsConnection,
        workspace_id: str,
        job_id: str,
        config: DynamicsConfig,
        contacts: Sequence[ContactToExport],
        gate: Gate | None = None,
    ) -> dict[str, ExportedContact]:
        """Export ``contacts`` as an export of them would; the result by platform id. Checkpoints go
        under ``contacts_job_id(job_id)``, with the activity chunk's ``gate`` (a halt stops them too)."""
        ...


def created_earlier(store: JobStore, workspace_id: str, job_id: str, seqs: Sequence[int]) -> set[str]:
    """Platform ids of contacts an earlier attempt of this chunk created (their export checkpoints)."""
    if not seqs:
        return set()
    rows = store.outcomes_between(workspace_id, contacts_job_id(job_id), min(seqs), max(seqs))
    wanted = set(seqs)
    done = (RecordAction.CREATING, RecordAction.CREATED)
    return {row.platform_id for row in rows if row.action in done and row.seq in wanted}
