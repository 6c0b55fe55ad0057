"""The one HTTP toolkit every blueprint uses: problem+json errors, JSON bodies, auth.

Usage in a blueprint::

    @bp.route(route="api/dynamics/config", methods=["PUT"])
    @authenticated(admin=True)
    def put_config(req: func.HttpRequest, caller: Caller) -> func.HttpResponse:
        body = read_model(req, DynamicsConfig)          # 415 / 413 / 400 raised as HttpProblem
        ...
        return json_response(body.model_dump(by_alias=True), headers={"ETag": etag})

Errors are RFC 9457 ``application/problem+json``: ``type``, ``title``, ``status``, ``detail`` and, for
input problems, ``errors: [{"pointer": "/json/pointer", "message": "..."}]`` (one entry per problem, the first
``MAX_LISTED_PROBLEMS`` only, with ``errorsTotal`` when more were found: a hostile body with a million
bad members gets a small answer, not one as large as itself).
Raise ``HttpProblem`` anywhere below a wrapped handler; ``authenticated`` / ``anonymous`` render it.
Unexpected exceptions become 500 with a ``correlationId`` (logged with the traceback), no internals.
"""

from __future__ import annotations

import datetime as dt
import functools
import inspect
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

import azure.functions as func
import pydantic

from core import bootstrap, observability
from core.domain.caller import ADMINS, PEOPLE, AuthConfigurationError, AuthError, Caller, Forbidden, Role
from core.domain.config_validation import pointer as json_pointer
from core.domain.config_validation import problems_from_validation_error
from core.domain.values import ascii_whole_number

log = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
JSON_CONTENT_TYPE = "application/json"
DEFAULT_MAX_BYTES = 1024 * 1024  # 1 MiB
MAX_JSON_DEPTH = 64
MAX_LISTED_PROBLEMS = 100

ErrorEntry = dict[str, str]
M = TypeVar("M", bound=pydantic.BaseModel)


class HttpProblem(Exception):
    """Raise to answer with a problem+json response."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        errors: Sequence[ErrorEntry] | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {title}")
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = list(errors) if errors else None
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})

    def response(self) -> func.HttpResponse:
        return problem(self.status, self.title, self.detail, self.errors, self.headers, self.extra)


def problem(
    status: int,
    title: str,
    detail: str | None = None,
    errors: Sequence[ErrorEntry] | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> func.HttpResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail is not None:
        body["detail"] = detail
    if errors:
        body["errors"] = list(errors[:MAX_LISTED_PROBLEMS])
        if len(errors) > MAX_LISTED_PROBLEMS:
            body["errorsTotal"] = len(errors)
    if extra:
        body.update(extra)
    return func.HttpResponse(
        body=json.dumps(body, ensure_ascii=False).encode("utf-8"),
        status_code=status,
        headers=dict(headers or {}),
        mimetype=PROBLEM_CONTENT_TYPE,
        charset="utf-8",
    )


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> func.HttpResponse:
    return func.HttpResponse(
        body=json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8"),
        status_code=status,
        headers=dict(headers or {}),
        mimetype=JSON_CONTENT_TYPE,
        charset="utf-8",
    )


def model_response(
    body: pydantic.BaseModel,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    *,
    omit_unset: bool = False,
) -> func.HttpResponse:
    """``body`` rendered through its pydantic model, the one the OpenAPI document shows for the answer.
    ``omit_unset``: members the code did not set are left out (documented as optional), not ``null``."""
    return json_response(body.model_dump(mode="json", exclude_unset=omit_unset), status, headers)


def utc_iso(value: dt.datetime | None) -> str | None:
    """A timestamp as the API writes them: ISO 8601 in UTC with ``Z``."""
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if value else None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _find_bad_string(value: Any, path: list[str | int], depth: int = 0) -> tuple[str, str] | None:
    """First unpaired surrogate / too-deep nesting in parsed JSON: (pointer, message)."""
    if depth > MAX_JSON_DEPTH:
        return json_pointer(path), f"JSON nested deeper than {MAX_JSON_DEPTH} levels"
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return json_pointer(path), "string contains an unpaired UTF-16 surrogate escape"
        return None
    items: Any = (
        value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    )
    for key, item in items:
        if isinstance(key, str):
            try:
                key.encode("utf-8")
            except UnicodeEncodeError:
                return json_pointer(path), "member name contains an unpaired UTF-16 surrogate escape"
        found = _find_bad_string(item, [*path, key], depth + 1)
        if found:
            return found
    return None


def read_json(req: func.HttpRequest, max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
    """The request body as JSON, or ``HttpProblem`` 415 / 413 / 400 with a precise message."""
    content_type = (req.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type != JSON_CONTENT_TYPE and not (
        content_type.startswith("application/") and content_type.endswith("+json")
    ):
        raise HttpProblem(
            415,
            "Unsupported media type",
            f"send the body as {JSON_CONTENT_TYPE} (got {content_type[:60] or 'no Content-Type'!r})",
        )
    declared = req.headers.get("content-length")
    declared_bytes = ascii_whole_number(declared) if declared else None
    if declared_bytes is not None and declared_bytes > max_bytes:
        raise HttpProblem(413, "Request body too large", f"the body may be at most {max_bytes} bytes")
    raw = req.get_body() or b""
    if len(raw) > max_bytes:
        raise HttpProblem(413, "Request body too large", f"the body may be at most {max_bytes} bytes")
    if not raw.strip():
        raise HttpProblem(400, "Malformed JSON", "the request body is empty; a JSON document is required")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise HttpProblem(400, "Malformed JSON", f"the body is not valid UTF-8 (byte {exc.start})") from exc
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise HttpProblem(
            400,
            "Malformed JSON",
            f"{exc.msg} at line {exc.lineno} column {exc.colno} (character {exc.pos})",
        ) from exc
    except ValueError as exc:  # NaN / Infinity
        raise HttpProblem(400, "Malformed JSON", str(exc)) from exc
    except RecursionError as exc:
        raise HttpProblem(400, "Malformed JSON", "the JSON document is nested too deeply") from exc
    bad = _find_bad_string(data, [])
    if bad:
        raise HttpProblem(400, "Malformed JSON", bad[1], errors=[{"pointer": bad[0], "message": bad[1]}])
    return data


def validation_errors(
    data: Any, exc: pydantic.ValidationError, prefix: Sequence[str | int] = ()
) -> list[ErrorEntry]:
    """Pydantic errors as ``{"pointer", "message"}`` entries pointing into the request body."""
    return [p.as_json() for p in problems_from_validation_error(data, exc, prefix)]


def parse_model(data: Any, model: type[M]) -> M:
    """Validate already-parsed JSON into ``model``; 400 with one pointer per problem otherwise."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        errors = validation_errors(data, exc)
        raise HttpProblem(
            400, "Invalid request body", f"{len(errors)} problem(s) in the request body", errors=errors
        ) from exc


