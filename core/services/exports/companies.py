"""Associations of an export (step 1): contacts -> their company, companies -> their contacts.

Contacts with "associate with companies": the embedded companies are matched like a companies export
(``company_key`` says which are the same company across chunks), the missing ones created in one
``CreateMultiple`` under deterministic ids (chunks racing to create one end with one account), then each
contact's create/update carries its ``parentcustomerid`` link. A company the identifier could not find
again is never created, and a contact is never moved to a new company of the name it already sits under
(both reported as warnings on the contact). Existing companies are not updated by a
contacts export (export companies for that). Companies with "associate with contacts": their contacts
found in Dynamics are linked in one ``UpdateMultiple``; none is created.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.domain.catalog import Entity
from core.domain.config import Mode
from core.domain.export_plan import DesiredLink, DesiredValue, PlanAction, plan_write
from core.domain.jobs import (
    ExportEntity,
    RecordAction,
    RecordOutcome,
    RecordWarning,
    deterministic_dynamics_id,
)
from core.domain.matching import (
    PARENT_ACCOUNT_VALUE,
    IdentifierConfig,
    Rule,
    company_rule,
    identifiable,
    iter_conditions,
)
from core.domain.normalize import domain_any_extension_key, normalize_company_name, registrable_domain
from core.services.exports.context import ExportContext
from core.services.exports.items import ExportItem
from core.services.exports.mapping import desired_values, mapped_columns
from core.services.exports.owners import Owners, owner_bind

COMPANY_NOT_IDENTIFIABLE = "company_not_identifiable"
COMPANY_KEPT = "company_kept"


def link_companies(run: ExportContext, owner: Owners) -> None:
    """Contacts -> their company: match the embedded companies, create the missing ones, then link.

    Runs after the contacts were matched. No company is created that the identifier could not find
    again (a company without a domain under the domain identifier): its contacts keep their current
    company. A contact already under a company of the same normalised name stays there rather than
    being moved to a new one. Both are reported as warnings on the contact's outcome."""
    rule = company_rule(run.identifiers)
    companies: dict[str, ExportItem] = {}
    key_of: dict[int, str] = {}
    for item in run.items:
        company = item.data.get("company")
        if not isinstance(company, Mapping):
            continue
        if not identifiable(rule, company):
            item.warnings.append(_not_identifiable(company, rule, run.identifiers))
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
    missing = [c for c in company_items if c.dynamics_id is None and not c.errors]
    kept = _kept_under_same_name(run, [c for c in run.items if c.seq in key_of], companies, key_of, missing)
    needed = {key_of[item.seq] for item in run.items if item.seq in key_of and item not in kept}
    to_create = [c for c in missing if c.platform_id in needed]
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
        if linked is None or item in kept:
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


def _shown_name(company: Mapping[str, Any]) -> str:
    name = str(company.get("name") or company.get("id") or "").strip()
    return repr(name if len(name) <= 80 else name[:77] + "...") if name else "(unnamed)"


def _not_identifiable(company: Mapping[str, Any], rule: Rule, identifiers: IdentifierConfig) -> RecordWarning:
    fields = sorted({f for c in iter_conditions(rule) for f in (c.platform_field, *c.fallback_fields)})
    return RecordWarning(
        COMPANY_NOT_IDENTIFIABLE,
        f"company {_shown_name(company)} has none of the values the company identifier "
        f"({identifiers.company_identifier}) compares ({', '.join(fields)}): it is not created in Dynamics, "
        "and the contact keeps its current company",
    )


def _kept_under_same_name(
    run: ExportContext,
    contacts: list[ExportItem],
    companies: Mapping[str, ExportItem],
    key_of: Mapping[int, str],
    missing: list[ExportItem],
) -> set[ExportItem]:
    """Existing contacts that would move to a company about to be created while they already sit under a
    company of the same normalised name: they stay where they are (each gets a warning)."""
    creating = {c.platform_id for c in missing}
    at_risk = [
        item
        for item in contacts
        if key_of[item.seq] in creating and item.current and item.current.get(PARENT_ACCOUNT_VALUE)
    ]
    if not at_risk:
        return set()
    names = run.account_names(str(item.current[PARENT_ACCOUNT_VALUE]) for item in at_risk if item.current)
    kept: set[ExportItem] = set()
    for item in at_risk:
        assert item.current is not None
        company = companies[key_of[item.seq]].data
        new_name = normalize_company_name(company.get("name"))
        current_name = names.get(str(item.current[PARENT_ACCOUNT_VALUE]).lower())
        if new_name is None or current_name is None or normalize_company_name(current_name) != new_name:
            continue
        kept.add(item)
        item.warnings.append(
            RecordWarning(
                COMPANY_KEPT,
                f"the contact stays under its current company {current_name!r}: the company "
                f"identifier ({run.identifiers.company_identifier}) finds no Dynamics company for "
                f"{_shown_name(company)}, and moving the contact to a new company of the same name "
                "would duplicate it",
            )
        )
    return kept


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
