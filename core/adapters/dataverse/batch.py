"""``$batch`` bodies: build ``multipart/mixed`` requests (CRLF line ends) and parse the responses.

Request layout (https://learn.microsoft.com/power-apps/developer/data-platform/webapi/execute-batch-operations-using-web-api)::

    --batch_<id>
    Content-Type: application/http
    Content-Transfer-Encoding: binary

    GET /api/data/v9.2/contacts(<id>)?$select=fullname HTTP/1.1
    Accept: application/json

    --batch_<id>
    Content-Type: multipart/mixed; boundary=changeset_<id>

    --changeset_<id>
    Content-Type: application/http
    Content-Transfer-Encoding: binary
    Content-ID: 1

    POST /api/data/v9.2/accounts HTTP/1.1
    Content-Type: application/json; type=entry

    {"name": "Contoso"}
    --changeset_<id>--
    --batch_<id>--

The parser accepts CRLF and LF-only line ends, nested change-set parts, and bodies that are JSON or text.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from requests.structures import CaseInsensitiveDict

from core.adapters.dataverse.errors import DataverseError, error_for_status, parse_error_body
from core.adapters.dataverse.odata import encode_target

CRLF = "\r\n"
MAX_BATCH_OPERATIONS = 1000  # Dataverse: operations per $batch request, change sets included
_SAFE_METHODS = frozenset({"GET", "PATCH", "PUT", "DELETE"})
_BOUNDARY_RE = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_STATUS_LINE_RE = re.compile(r"^HTTP/\d(?:\.\d)?\s+(\d{3})\s*(.*)$")
_ENTITY_ID_RE = re.compile(
    r"\(([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\)\s*$"
)


@dataclass(frozen=True)
class BatchOperation:
    """One request inside a ``$batch``.

    ``url`` is relative to the Web API root (``contacts(<id>)``, ``accounts?$select=name``) or a Content-ID
    reference (``$1``) inside a change set, written as raw (not percent-encoded) OData text; the client
    encodes it. Put query options whose values may hold ``&``, ``=``, ``+`` or ``#`` in ``params``.
    ``idempotent`` says whether repeating the whole batch is safe for this operation; by default
    GET/PATCH/PUT/DELETE are and POST is not (set it for a POST whose body carries a client-supplied
    primary key: a repeat fails with DuplicateRecord instead of creating twice).
    """

    method: str
    url: str
    body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    content_id: str | None = None
    idempotent: bool | None = None
    params: Sequence[tuple[str, str]] = ()

    @property
    def safe_to_repeat(self) -> bool:
        if self.idempotent is not None:
            return self.idempotent
        return self.method.upper() in _SAFE_METHODS


@dataclass(frozen=True)
class ChangeSet:
    """Operations applied atomically: all succeed or none do. No GET inside a change set."""

    operations: Sequence[BatchOperation]

    def __post_init__(self) -> None:
        if not self.operations:
            raise ValueError("a change set needs at least one operation")
        for operation in self.operations:
            if operation.method.upper() == "GET":
                raise ValueError("a change set cannot contain GET requests")


BatchItem = BatchOperation | ChangeSet


@dataclass(frozen=True)
class BatchResponse:
    """The answer to one operation of a ``$batch``, in request order."""

    status: int
    reason: str
    headers: CaseInsensitiveDict[str]
    body: Any
    """Parsed JSON when the part carried JSON, the text otherwise, ``None`` when empty."""
    content_id: str | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def entity_id(self) -> str | None:
        """The record id from ``OData-EntityId`` (creates, upserts), if present."""
        return entity_id_from_url(self.headers.get("OData-EntityId"))

    @property
    def error(self) -> DataverseError | None:
        if self.ok:
            return None
        code, message = parse_error_body(self.body if isinstance(self.body, Mapping | str) else None)
        return error_for_status(self.status, code, message, method="BATCH", path=self.content_id or "")

    def raise_for_error(self) -> None:
        error = self.error
        if error is not None:
            raise error


def entity_id_from_url(value: str | None) -> str | None:
    if not value:
        return None
    match = _ENTITY_ID_RE.search(value)
    return match.group(1).lower() if match else None


def new_boundary(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4()}"


def _operation_part(operation: BatchOperation, api_path: str, content_id: str | None) -> list[str]:
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id is not None:
        lines.append(f"Content-ID: {content_id}")
    lines.append("")
    target = encode_target(operation.url.lstrip("/"), operation.params)
    url = target if operation.url.startswith("$") else api_path + target
    lines.append(f"{operation.method.upper()} {url} HTTP/1.1")
    headers = {k.lower(): (k, v) for k, v in operation.headers.items()}
    if operation.body is not None and "content-type" not in headers:
        lines.append("Content-Type: application/json; type=entry")
    if "accept" not in headers:
        lines.append("Accept: application/json")
    lines.extend(f"{name}: {value}" for name, value in headers.values())
    lines.append("")
    if operation.body is not None:
        lines.append(json.dumps(operation.body, ensure_ascii=False, separators=(",", ":")))
    return lines


def build_batch_body(
    items: Sequence[BatchItem], api_path: str, boundary: str | None = None
) -> tuple[str, bytes]:
    """(batch boundary, body bytes) for ``items``. ``api_path`` is e.g. ``/api/data/v9.2/``."""
    if not items:
        raise ValueError("a batch needs at least one operation")
    count = sum(len(item.operations) if isinstance(item, ChangeSet) else 1 for item in items)
    if count > MAX_BATCH_OPERATIONS:
        raise ValueError(f"a batch holds at most {MAX_BATCH_OPERATIONS} operations, got {count}")
    boundary = boundary or new_boundary("batch")
    lines: list[str] = []
    for item in items:
        lines.append(f"--{boundary}")
        if isinstance(item, ChangeSet):
            changeset = new_boundary("changeset")
            lines.append(f"Content-Type: multipart/mixed; boundary={changeset}")
            lines.append("")
            for index, operation in enumerate(item.operations, start=1):
                lines.append(f"--{changeset}")
                lines.extend(_operation_part(operation, api_path, operation.content_id or str(index)))
            lines.append(f"--{changeset}--")
        else:
            lines.extend(_operation_part(item, api_path, item.content_id))
    lines.append(f"--{boundary}--")
    lines.append("")
    return boundary, CRLF.join(lines).encode("utf-8")


def boundary_of(content_type: str | None) -> str | None:
    if not content_type or "multipart/" not in content_type.lower():
        return None
    match = _BOUNDARY_RE.search(content_type)
    return match.group(1).strip() if match else None


def _split_parts(lines: list[str], boundary: str) -> list[list[str]]:
    """Lines of each part between ``--boundary`` delimiters (lines already stripped of a trailing CR)."""
    parts: list[list[str]] = []
    current: list[str] | None = None
    opener, closer = f"--{boundary}", f"--{boundary}--"
    for line in lines:
        stripped = line.rstrip()
        if stripped == closer:
            if current is not None:
                parts.append(current)
            current = None
            break
        if stripped == opener:
            if current is not None:
                parts.append(current)
            current = []
            continue
        if current is not None:
            current.append(line)
    if current is not None:  # no closing delimiter: keep what arrived
        parts.append(current)
    return parts


def _read_headers(lines: list[str], start: int) -> tuple[CaseInsensitiveDict[str], int]:
    headers: CaseInsensitiveDict[str] = CaseInsensitiveDict()
    index = start
    while index < len(lines):
        line = lines[index]
        index += 1
        if line.strip() == "":
            break
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip()] = value.strip()
    return headers, index


def _parse_part(lines: list[str]) -> list[BatchResponse]:
    first = 0
    while first < len(lines) and not lines[first].strip():
        first += 1
    mime_headers, index = _read_headers(lines, first)
    nested = boundary_of(mime_headers.get("Content-Type"))
    if nested:
        responses: list[BatchResponse] = []
        for part in _split_parts(lines[index:], nested):
            responses.extend(_parse_part(part))
        return responses
    while index < len(lines) and not lines[index].strip():
        index += 1
    if index >= len(lines):
        raise ValueError("batch response part without an HTTP status line")
    match = _STATUS_LINE_RE.match(lines[index].strip())
    if not match:
        raise ValueError("batch response part does not start with an HTTP status line")
    status, reason = int(match.group(1)), match.group(2).strip()
    headers, body_start = _read_headers(lines, index + 1)
    text = "\n".join(lines[body_start:]).strip()
    body: Any = None
    if text:
        try:
            body = json.loads(text)
        except ValueError:
            body = text
    content_id = mime_headers.get("Content-ID") or headers.get("Content-ID")
    return [BatchResponse(status, reason, headers, body, content_id)]


def parse_batch_response(content_type: str | None, body: bytes) -> list[BatchResponse]:
    """One :class:`BatchResponse` per operation answered, change-set parts flattened, in order."""
    boundary = boundary_of(content_type)
    if boundary is None:
        raise ValueError("batch response is not multipart/mixed")
    lines = [line.rstrip("\r") for line in body.decode("utf-8", errors="replace").split("\n")]
    responses: list[BatchResponse] = []
    for part in _split_parts(lines, boundary):
        responses.extend(_parse_part(part))
    return responses
