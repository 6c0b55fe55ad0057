"""Every icon of the field-mapping step at once, and the compatibility rules as data (any person).

- ``GET /api/dynamics/fields/icons?entity=contact|account[&refresh=true]``: for every Dynamics column of
  the table (live metadata, shared cache; ``refresh=true`` re-reads it), the icon of every target the tab
  may map to it: each platform field (contacts: also ``company.<field>``), a fixed value, a manual-export
  value and an engagement value of each value type, and (contacts) each of the thirteen campaign
  properties. Compact: ``columns`` and ``targets`` lists, ``cells[column][target]`` an index into
  ``outcomes`` (each distinct level + reasons once), whose reasons index ``reasons`` (each text once).
  ``ETag`` is the version of the answer (metadata, custom fields, rules) and its environment;
  ``If-None-Match`` with it (weak comparison, ``*`` too) answers 304 without a body.
- ``GET /api/dynamics/compatibility``: the rules behind the icons: every (value type, Dynamics type) pair
  with its level and reason, and the column-level rules (read-only, create-only, ...). No Dynamics call.

Errors as ``GET /api/dynamics/fields``: 400 unknown entity or bad ``refresh``; 409 ``not_connected`` /
``reconnect_required``; 503 ``dynamics_unavailable``.
"""

from __future__ import annotations

import hashlib
from typing import Literal

import azure.functions as func
from pydantic import BaseModel, Field

from core import bootstrap, openapi
from core.domain.caller import Caller
from core.domain.catalog import FieldType
from core.domain.compatibility import COLUMN_RULES, MATRIX, matrix_cell
from core.domain.dynamics_metadata import AttributeType
from core.domain.etags import listed_etags
from core.domain.icon_matrix import TargetKind, rules_version
from core.entrypoints.dynamics_problems import DYNAMICS_FAILURES, dynamics_problem
from core.entrypoints.fields_api import Writable, bad_query, boolean_param
from core.entrypoints.http_support import authenticated, model_response
from core.services.dynamics.fields import ENTITIES, IconListing, UnknownEntity

bp = func.Blueprint()  # type: ignore[no-untyped-call]

TAG = ("Dynamics configuration",)
LevelName = Literal["ok", "warning", "error"]
_ENTITY_MAX = 40
_IF_NONE_MATCH_MAX = 2_000


class IconColumn(BaseModel):
    logicalName: str
    displayName: str | None
    type: str = Field(description="AttributeType name, e.g. String, Picklist, MultiSelectPicklist, Lookup")
    writable: Writable


class IconTarget(BaseModel):
    key: str = Field(
        description="platformField of a mapping (contacts: company.<field> too), <kind>:<valueType> for "
        "fixed_value, manual_export and engagement values, campaign:<property> for campaign properties"
    )
    kind: TargetKind
    valueType: FieldType | None = Field(description="the value's type; null for campaign properties")


class IconOutcome(BaseModel):
    level: LevelName = Field(description="ok = blue check, warning = yellow (review), error = red")
    reasons: list[int] = Field(description="indexes into reasons")


class IconMatrixPage(BaseModel):
    entity: Literal["contact", "account"]
    environmentUrl: str
    version: str = Field(
        description="changes with the metadata, the custom fields or the rules (the ETag adds the "
        "environment)"
    )
    columns: list[IconColumn] = Field(description="every column, in logical-name order")
    targets: list[IconTarget]
    reasons: list[str] = Field(description="each distinct reason once")
    outcomes: list[IconOutcome] = Field(description="each distinct icon (level and reasons) once")
    cells: list[list[int]] = Field(
        description="cells[c][t]: index into outcomes of the icon of targets[t] on columns[c]"
    )

    @classmethod
    def of(cls, listing: IconListing) -> IconMatrixPage:
        m = listing.matrix
        reasons: dict[str, int] = {}
        outcomes = [
            {"level": o.level.value, "reasons": [reasons.setdefault(r, len(reasons)) for r in o.reasons]}
            for o in m.outcomes
        ]
        return cls.model_validate(
            {
                "entity": listing.entity,
                "environmentUrl": listing.environment_url,
                "version": listing.version,
                "columns": [
                    {
                        "logicalName": c.logical_name,
                        "displayName": c.display_name,
                        "type": c.attribute_type.value,
                        "writable": {"create": c.is_valid_for_create, "update": c.is_valid_for_update},
                    }
                    for c in m.columns
                ],
                "targets": [
                    {"key": t.key, "kind": t.kind, "valueType": t.type.value if t.type else None}
                    for t in m.targets
                ],
                "reasons": list(reasons),
                "outcomes": outcomes,
                "cells": [list(row) for row in m.cells],
            }
        )


