"""host.json and local.settings.json, read the way Azure Functions Core Tools reads them."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("devhost")

_TIMESPAN = re.compile(r"^(?:(?P<days>\d+)\.)?(?P<h>\d{1,2}):(?P<m>\d{1,2}):(?P<s>\d{1,2}(?:\.\d+)?)$")
_SETTING_REF = re.compile(r"%([^%]+)%")

DEFAULT_ROUTE_PREFIX = "api"
MAX_BATCH_SIZE = 32


class HostConfigError(ValueError):
    """host.json, local.settings.json or a binding expression is malformed."""


def parse_timespan(value: str | float | int) -> float:
    """Seconds in a .NET TimeSpan string ("00:00:10", "1.02:00:00", "00:00:00.250")."""
    if isinstance(value, int | float):
        return float(value)
    match = _TIMESPAN.match(value.strip())
    if not match:
        raise HostConfigError(f"not a TimeSpan (expected [d.]hh:mm:ss[.fff]): {value!r}")
    days = int(match.group("days") or 0)
    return days * 86400 + int(match.group("h")) * 3600 + int(match.group("m")) * 60 + float(match.group("s"))


def is_timespan(value: str) -> bool:
    return bool(_TIMESPAN.match(value.strip()))


@dataclass(frozen=True)
class QueueOptions:
    """``extensions.queues`` of host.json, with the Functions host's defaults."""

    batch_size: int = 16
    new_batch_threshold: int | None = None  # default: batch_size // 2
    max_dequeue_count: int = 5
    visibility_timeout: float = 0.0  # seconds a failed message stays invisible before its retry
    max_polling_interval: float = 60.0
    message_encoding: str = "base64"  # "base64" | "none"

    @property
    def effective_new_batch_threshold(self) -> int:
        return self.batch_size // 2 if self.new_batch_threshold is None else self.new_batch_threshold

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> QueueOptions:
        keys = {k.lower(): v for k, v in data.items()}
        batch_size = int(keys.get("batchsize", 16))
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise HostConfigError(
                f"extensions.queues.batchSize must be 1..{MAX_BATCH_SIZE}, got {batch_size}"
            )
        threshold = keys.get("newbatchthreshold")
        max_dequeue = int(keys.get("maxdequeuecount", 5))
        if max_dequeue < 1:
            raise HostConfigError("extensions.queues.maxDequeueCount must be >= 1")
        encoding = str(keys.get("messageencoding", "base64")).lower()
        if encoding not in {"base64", "none"}:
            raise HostConfigError(
                f"extensions.queues.messageEncoding must be base64 or none, got {encoding!r}"
            )
        return cls(
            batch_size=batch_size,
            new_batch_threshold=None if threshold is None else int(threshold),
            max_dequeue_count=max_dequeue,
            visibility_timeout=parse_timespan(keys.get("visibilitytimeout", "00:00:00")),
            max_polling_interval=max(0.1, parse_timespan(keys.get("maxpollinginterval", "00:01:00"))),
            message_encoding=encoding,
        )


@dataclass(frozen=True)
class HostConfig:
    route_prefix: str = DEFAULT_ROUTE_PREFIX
    queues: QueueOptions = field(default_factory=QueueOptions)
    function_timeout: float | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HostConfig:
        extensions = data.get("extensions") or {}
        http = extensions.get("http") or {}
        prefix = http.get("routePrefix", DEFAULT_ROUTE_PREFIX)
        timeout = data.get("functionTimeout")
        return cls(
            route_prefix=str(prefix).strip("/"),
            queues=QueueOptions.from_json(extensions.get("queues") or {}),
            function_timeout=None if timeout is None else parse_timespan(timeout),
        )

    @classmethod
    def load(cls, path: Path | None, overrides: Mapping[str, Any] | None = None) -> HostConfig:
        """Read host.json (missing file = defaults), deep-merging ``overrides`` on top (tests use this)."""
        data: dict[str, Any] = {}
        if path is not None and path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise HostConfigError(f"{path} is not valid JSON: {exc.msg} (line {exc.lineno})") from exc
        if overrides:
            data = deep_merge(data, overrides)
        return cls.from_json(data)


def deep_merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _values(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise HostConfigError(f"{path} is not valid JSON: {exc.msg} (line {exc.lineno})") from exc
    if data.get("IsEncrypted"):
        raise HostConfigError(f"{path} is encrypted (IsEncrypted=true); the devhost reads plain values only")
    values = data.get("Values") or {}
    return {str(k): "" if v is None else str(v) for k, v in values.items()}


def load_cors_origins(path: Path) -> tuple[str, ...]:
    """The origins of ``"Host": {"CORS": "a,b"}`` in local.settings.json, as Core Tools reads them (the
    local twin of the Function App's platform CORS, ``siteConfig.cors.allowedOrigins``); ``*`` allows any."""
    example = path.with_name(path.name + ".example")
    host: dict[str, Any] = {}
    for source in (path, example):  # a copy made before "Host" was in the example: the example's
        if source.is_file():
            host = json.loads(source.read_text(encoding="utf-8")).get("Host") or {}
            if host:
                break
    listed = str(host.get("CORS") or "")
    return tuple(o.strip().rstrip("/") for o in listed.split(",") if o.strip())


def load_local_settings(path: Path, example: Path | None = None) -> dict[str, str]:
    """The "Values" of local.settings.json, creating the file from the example when it is missing.

    A local.settings.json made from an older example lacks the settings added since: those are taken
    from the example (and named in a warning), so a stale copy does not stop the app from starting.
    """
    example = example or path.with_name(path.name + ".example")
    if not path.exists():
        if not example.is_file():
            return {}
        shutil.copyfile(example, path)
    values = _values(path)
    if example.is_file():
        missing = {k: v for k, v in _values(example).items() if k not in values}
        if missing:
            log.warning(
                "%s lacks %s (taken from %s); copy them over to change them",
                path.name,
                ", ".join(sorted(missing)),
                example.name,
            )
            values.update(missing)
    return values


def apply_settings(
    values: Mapping[str, str], environ: MutableMapping[str, str] | None = None, *, override: bool = False
) -> dict[str, str | None]:
    """Put settings into the environment (the real environment wins unless ``override``).

    Returns the previous value of every variable it changed, so a caller can restore them.
    """
    env = os.environ if environ is None else environ
    previous: dict[str, str | None] = {}
    for name, value in values.items():
        if name in env and not override:
            continue
        previous[name] = env.get(name)
        env[name] = value
    return previous


def restore_settings(
    previous: Mapping[str, str | None], environ: MutableMapping[str, str] | None = None
) -> None:
    env = os.environ if environ is None else environ
    for name, value in previous.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value


def resolve_setting_refs(expression: str, settings: Mapping[str, str]) -> str:
    """Resolve ``%NAME%`` binding expressions from app settings (as the host does for schedules, queues)."""

    def lookup(match: re.Match[str]) -> str:
        name = match.group(1)
        value = settings.get(name)
        if value is None or value == "":
            raise HostConfigError(f"binding expression %{name}% names an app setting that is not set")
        return value

    return _SETTING_REF.sub(lookup, expression)
