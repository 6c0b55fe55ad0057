"""Observability: JSON log lines that carry the request/job context, redaction, OpenTelemetry export.

One setup call at app start (``function_app.py``)::

    observability.setup()          # OTel (only when APPLICATIONINSIGHTS_CONNECTION_STRING is set), then logs

Context is a ``contextvars`` mapping, bound by the entrypoints for the duration of an invocation::

    with log_context(correlation_id=cid):        # HTTP wrapper
        bind(workspace_id=caller.workspace_id, user_id=caller.user_id)   # once the caller is known
        log.info("saved")  # -> {"timestamp":..., "level":"INFO", ..., "correlationId":..., "workspaceId":...}

Every line is one JSON object: ``timestamp`` (UTC, ms), ``level``, ``logger``, ``message`` and, where known,
``correlationId``, ``workspaceId``, ``jobId``, ``chunk``, ``userId`` (plus ``exception`` with the redacted
traceback). A redaction filter on every root handler masks bearer tokens, JWT-shaped strings,
``refresh_token``/``access_token``-style values, ``client_secret``/``code`` query values, storage account
keys and SAS signatures, and the literal values of settings declared secret: a last line of defence, the
code itself must not log secrets. Library loggers (azure, urllib3, msal, ...) are kept at WARNING.

Threads started inside an invocation do not inherit the context: run their work with
``contextvars.copy_context().run`` (or ``in_current_context``) to keep the ids on their lines.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import re
import sys
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import IO, Any, ParamSpec, TypeVar

from core.settings import SETTING_SPECS, Settings, get_settings

log = logging.getLogger(__name__)

CONTEXT_FIELDS: tuple[str, ...] = ("correlationId", "workspaceId", "jobId", "chunk", "userId")
_FIELD_FOR_KWARG = {
    "correlation_id": "correlationId",
    "workspace_id": "workspaceId",
    "job_id": "jobId",
    "chunk": "chunk",
    "user_id": "userId",
}
LIBRARY_LOGGERS: tuple[str, ...] = (
    "azure",
    "azure.core.pipeline.policies.http_logging_policy",
    "azure.monitor.opentelemetry",
    "urllib3",
    "requests",
    "msal",
    "opentelemetry",
)
CORRELATION_HEADER = "X-Correlation-Id"
REDACTED = "[redacted]"

ContextValue = str | int
_EMPTY: Mapping[str, ContextValue] = MappingProxyType({})
_context: contextvars.ContextVar[Mapping[str, ContextValue]] = contextvars.ContextVar(
    "observability_log_context", default=_EMPTY
)

P = ParamSpec("P")
R = TypeVar("R")


# ---------------------------------------------------------------------------------------------- context


def _fields(values: Mapping[str, ContextValue | None]) -> dict[str, ContextValue]:
    out: dict[str, ContextValue] = {}
    for key, value in values.items():
        field = _FIELD_FOR_KWARG.get(key)
        if field is None:
            raise TypeError(f"unknown log context field {key!r} (known: {', '.join(_FIELD_FOR_KWARG)})")
        if value is not None and value != "":
            out[field] = value
    return out


@contextmanager
def log_context(**fields: ContextValue | None) -> Iterator[None]:
    """Bind ids (``correlation_id``, ``workspace_id``, ``job_id``, ``chunk``, ``user_id``) for a block.

    Everything bound inside the block (also with ``bind``) is undone when it ends.
    """
    token = _context.set(MappingProxyType({**_context.get(), **_fields(fields)}))
    try:
        yield
    finally:
        _context.reset(token)


@contextmanager
def job_context(workspace_id: str, job_id: str, chunk: int | None = None) -> Iterator[None]:
    """Ids of a queue/timer invocation working on a job (a new correlation id per delivery)."""
    with log_context(
        correlation_id=new_correlation_id(), workspace_id=workspace_id, job_id=job_id, chunk=chunk
    ):
        yield


def bind(**fields: ContextValue | None) -> None:
    """Add ids to the current context (until the enclosing ``log_context`` ends)."""
    _context.set(MappingProxyType({**_context.get(), **_fields(fields)}))


def current_context() -> dict[str, ContextValue]:
    """The ids bound right now, by their log field names (``correlationId``, ...)."""
    return dict(_context.get())


def correlation_id() -> str | None:
    value = _context.get().get("correlationId")
    return str(value) if value is not None else None


def in_current_context(fn: Callable[P, R]) -> Callable[P, R]:
    """``fn`` bound to a copy of the caller's context: for work handed to other threads."""
    ctx = contextvars.copy_context()

    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return ctx.copy().run(fn, *args, **kwargs)

    return run


