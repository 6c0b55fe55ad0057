"""The Dataverse Web API v9.2 emulator: a threaded HTTPS server on 127.0.0.1.

``DataverseEmulator(...).start()`` returns the base URL (``https://127.0.0.1:<port>``); the Web API lives
under ``/api/data/v9.2/`` and the control API (reset, seed, snapshot, stats, clock, faults, latency,
limits) under ``/_emulator/``. Requests need ``Authorization: Bearer`` with a static accepted token or an
RS256 JWT signed by a key added with :meth:`DataverseEmulator.add_signing_key`.

Over 400 lines on purpose: the HTTP layer (routes, headers, status codes, error bodies) of the whole Web
API surface the product uses and of the control API, in one place; the data work is in records.py,
metadata.py and odata.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import logging
import socket
import socketserver
import ssl
import threading
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import jwt

from . import bulk, control, errors
from .batch import (
    ChangeSet,
    ChangeSetResult,
    OperationResult,
    parse_batch,
    render_batch_response,
    request_target,
    substitute_content_ids,
)
from .clock import Clock
from .limits import LimitConfig, ServiceProtection, Throttled
from .metadata import MetadataService
from .odata import ODataError, QueryOptions, split_top_level
from .records import (
    MAX_PAGE_SIZE,
    Caller,
    RecordService,
    etag,
    page_number,
    page_start,
    parse_guid,
    skiptoken,
)
from .schema import Schema, Table, load_schema
from .seed import SeedSpec, build_seed
from .simulation import SimulationConfig, Simulator, fault_body
from .store import Store

API_PREFIX = "/api/data/v9.2/"
CONTROL_PREFIX = "/_emulator/"
MAX_URL_LENGTH = 32 * 1024
MAX_BATCH_URL_LENGTH = 64 * 1024
DEFAULT_TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
ORGANIZATION_ID = "1d9f3c5e-0c77-4f37-9c6d-0a5ad3e9d2a1"
ROOT_BUSINESS_UNIT_ID = "4e1b6c2a-7f55-4b5e-8c1d-2a3b4c5d6e70"
DEFAULT_USER_ID = "8d3c2b1a-0f9e-4d8c-b7a6-5e4d3c2b1a00"
DEFAULT_USER_OBJECT_ID = "0b7e6d5c-4a3b-4c2d-9e1f-0a9b8c7d6e5f"
JSON_TYPE = "application/json; odata.metadata=minimal"
DATAVERSE_VERSION = "9.2.25101.00000"

log = logging.getLogger(__name__)


@dataclass
class ApiRequest:
    method: str
    target: str  # path after /api/data/v9.2/ plus ?query, as sent (percent-encoded)
    headers: dict[str, str]  # lower-case names
    body: bytes
    caller: Caller
    in_batch: bool = False


@dataclass
class ApiResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    operations: int = 1  # inner operations (batch/bulk) for stats and execution time

    @classmethod
    def json(cls, status: int, data: Any, headers: Mapping[str, str] | None = None) -> ApiResponse:
        out = {"Content-Type": JSON_TYPE, "OData-Version": "4.0", **(headers or {})}
        return cls(status, out, json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode())

    @classmethod
    def error(cls, exc: ODataError) -> ApiResponse:
        return cls.json(exc.status, {"error": {"code": exc.code, "message": exc.message}})


class _Unauthorized(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Drop(Exception):
    """Close the connection without answering (simulated network failure)."""


def _prefer(headers: Mapping[str, str]) -> dict[str, str]:
    result: dict[str, str] = {}
    for part in headers.get("prefer", "").split(","):
        name, _, value = part.strip().partition("=")
        if name:
            result[name.strip().lower()] = value.strip().strip('"')
    return result


def _query_params(query: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name in params:
            raise errors.bad_request(
                f"Query option '{name}' was specified more than once, but it must be specified at most once."
            )
        params[name] = value
    return params


class DataverseEmulator:
    def __init__(
        self,
        schema_path: str | Path | None = None,
        seed: SeedSpec | None = None,
        port: int = 0,
        tls: bool = True,
        accepted_tokens: tuple[str, ...] = ("static-test-token",),
        jwks: dict[str, Any] | None = None,
        audience: str | None = None,
        limits: LimitConfig | None = None,
        simulation: SimulationConfig | None = None,
        clock: Clock | None = None,
        tenant_id: str = DEFAULT_TENANT,
        default_user_id: str = DEFAULT_USER_ID,
    ) -> None:
        self.schema: Schema = load_schema(schema_path)
        self.clock = clock or Clock()
        self._initial_limits = limits or LimitConfig()
        self._initial_simulation = simulation or SimulationConfig()
        self.limits = ServiceProtection(self._initial_limits, self.clock)
        self.simulator = Simulator(self._initial_simulation)
        self.accepted_tokens = tuple(accepted_tokens)
        self.tenant_id = tenant_id
        self.default_user_id = default_user_id
        self._audience = audience
        self._keys: dict[str, jwt.PyJWK] = {}
        for key in (jwks or {}).get("keys", []):
            self.add_signing_key(key)
        self._seed_spec = seed
        self._port = port
        self._tls = tls
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""
        from .odata import fold, like_fold

        tables = self.schema.tables.values()
        intersects = {
            rel.intersect: (rel.entity1_attribute, rel.entity2_attribute)
            for rel in self.schema.many_to_many.values()
        }
        self._primary_ids = {
            **{t.logical_name: t.primary_id for t in tables},
            **{name: f"{name}id" for name in intersects},
        }
        self.store = Store(
            [*self.schema.tables, *intersects],
            fold,
            text_fold=like_fold,
            primary_ids=self._primary_ids,
            eager_indexes={
                **{t.logical_name: t.eager_index_columns() for t in tables},
                **{name: columns for name, columns in intersects.items()},
            },
        )
        self.records = RecordService(
            self.schema, self.store, self.clock, lambda: self.api_url, lambda: self.default_user_id
        )
        self.metadata = MetadataService(self.schema, "")
        self._stats_lock = threading.Lock()
        self._stats: dict[str, Counter[str]] = {}
        self.reset_stats()
        self._load_defaults()
        if seed is not None:
            self.load_seed(seed)

    # ------------------------------------------------------------------------------------------------
    # lifecycle
    # ------------------------------------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        return self.url + API_PREFIX

    @property
    def audience(self) -> str:
        return self._audience or self.url

    def start(self) -> str:
        emulator = self

        class Handler(_Handler):
            pass

        Handler.emulator = emulator
        server = _Server(("127.0.0.1", self._port), Handler)
        if self._tls:
            from emulators.tls import server_ssl_context

            server.ssl_context = server_ssl_context()
        self._server = server
        port = server.server_address[1]
        self.url = f"{'https' if self._tls else 'http'}://127.0.0.1:{port}"
        self.metadata.api_url = self.api_url
        self._thread = threading.Thread(target=server.serve_forever, name=f"dataverse-{port}", daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> DataverseEmulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def add_signing_key(self, jwk: Mapping[str, Any]) -> None:
        """Trust tokens signed by this public JWK (RS256), e.g. from the Entra stand-in's JWKS."""
        key = jwt.PyJWK(dict(jwk), algorithm="RS256")
        self._keys[str(jwk.get("kid", f"key-{len(self._keys)}"))] = key

    # ------------------------------------------------------------------------------------------------
    # data
    # ------------------------------------------------------------------------------------------------
    def _system_caller(self) -> Caller:
        return Caller(self.default_user_id, key="system")

    def _load_defaults(self) -> None:
        """The organisation every environment has: a root business unit and the default (integration) user."""
        caller = self._system_caller()
        unit = self.schema.tables["businessunit"]
        user = self.schema.tables["systemuser"]
        self.records.create(unit, {"name": "contoso"}, caller, record_id=ROOT_BUSINESS_UNIT_ID)
        self.records.create(
            user,
            {
                "firstname": "Integration",
                "lastname": "User",
                "domainname": "integration.user@contoso.onmicrosoft.com",
                "internalemailaddress": "integration.user@contoso.onmicrosoft.com",
                "azureactivedirectoryobjectid": DEFAULT_USER_OBJECT_ID,
                "businessunitid@odata.bind": f"/businessunits({ROOT_BUSINESS_UNIT_ID})",
            },
            caller,
            record_id=self.default_user_id,
        )
        self._load_message_filters()

    def _load_message_filters(self) -> None:
        """sdkmessagefilters tell clients which tables support the bulk messages (bulk-operations.md)."""
        message_table = self.schema.tables["sdkmessage"]
        filter_table = self.schema.tables["sdkmessagefilter"]
        for message in bulk.BULK_MESSAGES:
            message_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"sdkmessage/{message}"))
            row = self.records.create(message_table, {}, self._system_caller(), record_id=message_id)
            self.store.put("sdkmessage", message_id, {**row, "name": message})
            for table in self.schema.tables.values():
                if not table.supports_bulk:
                    continue
                filter_id = str(
                    uuid.uuid5(uuid.NAMESPACE_URL, f"sdkmessagefilter/{message}/{table.logical_name}")
                )
                row = self.records.create(filter_table, {}, self._system_caller(), record_id=filter_id)
                self.store.put(
                    "sdkmessagefilter",
                    filter_id,
                    {
                        **row,
                        "primaryobjecttypecode": table.logical_name,
                        "_sdkmessageid_value": message_id,
                        "_sdkmessageid_value@Microsoft.Dynamics.CRM.lookuplogicalname": "sdkmessage",
                    },
                )

    def reset(self) -> None:
        """Empty every table (the default business unit and user come back); limits and simulation knobs
        go back to what the emulator was started with; counters and scripted faults are cleared."""
        self.store.clear()
        self.metadata.restore_deleted()
        self.records.denied.clear()
        self._load_defaults()
        self.limits.reset()
        self.limits.configure(**self._initial_limits.to_dict())
        self.simulator.reset()
        self.simulator.update(**self._initial_simulation.to_dict())
        self.reset_stats()

    def load_seed(self, spec: SeedSpec) -> dict[str, int]:
        """Load the deterministic seed through the normal create/update path; returns records per table."""
        caller = self._system_caller()
        seed = build_seed(spec)
        loaded: Counter[str] = Counter()
        with self.store.transaction():
            for entity_set, payload in seed.records:
                table = self.records.table_for_set(entity_set)
                self.records.create(table, payload, caller)
                loaded[table.logical_name] += 1
            for entity_set, record_id, changes in seed.updates:
                self.records.update(self.records.table_for_set(entity_set), record_id, changes, caller)
        return dict(loaded)

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        return self.store.snapshot()

    def restore(self, snapshot: dict[str, list[dict[str, Any]]]) -> None:
        self.store.restore(snapshot, self._primary_ids)

    def add_user(
        self,
        *,
        object_id: str | None = None,
        domainname: str = "",
        firstname: str = "Test",
        lastname: str = "User",
        disabled: bool = False,
        user_id: str | None = None,
    ) -> str:
        """Create a systemuser (tests and the Entra stand-in use it to map token ``oid`` claims)."""
        table = self.schema.tables["systemuser"]
        object_id = object_id or str(uuid.uuid4())
        body = {
            "firstname": firstname,
            "lastname": lastname,
            "domainname": domainname or f"{firstname}.{lastname}@contoso.onmicrosoft.com".lower(),
            "internalemailaddress": domainname or f"{firstname}.{lastname}@contoso.onmicrosoft.com".lower(),
            "azureactivedirectoryobjectid": object_id,
            "businessunitid@odata.bind": f"/businessunits({ROOT_BUSINESS_UNIT_ID})",
        }
        row = self.records.create(table, body, self._system_caller(), record_id=user_id)
        if disabled:
            self.records.update(table, str(row["systemuserid"]), {"isdisabled": True}, self._system_caller())
        return str(row["systemuserid"])

    # ------------------------------------------------------------------------------------------------
    # statistics
    # ------------------------------------------------------------------------------------------------
    def reset_stats(self) -> None:
        with self._stats_lock:
            self._stats = {
                "by_method": Counter(),
                "by_kind": Counter(),
                "inner": Counter(),
                "status": Counter(),
                "rows": Counter(),
            }

    def _count(self, method: str, kind: str, status: int, inner: int = 0, inner_kind: str = "") -> None:
        with self._stats_lock:
            self._stats["by_method"][method] += 1
            self._stats["by_kind"][kind] += 1
            self._stats["status"][str(status)] += 1
            if inner:
                self._stats["inner"][inner_kind or kind] += inner

    def stats(self) -> dict[str, Any]:
        with self._stats_lock:
            requests = sum(self._stats["by_method"].values())
            data = {
                "requests": requests,
                "requests_by_method": dict(self._stats["by_method"]),
                "requests_by_kind": dict(self._stats["by_kind"]),
                "inner_operations": dict(self._stats["inner"]),
                "responses_by_status": dict(self._stats["status"]),
                "throttled": self._stats["status"].get("429", 0),
                "rows_served": self._stats["rows"].get("query", 0),
            }
        data["records"] = self.store.counts()
        data["limits"] = self.limits.stats()
        data["simulation"] = self.simulator.stats()
        return data

    # ------------------------------------------------------------------------------------------------
    # authentication
    # ------------------------------------------------------------------------------------------------
    def www_authenticate(self) -> str:
        return (
            f"Bearer authorization_uri=https://login.microsoftonline.com/{self.tenant_id}/oauth2/authorize, "
            f"resource_id={self.url}"
        )

    def authenticate(self, headers: Mapping[str, str]) -> Caller:
        header = headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _Unauthorized("missing bearer token")
        token = token.strip()
        if token in self.accepted_tokens:
            real = self.default_user_id
        else:
            claims = self._verify(token)
            oid = str(claims.get("oid", "")).lower()
            users = self.store.find("systemuser", "azureactivedirectoryobjectid", oid) if oid else []
            if not users:
                raise ODataError(
                    403,
                    "0x80072560",
                    f"The user is not a member of the organization. (ObjectId = {oid or 'unknown'})",
                )
            if users[0].get("isdisabled"):
                raise ODataError(
                    403, "0x8004001f", f"The user with SystemUserId={users[0]['systemuserid']} is disabled."
                )
            real = str(users[0]["systemuserid"])
        return self._impersonate(real, headers)

    def _verify(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise _Unauthorized("malformed token") from None
        key = self._keys.get(str(header.get("kid"))) if header.get("kid") else None
        if key is None and len(self._keys) == 1 and not header.get("kid"):
            key = next(iter(self._keys.values()))
        if key is None:
            raise _Unauthorized("unknown signing key")
        audiences = {self.audience, self.audience.rstrip("/"), self.audience.rstrip("/") + "/"}
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                audience=list(audiences),
                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
            )
        except jwt.PyJWTError:
            raise _Unauthorized("invalid token") from None
        now = self.clock.now()
        if "exp" not in claims or float(claims["exp"]) <= now:
            raise _Unauthorized("token expired")
        if "nbf" in claims and float(claims["nbf"]) > now + 300:
            raise _Unauthorized("token not yet valid")
        return claims

    def _impersonate(self, real: str, headers: Mapping[str, str]) -> Caller:
        object_id = headers.get("callerobjectid")
        legacy = headers.get("mscrmcallerid")
        if not object_id and not legacy:
            return Caller(real, None, key=real)
        if object_id:
            users = self.store.find("systemuser", "azureactivedirectoryobjectid", object_id.strip().lower())
            target = str(users[0]["systemuserid"]) if users else None
            shown = object_id
        else:
            guid = parse_guid(legacy or "")
            target = guid if guid and self.store.get("systemuser", guid) is not None else None
            shown = legacy or ""
        if target is None:
            raise ODataError(404, "0x80040217", f"systemuser With Id = {shown} Does Not Exist")
        user = self.store.get("systemuser", target)
        if user is not None and user.get("isdisabled"):
            raise errors.user_disabled(target)
        return Caller(target, real if target != real else None, key=real)

    # ------------------------------------------------------------------------------------------------
    # Web API dispatch (used for direct requests and for each part of a $batch)
    # ------------------------------------------------------------------------------------------------
    def dispatch(self, request: ApiRequest) -> ApiResponse:
        try:
            return self._dispatch(request)
        except ODataError as exc:
            return ApiResponse.error(exc)

    def _dispatch(self, request: ApiRequest) -> ApiResponse:
        limit = MAX_BATCH_URL_LENGTH if request.in_batch else MAX_URL_LENGTH
        if len(request.target) > limit:
            raise ODataError(414, "0x80060888", "The request URL is too long.")
        path, _, query = request.target.partition("?")
        method = request.method
        if path in ("", "/"):
            sets = [
                {"name": t.entity_set, "kind": "EntitySet", "url": t.entity_set}
                for t in self.schema.tables.values()
            ]
            return ApiResponse.json(200, {"@odata.context": f"{self.api_url}$metadata", "value": sets})
        if path == "$batch":
            if request.in_batch:
                raise errors.bad_request("Nested batch requests are not supported.")
            if method != "POST":
                raise ODataError(405, "0x80060888", "The HTTP method is not allowed for $batch.")
            return self._batch(request)
        if path in ("WhoAmI", "WhoAmI()"):
            user = self.store.get("systemuser", request.caller.user_id) or {}
            return ApiResponse.json(
                200,
                {
                    "@odata.context": f"{self.api_url}$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse",
                    "BusinessUnitId": user.get("_businessunitid_value") or ROOT_BUSINESS_UNIT_ID,
                    "UserId": request.caller.user_id,
                    "OrganizationId": ORGANIZATION_ID,
                },
            )
        if path in ("RetrieveVersion", "RetrieveVersion()") and method == "GET":
            context = f"{self.api_url}$metadata#Microsoft.Dynamics.CRM.RetrieveVersionResponse"
            return ApiResponse.json(200, {"@odata.context": context, "Version": DATAVERSE_VERSION})
        params = _query_params(query)
        if path.startswith("EntityDefinitions"):
            if method == "DELETE":
                self.metadata.delete_attribute(unquote(path))
                return ApiResponse(204, {"OData-Version": "4.0"})
            if method != "GET":
                raise ODataError(405, "0x80060888", "The emulator's metadata is read-only but for DELETE.")
            return ApiResponse.json(200, self.metadata.handle(unquote(path), params))
        raw_segments = path.split("/") if "'" not in path else split_top_level(path, "/")
        segments = [s for s in raw_segments if s]
        head = segments[0]
        name, paren, key_text = head.partition("(")
        table = self.records.table_for_set(unquote(name))
        if not paren:
            if len(segments) == 1:
                if method == "GET":
                    return self._query(table, params, request)
                if method == "POST":
                    return self._create(table, params, request)
                raise ODataError(405, "0x80060888", f"The HTTP method '{method}' is not allowed on '{name}'.")
            action = unquote(segments[1])
            message = action.removeprefix("Microsoft.Dynamics.CRM.")
            if message in bulk.BULK_MESSAGES and len(segments) == 2 and method == "POST":
                status, body, count = bulk.execute(
                    self.records, table, message, self._json(request, table), request.caller
                )
                response = (
                    ApiResponse.json(status, body)
                    if body is not None
                    else ApiResponse(status, {"OData-Version": "4.0"})
                )
                response.operations = count
                return response
            if action == "$count" and method == "GET":
                count = min(self.store.count(table.logical_name), MAX_PAGE_SIZE)
                return ApiResponse(
                    200, {"Content-Type": "text/plain", "OData-Version": "4.0"}, str(count).encode()
                )
            raise errors.bad_request(f"Resource not found for the segment '{action}'.")
        if not key_text.endswith(")"):
            raise errors.bad_request(f"Bad Request - Error in query syntax: '{head}'.")
        key_text = key_text[:-1]
        rest = [unquote(s) for s in segments[1:]]
        if not rest:
            return self._record(table, key_text, params, request)
        return self._property(table, key_text, rest, request)

    @staticmethod
    def _json(request: ApiRequest, table: Table) -> Any:
        if not request.body.strip():
            return {}
        try:
            return json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            raise errors.payload_error(table.entity_set, "The request body is not valid JSON.") from None

    def _headers_for(self, table: Table, row: Mapping[str, Any]) -> dict[str, str]:
        url = self.records.entity_url(table, str(row[table.primary_id]))
        return {"OData-EntityId": url, "ETag": etag(row), "OData-Version": "4.0"}

    def _representation(
        self,
        status: int,
        table: Table,
        row: Mapping[str, Any],
        params: Mapping[str, str],
        request: ApiRequest,
    ) -> ApiResponse:
        options = self.records.parse_options(table, params)
        prefer = _prefer(request.headers)
        body = self.records.serialize(table, row, options, **self._annotations(prefer))
        select = f"({','.join(options.select)})" if options.select else ""
        body = {"@odata.context": f"{self.api_url}$metadata#{table.entity_set}{select}/$entity", **body}
        headers = self._headers_for(table, row)
        if "return" in prefer:
            headers["Preference-Applied"] = "return=representation"
        return ApiResponse.json(status, body, headers)

    @staticmethod
    def _annotations(prefer: Mapping[str, str]) -> dict[str, bool]:
        wanted = prefer.get("odata.include-annotations", "")
        return {
            "annotations": wanted == "*" or "lookuplogicalname" in wanted,
            "formatted": wanted == "*" or "FormattedValue" in wanted,
        }

    def _create(self, table: Table, params: Mapping[str, str], request: ApiRequest) -> ApiResponse:
        row = self.records.create(table, self._json(request, table), request.caller)
        if _prefer(request.headers).get("return") == "representation":
            return self._representation(201, table, row, params, request)
        return ApiResponse(204, self._headers_for(table, row))

    def _record(
        self, table: Table, key_text: str, params: Mapping[str, str], request: ApiRequest
    ) -> ApiResponse:
        method = request.method
        if method == "GET":
            record_id, _ = self.records.resolve_key(table, key_text)
            row = self.store.get(table.logical_name, record_id) if record_id else None
            if row is None:
                raise errors.not_found(table.logical_name, record_id or key_text)
            if request.headers.get("if-none-match") == etag(row):
                return ApiResponse(304, {"ETag": etag(row)})
            return self._representation(200, table, row, params, request)
        if method == "PATCH":
            row, created = self.records.upsert(
                table,
                key_text,
                self._json(request, table),
                request.caller,
                if_match=request.headers.get("if-match"),
                if_none_match=request.headers.get("if-none-match"),
            )
            if _prefer(request.headers).get("return") == "representation":
                return self._representation(201 if created else 200, table, row, params, request)
            return ApiResponse(204, self._headers_for(table, row))
        if method == "DELETE":
            record_id, _ = self.records.resolve_key(table, key_text)
            if record_id is None:
                raise errors.not_found(table.logical_name, key_text)
            self.records.delete(table, record_id, if_match=request.headers.get("if-match"))
            return ApiResponse(204, {"OData-Version": "4.0"})
        raise ODataError(405, "0x80060888", f"The HTTP method '{method}' is not allowed on a record.")

    def _property(self, table: Table, key_text: str, rest: list[str], request: ApiRequest) -> ApiResponse:
        record_id, _ = self.records.resolve_key(table, key_text)
        row = self.store.get(table.logical_name, record_id) if record_id else None
        if row is None or record_id is None:
            raise errors.not_found(table.logical_name, record_id or key_text)
        name = rest[0]
        if len(rest) == 2 and rest[1] == "$ref":
            return self._reference(table, record_id, name, request)
        if len(rest) == 1 and (column := table.column_for_value_name(name)) is not None:
            if request.method == "GET":
                value = row.get(name)
                if value is None:
                    return ApiResponse(204, {"OData-Version": "4.0"})
                context = f"{self.api_url}$metadata#{table.entity_set}({record_id})/{name}"
                return ApiResponse.json(200, {"@odata.context": context, "value": value})
            if request.method == "DELETE" and not column.is_lookup:
                self.records.update(table, record_id, {name: None}, request.caller)
                return ApiResponse(204, {"OData-Version": "4.0"})
            if request.method == "PUT" and not column.is_lookup:
                body = self._json(request, table)
                value = body.get("value") if isinstance(body, dict) else None
                self.records.update(table, record_id, {name: value}, request.caller)
                return ApiResponse(204, {"OData-Version": "4.0"})
        if len(rest) == 1 and table.is_collection(name) and request.method == "GET":
            child, rows = self.records.children(table, row, name)
            params = _query_params(request.target.partition("?")[2])
            options = self.records.parse_options(child, params)
            values = [self.records.serialize(child, r, options) for r in rows]
            context = f"{self.api_url}$metadata#{child.entity_set}"
            return ApiResponse.json(200, {"@odata.context": context, "value": values})
        if len(rest) == 1 and name in table.navigations and request.method == "GET":
            related = self.records.navigate(table)(row, name)
            if related is None:
                return ApiResponse(204, {"OData-Version": "4.0"})
            nav = table.navigations[name]
            target = self.schema.tables[
                str(row.get(f"_{nav.column}_value@Microsoft.Dynamics.CRM.lookuplogicalname"))
            ]
            body = self.records.serialize(target, related)
            return ApiResponse.json(
                200, {"@odata.context": f"{self.api_url}$metadata#{target.entity_set}/$entity", **body}
            )
        raise errors.bad_request(
            f"Could not find a property named '{name}' on type 'Microsoft.Dynamics.CRM.{table.logical_name}'."
        )

    def _reference(self, table: Table, record_id: str, name: str, request: ApiRequest) -> ApiResponse:
        """``<record>/<nav>/$ref`` (associate-disassociate-entities-using-web-api.md): PUT and DELETE on a
        single-valued navigation property; POST (add) and DELETE with ``(<id>)`` or ``?$id=<url>`` (remove)
        on a collection-valued one, one-to-many and many-to-many alike. All answer 204."""
        nav_name, paren, key_text = name.partition("(")
        method = request.method
        done = ApiResponse(204, {"OData-Version": "4.0"})
        if table.is_collection(nav_name):
            if method == "POST" and not paren:
                self.records.add_to_collection(
                    table, record_id, nav_name, self._reference_body(request, table), request.caller
                )
                return done
            if method == "DELETE":
                params = _query_params(request.target.partition("?")[2])
                if paren and key_text.endswith(")"):
                    other = key_text[:-1]
                elif not paren and params.get("$id"):
                    other = params["$id"]
                else:
                    raise errors.bad_request(
                        "The $id query option is required to remove a reference from a collection-valued "
                        f"navigation property '{nav_name}'."
                    )
                self.records.remove_from_collection(table, record_id, nav_name, other)
                return done
        elif not paren and nav_name in table.navigations:
            if method == "DELETE":
                self.records.disassociate(table, record_id, nav_name, request.caller)
                return done
            if method == "PUT":
                self.records.associate(
                    table, record_id, nav_name, self._reference_body(request, table), request.caller
                )
                return done
        elif not paren or not table.is_collection(nav_name):
            raise errors.bad_request(
                f"Could not find a property named '{nav_name}' on type "
                f"'Microsoft.Dynamics.CRM.{table.logical_name}'."
            )
        raise ODataError(405, "0x80060888", f"The HTTP method '{method}' is not allowed on $ref.")

    def _reference_body(self, request: ApiRequest, table: Table) -> str:
        body = self._json(request, table)
        reference = body.get("@odata.id") if isinstance(body, dict) else None
        if not isinstance(reference, str):
            raise errors.bad_request("The request body of a $ref request must contain '@odata.id'.")
        return reference

    def _query(self, table: Table, params: Mapping[str, str], request: ApiRequest) -> ApiResponse:
        options: QueryOptions = self.records.parse_options(table, params)
        prefer = _prefer(request.headers)
        rows = self.records.query(table, options)
        headers: dict[str, str] = {}
        applied = []
        page_size = MAX_PAGE_SIZE
        if "odata.maxpagesize" in prefer:
            try:
                requested = int(prefer["odata.maxpagesize"])
            except ValueError:
                raise errors.bad_request("The value of odata.maxpagesize must be an integer.") from None
            if 0 < requested <= MAX_PAGE_SIZE:
                page_size = requested
                applied.append(f"odata.maxpagesize={requested}")
        annotations = self._annotations(prefer)
        if prefer.get("odata.include-annotations"):
            applied.append(f'odata.include-annotations="{prefer["odata.include-annotations"]}"')
        total = len(rows)
        next_link = None
        if options.top is not None and "odata.maxpagesize" not in prefer:
            page = rows[: options.top]
        else:
            number = page_number(options.skiptoken)
            start = page_start(options.skiptoken, rows, table.primary_id, page_size)
            page = rows[start : start + page_size]
            if start + page_size < total and page:
                token = skiptoken(number + 1, str(page[-1][table.primary_id]), str(page[0][table.primary_id]))
                next_params = {k: v for k, v in params.items() if k != "$skiptoken"}
                query = "&".join(f"{quote(k, safe='$@')}={quote(v, safe='')}" for k, v in next_params.items())
                query = f"{query}&" if query else ""
                next_link = f"{self.api_url}{table.entity_set}?{query}$skiptoken={quote(token, safe='')}"
        select = f"({','.join(options.select)})" if options.select else ""
        body: dict[str, Any] = {"@odata.context": f"{self.api_url}$metadata#{table.entity_set}{select}"}
        if options.count:
            body["@odata.count"] = min(total, MAX_PAGE_SIZE)
            if total > MAX_PAGE_SIZE:
                body["@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"] = True
        body["value"] = [self.records.serialize(table, row, options, **annotations) for row in page]
        with self._stats_lock:
            self._stats["rows"]["query"] += len(page)
        if next_link:
            body["@odata.nextLink"] = next_link
        if applied:
            headers["Preference-Applied"] = ",".join(applied)
        return ApiResponse.json(200, body, headers)

    # ------------------------------------------------------------------------------------------------
    # $batch
    # ------------------------------------------------------------------------------------------------
    def _batch(self, request: ApiRequest) -> ApiResponse:
        items = parse_batch(request.body, request.headers.get("content-type", ""))
        continue_on_error = "odata.continue-on-error" in _prefer(request.headers)
        results: list[OperationResult | ChangeSetResult] = []
        operations = 0
        failed = False
        for item in items:
            if failed and not continue_on_error:
                break
            if isinstance(item, ChangeSet):
                change_results, ok = self._change_set(item, request)
                operations += len(item.operations)
                results.append(ChangeSetResult(change_results))
                failed = failed or not ok
            else:
                result = self._batch_operation(
                    item.method, item.url, item.headers, item.body, item.content_id, request
                )
                operations += 1
                results.append(result)
                failed = failed or result.status >= 400
        body, content_type = render_batch_response(results)
        # execute-batch-operations-using-web-api.md#handling-errors: without odata.continue-on-error the
        # batch stops at the first failing request (or change set) and answers 400 Bad Request, its
        # multipart body carrying the failing part; with the preference it answers 200 OK.
        status = 400 if failed and not continue_on_error else 200
        response = ApiResponse(status, {"Content-Type": content_type, "OData-Version": "4.0"}, body)
        if continue_on_error:
            response.headers["Preference-Applied"] = "odata.continue-on-error"
        response.operations = operations
        return response

    def _batch_operation(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        content_id: str | None,
        request: ApiRequest,
    ) -> OperationResult:
        target = request_target(url)
        if target.startswith(API_PREFIX):
            target = target[len(API_PREFIX) :]
        elif target.startswith("/"):
            target = target.lstrip("/")
        inner_headers = {**{k: v for k, v in request.headers.items() if k in ("authorization",)}, **headers}
        caller = request.caller
        if "callerobjectid" in headers or "mscrmcallerid" in headers:
            try:  # impersonation may differ per operation of a batch
                caller = dataclasses.replace(
                    self._impersonate(caller.on_behalf_of or caller.user_id, headers),
                    detect_duplicates=caller.detect_duplicates,
                )
            except ODataError as exc:
                return self._error_result(exc, content_id)
        if headers.get("mscrm.suppressduplicatedetection", "").strip().lower() == "false":
            caller = dataclasses.replace(caller, detect_duplicates=True)
        inner = ApiRequest(method.upper(), target, dict(inner_headers), body, caller, in_batch=True)
        response = self.dispatch(inner)
        return OperationResult(response.status, dict(response.headers), response.body, content_id)

    def _change_set(self, change_set: ChangeSet, request: ApiRequest) -> tuple[list[OperationResult], bool]:
        ids: dict[str, str] = {}
        results: list[OperationResult] = []

        class _Rollback(Exception):
            pass

        try:
            with self.store.transaction():
                for operation in change_set.operations:
                    try:
                        url = substitute_content_ids(operation.url, ids)
                        body = operation.body
                        if body.strip():
                            body = substitute_content_ids(body.decode("utf-8"), ids).encode("utf-8")
                    except ODataError as exc:
                        results = [self._error_result(exc, operation.content_id)]
                        raise _Rollback() from exc
                    result = self._batch_operation(
                        operation.method, url, operation.headers, body, operation.content_id, request
                    )
                    if result.status >= 400:
                        results = [result]
                        raise _Rollback()
                    entity = result.headers.get("OData-EntityId")
                    if operation.content_id and entity:
                        ids[operation.content_id] = entity
                    results.append(result)
        except _Rollback:
            return results, False
        return results, True

    @staticmethod
    def _error_result(exc: ODataError, content_id: str | None) -> OperationResult:
        body = json.dumps({"error": {"code": exc.code, "message": exc.message}}).encode()
        return OperationResult(
            exc.status, {"Content-Type": JSON_TYPE, "OData-Version": "4.0"}, body, content_id
        )

    # ------------------------------------------------------------------------------------------------
    # control API
    # ------------------------------------------------------------------------------------------------
    def control(self, method: str, path: str, body: bytes) -> tuple[int, Any]:
        """Answer a request to the control API (``/_emulator/...``): see control.py."""
        return control.handle(self, method, path[len(CONTROL_PREFIX) :].strip("/"), body)

    # ------------------------------------------------------------------------------------------------
    # one HTTP request to /api/data/v9.2/
    # ------------------------------------------------------------------------------------------------
    def handle_api(self, method: str, target: str, headers: dict[str, str], body: bytes) -> ApiResponse:
        try:
            caller = self.authenticate(headers)
        except _Unauthorized:
            self._count(method, "unauthorized", 401)
            return ApiResponse(401, {"WWW-Authenticate": self.www_authenticate(), "Content-Length": "0"})
        except ODataError as exc:
            self._count(method, "forbidden", exc.status)
            return ApiResponse.error(exc)
        if headers.get("mscrm.suppressduplicatedetection", "").strip().lower() == "false":
            caller = dataclasses.replace(caller, detect_duplicates=True)
        kind, records = self._classify(method, target, headers, body)
        admission = self.limits.admit(caller.key)
        if isinstance(admission, Throttled):
            self._count(method, kind, 429)
            response = ApiResponse.json(429, admission.body(), admission.response_headers())
            return response
        plan = self.simulator.plan(kind, records)
        try:
            if plan.delay_s > 0:
                time.sleep(plan.delay_s)
            if plan.fault in (500, 503):
                self._count(method, kind, int(plan.fault))
                return ApiResponse.json(int(plan.fault), fault_body(plan.fault))
            request = ApiRequest(method, target, headers, body, caller)
            response = self.dispatch(request)
            inner_kind = "batch" if kind == "batch" else kind
            self._count(
                method,
                kind,
                response.status,
                response.operations if kind in ("batch", "bulk") else 0,
                inner_kind,
            )
            if plan.fault == "drop":
                raise _Drop()
            response.headers.update(self.limits.headers(caller.key))
            return response
        finally:
            self.limits.release(admission, plan.execution_ms)

    @staticmethod
    def _classify(method: str, target: str, headers: Mapping[str, str], body: bytes) -> tuple[str, int]:
        path = target.partition("?")[0]
        if path == "$batch":
            return "batch", max(1, body.count(b"application/http"))
        if "Multiple" in path and method == "POST":
            try:
                return "bulk", max(1, len(json.loads(body).get("Targets", [])))
            except (ValueError, AttributeError, TypeError):
                return "bulk", 1
        if path.startswith("EntityDefinitions"):
            return "metadata", 1
        if path.startswith(("WhoAmI", "RetrieveVersion")):
            return "function", 1
        return ("read" if method == "GET" else "write"), 1


