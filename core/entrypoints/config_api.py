"""Dynamics configuration endpoints (the four-step setup window).

- ``GET  /api/dynamics/config``            whole configuration (defaults, ETag ``"v0"``, before a save)
- ``PUT  /api/dynamics/config``            replace it (admin; ``If-Match`` once one exists)
- ``GET  /api/dynamics/config/{step}``     one step: sync-identifiers | field-mapping | campaign-mapping |
                                           user-mapping (ETag of the whole configuration)
- ``PUT  /api/dynamics/config/{step}``     replace one step (admin; same ETag rules)
- ``POST /api/dynamics/config/validate``   every problem of a proposed configuration, or with ``?step=``
                                           of one proposed step in the saved configuration; saves nothing
- ``GET  /api/dynamics/config/history``    saved versions, newest first: who, when, what changed

Error pointers always point into the whole configuration document, also for a step PUT. A PUT that saved
despite warnings (e.g. the yellow "may be incompatible" icon of a live Dynamics check, or a company field
mapped in the Contacts tab) lists them in the answer's read-only ``warnings`` member (pointers, messages;
ignored when sent back) and counts them in ``X-Config-Warning-Count``; ``POST .../validate`` lists them
too.
"""

from __future__ import annotations

from typing import Any, Union

import azure.functions as func
from pydantic import BaseModel, Field, RootModel, create_model

from core import bootstrap, openapi
from core.domain.caller import ADMINS, Caller
from core.domain.config import STEP_MODELS, DynamicsConfig, HistoryEntry, Step
from core.domain.config_validation import Problem
from core.domain.values import ascii_whole_number
from core.entrypoints.http_support import HttpProblem, authenticated, json_response, model_response, read_json
from core.services.config.service import (
    ConfigView,
    InvalidConfig,
    PreconditionFailed,
    PreconditionRequired,
    ValidationReport,
    etag_for,
    step_of,
)

bp = func.Blueprint()  # type: ignore[no-untyped-call]

MAX_CONFIG_BYTES = 4 * 1024 * 1024  # a big workspace's mappings fit; a 10 MB body is refused (413)
TAG = ("Dynamics configuration",)
STEP_NAMES = ", ".join(s.value for s in Step)


class PointerMessage(BaseModel):
    pointer: str
    message: str


def _entries(problems: list[Problem]) -> list[PointerMessage]:
    return [PointerMessage(pointer=p.pointer, message=p.message) for p in problems]


_DRIFT_DESCRIPTION = (
    "read-only: what no longer fits Dynamics in the saved steps (a mapped column deleted, a mapped user "
    "disabled since the save), checked against live metadata at most 10 minutes old; JSON pointers into "
    "the whole configuration. It never refuses saving another step; exports whose mapping it breaks fail "
    "as a whole with the same reason. Ignored when sent back"
)


class ValidationResult(BaseModel):
    valid: bool
    errors: list[PointerMessage]
    warnings: list[PointerMessage]
    drift: list[PointerMessage] = Field(
        default_factory=list,
        description="problems of the steps this save would leave as they are (they do not make it invalid)",
    )

    @classmethod
    def of(cls, report: ValidationReport) -> ValidationResult:
        return cls(
            valid=report.valid,
            errors=_entries(report.errors),
            warnings=_entries(report.warnings),
            drift=_entries(report.drift),
        )


class DriftByStep(BaseModel):
    """Drift of each step, by the step's member in the configuration."""

    syncIdentifiers: list[PointerMessage] = Field(default_factory=list)
    fieldMapping: list[PointerMessage] = Field(default_factory=list)
    campaignMapping: list[PointerMessage] = Field(default_factory=list)
    userMapping: list[PointerMessage] = Field(default_factory=list)


def _drift_by_step(drift: list[Problem]) -> dict[str, list[dict[str, str]]]:
    by_step: dict[str, list[dict[str, str]]] = {step.member: [] for step in Step}
    for problem in drift:
        step = step_of(problem.pointer)
        if step is not None:
            by_step[step.member].append(problem.as_json())
    return by_step


_DRIFT_FIELD: Any = Field(default_factory=DriftByStep, description=_DRIFT_DESCRIPTION)
_STEP_DRIFT_FIELD: Any = Field(default_factory=list, description=_DRIFT_DESCRIPTION)


class ConfigDocument(DynamicsConfig):
    """The configuration as stored, with what no longer fits Dynamics in it."""

    drift: DriftByStep = _DRIFT_FIELD


_STEP_DOCUMENT_MODELS: dict[Step, type[BaseModel]] = {
    step: create_model(
        f"{model.__name__}Document", __base__=model, drift=(list[PointerMessage], _STEP_DRIFT_FIELD)
    )
    for step, model in STEP_MODELS.items()
}


class StepDocument(RootModel[Union[tuple(_STEP_DOCUMENT_MODELS.values())]]):  # type: ignore[misc]  # noqa: UP007
    """One step's section as stored, with what no longer fits Dynamics in it."""


_WARNINGS_FIELD: Any = Field(
    default_factory=list,
    description="read-only: what the save went ahead with (JSON pointers into the whole configuration, "
    "messages); ignored when sent back",
)


