"""OpenAPI 3.1 document generated from the pydantic models that validate requests.

Blueprints register each route once, next to its definition::

    openapi.register("PUT", "/api/dynamics/config", "Save the whole configuration",
                     request=DynamicsConfig, response=DynamicsConfig, problems=(400, 401, 403, 412, 428),
                     tags=("Dynamics configuration",))

``document()`` builds the spec (schemas under ``components.schemas``, problem+json for errors, bearer
security on every operation unless ``anonymous=True``: ``callers`` says which kinds of caller the
operation admits -- people by default -- as ``security`` (the ``platformUser`` scheme with the roles
admitted, and/or ``platformService``) and ``x-callers``; it must say what the route's ``authenticated``
admits) and publishes ``core.domain.catalog.CATALOG_VERSION``
as ``info.x-catalog-version``. Every authenticated operation documents 401, 403 and 503 (``authenticate``
answers 403 to a kind of caller the operation does not admit, 503 when caller tokens cannot be
verified). A status whose body is not problem+json is documented with
``alternatives={503: (Health, "storage does not answer")}`` (its example under ``EXAMPLES[...]["503"]``).
scripts/openapi_doc.py writes the document to docs/openapi.json.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from core.domain.caller import PEOPLE, Role
from core.domain.catalog import CATALOG_VERSION
from core.openapi_examples import EXAMPLES

TITLE = "Dynamics 365 integration API"
API_VERSION = "1.0.0"
REF = "#/components/schemas/{model}"

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "correlationId": {"type": "string", "description": "500 only: quote it when reporting"},
        "errorsTotal": {
            "type": "integer",
            "description": "present when `errors` lists only the first 100 problems: how many there are",
        },
        "errors": {
            "type": "array",
            "maxItems": 100,
            "items": {
                "type": "object",
                "required": ["pointer", "message"],
                "properties": {
                    "pointer": {"type": "string", "description": "JSON pointer into the request body"},
                    "message": {"type": "string"},
                },
            },
        },
    },
}

PROBLEM_TEXT = {
    400: "Malformed JSON or invalid body (one `errors` entry per problem)",
    401: "Missing or invalid bearer token",
    403: "This kind of caller (admin, member or the platform's service) may not do this",
    404: "No such resource",
    409: "Conflicts with the current state",
    410: "No longer kept (deleted by retention, or a one-time handle already used or expired)",
    412: "If-Match names a version that is no longer current",
    413: "Request body too large",
    429: "Too many jobs queued or running for this workspace; retry after Retry-After seconds",
    415: "Body is not application/json",
    428: "If-Match is required",
    500: "Unexpected error (with correlationId)",
    503: "A dependency is unavailable",
}
SECURITY_SCHEMES: dict[str, Any] = {
    "platformUser": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A person in the platform's web app: an RS256 JWT of the platform (JWKS or "
        "public key) with aud = PLATFORM_JWT_AUDIENCE, iss, exp, sub (the platform user: a person acts "
        "only as themselves), workspace_id and role (admin or member; each operation lists the roles "
        "it admits).",
    },
    "platformService": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "The platform's own backend (campaign engine, automatic sync), client-credentials "
        "style: an RS256 JWT of the platform with aud = PLATFORM_JWT_SERVICE_AUDIENCE, iss, exp, sub (its "
        "client id) and workspace_id, no role. The only caller that submits activities and automatic "
        "exports and names the platform user or identity it acts for.",
    },
}
AUTH_UNAVAILABLE = "Authentication unavailable"
AUTH_UNAVAILABLE_DETAIL = "caller tokens cannot be verified"


def problem_example(status: int, *, auth_only: bool = False) -> dict[str, Any]:
    """What a client receives with ``status`` (the shape ``core.entrypoints.http_support`` renders);
    ``auth_only``: the 503 ``authenticate`` answers, the operation's only one."""
    example: dict[str, Any] = {
        "type": "about:blank",
        "title": PROBLEM_TEXT.get(status, "Problem"),
        "status": status,
    }
    if status == 503 and auth_only:
        example.update(title=AUTH_UNAVAILABLE, detail=AUTH_UNAVAILABLE_DETAIL)
    if status == 400:
        example.update(
            title="Invalid request body",
            detail="1 problem(s) in the request body",
            errors=[
                {"pointer": "/records", "message": "List should have at least 1 item after validation, not 0"}
            ],
        )
    elif status == 500:
        example["correlationId"] = "9f0c2d4e5b6a47c8a1e2f3a4b5c6d7e8"
    return example


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    request: type[BaseModel] | dict[str, Any] | None = None
    response: type[BaseModel] | dict[str, Any] | None = None
    status: int = 200
    problems: Sequence[int] = ()
    tags: Sequence[str] = ()
    anonymous: bool = False
    description: str | None = None
    headers: dict[str, str] = field(default_factory=dict)  # response header -> description
    request_headers: dict[str, str] = field(default_factory=dict)  # request header -> description
    query: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> schema
    path_params: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> schema (default string)
    # status -> (body model, description): a non-problem body answered with that status
    alternatives: dict[int, tuple[type[BaseModel] | dict[str, Any], str]] = field(default_factory=dict)
    callers: frozenset[Role] = PEOPLE  # who may call it (ignored when anonymous)


def security(callers: frozenset[Role]) -> list[dict[str, list[str]]]:
    """OpenAPI ``security`` for ``callers``: any one of the listed requirements admits the request."""
    roles = [r.value for r in (Role.ADMIN, Role.MEMBER) if r in callers]
    requirements: list[dict[str, list[str]]] = [{"platformUser": roles}] if roles else []
    if Role.SERVICE in callers:
        requirements.append({"platformService": []})
    return requirements


