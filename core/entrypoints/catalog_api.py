"""The setup window's catalog (any person): everything its dropdowns list, with stable keys and labels.

- ``GET /api/dynamics/catalog``: the platform's contact and company fields with their types (and the
  workspace's custom fields), the four field kinds, the two modes, the contact and company identifier
  options, the thirteen campaign properties in the four sections of step 3 (what each contains, an example
  value), engagement and sequence statuses, and activity kinds. English labels in the setup guide's words
  (``core.domain.setup_catalog``). No Dynamics call: it answers without a connection.
"""

from __future__ import annotations

import azure.functions as func
from pydantic import BaseModel, Field

from core import bootstrap, openapi
from core.domain.caller import Caller
from core.domain.campaign_properties import FORMAT_VERSION
from core.domain.catalog import CATALOG_VERSION, COMPANY_PREFIX, Entity
from core.domain.setup_catalog import (
    ACTIVITY_KINDS,
    CAMPAIGN_SECTIONS,
    COMPANY_IDENTIFIERS,
    CONTACT_IDENTIFIERS,
    ENGAGEMENT_STATUSES,
    FIELD_KINDS,
    MODES,
    SEQUENCE_STATUSES,
    Entry,
    field_entries,
)
from core.entrypoints.http_support import authenticated, model_response

bp = func.Blueprint()  # type: ignore[no-untyped-call]

TAG = ("Dynamics configuration",)


class Option(BaseModel):
    key: str = Field(description="Stable key, as the configuration and the other operations spell it")
    label: str
    description: str

    @classmethod
    def of(cls, entry: Entry) -> Option:
        return cls(key=entry.key, label=entry.label, description=entry.description)


class PlatformFieldEntry(BaseModel):
    key: str = Field(description="platformField in a mapping")
    type: str = Field(description="text | email | phone | url | integer | decimal | boolean | datetime | ...")
    label: str
    description: str
    required: bool
    custom: bool = Field(description="A custom field of this workspace")


class CampaignPropertyEntry(BaseModel):
    key: str = Field(description="Key in campaignMapping")
    label: str
    contains: str = Field(description="What it contains")
    example: str = Field(description="An example value, in the stable text format")


class CampaignSection(BaseModel):
    key: str
    label: str
    properties: list[CampaignPropertyEntry]


class PlatformFields(BaseModel):
    contact: list[PlatformFieldEntry]
    company: list[PlatformFieldEntry]
    companyPrefix: str = Field(description="Contacts may map a company field as <companyPrefix><key>")


class Catalog(BaseModel):
    catalogVersion: str
    campaignFormatVersion: str
    platformFields: PlatformFields
    fieldKinds: list[Option]
    modes: list[Option]
    contactIdentifiers: list[Option]
    companyIdentifiers: list[Option]
    campaignSections: list[CampaignSection]
    engagementStatuses: list[Option]
    sequenceStatuses: list[Option]
    activityKinds: list[Option]


def _fields(entity: Entity, workspace_id: str) -> list[PlatformFieldEntry]:
    entries = [
        PlatformFieldEntry(key=k, type=t, label=label, description=d, required=r, custom=False)
        for k, t, label, d, r in field_entries(entity)
    ]
    known = {e.key for e in entries}
    for field in bootstrap.app().fields_service.custom_fields(workspace_id):
        if field.entity is entity and field.name not in known:
            entries.append(
                PlatformFieldEntry(
                    key=field.name,
                    type=field.type.value,
                    label=field.name,
                    description="A custom field of this workspace.",
                    required=field.required,
                    custom=True,
                )
            )
    return entries


def catalog(workspace_id: str) -> Catalog:
    return Catalog(
        catalogVersion=CATALOG_VERSION,
        campaignFormatVersion=FORMAT_VERSION,
        platformFields=PlatformFields(
            contact=_fields(Entity.CONTACT, workspace_id),
            company=_fields(Entity.COMPANY, workspace_id),
            companyPrefix=COMPANY_PREFIX,
        ),
        fieldKinds=[Option.of(e) for e in FIELD_KINDS],
        modes=[Option.of(e) for e in MODES],
        contactIdentifiers=[Option.of(e) for e in CONTACT_IDENTIFIERS],
        companyIdentifiers=[Option.of(e) for e in COMPANY_IDENTIFIERS],
        campaignSections=[
            CampaignSection(
                key=s.key,
                label=s.label,
                properties=[
                    CampaignPropertyEntry(key=p.key, label=p.label, contains=p.contains, example=p.example)
                    for p in s.properties
                ],
            )
            for s in CAMPAIGN_SECTIONS
        ],
        engagementStatuses=[Option.of(e) for e in ENGAGEMENT_STATUSES],
        sequenceStatuses=[Option.of(e) for e in SEQUENCE_STATUSES],
        activityKinds=[Option.of(e) for e in ACTIVITY_KINDS],
    )


@bp.route(route="api/dynamics/catalog", methods=["GET"])
@authenticated()
def get_dynamics_catalog(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    return model_response(catalog(caller.workspace_id), headers={"Cache-Control": "private, max-age=300"})


openapi.register(
    "GET",
    "/api/dynamics/catalog",
    "Everything the setup window lists: platform fields, field kinds, modes, identifiers, campaign "
    "properties, statuses and activity kinds, with labels",
    response=Catalog,
    tags=TAG,
    description=(
        "Keys are stable (the configuration's own values); labels and descriptions are English, in the "
        "setup guide's words. Needs no Dynamics connection."
    ),
)
