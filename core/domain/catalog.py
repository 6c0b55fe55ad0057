"""The platform's field catalog (the fields a contact or company of the platform carries), as data.

Versioned: ``CATALOG_VERSION`` is published in the OpenAPI document. A workspace may declare custom fields
(name, entity, type) that then behave exactly like catalog fields (``catalog_for``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

CATALOG_VERSION = "2026-11-01"


class FieldType(StrEnum):
    TEXT = "text"
    EMAIL = "email"
    PHONE = "phone"
    URL = "url"
    INTEGER = "integer"
    DECIMAL = "decimal"
    BOOLEAN = "boolean"
    DATETIME = "datetime"  # ISO-8601 with zone
    CHOICE = "choice"  # one label
    CHOICES = "choices"  # list of labels
    TEXT_LIST = "text_list"  # list of strings


class Entity(StrEnum):
    CONTACT = "contact"
    COMPANY = "company"


@dataclass(frozen=True)
class PlatformField:
    name: str
    entity: Entity
    type: FieldType
    required: bool = False
    custom: bool = False


def _fields(entity: Entity, spec: Iterable[tuple[str, FieldType]]) -> dict[str, PlatformField]:
    return {name: PlatformField(name, entity, ftype, required=(name == "id")) for name, ftype in spec}


T = FieldType
CONTACT_FIELDS: Mapping[str, PlatformField] = _fields(
    Entity.CONTACT,
    [
        ("id", T.TEXT),
        ("firstName", T.TEXT),
        ("lastName", T.TEXT),
        ("fullName", T.TEXT),
        ("jobTitle", T.TEXT),
        ("seniority", T.CHOICE),
        ("professionalEmail", T.EMAIL),
        ("personalEmails", T.TEXT_LIST),
        ("phoneNumber", T.PHONE),
        ("mobilePhone", T.PHONE),
        ("otherPhones", T.TEXT_LIST),
        ("linkedinUrl", T.URL),
        ("location", T.TEXT),
        ("city", T.TEXT),
        ("country", T.TEXT),
        ("languages", T.CHOICES),
        ("yearsInRole", T.INTEGER),
        ("verified", T.BOOLEAN),
        ("outreachStage", T.CHOICE),
        ("sequenceStatus", T.CHOICE),
        ("createdAt", T.DATETIME),
        ("lastActivityAt", T.DATETIME),
    ],
)

COMPANY_FIELDS: Mapping[str, PlatformField] = _fields(
    Entity.COMPANY,
    [
        ("id", T.TEXT),
        ("name", T.TEXT),
        ("domain", T.TEXT),
        ("website", T.URL),
        ("linkedinUrl", T.URL),
        ("industry", T.CHOICE),
        ("subIndustries", T.CHOICES),
        ("employeeCount", T.INTEGER),
        ("growthPercent", T.DECIMAL),
        ("city", T.TEXT),
        ("country", T.TEXT),
        ("description", T.TEXT),
        ("foundedYear", T.INTEGER),
        ("createdAt", T.DATETIME),
    ],
)

# A contact embeds its company; the contacts tab may map company fields with the ``company.`` prefix
# (e.g. ``company.name``) — those are the "company fields in the contacts tab" step 2 warns about.
COMPANY_PREFIX = "company."


def catalog_for(entity: Entity, custom_fields: Iterable[PlatformField] = ()) -> dict[str, PlatformField]:
    """Catalog fields of ``entity`` plus the workspace's custom fields for it."""
    base = dict(CONTACT_FIELDS if entity is Entity.CONTACT else COMPANY_FIELDS)
    for field in custom_fields:
        if field.entity is entity and field.name not in base:
            base[field.name] = field
    return base


def resolve_field(
    entity: Entity, name: str, custom_fields: Iterable[PlatformField] = ()
) -> PlatformField | None:
    """The field a mapping names in ``entity``'s tab. Contacts may name ``company.<field>``."""
    custom = list(custom_fields)
    if entity is Entity.CONTACT and name.startswith(COMPANY_PREFIX):
        return catalog_for(Entity.COMPANY, custom).get(name[len(COMPANY_PREFIX) :])
    return catalog_for(entity, custom).get(name)


# The thirteen campaign properties of step 3 (in the order the step lists them), API keys.
CAMPAIGN_PROPERTIES: tuple[str, ...] = (
    "campaignSequenceDetails",
    "campaignEngagementStatus",
    "sequenceStatus",
    "campaignReplyAnalysis",
    "campaignOpens",
    "campaignClicks",
    "campaignOpenAnalysis",
    "campaignClickAnalysis",
    "campaigns",
    "senders",
    "activities",
    "conversationTags",
    "conversationTagCategories",
)