_lock = threading.Lock()
_operations: dict[tuple[str, str], Operation] = {}


def register(
    method: str,
    path: str,
    summary: str,
    *,
    request: type[BaseModel] | dict[str, Any] | None = None,
    response: type[BaseModel] | dict[str, Any] | None = None,
    status: int = 200,
    problems: Sequence[int] = (),
    tags: Sequence[str] = (),
    anonymous: bool = False,
    description: str | None = None,
    headers: dict[str, str] | None = None,
    request_headers: dict[str, str] | None = None,
    query: dict[str, dict[str, Any]] | None = None,
    path_params: dict[str, dict[str, Any]] | None = None,
    alternatives: dict[int, tuple[type[BaseModel] | dict[str, Any], str]] | None = None,
    callers: frozenset[Role] = PEOPLE,
) -> Operation:
    """Add (or replace) the documentation of one route. ``path`` as served, e.g. ``/api/x/{id}``.
    ``alternatives``: statuses answered with an application/json body instead of problem+json."""
    op = Operation(
        method.upper(),
        path,
        summary,
        request,
        response,
        status,
        tuple(problems),
        tuple(tags),
        anonymous,
        description,
        dict(headers or {}),
        dict(request_headers or {}),
        dict(query or {}),
        dict(path_params or {}),
        dict(alternatives or {}),
        callers,
    )
    with _lock:
        _operations[(op.method, op.path)] = op
    return op


def operations() -> list[Operation]:
    with _lock:
        return sorted(_operations.values(), key=lambda o: (o.path, o.method))


def _schema_ref(model: type[BaseModel] | dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    if isinstance(model, dict):
        return model
    schema = model.model_json_schema(ref_template=REF, mode="validation")
    for name, definition in schema.pop("$defs", {}).items():
        components[name] = definition
    components[model.__name__] = schema
    return {"$ref": REF.format(model=model.__name__)}


def document(server_url: str | None = None) -> dict[str, Any]:
    components: dict[str, Any] = {"Problem": PROBLEM_SCHEMA}
    paths: dict[str, dict[str, Any]] = {}
    for op in operations():
        item: dict[str, Any] = {
            "summary": op.summary,
            "operationId": re.sub(r"[^A-Za-z0-9]+", "_", f"{op.method.lower()}{op.path}").strip("_"),
            "tags": list(op.tags),
        }
        if op.description:
            item["description"] = op.description
        parameters: list[dict[str, Any]] = [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": op.path_params.get(name, {"type": "string"}),
            }
            for name in re.findall(r"{(\w+)[^}]*}", op.path)
        ]
        parameters += [
            {
                "name": name,
                "in": "header",
                "required": False,
                "schema": {"type": "string"},
                "description": text,
            }
            for name, text in op.request_headers.items()
        ]
        parameters += [{"name": name, "in": "query", "schema": schema} for name, schema in op.query.items()]
        if parameters:
            item["parameters"] = parameters
        examples = EXAMPLES.get((op.method, op.path), {})
        if op.request is not None:
            body: dict[str, Any] = {"schema": _schema_ref(op.request, components)}
            if "request" in examples:
                body["example"] = examples["request"]
            item["requestBody"] = {"required": True, "content": {"application/json": body}}
        success: dict[str, Any] = {"description": "OK"}
        if op.response is not None:
            content: dict[str, Any] = {"schema": _schema_ref(op.response, components)}
            if "response" in examples:
                content["example"] = examples["response"]
            success["content"] = {"application/json": content}
        if op.headers:
            success["headers"] = {
                h: {"description": d, "schema": {"type": "string"}} for h, d in op.headers.items()
            }
        responses: dict[str, Any] = {str(op.status): success}
        for status, (model, text) in sorted(op.alternatives.items()):
            alternative: dict[str, Any] = {"schema": _schema_ref(model, components)}
            if str(status) in examples:
                alternative["example"] = examples[str(status)]
            responses[str(status)] = {"description": text, "content": {"application/json": alternative}}
        problems = set(op.problems) | {500}
        auth_only_503 = False
        if not op.anonymous:  # core.entrypoints.http_support.authenticate: 401, or 503 when it cannot verify
            auth_only_503 = 503 not in problems
            problems |= {401, 403, 503}
        if op.request is not None:
            problems |= {400, 413, 415}
        for status in sorted(problems - set(op.alternatives)):
            auth_only = status == 503 and auth_only_503
            text = PROBLEM_TEXT.get(status, "Problem")
            if auth_only:
                text = f"{AUTH_UNAVAILABLE}: {AUTH_UNAVAILABLE_DETAIL}"
            elif status == 503 and not op.anonymous:
                text += f" (also `{AUTH_UNAVAILABLE}` when {AUTH_UNAVAILABLE_DETAIL})"
            responses[str(status)] = {
                "description": text,
                "content": {
                    "application/problem+json": {
                        "schema": {"$ref": REF.format(model="Problem")},
                        "example": problem_example(status, auth_only=auth_only),
                    }
                },
            }
        item["responses"] = dict(sorted(responses.items()))
        if op.anonymous:
            item["security"] = []
        else:
            item["security"] = security(op.callers)
            item["x-callers"] = sorted(r.value for r in op.callers)
        paths.setdefault(op.path, {})[op.method.lower()] = item
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": TITLE,
            "version": API_VERSION,
            "x-catalog-version": CATALOG_VERSION,
            "description": f"Platform field catalog version {CATALOG_VERSION}.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": SECURITY_SCHEMES,
        },
        "security": security(PEOPLE),
    }
    if server_url:
        doc["servers"] = [{"url": server_url}]
    return doc


def unregister(method: str, path: str) -> None:
    with _lock:
        _operations.pop((method.upper(), path), None)
