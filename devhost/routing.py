"""ASP.NET Core route templates, as the Functions host uses them for HTTP triggers.

Supported: literal segments (case-insensitive), ``{name}``, optional ``{name?}``, defaults ``{name=value}``,
catch-all ``{*rest}`` / ``{**rest}``, constraints ``{id:guid}``, ``{n:int:min(1)}``, ``{s:length(2,8)}``,
``{x:regex(^a+$)}`` (int, long, bool, guid, alpha, decimal, double, float, datetime, length, minlength,
maxlength, min, max, range, regex, required), and complex segments such as ``{name}.{ext}``.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote

from devhost.config import HostConfigError

Check = Callable[[str], bool]
_PARAM = re.compile(r"\{([^{}]*(?:\([^)]*\)[^{}]*)*)\}")


def _is_int(value: str) -> bool:
    return bool(re.fullmatch(r"-?\d+", value))


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return value.strip().lower() not in {"nan", "inf", "-inf", "infinity", "-infinity"}


def _is_guid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _is_datetime(value: str) -> bool:
    try:
        dt.datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _split_constraints(spec: str) -> list[str]:
    """Split ``int:min(1):regex(a:b)`` on colons outside parentheses."""
    parts: list[str] = []
    depth = 0
    current = ""
    for char in spec:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == ":" and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [part for part in parts if part]


def _constraint(text: str, template: str) -> Check:
    name, _, rest = text.partition("(")
    name = name.strip().lower()
    arg = rest[:-1] if rest.endswith(")") else rest
    args = [a.strip() for a in arg.split(",")] if arg and name != "regex" else []
    simple: dict[str, Check] = {
        "int": lambda v: _is_int(v) and -(2**31) <= int(v) < 2**31,
        "long": lambda v: _is_int(v) and -(2**63) <= int(v) < 2**63,
        "bool": lambda v: v.lower() in {"true", "false"},
        "guid": _is_guid,
        "alpha": lambda v: bool(re.fullmatch(r"[A-Za-z]+", v)),
        "decimal": _is_number,
        "double": _is_number,
        "float": _is_number,
        "datetime": _is_datetime,
        "required": lambda v: v != "",
    }
    if name in simple:
        return simple[name]
    try:
        if name == "length" and len(args) == 1:
            exact = int(args[0])
            return lambda v: len(v) == exact
        if name == "length" and len(args) == 2:
            low, high = int(args[0]), int(args[1])
            return lambda v: low <= len(v) <= high
        if name == "minlength":
            least = int(args[0])
            return lambda v: len(v) >= least
        if name == "maxlength":
            most = int(args[0])
            return lambda v: len(v) <= most
        if name == "min":
            floor = int(args[0])
            return lambda v: _is_int(v) and int(v) >= floor
        if name == "max":
            ceiling = int(args[0])
            return lambda v: _is_int(v) and int(v) <= ceiling
        if name == "range":
            low, high = int(args[0]), int(args[1])
            return lambda v: _is_int(v) and low <= int(v) <= high
        if name == "regex":
            pattern = re.compile(arg, re.IGNORECASE)
            return lambda v: bool(pattern.search(v))
    except (ValueError, IndexError, re.error) as exc:
        raise HostConfigError(f"route {template!r}: bad constraint {text!r}") from exc
    raise HostConfigError(f"route {template!r}: unknown constraint {text!r}")


@dataclass(frozen=True)
class RouteParam:
    name: str
    optional: bool = False
    default: str | None = None
    catch_all: bool = False
    checks: tuple[Check, ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class RouteMatch:
    params: dict[str, str]


class RouteTemplate:
    """One compiled route template. ``match(path)`` takes the path after the route prefix."""

    def __init__(self, template: str) -> None:
        self.template = template.strip("/")
        self.params: list[RouteParam] = []
        self._rank: list[int] = []
        self._regex = re.compile(self._compile(), re.IGNORECASE | re.DOTALL)

    def _param(self, body: str) -> RouteParam:
        catch_all = body.startswith("*")
        body = body.lstrip("*")
        name, _, constraint_text = body.partition(":")
        default: str | None = None
        if "=" in name:
            name, default = name.split("=", 1)
        optional = default is not None
        if constraint_text.endswith("?"):
            constraint_text, optional = constraint_text[:-1], True
        if name.endswith("?"):
            name, optional = name[:-1], True
        if "=" in constraint_text and not constraint_text.startswith("regex"):
            constraint_text, default = constraint_text.split("=", 1)
            optional = True
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise HostConfigError(f"route {self.template!r}: bad parameter name {name!r}")
        if any(p.name.lower() == name.lower() for p in self.params):
            raise HostConfigError(f"route {self.template!r}: parameter {name!r} appears twice")
        checks = tuple(_constraint(c, self.template) for c in _split_constraints(constraint_text))
        return RouteParam(name, optional or catch_all, default, catch_all, checks)

    def _compile(self) -> str:
        if not self.template:
            return "^$"
        pattern = ""
        for index, segment in enumerate(self.template.split("/")):
            sep = "/" if index else ""
            whole = _PARAM.fullmatch(segment)
            if whole:
                param = self._param(whole.group(1))
                self.params.append(param)
                self._rank.append(5 if param.catch_all else 3 if param.checks else 4)
                group = f"(?P<{param.name}>.*)" if param.catch_all else f"(?P<{param.name}>[^/]+)"
                pattern += f"(?:{sep}{group})?" if param.optional else f"{sep}{group}"
                continue
            if "{" not in segment:
                self._rank.append(1)
                pattern += sep + re.escape(segment)
                continue
            self._rank.append(2)
            pattern += sep
            position = 0
            for found in _PARAM.finditer(segment):
                pattern += re.escape(segment[position : found.start()])
                param = self._param(found.group(1))
                if param.catch_all:
                    raise HostConfigError(f"route {self.template!r}: a catch-all must be a whole segment")
                self.params.append(param)
                pattern += f"(?P<{param.name}>[^/]+?)" + ("?" if param.optional else "")
                position = found.end()
            pattern += re.escape(segment[position:])
        return f"^{pattern}$"

    @property
    def rank(self) -> tuple[int, ...]:
        """Sort key: literal segments before parameters before catch-alls (ASP.NET's precedence)."""
        return (*self._rank, 0)

    def match(self, path: str) -> RouteMatch | None:
        found = self._regex.match(path.strip("/"))
        if not found:
            return None
        values: dict[str, str] = {}
        for param in self.params:
            raw = found.group(param.name)
            if raw is None or raw == "":
                if param.default is not None:
                    values[param.name] = param.default
                elif not param.optional:
                    return None
                continue
            value = unquote(raw)
            if not all(check(value) for check in param.checks):
                return None
            values[param.name] = value
        return RouteMatch(values)