class SavedConfig(DynamicsConfig):
    """The answer of a save: the configuration as stored, with the warnings it was saved with and the
    drift of the steps it left as they were."""

    warnings: list[PointerMessage] = _WARNINGS_FIELD
    drift: DriftByStep = _DRIFT_FIELD


_SAVED_STEP_MODELS: dict[Step, type[BaseModel]] = {
    step: create_model(
        f"Saved{model.__name__}",
        __base__=model,
        warnings=(list[PointerMessage], _WARNINGS_FIELD),
        drift=(list[PointerMessage], _STEP_DRIFT_FIELD),
    )
    for step, model in STEP_MODELS.items()
}


class SavedStep(RootModel[Union[tuple(_SAVED_STEP_MODELS.values())]]):  # type: ignore[misc]  # noqa: UP007
    """The answer of a step save: the step's section as stored, with the warnings it was saved with."""


def _with_warnings(body: dict[str, Any], warnings: list[Problem]) -> dict[str, Any]:
    return body | {"warnings": [{"pointer": p.pointer, "message": p.message} for p in warnings]}


def _with_drift(body: dict[str, Any], drift: list[Problem], step: Step | None) -> dict[str, Any]:
    """The whole document gets its drift by step; a step's section, the drift of that step."""
    by_step = _drift_by_step(drift)
    return body | {"drift": by_step if step is None else by_step[step.member]}


class ChangeEntry(BaseModel):
    op: str = Field(description="add | remove | replace")
    path: str = Field(description="JSON pointer into the configuration")


class HistoryVersion(BaseModel):
    version: int
    savedAt: str
    savedBy: str
    step: str | None
    changes: list[ChangeEntry]
    changesTruncated: bool


class HistoryPage(BaseModel):
    versions: list[HistoryVersion]

    @classmethod
    def of(cls, entries: list[HistoryEntry]) -> HistoryPage:
        return cls(
            versions=[
                HistoryVersion(
                    version=e.version,
                    savedAt=e.saved_at.isoformat(),
                    savedBy=e.saved_by,
                    step=e.step,
                    changes=[ChangeEntry.model_validate(change) for change in e.changes],
                    changesTruncated=e.changes_truncated,
                )
                for e in entries
            ]
        )


def _headers(view: ConfigView) -> dict[str, str]:
    headers = {"ETag": view.etag, "Cache-Control": "no-store"}
    if view.saved_at is not None:
        headers["Last-Modified"] = view.saved_at.strftime("%a, %d %b %Y %H:%M:%S GMT")
    return headers


def _problem_for(exc: Exception) -> HttpProblem:
    if isinstance(exc, InvalidConfig):
        return HttpProblem(
            400,
            "Invalid configuration",
            f"{len(exc.problems)} problem(s); nothing was saved",
            errors=[p.as_json() for p in exc.problems],
        )
    if isinstance(exc, PreconditionRequired):
        current = etag_for(exc.current_version)
        return HttpProblem(
            428,
            "Precondition required",
            f"send If-Match with the ETag of the configuration you edited (current version "
            f"{exc.current_version}, ETag {current}) so no one's changes are overwritten silently",
            headers={"ETag": current},
            extra={"currentVersion": exc.current_version, "currentETag": current},
        )
    if isinstance(exc, PreconditionFailed):
        current = etag_for(exc.current_version)
        return HttpProblem(
            412,
            "Precondition failed",
            f"the configuration was changed by someone else; the current version is {exc.current_version} "
            f"(ETag {current}): reload it and apply your changes again",
            headers={"ETag": current},
            extra={"currentVersion": exc.current_version, "currentETag": current},
        )
    raise exc


def _step(req: func.HttpRequest) -> Step:
    name = req.route_params.get("step", "")
    try:
        return Step(name)
    except ValueError:
        raise HttpProblem(
            404, "Not found", f"unknown configuration step {name[:40]!r}; steps are {STEP_NAMES}"
        ) from None


def _save(req: func.HttpRequest, caller: Caller, step: Step | None) -> func.HttpResponse:
    data: Any = read_json(req, MAX_CONFIG_BYTES)
    try:
        view = bootstrap.app().config_service.save(caller, data, req.headers.get("if-match"), step)
    except (InvalidConfig, PreconditionRequired, PreconditionFailed) as exc:
        raise _problem_for(exc) from None
    body = view.config.to_json()
    headers = _headers(view) | {"X-Config-Warning-Count": str(len(view.warnings))}
    section = body if step is None else body[step.member]
    return json_response(
        _with_drift(_with_warnings(section, view.warnings), view.drift, step), headers=headers
    )


