"""Associations of an export (step 1): contacts -> their company, companies -> their contacts.

Contacts with "associate with companies": the embedded companies are matched like a companies export
(``company_key`` says which are the same company across chunks), the missing ones created in one
``CreateMultiple`` under deterministic ids (chunks racing to create one end with one account), then each
contact's create/update carries its ``parentcustomerid`` link. Existing companies are not updated by a
contacts export (export companies for that). Companies with "associate with contacts": their contacts
found in Dynamics are linked in one ``UpdateMultiple``; none is created.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.domain.catalog import Entity
from core.domain.config import Mode
from core.domain.export_plan import DesiredLink, DesiredValue, PlanAction, plan_write
from core.domain.jobs import ExportEntity, RecordAction, RecordOutcome, deterministic_dynamics_id
from core.domain.matching import PARENT_ACCOUNT_VALUE, IdentifierConfig
from core.domain.normalize import domain_any_extension_key, normalize_company_name, registrable_domain
from core.services.exports.context import ExportContext
from core.services.exports.items import ExportItem
from core.services.exports.mapping import desired_values, mapped_columns
from core.services.exports.owners import Owners, owner_bind


def link_companies(run: ExportContext, owner: Owners) -> None:
    """Contacts -> their company: match the embedded companies, create the missing ones, then link."""
    companies: dict[str, ExportItem] = {}
    key_of: dict[int, str] = {}
    for item in run.items:
        company = item.data.get("company")
        if not isinstance(company, Mapping):
            continue
        key = company_key(company, run.identifiers)
        if key is None:
            item.notes.append("company has no id, domain or name: not linked")
            continue
        key_of[item.seq] = key
        companies.setdefault(key, ExportItem(-1, key, company))
    if not companies:
        return
    columns = run.columns("account")
    tab = run.config.field_mapping.companies
    company_items = list(companies.values())
    for company_item in company_items:
        desired_values(company_item, tab, columns, Entity.COMPANY, run.config, {})
        if not any(v.column == "name" for v in company_item.values) and company_item.data.get("name"):
            company_item.values.append(
                DesiredValue("name", str(company_item.data["name"])[:160], Mode.OVERWRITE)
            )
    run.match(company_items, Entity.COMPANY, mapped_columns(run.config, tab, {}))
    to_create = [c for c in company_items if c.dynamics_id is None and not c.errors]
    for company_item in to_create:
        company_item.dynamics_id = deterministic_dynamics_id(
            run.ws, ExportEntity.COMPANIES, company_item.platform_id
        )
        plan = plan_write(None, company_item.values, create_only=owner_bind(owner))
        company_item.outcome = RecordOutcome(
            -1, company_item.platform_id, RecordAction.CREATED, changes=plan.changes
        )
    if to_create and not run.dry_run:
        run.writes.checkpoints.before_write()
        failed = run.writes.create_many(
            "account",
            "accountid",
            [(c, plan_write(None, c.values, create_only=owner_bind(owner)).payload) for c in to_create],
            owner,
        )
        for company_item, error in failed.items():
            company_item.dynamics_id = None
            company_item.errors.append(error)
    for item in run.items:
        key = key_of.get(item.seq)
        linked = companies.get(key) if key else None
        if linked is None:
            continue
        company_item = linked
        if company_item.dynamics_id:
            item.links.append(
                DesiredLink(
                    "parentcustomerid_account", "accounts", company_item.dynamics_id, PARENT_ACCOUNT_VALUE
                )
            )
            if company_item in to_create:
                if run.dry_run:
                    item.notes.append(
                        f"company not in Dynamics yet: a real export creates it ({company_item.dynamics_id})"
                    )
                else:
                    item.notes.append(f"company created in Dynamics ({company_item.dynamics_id})")
        else:
            reasons = "; ".join(e.message for e in company_item.errors) or "not found and not created"
            item.notes.append(f"company not linked: {reasons}")


def link_contacts_to_companies(run: ExportContext, owner: Owners) -> None:
    """Companies -> their contacts: those found in Dynamics are linked to the account (none created)."""
    pairs: list[tuple[ExportItem, ExportItem]] = []
    for item in run.items:
        contacts = item.data.get("contacts")
        if not item.dynamics_id or not isinstance(contacts, list):
            continue
        for contact in contacts:
            data = dict(contact)
            data.setdefault("company", {"name": item.data.get("name"), "domain": item.data.get("domain")})
            pairs.append((item, ExportItem(-1, str(contact.get("id", "")), data)))
    if not pairs:
        return
    contact_items = [c for _, c in pairs]
    run.match(contact_items, Entity.CONTACT, [])
    updates: list[tuple[ExportItem, dict[str, Any]]] = []
    for company, contact in pairs:
        if contact.dynamics_id is None:
            company.notes.append(f"contact {contact.platform_id} not found in Dynamics: not linked")
            continue
        plan = plan_write(
            contact.current or {},
            [],
            [
                DesiredLink(
                    "parentcustomerid_account",
                    "accounts",
                    company.dynamics_id or "",
                    PARENT_ACCOUNT_VALUE,
                )
            ],
        )
        if plan.action is PlanAction.UNCHANGED:
            company.notes.append(f"contact {contact.platform_id} already linked")
            continue
        company.notes.append(f"contact {contact.platform_id} linked ({contact.dynamics_id})")
        updates.append((contact, plan.payload))
    if updates and not run.dry_run:
        run.writes.checkpoints.before_write()
        failed = run.writes.update_many("contact", "contactid", updates, owner)
        for contact, error in failed.items():
            for company, c in pairs:
                if c is contact:
                    company.notes.append(
                        f"contact {contact.platform_id} could not be linked: {error.message}"
                    )


def company_key(company: Mapping[str, Any], identifiers: IdentifierConfig) -> str | None:
    """What makes two embedded companies the same one, following the company identifier: the same
    (registrable) domain first, so contacts in different chunks — or with different platform company
    ids — still create one account (its deterministic id derives from this key)."""
    if identifiers.company_identifier in ("domain", "domain_or_name"):
        raw = company.get("domain") or company.get("website")
        domain = (
            domain_any_extension_key(raw)
            if identifiers.company_domain_any_extension
            else registrable_domain(raw)
        )
        if domain:
            return f"domain:{domain}"
        name = normalize_company_name(company.get("name"))
        if identifiers.company_identifier == "domain_or_name" and name:
            return f"name:{name}"
    if isinstance(company.get("id"), str) and company["id"].strip():
        return str(company["id"])
    domain = registrable_domain(company.get("domain") or company.get("website"))
    if domain:
        return f"domain:{domain}"
    name = normalize_company_name(company.get("name"))
    return f"name:{name}" if name else None