_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")


def new_correlation_id() -> str:
    return uuid.uuid4().hex


def correlation_id_from(headers: Mapping[str, str]) -> str:
    """The caller's ``X-Correlation-Id`` (when it is a plain id), else the trace id of a W3C
    ``traceparent``, else a new id. Anything else a caller sends is ignored (no log injection)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    given = (lowered.get("x-correlation-id") or "").strip()
    if _SAFE_ID.match(given):
        return given
    match = _TRACEPARENT.match((lowered.get("traceparent") or "").strip().lower())
    if match and match.group(1) != "0" * 32:
        return match.group(1)
    return new_correlation_id()


# ---------------------------------------------------------------------------------------------- redaction

_SENSITIVE_KEYS = (
    "access_token|refresh_token|id_token|client_secret|client_assertion|code_verifier|password"
    "|accesstoken|refreshtoken|clientsecret|x-ms-token-[a-z-]+"
)
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization: Bearer <anything token-shaped> (16+ characters: "a bearer token is missing" stays)
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9\-._~+/]{16,}=*"), rf"\1 {REDACTED}"),
    # JWT / JWS / JWE: base64url JSON header ("{"" -> eyJ) then dot-separated segments
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*){1,4}"), REDACTED),
    # key=value / "key": "value" / key: value for token-like keys
    (
        re.compile(rf"""(?i)(["']?\b(?:{_SENSITIVE_KEYS})\b["']?\s*[=:]\s*["']?)[^\s"'&,;}}\]]+"""),
        rf"\1{REDACTED}",
    ),
    # OAuth authorization code and SAS signature in query strings
    (re.compile(r"(?i)([?&](?:code|sig)=)[^&\s\"'#]+"), rf"\1{REDACTED}"),
    # storage connection strings
    (re.compile(r"(?i)\b(AccountKey|SharedAccessSignature|SharedAccessKey)=[^;\s\"']+"), rf"\1={REDACTED}"),
)
_MIN_SECRET_LENGTH = 8


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with token-shaped strings and the given literal secret values masked."""
    for secret in secrets:
        if len(secret) >= _MIN_SECRET_LENGTH and secret in text:
            text = text.replace(secret, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def secret_values(settings: Settings) -> tuple[str, ...]:
    """Values of the settings declared ``secret`` (not their public defaults), longest first."""
    values = set()
    for spec in SETTING_SPECS:
        value = settings.values.get(spec.name)
        if spec.secret and value and value != spec.default and len(value) >= _MIN_SECRET_LENGTH:
            values.add(value)
    return tuple(sorted(values, key=len, reverse=True))


class RedactionFilter(logging.Filter):
    """Masks secrets in the message (after %-formatting), the traceback and the stack of a record.

    Attached to handlers; it rewrites the record in place (``msg`` formatted, ``args`` cleared,
    ``exc_text`` pre-rendered) so every later handler and formatter sees the masked text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_redacted", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # mismatched %-args: keep the template, drop the args
            message = f"{record.msg} (unformattable log arguments)"
        record.msg = redact(message, self.secrets)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.secrets)
        setattr(record, "_redacted", True)  # noqa: B010 - LogRecord has no declared slot for it
        return True


