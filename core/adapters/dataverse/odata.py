"""OData syntax of the Dataverse Web API: the one place that writes it.

Everything that turns values into URL text lives here, so that what a caller measures is what the client
sends (a URL measured with one encoder and sent with another once went over the limit: 414):

* literals: :func:`odata_literal` (``'O''Brien'``, ``null``, ``true``, GUIDs, ISO dates), key segments;
* filters: ``Microsoft.Dynamics.CRM.In`` / ``NotIn``, ``contains`` (its argument a LIKE pattern, so the
  value's own ``%``, ``_`` and ``[`` are escaped: :func:`like_literal`), ``eq`` chains, and
  :func:`split_clauses`, which packs clauses into as few filters as fit a URL limit;
* percent-encoding of query options and of request targets inside ``$batch`` (``QUERY_VALUE_SAFE``,
  ``PATH_SAFE``);
* URL limits: 32 KB for a direct GET, 64 KB for a GET inside ``$batch``
  (https://learn.microsoft.com/power-apps/developer/data-platform/webapi/execute-batch-operations-using-web-api).

Cost: pure string work; :func:`split_clauses` encodes each clause once.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote, unquote

DIRECT_GET_MAX_URL = 32_768
BATCH_GET_MAX_URL = 65_536
URL_HEADROOM = 1_024  # room for https://<org>.crm<n>.dynamics.com/api/data/v9.2/ and headers' slack
MAX_PAGE_SIZE = 5_000  # rows per page Dataverse returns at most (Prefer: odata.maxpagesize)

# Characters kept as they are in a query option's value: the OData punctuation ('(),/:@$*) reads better
# unencoded and Dataverse accepts it; '=', '&', '+', '#' and spaces are always encoded.
QUERY_VALUE_SAFE = "'(),/:@$*"
PATH_SAFE = "/'(),=$@:*"

_GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

# ------------------------------------------------------------------------------------------------
# Literals
# ------------------------------------------------------------------------------------------------


def escape_odata_string(value: str) -> str:
    """Escape text for the inside of a single-quoted OData literal: every ``'`` doubled.

    ``O'Brien`` -> ``O''Brien``; ``x' or 1 eq 1 or name eq 'y`` stays one literal. NUL characters (which
    no Dataverse column can hold) are dropped.
    """
    return value.replace("\x00", "").replace("'", "''")


def odata_literal(value: Any) -> str:
    """An OData literal for ``$filter`` / key segments; strings are quoted with ``'`` doubled."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    return "'" + escape_odata_string(str(value)) + "'"


def key_segment(key: str | uuid.UUID | Mapping[str, Any]) -> str:
    """``(<guid>)`` or ``(col='v',other=1)`` for an alternate key."""
    if isinstance(key, Mapping):
        if not key:
            raise ValueError("an alternate key needs at least one column")
        return "(" + ",".join(f"{name}={odata_literal(value)}" for name, value in key.items()) + ")"
    text = str(key)
    if not _GUID_RE.match(text):
        raise ValueError("a record id must be a GUID (or pass an alternate key mapping)")
    return f"({text.lower()})"


# ------------------------------------------------------------------------------------------------
# Filters
# ------------------------------------------------------------------------------------------------


def in_filter(column: str, values: Iterable[str]) -> str:
    """``Microsoft.Dynamics.CRM.In`` over ``column``: one indexed lookup instead of a chain of ``eq``."""
    joined = ",".join(odata_literal(v) for v in values)
    return f"{in_prefix(column)}{joined}])"


def in_prefix(column: str) -> str:
    """``In(...)`` up to its first value: what :func:`in_filter` writes before the values."""
    return f"Microsoft.Dynamics.CRM.In(PropertyName={odata_literal(column)},PropertyValues=["


def not_in_filter(column: str, values: Iterable[str]) -> str:
    """``Microsoft.Dynamics.CRM.NotIn`` over ``column``: rows whose value is none of ``values``."""
    joined = ",".join(odata_literal(v) for v in values)
    return f"Microsoft.Dynamics.CRM.NotIn(PropertyName={odata_literal(column)},PropertyValues=[{joined}])"


def like_literal(text: str) -> str:
    """``text`` as a LIKE pattern matching only itself: each wildcard character enclosed in brackets.

    Dataverse evaluates ``contains``/``startswith``/``endswith`` as SQL LIKE, where ``%`` is any string,
    ``_`` any character and ``[`` opens a set; a wildcard "enclosed in brackets" is a literal
    (https://learn.microsoft.com/power-apps/developer/data-platform/wildcard-characters). Unescaped, a
    LinkedIn slug ``%`` or an e-mail ``%@gmail.com`` would match (and read) every row.
    """
    return text.translate(_LIKE_ESCAPES)