@bp.route(route="api/dynamics/config", methods=["GET"])
@authenticated()
def get_dynamics_config(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    view = bootstrap.app().config_service.get(caller)
    return json_response(_with_drift(view.config.to_json(), view.drift, None), headers=_headers(view))


@bp.route(route="api/dynamics/config", methods=["PUT"])
@authenticated(admin=True)
def put_dynamics_config(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    return _save(req, caller, None)


@bp.route(route="api/dynamics/config/validate", methods=["POST"])
@authenticated()
def validate_dynamics_config(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    name = req.params.get("step")
    step: Step | None = None
    if name is not None:
        try:
            step = Step(name)
        except ValueError:
            raise HttpProblem(
                400,
                "Invalid query",
                f"step must be one of {STEP_NAMES}",
                errors=[{"pointer": "/step", "message": "unknown step"}],
            ) from None
    report = bootstrap.app().config_service.validate(caller, read_json(req, MAX_CONFIG_BYTES), step)
    return model_response(ValidationResult.of(report))


def _history(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    limit = ascii_whole_number(req.params.get("limit", "50"), max_digits=3)
    if limit is None or not 1 <= limit <= 200:
        raise HttpProblem(
            400,
            "Invalid query",
            "limit must be a whole number from 1 to 200",
            errors=[{"pointer": "/limit", "message": "expected 1..200"}],
        )
    entries = bootstrap.app().config_service.history(caller, limit)
    return model_response(HistoryPage.of(entries), headers={"Cache-Control": "no-store"})


@bp.route(route="api/dynamics/config/history", methods=["GET"])
@authenticated()
def get_dynamics_config_history(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    return _history(req, caller)


@bp.route(route="api/dynamics/config/{step}", methods=["GET"])
@authenticated()
def get_dynamics_config_step(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    if req.route_params.get("step") == "history":  # hosts that try parameter routes before literal ones
        return _history(req, caller)
    step = _step(req)
    view = bootstrap.app().config_service.get(caller)
    section = view.config.to_json()[step.member]
    return json_response(_with_drift(section, view.drift, step), headers=_headers(view))


@bp.route(route="api/dynamics/config/{step}", methods=["PUT"])
@authenticated(admin=True)
def put_dynamics_config_step(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
    return _save(req, caller, _step(req))


# --- OpenAPI ---------------------------------------------------------------------------------------

_etag = {"ETag": 'Version of the whole configuration, e.g. "v3" ("v0": defaults, nothing saved)'}
_put_headers = _etag | {"X-Config-Warning-Count": "Warnings the save went ahead with (see validate)"}
_if_match = {"If-Match": "ETag of the configuration being replaced (required once one exists)"}
openapi.register(
    "GET",
    "/api/dynamics/config",
    "The workspace's Dynamics configuration (defaults before the first save), with its drift",
    response=ConfigDocument,
    description="`drift` lists, per step, what no longer fits Dynamics in the saved configuration (a "
    "mapped column deleted, a mapped user disabled), checked against live metadata; saving a step "
    "without drift still works, and an export whose mapping drifted fails as a whole with that reason.",
    tags=TAG,
    headers=_etag,
)
openapi.register(
    "PUT",
    "/api/dynamics/config",
    "Replace the whole configuration (admin)",
    request=DynamicsConfig,
    response=SavedConfig,
    problems=(403, 412, 428),
    tags=TAG,
    headers=_put_headers,
    request_headers=_if_match,
    callers=ADMINS,
)
openapi.register(
    "POST",
    "/api/dynamics/config/validate",
    "Report every problem of a proposed configuration, or of one proposed step; saves nothing",
    request={
        "oneOf": [
            {"$ref": openapi.REF.format(model="DynamicsConfig")},
            *({"$ref": openapi.REF.format(model=m.__name__)} for m in STEP_MODELS.values()),
        ]
    },
    response=ValidationResult,
    problems=(400,),
    tags=TAG,
    query={"step": {"type": "string", "enum": [s.value for s in Step]}},
    description="Without `step` the body is the whole configuration. With `step` (the URL names of "
    "`/api/dynamics/config/{step}`) the body is that step's section, checked inside the saved "
    "configuration exactly as a PUT of that step would be; pointers are into the whole document. "
    "`warnings` are what a save would go ahead with; `errors` would refuse it.",
)
openapi.register(
    "GET",
    "/api/dynamics/config/history",
    "Saved versions, newest first: who, when, what changed",
    response=HistoryPage,
    problems=(400,),
    tags=TAG,
    query={"limit": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}},
)
_step_param = {"step": {"type": "string", "enum": [s.value for s in Step]}}
_step_schema: dict[str, Any] = {
    "oneOf": [{"$ref": openapi.REF.format(model=m.__name__)} for m in STEP_MODELS.values()]
}
openapi.register(
    "GET",
    "/api/dynamics/config/{step}",
    f"One step of the configuration ({STEP_NAMES}), with the step's drift",
    response=StepDocument,
    problems=(404,),
    path_params=_step_param,
    tags=TAG,
    headers=_etag,
)
openapi.register(
    "PUT",
    "/api/dynamics/config/{step}",
    "Replace one step (admin); error pointers are into the whole document",
    request=_step_schema,
    response=SavedStep,
    path_params=_step_param,
    problems=(400, 403, 404, 412, 413, 415, 428),
    tags=TAG,
    headers=_put_headers,
    request_headers=_if_match,
    description=f"Body: the step's section ({', '.join(m.__name__ for m in STEP_MODELS.values())}).",
    callers=ADMINS,
)
