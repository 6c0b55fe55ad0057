"""Dynamics users for the users-mapping step (admins).

- ``GET /api/dynamics/users?search=&cursor=&limit=&includeDisabled=&refresh=``: people among the
  environment's users (enabled ones unless ``includeDisabled=true``), by full name, a page at a time
  (``nextCursor``); ``search`` matches full name or e-mail literally. Pages are cached for a minute per
  workspace; ``refresh=true`` reads Dynamics again.
- ``POST /api/dynamics/users/suggestions`` ``{"people": [{"platformId", "email"}]}`` (at most
  ``MAX_PEOPLE``): for each person, the enabled Dynamics user with the same e-mail (case-insensitive), or
  ``null``.

Errors: 400 naming the bad parameter or body member; 409 ``not_connected`` / ``reconnect_required``; 503
``dynamics_unavailable``.
"""

from __future__ import annotations

import azure.functions as func
from pydantic import BaseModel, ConfigDict, Field

from core import bootstrap, openapi
from core.domain.caller import ADMINS, Caller
from core.entrypoints.dynamics_problems import DYNAMICS_FAILURES, dynamics_problem
from core.entrypoints.fields_api import bad_query, boolean_param
from core.entrypoints.http_support import authenticated, model_response, read_model
from core.services.dynamics.users import (
    DEFAULT_LIMIT,
    MAX_CURSOR,
    MAX_EMAIL,
    MAX_LIMIT,
    MAX_PEOPLE,
    MAX_SEARCH,
    DynamicsUser,
    InvalidCursor,
    Person,
)

bp = func.Blueprint()  # type: ignore[no-untyped-call]

TAG = ("Dynamics configuration",)


class DynamicsUserInfo(BaseModel):
    id: str = Field(description="systemuserid")
    fullName: str | None
    email: str | None = Field(description="Primary e-mail (internalemailaddress)")
    businessUnitId: str | None
    businessUnitName: str | None
    enabled: bool

    @classmethod
    def of(cls, user: DynamicsUser) -> DynamicsUserInfo:
        return cls(
            id=user.id,
            fullName=user.full_name,
            email=user.email,
            businessUnitId=user.business_unit_id,
            businessUnitName=user.business_unit_name,
            enabled=user.enabled,
        )


class DynamicsUsersPage(BaseModel):
    environmentUrl: str
    users: list[DynamicsUserInfo]
    nextCursor: str | None = Field(description="Pass as cursor (same search, limit, includeDisabled)")


class PersonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    platformId: str = Field(min_length=1, max_length=200)
    email: str = Field(min_length=1, max_length=MAX_EMAIL)


class SuggestionsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    people: list[PersonIn] = Field(max_length=MAX_PEOPLE)


class SuggestionOut(BaseModel):
    platformId: str
    email: str
    user: DynamicsUserInfo | None = Field(description="The enabled Dynamics user with this e-mail, if any")


class SuggestionsResponse(BaseModel):
    suggestions: list[SuggestionOut]


def _limit(req: func.HttpRequest) -> int:
    raw = (req.params.get("limit") or "").strip()
    if not raw:
        return DEFAULT_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise bad_query("limit", f"limit must be a whole number from 1 to {MAX_LIMIT}", "invalid_limit")
    return int(raw)


@bp.route(route="api/dynamics/users", methods=["GET"])
@authenticated(admin=True)
def get_dynamics_users(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    search = (req.params.get("search") or "").strip()
    if len(search) > MAX_SEARCH:
        raise bad_query("search", f"search must be at most {MAX_SEARCH} characters", "invalid_search")
    cursor = (req.params.get("cursor") or "").strip() or None
    limit = _limit(req)
    include_disabled = boolean_param(req, "includeDisabled")
    refresh = boolean_param(req, "refresh")
    try:
        page = bootstrap.app().dynamics_users.page(
            caller.workspace_id,
            search=search,
            cursor=cursor,
            limit=limit,
            include_disabled=include_disabled,
            refresh=refresh,
        )
    except InvalidCursor as exc:
        raise bad_query("cursor", str(exc), "invalid_cursor") from None
    except DYNAMICS_FAILURES as exc:
        raise dynamics_problem(exc) from None
    body = DynamicsUsersPage(
        environmentUrl=page.environment_url,
        users=[DynamicsUserInfo.of(u) for u in page.users],
        nextCursor=page.next_cursor,
    )
    return model_response(body, headers={"Cache-Control": "no-store"})


@bp.route(route="api/dynamics/users/suggestions", methods=["POST"])
@authenticated(admin=True)
def post_dynamics_user_suggestions(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    body = read_model(req, SuggestionsRequest)
    people = [Person(p.platformId, p.email) for p in body.people]
    try:
        found = bootstrap.app().dynamics_users.suggest(caller.workspace_id, people)
    except DYNAMICS_FAILURES as exc:
        raise dynamics_problem(exc) from None
    return model_response(
        SuggestionsResponse(
            suggestions=[
                SuggestionOut(
                    platformId=s.person.platform_id,
                    email=s.person.email,
                    user=DynamicsUserInfo.of(s.user) if s.user else None,
                )
                for s in found
            ]
        ),
        headers={"Cache-Control": "no-store"},
    )


openapi.register(
    "GET",
    "/api/dynamics/users",
    "Dynamics users to map platform users to, by full name, a page at a time (admin)",
    response=DynamicsUsersPage,
    problems=(400, 409, 503),
    tags=TAG,
    callers=ADMINS,
    query={
        "search": {"type": "string", "maxLength": MAX_SEARCH, "description": "part of full name or e-mail"},
        "cursor": {"type": "string", "maxLength": MAX_CURSOR, "description": "nextCursor of the last page"},
        "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
        "includeDisabled": {"type": "boolean", "default": False, "description": "disabled users too"},
        "refresh": {"type": "boolean", "default": False, "description": "read Dynamics again (no cache)"},
    },
    description=(
        "Application users and support, non-interactive and delegated-admin users are never listed. "
        "Pages are cached per workspace for 60 s. 409 problems carry code not_connected or "
        "reconnect_required; 503 carries dynamics_unavailable."
    ),
)
openapi.register(
    "POST",
    "/api/dynamics/users/suggestions",
    "Suggest a Dynamics user for each platform user or identity, by e-mail (admin)",
    request=SuggestionsRequest,
    response=SuggestionsResponse,
    problems=(400, 409, 503),
    tags=TAG,
    callers=ADMINS,
    description=(
        f"At most {MAX_PEOPLE} people; e-mails compared without case; only enabled Dynamics users that "
        "are people are suggested; user is null when none has the e-mail."
    ),
)
