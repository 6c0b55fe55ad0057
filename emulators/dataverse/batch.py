"""The ``$batch`` wire format of the Dataverse Web API: multipart/mixed requests in, multipart/mixed out.

Follows ``powerapps-docs/developer/data-platform/webapi/execute-batch-operations-using-web-api.md`` (request
and response examples, change sets, ``Content-ID`` references, the 1,000 request limit) and OData v4.0 part 1
section 11.7. Real clients differ in line endings and boundary spelling, so the parser accepts:

- CRLF (Microsoft's Python SDK ``PowerPlatform-Dataverse-Client``) and LF-only bodies,
- quoted and unquoted ``boundary=`` parameters, any boundary text (``dwa_batch_<uuid>`` from npm
  ``dynamics-web-api``, ``batch_<id>`` in the docs),
- a preamble before the first delimiter (``dynamics-web-api`` starts with a blank line),
- absolute (``https://org/api/data/v9.2/tasks``) and relative (``/api/data/v9.2/tasks``) request URLs,
- ``Content-ID`` in the MIME part headers (standard) or inside the embedded request headers.

Responses are written with CRLF as the service does: ``--batchresponse_<guid>`` parts, change-set results
nested in ``changesetresponse_<guid>`` with the ``Content-ID`` echoed.

Pure module: no I/O. Executing operations (and rolling change sets back) is the server's job.

Just over 400 lines: parser and writer of one wire format, kept together so that each is checked
against the other.
"""

from __future__ import annotations

import http
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from emulators.dataverse.odata import ODataError

__all__ = [
    "MAX_BATCH_OPERATIONS",
    "BatchOperation",
    "ChangeSet",
    "ChangeSetResult",
    "OperationResult",
    "count_operations",
    "parse_batch",
    "render_batch_response",
    "request_target",
    "substitute_content_ids",
]

MAX_BATCH_OPERATIONS = 1000
# Errors raised by the OData library in front of Dataverse carry no Dataverse code of their own.
BATCH_ERROR_CODE = "0x0"
CONTENT_ID_ERROR_CODE = "0x0"


@dataclass
class BatchOperation:
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)  # lower-case keys
    body: bytes = b""
    content_id: str | None = None


@dataclass
class ChangeSet:
    operations: list[BatchOperation] = field(default_factory=list)


@dataclass
class OperationResult:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    content_id: str | None = None


@dataclass
class ChangeSetResult:
    results: list[OperationResult] = field(default_factory=list)


def _bad(message: str) -> ODataError:
    return ODataError(400, BATCH_ERROR_CODE, message)


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------

_BOUNDARY_RE = re.compile(r"""boundary\s*=\s*(?:"([^"]+)"|([^;,\s]+))""", re.IGNORECASE)


def _boundary(content_type: str) -> str | None:
    if not content_type.strip().lower().startswith("multipart/mixed"):
        return None
    m = _BOUNDARY_RE.search(content_type)
    if not m:
        return None
    return m.group(1) or m.group(2)


def _split_parts(text: str, boundary: str) -> list[str]:
    """Body parts between ``--boundary`` delimiter lines (RFC 2046); the line break before a delimiter
    belongs to the delimiter. Raises on a missing close delimiter."""
    delimiter = "--" + boundary
    close = delimiter + "--"
    parts: list[str] = []
    current: list[str] | None = None
    closed = False
    for line in text.splitlines(keepends=True):
        stripped = line.rstrip("\r\n").rstrip(" \t")
        if stripped == close:
            if current is not None:
                parts.append(_join_part(current))
            closed = True
            break
        if stripped == delimiter:
            if current is not None:
                parts.append(_join_part(current))
            current = []
            continue
        if current is not None:
            current.append(line)
    if not closed:
        if current is None:
            raise _bad(f"The batch payload does not contain the boundary '{delimiter}'.")
        raise _bad(f"Unexpected end of input was found in the batch payload: missing '{close}'.")
    return parts


def _join_part(lines: list[str]) -> str:
    text = "".join(lines)
    # The final line break is part of the following delimiter.
    if text.endswith("\r\n"):
        return text[:-2]
    if text.endswith("\n"):
        return text[:-1]
    return text


def _read_headers(text: str) -> tuple[dict[str, str], str]:
    """Header block up to the first empty line, and the rest."""
    headers: dict[str, str] = {}
    lines = text.splitlines(keepends=True)
    i = 0
    # Tolerate leading blank lines before headers only when no header follows them immediately.
    while i < len(lines):
        raw = lines[i].rstrip("\r\n")
        i += 1
        if raw.strip() == "":
            break
        name, sep, value = raw.partition(":")
        if not sep or not name.strip():
            raise _bad(f"The header '{raw}' in the batch payload is not a valid header line.")
        headers[name.strip().lower()] = value.strip()
    return headers, "".join(lines[i:])