def _none_match(header: str | None, etag: str) -> bool:
    """If-None-Match compares weakly (RFC 9110 13.1.2): ``W/`` is ignored and ``*`` matches any current
    representation. A header longer than any list a client keeps is not parsed (it matches nothing)."""
    if not header or len(header) > _IF_NONE_MATCH_MAX:
        return False
    tags = listed_etags(header)
    return "*" in tags or etag in tags


@bp.route(route="api/dynamics/fields/icons", methods=["GET"])
@authenticated()
def get_dynamics_field_icons(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    entity = (req.params.get("entity") or "").strip()
    if not entity:
        raise bad_query("entity", f"entity is required: one of {', '.join(ENTITIES)}", "unknown_entity")
    refresh = boolean_param(req)
    try:
        listing = bootstrap.app().fields_service.icons(
            caller.workspace_id, entity[:_ENTITY_MAX], refresh=refresh
        )
    except UnknownEntity as exc:
        raise bad_query("entity", str(exc), "unknown_entity") from None
    except DYNAMICS_FAILURES as exc:
        raise dynamics_problem(exc) from None
    # The body names the environment: two environments with the same metadata are two representations.
    environment = hashlib.sha256(listing.environment_url.encode()).hexdigest()[:12]
    etag = f'"{listing.version}-{environment}"'
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    if _none_match(req.headers.get("If-None-Match"), etag):
        return func.HttpResponse(status_code=304, headers=headers)
    return model_response(IconMatrixPage.of(listing), headers=headers)


openapi.register(
    "GET",
    "/api/dynamics/fields/icons",
    "Every compatibility icon of a table at once: each column x each platform field, value kind and "
    "campaign property",
    response=IconMatrixPage,
    problems=(400, 409, 503),
    tags=TAG,
    query={
        "entity": {"type": "string", "enum": list(ENTITIES)},
        "refresh": {"type": "boolean", "default": False, "description": "re-read the metadata"},
    },
    headers={"ETag": "the answer's version; send it as If-None-Match to get 304 when nothing changed"},
    request_headers={"If-None-Match": "an ETag of an earlier answer: 304 without a body when still current"},
    description=(
        "The icon of outcomes[cells[c][t]] is what GET /api/dynamics/fields?platformField=<targets[t].key> "
        "shows for columns[c], and what saving that mapping reports (error refuses the save). Read-only "
        "columns are error for every target."
    ),
)


class LevelEntry(BaseModel):
    key: LevelName
    icon: str
    meaning: str


class PairRule(BaseModel):
    valueType: FieldType
    attributeType: AttributeType
    level: LevelName
    reason: str


class ColumnRule(BaseModel):
    key: str
    level: LevelName
    reason: str


class CompatibilityRules(BaseModel):
    version: str
    levels: list[LevelEntry]
    valueTypes: list[FieldType]
    attributeTypes: list[AttributeType]
    pairs: list[PairRule] = Field(description="every (valueType, attributeType) pair")
    columnRules: list[ColumnRule] = Field(description="added to a pair by the column's own metadata")


def compatibility_rules() -> CompatibilityRules:
    return CompatibilityRules(
        version=rules_version(),
        levels=[
            LevelEntry(key="ok", icon="blue check", meaning="compatible"),
            LevelEntry(key="warning", icon="yellow", meaning="may not fit: review"),
            LevelEntry(
                key="error",
                icon="red",
                meaning="cannot be applied (type mismatch or read-only column): saving is refused",
            ),
        ],
        valueTypes=list(FieldType),
        attributeTypes=list(AttributeType),
        pairs=[
            PairRule(valueType=f, attributeType=a, level=level.value, reason=why)
            for (f, a) in MATRIX
            for level, why in (matrix_cell(f, a),)
        ],
        columnRules=[ColumnRule(key=k, level=level.value, reason=why) for k, level, why in COLUMN_RULES],
    )


@bp.route(route="api/dynamics/compatibility", methods=["GET"])
@authenticated()
def get_dynamics_compatibility(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    return model_response(compatibility_rules(), headers={"Cache-Control": "private, max-age=300"})


openapi.register(
    "GET",
    "/api/dynamics/compatibility",
    "The compatibility rules behind the icons: every value type x Dynamics type pair, and the column rules",
    response=CompatibilityRules,
    tags=TAG,
    description="Needs no Dynamics connection. The icon of a cell is the worst level of its pair and of "
    "the column rules that apply.",
)