def read_model(req: func.HttpRequest, model: type[M], max_bytes: int = DEFAULT_MAX_BYTES) -> M:
    return parse_model(read_json(req, max_bytes), model)


def _internal_error(exc: BaseException) -> func.HttpResponse:
    correlation_id = observability.correlation_id() or str(uuid.uuid4())
    log.error("unhandled error (correlation id %s)", correlation_id, exc_info=exc)
    return problem(
        500,
        "Internal error",
        "the request failed unexpectedly; quote the correlation id when reporting it",
        headers={"X-Correlation-Id": correlation_id},
        extra={"correlationId": correlation_id},
    )


Handler = Callable[[func.HttpRequest], func.HttpResponse]
CallerHandler = Callable[[func.HttpRequest, Caller], func.HttpResponse]


def _as_http_function(wrapper: Handler, original: Callable[..., Any]) -> Handler:
    """Make the wrapper look like ``def name(req: HttpRequest) -> HttpResponse`` to the Functions indexer."""
    functools.update_wrapper(
        wrapper, original, assigned=("__module__", "__name__", "__qualname__", "__doc__")
    )
    wrapper.__annotations__ = {"req": func.HttpRequest, "return": func.HttpResponse}
    wrapper.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter("req", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=func.HttpRequest)],
        return_annotation=func.HttpResponse,
    )
    return wrapper


def _in_request_context(req: func.HttpRequest, respond: Handler) -> func.HttpResponse:
    """Run ``respond`` with the request's correlation id bound for logging; echo it on the response."""
    correlation_id = observability.correlation_id_from(req.headers)
    started = time.perf_counter()
    with observability.log_context(correlation_id=correlation_id):
        response = respond(req)
        elapsed_ms = (time.perf_counter() - started) * 1000
        path = urlsplit(req.url).path  # never the query string (OAuth codes, cursors)
        log.info("%s %s %d %.1fms", req.method, path, response.status_code, elapsed_ms)
    response.headers[observability.CORRELATION_HEADER] = correlation_id
    return response


def anonymous(handler: Handler) -> Handler:
    """Error rendering (HttpProblem, 500 with correlation id) for endpoints without a caller."""

    def respond(req: func.HttpRequest) -> func.HttpResponse:
        try:
            return handler(req)
        except HttpProblem as exc:
            return exc.response()
        except Exception as exc:
            return _internal_error(exc)

    def wrapper(req: func.HttpRequest) -> func.HttpResponse:
        return _in_request_context(req, respond)

    return _as_http_function(wrapper, handler)


def authenticate(req: func.HttpRequest, *, admin: bool = False, callers: frozenset[Role] = PEOPLE) -> Caller:
    """The verified caller, or ``HttpProblem`` 401 (no/bad token) / 403 (a kind of caller ``callers``
    does not admit; ``admin=True`` narrows it to admins)."""
    try:
        caller = bootstrap.app().verifier.caller(req.headers.get("authorization"))
    except AuthError as exc:
        raise HttpProblem(
            401, "Unauthorized", exc.reason, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
        ) from None
    except AuthConfigurationError:
        log.error("caller-token verification is not configured")
        raise HttpProblem(503, "Authentication unavailable", "caller tokens cannot be verified") from None
    try:
        caller.require(ADMINS if admin else callers, f"{req.method} {urlsplit(req.url).path}")
    except Forbidden as exc:
        raise HttpProblem(403, "Forbidden", exc.reason) from None
    return caller


def authenticated(
    *, admin: bool = False, callers: frozenset[Role] = PEOPLE
) -> Callable[[CallerHandler], Handler]:
    """Decorator: verify the bearer token, pass ``Caller``; 401/403 as problem+json. ``callers``: the
    kinds admitted (people by default; docs/contracts.md "Who may call what"). A service refusing the
    caller below (``Forbidden``) is a 403 too."""

    def decorate(handler: CallerHandler) -> Handler:
        def respond(req: func.HttpRequest) -> func.HttpResponse:
            try:
                caller = authenticate(req, admin=admin, callers=callers)
                observability.bind(workspace_id=caller.workspace_id, user_id=caller.user_id)
                return handler(req, caller)
            except HttpProblem as exc:
                return exc.response()
            except Forbidden as exc:
                return problem(403, "Forbidden", exc.reason)
            except Exception as exc:
                return _internal_error(exc)

        def wrapper(req: func.HttpRequest) -> func.HttpResponse:
            return _in_request_context(req, respond)

        return _as_http_function(wrapper, handler)

    return decorate
