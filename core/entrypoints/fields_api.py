"""Dynamics columns for the field-mapping step, with the three icons.

- ``GET /api/dynamics/fields?entity=contact|account[&platformField=x][&refresh=true]``  (any member)

Every column of the table from live metadata (cached per environment; ``refresh=true`` re-reads it):
logical and display name, type (AttributeType name, ``MultiSelectPicklist`` recognised), required level,
writability on create/update, MaxLength, options. With ``platformField`` (a catalog field, ``company.<x>``
for contacts, or a workspace custom field) every column also carries ``compatibility``: ``ok`` (blue
check) | ``warning`` (yellow) | ``error`` (red), and the ``reasons``.

Errors: 400 unknown entity / platform field / bad ``refresh``; 409 ``code: not_connected`` (no Dynamics
connection) or ``code: reconnect_required``; 503 ``code: dynamics_unavailable`` when Dynamics (or the
token service) cannot be reached.
"""

from __future__ import annotations

from typing import Literal

import azure.functions as func
from pydantic import BaseModel, Field

from core import bootstrap, openapi
from core.domain.caller import Caller
from core.entrypoints.dynamics_problems import DYNAMICS_FAILURES, dynamics_problem
from core.entrypoints.http_support import HttpProblem, authenticated, model_response
from core.services.dynamics.fields import (
    ENTITIES,
    ColumnView,
    FieldsListing,
    UnknownEntity,
    UnknownPlatformField,
)

bp = func.Blueprint()  # type: ignore[no-untyped-call]

TAG = ("Dynamics configuration",)
MAX_PLATFORM_FIELD = 160
_BOOLEANS = {"true": True, "false": False, "1": True, "0": False}


class OptionInfo(BaseModel):
    value: int
    label: str
    state: int | None = Field(default=None, description="Status options: the state code they belong to")


class Writable(BaseModel):
    create: bool
    update: bool


class ColumnInfo(BaseModel):
    logicalName: str
    displayName: str | None
    type: str = Field(description="AttributeType name, e.g. String, Picklist, MultiSelectPicklist, Lookup")
    requiredLevel: str = Field(description="None | SystemRequired | ApplicationRequired | Recommended")
    writable: Writable
    maxLength: int | None
    format: str | None = Field(description="e.g. Email, Url, Phone; DateOnly for date-only columns")
    options: list[OptionInfo]
    targets: list[str] | None = Field(default=None, description="Lookup columns: the tables they link")
    compatibility: Literal["ok", "warning", "error"] | None = Field(
        default=None, description="Only with platformField: blue check | yellow | red"
    )
    reasons: list[str] | None = Field(default=None, description="Only with platformField: why")

    @classmethod
    def of(cls, view: ColumnView) -> ColumnInfo:
        """Members that do not apply (``targets``, ``compatibility``, ``reasons``, an option's ``state``)
        are left unset, so the answer omits them."""
        c = view.column
        optional: dict[str, object] = {}
        if c.targets:
            optional["targets"] = list(c.targets)
        if view.compatibility is not None:
            optional["compatibility"] = view.compatibility.level.value
            optional["reasons"] = list(view.compatibility.reasons)
        return cls.model_validate(
            {
                "logicalName": c.logical_name,
                "displayName": c.display_name,
                "type": c.attribute_type.value,
                "requiredLevel": c.required_level.value,
                "writable": Writable(create=c.is_valid_for_create, update=c.is_valid_for_update),
                "maxLength": c.max_length,
                "format": c.format,
                "options": [
                    OptionInfo(value=o.value, label=o.label)
                    if o.state is None
                    else OptionInfo(value=o.value, label=o.label, state=o.state)
                    for o in c.options
                ],
                **optional,
            }
        )


class PlatformFieldInfo(BaseModel):
    name: str
    type: str
    custom: bool


class IconCounts(BaseModel):
    ok: int
    warning: int
    error: int


class FieldsPage(BaseModel):
    entity: Literal["contact", "account"]
    environmentUrl: str
    columns: list[ColumnInfo]
    platformField: PlatformFieldInfo | None = None
    counts: IconCounts | None = None

    @classmethod
    def of(cls, listing: FieldsListing) -> FieldsPage:
        """``platformField`` and ``counts`` only when the listing was for a platform field."""
        optional: dict[str, object] = {}
        if listing.platform_field is not None:
            optional["platformField"] = PlatformFieldInfo(
                name=listing.platform_field_name or listing.platform_field.name,
                type=listing.platform_field.type.value,
                custom=listing.platform_field.custom,
            )
            optional["counts"] = IconCounts(**listing.counts)
        return cls.model_validate(
            {
                "entity": listing.entity,
                "environmentUrl": listing.environment_url,
                "columns": [ColumnInfo.of(view) for view in listing.columns],
                **optional,
            }
        )


def bad_query(name: str, detail: str, code: str) -> HttpProblem:
    return HttpProblem(
        400,
        "Invalid query",
        detail,
        errors=[{"pointer": f"/{name}", "message": detail}],
        extra={"code": code},
    )


def boolean_param(req: func.HttpRequest, name: str = "refresh") -> bool:
    """A ``true``/``false`` (or 1/0) query parameter, false when absent; 400 naming it otherwise."""
    raw = (req.params.get(name) or "false").strip().lower()
    if raw not in _BOOLEANS:
        raise bad_query(name, f"{name} must be true or false", f"invalid_{name.lower()}")
    return _BOOLEANS[raw]


def listing(req: func.HttpRequest, caller: Caller) -> FieldsListing:
    entity = (req.params.get("entity") or "").strip()
    if not entity:
        raise bad_query("entity", f"entity is required: one of {', '.join(ENTITIES)}", "unknown_entity")
    platform_field = req.params.get("platformField")
    if platform_field is not None:
        platform_field = platform_field.strip()
        if not 0 < len(platform_field) <= MAX_PLATFORM_FIELD:
            raise bad_query(
                "platformField",
                f"platformField must be 1..{MAX_PLATFORM_FIELD} characters",
                "unknown_platform_field",
            )
    refresh = boolean_param(req)
    try:
        return bootstrap.app().fields_service.list_fields(
            caller.workspace_id, entity, platform_field=platform_field, refresh=refresh
        )
    except UnknownEntity as exc:
        raise bad_query("entity", str(exc), "unknown_entity") from None
    except UnknownPlatformField as exc:
        raise bad_query("platformField", str(exc), "unknown_platform_field") from None
    except DYNAMICS_FAILURES as exc:
        raise dynamics_problem(exc) from None


@bp.route(route="api/dynamics/fields", methods=["GET"])
@authenticated()
def get_dynamics_fields(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    return model_response(
        FieldsPage.of(listing(req, caller)), headers={"Cache-Control": "no-store"}, omit_unset=True
    )


openapi.register(
    "GET",
    "/api/dynamics/fields",
    "Dynamics columns of contact or account, with the compatibility icon for a platform field",
    response=FieldsPage,
    problems=(400, 409, 503),
    tags=TAG,
    query={
        "entity": {"type": "string", "enum": list(ENTITIES)},
        "platformField": {
            "type": "string",
            "maxLength": MAX_PLATFORM_FIELD,
            "description": "catalog field, company.<field> (contacts) or a workspace custom field",
        },
        "refresh": {"type": "boolean", "default": False, "description": "re-read the metadata"},
    },
    description=(
        "compatibility: ok = blue check, warning = may not fit (review), error = cannot be applied "
        "(type mismatch or read-only column; saving a configuration with it is refused). "
        "409 problems carry code not_connected or reconnect_required; 503 carries dynamics_unavailable."
    ),
)