_REQUEST_IDS = itertools.count(1)
_REQUEST_ID_PREFIX = uuid.uuid4().hex[:20]


def _request_id() -> str:
    """A unique request id without a syscall per request (uuid4 reads os.urandom, releasing the GIL)."""
    raw = f"{_REQUEST_ID_PREFIX}{next(_REQUEST_IDS):012x}"
    return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:32]}"


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    ssl_context: ssl.SSLContext | None = None

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = super().get_request()
        if self.ssl_context is not None:
            sock = self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection error from %s", client_address, exc_info=True)


_REASONS = {status.value: status.phrase for status in HTTPStatus}
_MAX_HEAD = (
    128 * 1024
)  # request line + headers (a direct GET URL may be 32 KB; longer gets 414 from dispatch)
_SUPPORTED_METHODS = frozenset({"GET", "POST", "PATCH", "PUT", "DELETE"})


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Handler(socketserver.BaseRequestHandler):
    """One keep-alive connection: a lean HTTP/1.1 loop straight on the (TLS) socket.

    The stdlib ``BaseHTTPRequestHandler`` costs several times the emulator's own work per small GET
    (email.parser headers, buffered socket files, one write per header); this loop reads with ``recv``,
    parses the head with ``bytes.split`` and answers with one ``sendall``.
    """

    emulator: DataverseEmulator
    request: socket.socket

    def setup(self) -> None:
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
        if isinstance(self.request, ssl.SSLSocket):
            self.request.do_handshake()

    def handle(self) -> None:
        sock = self.request
        buffer = b""
        while True:
            try:
                head_end, separator = self._find_head(buffer)
                while head_end < 0:
                    if len(buffer) > _MAX_HEAD:
                        raise _BadRequest(431, "Request header fields too large")
                    chunk = sock.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                    head_end, separator = self._find_head(buffer)
                head = buffer[:head_end].decode("iso-8859-1")
                buffer = buffer[head_end + len(separator) :]
                method, target, version, headers = self._parse_head(head)
                if headers.get("expect", "").lower() == "100-continue":
                    sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                body, buffer = self._read_body(sock, headers, buffer)
            except _BadRequest as exc:
                self._write(sock, "GET", exc.status, {"Connection": "close"}, b"")
                return
            except (OSError, ValueError):
                return
            connection = headers.get("connection", "").lower()
            close = connection == "close" or (version == "HTTP/1.0" and connection != "keep-alive")
            try:
                response = self._respond(method, target, headers, body)
            except _Drop:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                return
            if close:
                response.headers["Connection"] = "close"
            try:
                self._write(sock, method, response.status, response.headers, response.body)
            except OSError:
                return
            if close:
                return

    @staticmethod
    def _find_head(buffer: bytes) -> tuple[int, bytes]:
        crlf = buffer.find(b"\r\n\r\n")
        lf = buffer.find(b"\n\n")
        if lf >= 0 and (crlf < 0 or lf < crlf):
            return lf, b"\n\n"
        return crlf, b"\r\n\r\n"

    @staticmethod
    def _parse_head(head: str) -> tuple[str, str, str, dict[str, str]]:
        lines = head.split("\n")
        words = lines[0].strip().split()
        if len(words) != 3 or not words[2].startswith("HTTP/"):
            raise _BadRequest(400, "Bad request syntax")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon:
                raise _BadRequest(400, "Bad header line")
            headers[name.strip().lower()] = value.strip()
        return words[0], words[1], words[2], headers

    @staticmethod
    def _read_body(sock: socket.socket, headers: Mapping[str, str], buffer: bytes) -> tuple[bytes, bytes]:
        def fill(needed: int) -> None:
            nonlocal buffer
            while len(buffer) < needed:
                chunk = sock.recv(max(65536, needed - len(buffer)))
                if not chunk:
                    raise OSError("connection closed inside a request body")
                buffer += chunk

        if headers.get("transfer-encoding", "").lower() == "chunked":
            parts: list[bytes] = []
            while True:
                while b"\r\n" not in buffer:
                    fill(len(buffer) + 1)
                line, buffer = buffer.split(b"\r\n", 1)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while b"\r\n" not in buffer:
                        fill(len(buffer) + 1)
                    buffer = buffer.split(b"\r\n", 1)[1]
                    return b"".join(parts), buffer
                fill(size + 2)
                parts.append(buffer[:size])
                buffer = buffer[size + 2 :]
        length = int(headers.get("content-length") or 0)
        if length <= 0:
            return b"", buffer
        fill(length)
        return buffer[:length], buffer[length:]

    def _respond(self, method: str, target: str, headers: dict[str, str], body: bytes) -> ApiResponse:
        path = target
        if path.startswith(("http://", "https://")):
            parts = urlsplit(path)
            path = parts.path + (f"?{parts.query}" if parts.query else "")
        emulator = self.emulator
        if method not in _SUPPORTED_METHODS:
            return ApiResponse.json(
                405,
                {"error": {"code": "0x80060888", "message": f"The HTTP method '{method}' is not allowed."}},
            )
        if path.startswith(API_PREFIX):
            try:
                return emulator.handle_api(method, path[len(API_PREFIX) :], headers, body)
            except _Drop:
                raise
            except Exception:
                log.exception("unhandled error")
                return ApiResponse.json(
                    500, {"error": {"code": "0x80040216", "message": "An unexpected error occurred."}}
                )
        if path.startswith(CONTROL_PREFIX) or path.rstrip("/") == CONTROL_PREFIX.rstrip("/"):
            status, data = emulator.control(method, path.partition("?")[0], body)
            return ApiResponse(status, {"Content-Type": "application/json"}, json.dumps(data).encode())
        return ApiResponse.json(
            404, {"error": {"code": "0x80060888", "message": f"Resource not found: {path}"}}
        )

    @staticmethod
    def _write(
        sock: socket.socket, method: str, status: int, headers: Mapping[str, str], body: bytes
    ) -> None:
        lines = [
            f"HTTP/1.1 {status} {_REASONS.get(status, '')}",
            f"Date: {formatdate(usegmt=True)}",
            f"REQ_ID: {_request_id()}",
        ]
        lines.extend(
            f"{name}: {value}" for name, value in headers.items() if name.lower() != "content-length"
        )
        lines.append(f"Content-Length: {len(body)}")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        sock.sendall(data + body if body and method != "HEAD" else data)


__all__ = ["ApiRequest", "ApiResponse", "DataverseEmulator", "asdict"]
