"""The workspace's Dynamics configuration: the four setup steps (docs/contracts.md, exact shape).

Pydantic v2 models validate the *shape* of requests (types, enums, required members, unknown members)
and generate the OpenAPI schemas; the *rules* that span fields live in ``core.domain.config_validation``.
JSON is camelCase; Python attributes are snake_case.

Defaults (what ``GET`` returns before anything was saved) are ``DynamicsConfig.default()``: contacts
matched by first name + last name + company name, companies by domain (column ``websiteurl``), contacts
associated with companies on export, no field/campaign/user mappings.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Discriminator, Field, StringConstraints, Tag
from pydantic.alias_generators import to_camel

from core.domain.catalog import FieldType

MAX_RULE_DEPTH = 4
MAX_RULE_CONDITIONS = 20
MAX_MAPPINGS_PER_TAB = 500
MAX_USER_MAPPINGS = 5000

# Dataverse logical names: lowercase ASCII letters, digits and underscores (e.g. ``new_linkedinurl``).
DynamicsColumn = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z_][a-z0-9_]*$", min_length=1, max_length=128),
    Field(description="Dataverse column logical name (lowercase, e.g. `jobtitle`)"),
]
PlatformFieldName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=160),
    Field(description="Platform field from the catalog; `company.<field>` in the contacts tab"),
]
ExternalId = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^\S(.*\S)?$")]


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class ContactIdentifier(StrEnum):
    NAME_COMPANY = "name_company"
    LINKEDIN_OR_NAME_COMPANY = "linkedin_or_name_company"
    CUSTOM = "custom"


class CompanyIdentifier(StrEnum):
    DOMAIN = "domain"
    DOMAIN_OR_NAME = "domain_or_name"
    CUSTOM = "custom"


class Mode(StrEnum):
    OVERWRITE = "overwrite"
    FILL_IF_EMPTY = "fill_if_empty"


class Condition(_Model):
    platform_field: PlatformFieldName
    dynamics_field: DynamicsColumn


def _rule_or_condition(value: Any) -> str:
    if isinstance(value, dict):
        return "rule" if ("operator" in value or "conditions" in value) else "condition"
    return "rule" if isinstance(value, Rule) else "condition"


class Rule(_Model):
    """An AND/OR tree of conditions (depth and size limits are checked by the validator)."""

    operator: Literal["and", "or"]
    conditions: list[
        Annotated[
            Annotated[Rule, Tag("rule")] | Annotated[Condition, Tag("condition")],
            Discriminator(_rule_or_condition),
        ]
    ] = Field(max_length=200)


class IdentifierColumns(_Model):
    contact_linkedin_url: DynamicsColumn | None = None
    company_domain: DynamicsColumn | None = "websiteurl"
    company_linkedin_url: DynamicsColumn | None = None


class IntegrationUser(_Model):
    """Read-only: who the Dynamics connection authenticates as (filled from the connection)."""

    email: str | None = None
    dynamics_user_id: UUID | None = None


class SyncIdentifiers(_Model):
    contact_identifier: ContactIdentifier = ContactIdentifier.NAME_COMPANY
    contact_rule: Rule | None = None
    company_identifier: CompanyIdentifier = CompanyIdentifier.DOMAIN
    company_domain_any_extension: bool = False
    company_rule: Rule | None = None
    columns: IdentifierColumns = IdentifierColumns()
    associate_contacts_with_companies: bool = True
    associate_companies_with_contacts: bool = False
    export_missing_contacts: bool = Field(
        default=False,
        description=(
            "When logging engagement events as activities: a contact not in Dynamics is exported first "
            "(contacts tab mapping, company association, owner rules), then the activity is logged "
            "regarding it. Off: its events are reported skipped."
        ),
    )
    integration_user: IntegrationUser | None = Field(
        default=None, json_schema_extra={"readOnly": True}, description="Read-only; ignored on PUT."
    )


class PlatformFieldMapping(_Model):
    kind: Literal["platform_field"]
    dynamics_field: DynamicsColumn
    platform_field: PlatformFieldName
    mode: Mode = Mode.OVERWRITE


class FixedValueMapping(_Model):
    kind: Literal["fixed_value"]
    dynamics_field: DynamicsColumn
    value: Any = Field(description="The value every exported record gets; must fit `valueType`.")
    value_type: FieldType
    mode: Mode = Mode.OVERWRITE


class ManualExportMapping(_Model):
    kind: Literal["manual_export"]
    dynamics_field: DynamicsColumn
    value_type: FieldType
    mode: Mode = Mode.OVERWRITE
    # Accepted only so the validator can say precisely why a value is wrong here; never stored.
    value: Any = Field(default=None, exclude=True, json_schema_extra={"not": {}})


class EngagementMapping(_Model):
    kind: Literal["engagement"]
    dynamics_field: DynamicsColumn
    value: Any = Field(description="Value written when an activity is created in Dynamics.")
    value_type: FieldType
    mode: Mode = Mode.OVERWRITE


MAPPING_KINDS = ("platform_field", "fixed_value", "manual_export", "engagement")

Mapping = Annotated[
    PlatformFieldMapping | FixedValueMapping | ManualExportMapping | EngagementMapping,
    Field(discriminator="kind"),
]


class FieldMapping(_Model):
    contacts: list[Mapping] = Field(default_factory=list, max_length=MAX_MAPPINGS_PER_TAB)
    companies: list[Mapping] = Field(default_factory=list, max_length=MAX_MAPPINGS_PER_TAB)


class CampaignMapping(_Model):
    """Each of the thirteen campaign properties (``catalog.CAMPAIGN_PROPERTIES``) -> column or null."""

    campaign_sequence_details: DynamicsColumn | None = None
    campaign_engagement_status: DynamicsColumn | None = None
    sequence_status: DynamicsColumn | None = None
    campaign_reply_analysis: DynamicsColumn | None = None
    campaign_opens: DynamicsColumn | None = None
    campaign_clicks: DynamicsColumn | None = None
    campaign_open_analysis: DynamicsColumn | None = None
    campaign_click_analysis: DynamicsColumn | None = None
    campaigns: DynamicsColumn | None = None
    senders: DynamicsColumn | None = None
    activities: DynamicsColumn | None = None
    conversation_tags: DynamicsColumn | None = None
    conversation_tag_categories: DynamicsColumn | None = None


class IdentityMapping(_Model):
    identity_id: ExternalId
    dynamics_user_id: UUID


class UserMappingEntry(_Model):
    user_id: ExternalId
    dynamics_user_id: UUID


class UserMapping(_Model):
    identities: list[IdentityMapping] = Field(default_factory=list, max_length=MAX_USER_MAPPINGS)
    users: list[UserMappingEntry] = Field(default_factory=list, max_length=MAX_USER_MAPPINGS)
    default_owner_id: UUID | None = None


class DynamicsConfig(_Model):
    """The whole configuration (``PUT /api/dynamics/config``): all four steps are required members."""

    sync_identifiers: SyncIdentifiers
    field_mapping: FieldMapping
    campaign_mapping: CampaignMapping
    user_mapping: UserMapping

    @classmethod
    def default(cls) -> DynamicsConfig:
        return cls(
            sync_identifiers=SyncIdentifiers(),
            field_mapping=FieldMapping(),
            campaign_mapping=CampaignMapping(),
            user_mapping=UserMapping(),
        )


class Step(StrEnum):
    """URL names of the four steps and the member of ``DynamicsConfig`` each one replaces."""

    SYNC_IDENTIFIERS = "sync-identifiers"
    FIELD_MAPPING = "field-mapping"
    CAMPAIGN_MAPPING = "campaign-mapping"
    USER_MAPPING = "user-mapping"

    @property
    def member(self) -> str:  # JSON member name
        return to_camel(self.value.replace("-", "_"))

    @property
    def attribute(self) -> str:  # Python attribute name
        return self.value.replace("-", "_")

    @property
    def model(self) -> type[_Model]:
        return STEP_MODELS[self]


STEP_MODELS: dict[Step, type[_Model]] = {
    Step.SYNC_IDENTIFIERS: SyncIdentifiers,
    Step.FIELD_MAPPING: FieldMapping,
    Step.CAMPAIGN_MAPPING: CampaignMapping,
    Step.USER_MAPPING: UserMapping,
}


@dataclass(frozen=True)
class HistoryEntry:
    """One saved version of a configuration: who, when, which step, what changed (JSON pointers)."""

    version: int
    saved_at: dt.datetime
    saved_by: str
    step: str | None
    changes: list[dict[str, Any]]
    changes_truncated: bool


def diff_documents(
    old: Any, new: Any, path: tuple[str | int, ...] = (), limit: int = 500
) -> list[dict[str, str]]:
    """What changed between two JSON documents, as ``{"op": add|remove|replace, "path": pointer}``.

    Objects are compared member by member and lists index by index (a summary for people reading the
    history, not a patch to replay). At most ``limit`` entries.
    """
    changes: list[dict[str, str]] = []

    def ptr(p: tuple[str | int, ...]) -> str:
        return "".join("/" + str(x).replace("~", "~0").replace("/", "~1") for x in p)

    def walk(a: Any, b: Any, p: tuple[str | int, ...]) -> None:
        if len(changes) >= limit:
            return
        if isinstance(a, dict) and isinstance(b, dict):
            for key in a:
                if key not in b:
                    changes.append({"op": "remove", "path": ptr((*p, key))})
                else:
                    walk(a[key], b[key], (*p, key))
            for key in b:
                if key not in a:
                    changes.append({"op": "add", "path": ptr((*p, key))})
        elif isinstance(a, list) and isinstance(b, list):
            for index in range(max(len(a), len(b))):
                if index >= len(b):
                    changes.append({"op": "remove", "path": ptr((*p, index))})
                elif index >= len(a):
                    changes.append({"op": "add", "path": ptr((*p, index))})
                else:
                    walk(a[index], b[index], (*p, index))
        elif a != b or type(a) is not type(b):
            changes.append({"op": "replace", "path": ptr(p)})

    walk(old, new, path)
    return changes[:limit]