# Method up to the first space, version after the last one, the URL in between, as the OData library's batch
# reader splits it: Microsoft's Python SDK writes query strings unencoded ("$filter=lastname eq 'x'").
_REQUEST_LINE_RE = re.compile(r"([A-Z]+) +(\S.*?) +HTTP/1\.[01]\Z")


def _parse_http_request(text: str, part_headers: Mapping[str, str]) -> BatchOperation:
    lines = text.splitlines(keepends=True)
    i = 0
    while i < len(lines) and lines[i].strip() == "":
        i += 1
    if i >= len(lines):
        raise _bad("An empty request was found in the batch payload.")
    request_line = lines[i].rstrip("\r\n").strip()
    m = _REQUEST_LINE_RE.match(request_line)
    if not m:
        raise _bad(f"The request line '{request_line}' in the batch payload is not valid.")
    method, url = m.group(1), m.group(2)
    if method not in ("GET", "POST", "PATCH", "PUT", "DELETE"):
        raise _bad(f"The HTTP method '{method}' is invalid for a request in a batch.")
    headers, rest = _read_headers("".join(lines[i + 1 :]))
    body = rest.rstrip("\r\n")
    content_id = part_headers.get("content-id") or headers.get("content-id")
    if request_target(url).split("?", 1)[0].rstrip("/").endswith("$batch"):
        raise _bad("Nested batch requests are not supported: a batch cannot contain another batch.")
    return BatchOperation(
        method=method,
        url=url,
        headers=headers,
        body=body.encode("utf-8"),
        content_id=content_id or None,
    )


def _check_http_part(part_headers: Mapping[str, str]) -> None:
    ctype = part_headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype != "application/http":
        raise _bad(
            f"The content type '{part_headers.get('content-type', '')}' of a batch part is not valid: "
            "expected 'application/http' or 'multipart/mixed'."
        )
    encoding = part_headers.get("content-transfer-encoding", "binary").strip().lower()
    if encoding != "binary":
        raise _bad(
            f"The Content-Transfer-Encoding '{encoding}' of a batch part is not valid: expected 'binary'."
        )


def _parse_change_set(text: str, boundary: str) -> ChangeSet:
    change_set = ChangeSet()
    seen_ids: set[str] = set()
    for part in _split_parts(text, boundary):
        headers, content = _read_headers(part)
        if _boundary(headers.get("content-type", "")) is not None:
            raise _bad("Nested change sets in a batch payload are not supported.")
        _check_http_part(headers)
        op = _parse_http_request(content, headers)
        if op.method == "GET":
            raise _bad(
                "An invalid HTTP method 'GET' was detected for a request in a change set. Requests in change "
                "sets only support the HTTP methods 'POST', 'PUT', 'DELETE', and 'PATCH'."
            )
        if op.content_id is not None:
            if op.content_id in seen_ids:
                raise _bad(
                    f"The content ID '{op.content_id}' was found more than once in the same change set."
                )
            seen_ids.add(op.content_id)
        change_set.operations.append(op)
        if len(change_set.operations) > MAX_BATCH_OPERATIONS:
            raise _bad(
                "The current change set contains too many operations. A maximum number of "
                f"'{MAX_BATCH_OPERATIONS}' operations are allowed in a change set."
            )
    return change_set


def count_operations(items: list[BatchOperation | ChangeSet]) -> int:
    """Requests in a parsed batch, counting each request of a change set."""
    return sum(len(i.operations) if isinstance(i, ChangeSet) else 1 for i in items)


