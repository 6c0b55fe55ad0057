"""Whether an export's configuration still fits Dynamics, before its chunk writes anything.

The configuration was checked against Dynamics when it was saved, but Dynamics changes afterwards: an
admin deletes a mapped column, removes the option a fixed value names, makes a column read-only. Each chunk
checks the parts of its snapshot it uses -- the identifier columns and the field mapping of the tabs it
writes (the companies tab too for contacts associated with their companies) -- against the table metadata
(the shared cache, so no extra request), with the same rules as a save (``metadata_problems``). Any error
fails the job as a whole with one reason (``MappingDrift``) and nothing of the chunk is written.

The metadata cache may be minutes old: a write that Dynamics refuses because a column is gone makes the run
forget the cached metadata and check again (``ExportRun``), so the same reason is given then.
Users (step 4) are not checked here: an owner that cannot be used falls back as the owner rules say.
"""

from __future__ import annotations

from collections.abc import Mapping

from core.domain.config import DynamicsConfig
from core.domain.config_validation import Problem, Severity
from core.domain.dynamics_metadata import DynamicsColumn
from core.domain.jobs import ExportEntity, MappingDrift
from core.services.config.metadata_check import DynamicsMetadata, metadata_problems

Columns = Mapping[str, DynamicsColumn]
_CONTACT_IDENTIFIERS = ("/syncIdentifiers/columns/contactLinkedinUrl", "/syncIdentifiers/contactRule/")
_COMPANY_IDENTIFIERS = (
    "/syncIdentifiers/columns/companyDomain",
    "/syncIdentifiers/columns/companyLinkedinUrl",
    "/syncIdentifiers/companyRule/",
)
MAX_NAMED = 3  # problems named in the reason; the configuration's drift lists every one


def used_pointers(config: DynamicsConfig, entity: ExportEntity) -> tuple[str, ...]:
    """The parts of the configuration an export of ``entity`` reads (JSON pointer prefixes)."""
    sync = config.sync_identifiers
    contacts = (*_CONTACT_IDENTIFIERS, "/fieldMapping/contacts/")
    companies = (*_COMPANY_IDENTIFIERS, "/fieldMapping/companies/")
    if entity is ExportEntity.CONTACTS:
        return contacts + (companies if sync.associate_contacts_with_companies else ())
    return companies + (_CONTACT_IDENTIFIERS if sync.associate_companies_with_contacts else ())


def drift_problems(
    config: DynamicsConfig, entity: ExportEntity, contact: Columns, account: Columns
) -> list[Problem]:
    """The errors of the parts of ``config`` an export of ``entity`` uses, against this metadata."""
    used = used_pointers(config, entity)
    return [
        p
        for p in metadata_problems(config, DynamicsMetadata(contact, account, {}))
        if p.severity is Severity.ERROR and p.pointer.startswith(used)
    ]


def drift_error(problems: list[Problem]) -> MappingDrift:
    named = "; ".join(f"{p.pointer}: {p.message}" for p in problems[:MAX_NAMED])
    more = f" (and {len(problems) - MAX_NAMED} more)" if len(problems) > MAX_NAMED else ""
    return MappingDrift(
        f"the configuration no longer fits Dynamics, nothing was written: {named}{more}. Fix the setup "
        "(GET /api/dynamics/config lists it under drift) and export again"
    )