class ContextFilter(logging.Filter):
    """Copies the bound ids onto the record (``record.workspaceId`` ...) unless it already carries them."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _context.get().items():
            if getattr(record, key, None) is None:
                setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record; the text is masked again here, whatever ran before."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(secrets)

    def format(self, record: logging.LogRecord) -> str:
        created = dt.datetime.fromtimestamp(record.created, dt.UTC)
        entry: dict[str, Any] = {
            "timestamp": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage(), self.secrets),
        }
        bound = _context.get()
        for key in CONTEXT_FIELDS:
            value = getattr(record, key, None)
            if value is None:
                value = bound.get(key)
            if value is not None:
                entry[key] = value if isinstance(value, int) else str(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = redact(record.exc_text, self.secrets)
        if record.stack_info:
            entry["stack"] = redact(self.formatStack(record.stack_info), self.secrets)
        return json.dumps(entry, ensure_ascii=False, default=str)


# ---------------------------------------------------------------------------------------------- setup

_setup_lock = threading.Lock()
_logging_configured = False
_telemetry_configured = False


def _is_console_handler(handler: logging.Handler) -> bool:
    """Plain stream handlers (``basicConfig``, the devhost, ours): not pytest's nor the Functions worker's."""
    return type(handler) is logging.StreamHandler


def configure_logging(
    settings: Settings | None = None, *, stream: IO[str] | None = None, level: int | None = None
) -> None:
    """JSON lines on the console handlers, context + redaction on every root handler; once per process.

    With no root handler yet, adds one writing to ``stream`` (default stderr) at ``level`` (default INFO).
    """
    global _logging_configured
    with _setup_lock:
        if _logging_configured:
            return
        secrets = secret_values(settings or get_settings())
        root = logging.getLogger()
        if not root.handlers:
            root.addHandler(logging.StreamHandler(stream or sys.stderr))
            if level is None and root.level in (logging.NOTSET, logging.WARNING):
                level = logging.INFO
        if level is not None:
            root.setLevel(level)
        formatter = JsonFormatter(secrets)
        for handler in root.handlers:
            if not any(isinstance(f, ContextFilter) for f in handler.filters):
                handler.addFilter(ContextFilter())
            if not any(isinstance(f, RedactionFilter) for f in handler.filters):
                handler.addFilter(RedactionFilter(secrets))
            if _is_console_handler(handler):
                handler.setFormatter(formatter)
        for name in LIBRARY_LOGGERS:
            library = logging.getLogger(name)
            if library.level == logging.NOTSET or library.level < logging.WARNING:
                library.setLevel(logging.WARNING)
        _logging_configured = True


_CONNECTION_STRING_KEYS = re.compile(r"(?i)(?:^|;)\s*InstrumentationKey\s*=\s*[0-9a-f-]{36}\s*(?:;|$)")


def valid_connection_string(value: str) -> bool:
    """Syntactically an Application Insights connection string (has a GUID ``InstrumentationKey``)."""
    return bool(_CONNECTION_STRING_KEYS.search(value.strip()))


def configure_telemetry(settings: Settings | None = None) -> bool:
    """OpenTelemetry export to Application Insights, only when ``APPLICATIONINSIGHTS_CONNECTION_STRING``
    is set. Otherwise nothing is imported or started. Returns whether export was configured."""
    global _telemetry_configured
    connection_string = (settings or get_settings()).get("APPLICATIONINSIGHTS_CONNECTION_STRING")
    if not connection_string:
        return False
    with _setup_lock:
        if _telemetry_configured:
            return True
        if not valid_connection_string(connection_string):
            log.warning("APPLICATIONINSIGHTS_CONNECTION_STRING is malformed: telemetry export is off")
            return False
        try:
            from azure.monitor.opentelemetry import configure_azure_monitor
        except ImportError:
            log.warning("azure-monitor-opentelemetry is not installed: telemetry export is off")
            return False
        configure_azure_monitor(
            connection_string=connection_string,
            logger_name="",  # the root logger: our records, with their ids as custom dimensions
        )
        _telemetry_configured = True
        return True


def setup(settings: Settings | None = None) -> None:
    """The one start-up call: telemetry first (its log handler then gets our filters), then logging."""
    settings = settings or get_settings()
    try:
        configure_telemetry(settings)
    except Exception:  # telemetry must never stop the app from starting
        log.exception("telemetry export could not be configured")
    configure_logging(settings)