def parse_batch(body: bytes, content_type: str) -> list[BatchOperation | ChangeSet]:
    """Parse a ``$batch`` request body. Raises :class:`ODataError` 400 on malformed input, a GET inside a
    change set, nested change sets or batches, and more than 1,000 requests (change-set requests count)."""
    boundary = _boundary(content_type)
    if boundary is None:
        raise _bad(
            f"The content type '{content_type}' of the batch request is not valid: "
            "expected 'multipart/mixed' with a 'boundary' parameter."
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _bad("The batch payload is not valid UTF-8.") from exc
    items: list[BatchOperation | ChangeSet] = []
    total = 0
    for part in _split_parts(text, boundary):
        headers, content = _read_headers(part)
        inner = _boundary(headers.get("content-type", ""))
        if inner is not None:
            item: BatchOperation | ChangeSet = _parse_change_set(content, inner)
        else:
            _check_http_part(headers)
            item = _parse_http_request(content, headers)
        items.append(item)
        total += len(item.operations) if isinstance(item, ChangeSet) else 1
        if total > MAX_BATCH_OPERATIONS:
            raise _bad(
                "The current batch message contains too many parts. Only batch messages with a maximum "
                f"number of '{MAX_BATCH_OPERATIONS}' query operations, including changeset operations, "
                "are allowed."
            )
    return items


def request_target(url: str) -> str:
    """Path and query of a batch request URL, whether absolute or relative (``$1`` stays as is)."""
    if url.startswith(("http://", "https://")):
        parts = urlsplit(url)
        return parts.path + (f"?{parts.query}" if parts.query else "")
    return url


# --------------------------------------------------------------------------------------------
# Content-ID references
# --------------------------------------------------------------------------------------------

_URL_REF_RE = re.compile(r"\$([A-Za-z0-9_.\-]+?)(?=/|\?|\Z)")
_BODY_REF_RE = re.compile(r"\A\$([A-Za-z0-9_.\-]+?)(?=/|\Z)")


def _missing(ref: str) -> ODataError:
    return ODataError(
        400, CONTENT_ID_ERROR_CODE, f"Content-ID Reference: '${ref}' does not exist in the batch context."
    )


def _resolve_ref(value: str, ids: Mapping[str, str], regex: re.Pattern[str]) -> str:
    m = regex.match(value)
    if not m:
        return value
    ref = m.group(1)
    if ref in ids:
        return ids[ref] + value[m.end() :]
    if ref[0].isdigit() or not ref.isalpha():
        raise _missing(ref)
    return value  # an OData segment such as $ref / $value / $count


def substitute_content_ids(text: str, ids: Mapping[str, str]) -> str:
    """Replace ``$<content-id>`` references with the entity URL of an earlier request of the change set.

    ``text`` is either a request URL (``$1``, ``$1/lastname``, ``$1/primarycontactid/$ref``) or a JSON body,
    in which only ``@odata.bind`` / ``@odata.id`` values are references (other ``$`` strings are data). An
    undeclared numeric reference raises the service's 400 "Content-ID Reference: '$1' does not exist in the
    batch context."
    """
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        return _substitute_in_json(text, ids)
    if text.startswith("$"):
        return _resolve_ref(text, ids, _URL_REF_RE)
    return text


def _substitute_in_json(text: str, ids: Mapping[str, str]) -> str:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        return text
    changed = False

    def fix(value: Any) -> Any:
        nonlocal changed
        if isinstance(value, str) and value.startswith("$"):
            new = _resolve_ref(value, ids, _BODY_REF_RE)
            if new != value:
                changed = True
            return new
        if isinstance(value, list):
            return [fix(v) for v in value]
        return value

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            out: dict[str, Any] = {}
            for key, value in node.items():
                if key.endswith("@odata.bind") or key == "@odata.id":
                    out[key] = fix(value)
                else:
                    out[key] = walk(value)
            return out
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    result = walk(doc)
    return json.dumps(result, ensure_ascii=False) if changed else text


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------

CRLF = "\r\n"


def _status_line(status: int) -> str:
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "Unknown"
    return f"HTTP/1.1 {status} {phrase}"


def _render_operation(result: OperationResult, boundary: str) -> str:
    lines = [
        f"--{boundary}",
        "Content-Type: application/http",
        "Content-Transfer-Encoding: binary",
    ]
    if result.content_id is not None:
        lines.append(f"Content-ID: {result.content_id}")
    lines.append("")
    lines.append(_status_line(result.status))
    for name, value in result.headers.items():
        lines.append(f"{name}: {value}")
    lines.append("")
    body = result.body.decode("utf-8") if result.body else ""
    lines.append(body)
    return CRLF.join(lines) + CRLF


def render_batch_response(items: list[OperationResult | ChangeSetResult]) -> tuple[bytes, str]:
    """Body and Content-Type of a ``$batch`` response, in request order (execute-batch-operations page)."""
    boundary = f"batchresponse_{uuid.uuid4()}"
    out: list[str] = []
    for item in items:
        if isinstance(item, ChangeSetResult):
            inner = f"changesetresponse_{uuid.uuid4()}"
            out.append(f"--{boundary}{CRLF}Content-Type: multipart/mixed; boundary={inner}{CRLF}{CRLF}")
            for result in item.results:
                out.append(_render_operation(result, inner))
            out.append(f"--{inner}--{CRLF}")
        else:
            out.append(_render_operation(item, boundary))
    out.append(f"--{boundary}--{CRLF}")
    return "".join(out).encode("utf-8"), f"multipart/mixed; boundary={boundary}"