_LIKE_ESCAPES = str.maketrans({"%": "[%]", "_": "[_]", "[": "[[]"})


def contains_filter(column: str, fragment: str) -> str:
    """``contains(column,'fragment')`` matching ``fragment`` literally (wildcards escaped)."""
    return f"contains({column},{odata_literal(like_literal(fragment))})"


def eq_filter(column: str, value: Any) -> str:
    return f"{column} eq {odata_literal(value)}"


def prefer_page_size(size: int = MAX_PAGE_SIZE) -> str:
    """The ``Prefer`` value asking for pages of ``size`` rows (1 to ``MAX_PAGE_SIZE``)."""
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
    return f"odata.maxpagesize={size}"


def expand_option(navigations: Iterable[tuple[str, Sequence[str]]]) -> str | None:
    """``$expand`` selecting columns of related tables: ``nav($select=a,b),other($select=c)``."""
    return ",".join(f"{nav}($select={','.join(columns)})" for nav, columns in navigations) or None


# ------------------------------------------------------------------------------------------------
# Percent-encoding
# ------------------------------------------------------------------------------------------------


def encode_value(text: str) -> str:
    """A query option's value as sent (percent-encoded, spaces as %20, ``+`` as %2B, quotes kept)."""
    return quote(text, safe=QUERY_VALUE_SAFE)


def encode_query(params: Sequence[tuple[str, str]]) -> str:
    """``name=value&...`` with values percent-encoded (spaces as %20, ``+`` as %2B) and OData quotes kept."""
    return "&".join(f"{quote(name, safe='$@')}={encode_value(value)}" for name, value in params)


def encode_target(url: str, params: Sequence[tuple[str, str]] = ()) -> str:
    """Percent-encode a raw relative OData URL (path and query) for a request line."""
    path, sep, query = url.partition("?")
    encoded = quote(path, safe=PATH_SAFE)
    parts = []
    if sep and query:
        parts.append("&".join(_encode_raw_option(option) for option in query.split("&")))
    if params:
        parts.append(encode_query(params))
    return encoded + ("?" + "&".join(parts) if parts else "")


def _encode_raw_option(option: str) -> str:
    name, sep, value = option.partition("=")
    return quote(name, safe="$@") + (sep + encode_value(value) if sep else "")


def decode_target(url: str) -> tuple[str, list[tuple[str, str]]]:
    """A percent-encoded relative URL (an ``@odata.nextLink`` after the Web API root) as its raw path and
    raw query options, the inverse of :func:`encode_target`: the options are split at the encoded form's
    ``&`` (an ``&`` inside a value is ``%26`` there) before each is decoded, and ``+`` stays ``+``."""
    path, _, query = url.partition("?")
    params: list[tuple[str, str]] = []
    for option in query.split("&") if query else ():
        name, _, value = option.partition("=")
        params.append((unquote(name), unquote(value)))
    return unquote(path), params


# ------------------------------------------------------------------------------------------------
# URL-length chunking
# ------------------------------------------------------------------------------------------------


def split_clauses(
    clauses: Sequence[str],
    *,
    fixed_length: int,
    max_length: int,
    max_clauses: int,
    separator: str,
    extra_length: Callable[[int], int] | None = None,
    what: str = "value",
) -> list[list[int]]:
    """Group clause positions, in order, so that each group's URL stays within ``max_length``.

    ``fixed_length``: the encoded URL without any clause (entity set, ``$select``, ``$expand``, the
    filter's fixed text). Each clause counts its encoded length, the separator between two clauses its
    encoded length, and ``extra_length(position)`` whatever else that clause brings (e.g. a value it
    excludes). A group holds at most ``max_clauses``. A clause that alone does not fit raises ValueError.
    """
    separator_length = len(encode_value(separator))
    groups: list[list[int]] = []
    current: list[int] = []
    length = fixed_length
    for position, clause in enumerate(clauses):
        size = len(encode_value(clause)) + (extra_length(position) if extra_length else 0)
        if fixed_length + size > max_length:
            raise ValueError(f"a single {what} does not fit in a {max_length}-byte URL")
        extra = size + (separator_length if current else 0)
        if current and (length + extra > max_length or len(current) >= max_clauses):
            groups.append(current)
            current, length, extra = [], fixed_length, size
        current.append(position)
        length += extra
    if current:
        groups.append(current)
    return groups
