"""The product's Dataverse Web API client: every call to Dynamics goes through :class:`DataverseClient`.

Transport: ``requests`` with JSON bodies and the OData 4.0 headers. Retries follow the one policy in
:mod:`core.domain.retry`; parallelism adapts to throttling through :class:`AdaptiveLimiter`.

Which requests are safe to repeat after a 5xx or a dropped connection (the server may have run them):

* GET (``get``, ``query``, metadata, ``who_am_i``, ``supports_bulk``): reads change nothing.
* PATCH with ``If-Match: *`` (``update``) and PATCH without it (``upsert``): they set columns to given
  values; running one twice leaves the same record state as running it once.
* DELETE: a repeat finds nothing to delete (404 surfaces as :class:`NotFound`); no other effect.
* POST create with a client-supplied primary key (``create(..., record_id=...)``): a repeat cannot make a
  second record — Dataverse refuses it with DuplicateRecord ``0x80040237``; ``create`` then returns the
  id (the record with that id exists, whichever attempt made it).
* ``CreateMultiple`` where every target carries its primary key: same argument, the call is atomic on
  standard tables, so a repeat either creates all (first attempt never ran) or fails as a duplicate.
* ``UpdateMultiple`` / ``UpsertMultiple``: each target names its record; same values, same end state.
* ``$batch``: safe only when every operation in it is (see :class:`BatchOperation.safe_to_repeat`).

A POST create without a client id is not retried after a 5xx or dropped connection (it could create a
duplicate); it is retried after 429 (never executed) and after a failed connect (never sent).

The bearer token is only ever placed in the ``Authorization`` header of the outgoing request: it is not
logged, not put in exceptions, and not sent to a ``@odata.nextLink`` outside the environment URL.
Exceptions raised by the token source itself (e.g. ``ReconnectRequired``) propagate unchanged.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from core.adapters.dataverse.batch import (
    BatchItem,
    BatchResponse,
    ChangeSet,
    boundary_of,
    build_batch_body,
    entity_id_from_url,
    parse_batch_response,
)
from core.adapters.dataverse.errors import (
    DataverseError,
    TransientError,
    error_for_status,
    parse_error_body,
)
from core.adapters.dataverse.limiter import AdaptiveLimiter
from core.adapters.dataverse.metadata import (
    BASE_ATTRIBUTE_SELECT,
    MULTI_SELECT_CAST,
    MULTI_SELECT_TYPE_NAME,
    STANDARD_TABLES,
    TYPE_CASTS,
    EntityMetadata,
)
from core.adapters.dataverse.odata import encode_query, key_segment, odata_literal
from core.domain.dynamics_metadata import DynamicsColumn
from core.domain.retry import FailureKind, RetryDecision, RetryPolicy, classify_status, parse_retry_after

logger = logging.getLogger(__name__)

TokenSource = Callable[[bool], str]
"""``token_source(force_refresh)`` returns a bearer token for the environment."""


class WorkspaceTokenProvider(Protocol):
    """The token provider of docs/contracts.md (only the part the client needs)."""

    def access_token(self, workspace_id: str, *, force_refresh: bool = False) -> str: ...


def token_source_for(provider: WorkspaceTokenProvider, workspace_id: str) -> TokenSource:
    """Adapt the connection's token provider to a client's ``token_source`` for one workspace.

    ``ReconnectRequired`` raised by the provider reaches the caller of the client unchanged.
    """

    def source(force_refresh: bool) -> str:
        return provider.access_token(workspace_id, force_refresh=force_refresh)

    return source


DEFAULT_USER_AGENT = "dynamics-integration-backend/0.1"
DEFAULT_PAGE_SIZE = 5000


@dataclass(frozen=True)
class RequestEvent:
    """One HTTP attempt, reported to ``on_request`` (request ledgers, metrics). Holds no token, no query."""

    method: str
    path: str
    attempt: int
    status: int | None
    elapsed_s: float
    failure: FailureKind | None
    retry_after: float | None
    will_retry: bool
    delay_s: float
    concurrency_limit: int
    request_id: str | None


@dataclass(frozen=True)
class WhoAmI:
    user_id: str
    business_unit_id: str
    organization_id: str


class DataverseClient:
    """A Dataverse Web API client for one environment (thread-safe; share one per workspace/process)."""

    def __init__(
        self,
        environment_url: str,
        token_source: TokenSource,
        *,
        session: requests.Session | None = None,
        retry: RetryPolicy | None = None,
        user_agent: str = DEFAULT_USER_AGENT,
        max_concurrency: int = 16,
        on_request: Callable[[RequestEvent], None] | None = None,
        suppress_duplicate_detection: bool | None = None,
        honor_dop_hint: bool = True,
        timeout: tuple[float, float] = (10.0, 120.0),
        api_version: str = "v9.2",
        rng: random.Random | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        parts = urlsplit(environment_url)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise ValueError("environment_url must be an absolute https URL")
        self.environment_url = f"{parts.scheme}://{parts.netloc}"
        self.api_path = f"/api/data/{api_version}/"
        self.api_url = self.environment_url + self.api_path
        self._token_source = token_source
        self._retry = retry or RetryPolicy()
        self._user_agent = user_agent
        self._on_request = on_request
        self._suppress_duplicate_detection = suppress_duplicate_detection
        self._honor_dop_hint = honor_dop_hint
        self._timeout = timeout
        self._rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        self._sleep = sleep
        self._now = now
        self._limiter = AdaptiveLimiter(max_concurrency, clock=clock, sleep=sleep)
        self._session = session or requests.Session()
        # Our own retry policy decides; urllib3 must not retry behind it. Pool sized to the parallelism.
        self._session.mount(
            self.environment_url + "/",
            HTTPAdapter(pool_connections=1, pool_maxsize=max(10, max_concurrency), max_retries=0),
        )
        self._cache_lock = threading.Lock()
        self._bulk_support: dict[tuple[str, str], bool] = {}
        self._tables: dict[str, EntityMetadata] = dict(STANDARD_TABLES)

    def __repr__(self) -> str:
        return f"DataverseClient({self.environment_url!r})"

    @property
    def concurrency_limit(self) -> int:
        """The current adaptive parallelism (lowered by 429s, regrown by successes)."""
        return self._limiter.limit

    @property
    def throttle_events(self) -> int:
        return self._limiter.throttle_events

    # ------------------------------------------------------------------ transport

    def _url(self, path: str, params: Sequence[tuple[str, str]] = ()) -> str:
        if path.startswith(("https://", "http://")):
            if not (path + "/").lower().startswith(self.environment_url.lower() + "/"):
                raise DataverseError("refusing to follow a link outside the environment URL")
            url = path
        else:
            url = self.api_url + path.lstrip("/")
        if params:
            url += ("&" if "?" in url else "?") + encode_query(params)
        return url

    def _headers(
        self,
        *,
        prefer: Sequence[str],
        caller_object_id: str | None,
        suppress_duplicate_detection: bool | None,
        extra: Mapping[str, str] | None,
    ) -> dict[str, str]:
        headers = {
            "Accept": "application/json",
            "OData-MaxVersion": "4.0",
            "OData-Version": "4.0",
            "User-Agent": self._user_agent,
        }
        if prefer:
            headers["Prefer"] = ",".join(prefer)
        if caller_object_id:
            headers["CallerObjectId"] = caller_object_id
        suppress = (
            suppress_duplicate_detection
            if suppress_duplicate_detection is not None
            else self._suppress_duplicate_detection
        )
        if suppress is not None:
            headers["MSCRM.SuppressDuplicateDetection"] = "true" if suppress else "false"
        if extra:
            headers.update(extra)
        return headers

    def _request(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        params: Sequence[tuple[str, str]] = (),
        json_body: Any = None,
        data: bytes | None = None,
        content_type: str | None = None,
        prefer: Sequence[str] = (),
        caller_object_id: str | None = None,
        suppress_duplicate_detection: bool | None = None,
        headers: Mapping[str, str] | None = None,
        accept: Callable[[requests.Response], bool] | None = None,
    ) -> requests.Response:
        url = self._url(path, params)
        log_path = urlsplit(url).path
        if json_body is not None:
            data = json.dumps(json_body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            content_type = "application/json; charset=utf-8"
        base_headers = self._headers(
            prefer=prefer,
            caller_object_id=caller_object_id,
            suppress_duplicate_detection=suppress_duplicate_detection,
            extra=headers,
        )
        if content_type:
            base_headers["Content-Type"] = content_type
        throttles = transients = unauthorized = 0
        maybe_applied = False  # an earlier attempt failed after the server may have run it
        force_refresh = False
        attempt = 0
        while True:
            attempt += 1
            request_headers = dict(base_headers)
            request_headers["Authorization"] = "Bearer " + self._token_source(force_refresh)
            force_refresh = False
            ticket = self._limiter.acquire()
            started = time.perf_counter()
            response: requests.Response | None = None
            network_error: requests.RequestException | None = None
            failure: FailureKind | None
            try:
                response = self._session.request(
                    method,
                    url,
                    data=data,
                    headers=request_headers,
                    timeout=self._timeout,
                    allow_redirects=False,
                )
            except requests.RequestException as exc:
                network_error = exc
            except BaseException:
                self._limiter.release(ticket, succeeded=False)
                raise
            elapsed = time.perf_counter() - started
            retry_after: float | None = None
            status: int | None = None
            if response is not None:
                status = response.status_code
                failure = None if (accept and accept(response)) else classify_status(status)
                if status == 429:
                    retry_after = parse_retry_after(response.headers.get("Retry-After"), self._now())
            else:
                assert network_error is not None
                failure = _classify_network_error(network_error)
            decision: RetryDecision | None = None
            if failure is not None:
                if failure is FailureKind.THROTTLED:
                    throttles += 1
                    count = throttles
                elif failure is FailureKind.UNAUTHORIZED:
                    unauthorized += 1
                    count = unauthorized
                else:
                    transients += 1
                    count = transients
                with self._rng_lock:
                    decision = self._retry.decide(
                        failure, count, idempotent=idempotent, rng=self._rng, retry_after=retry_after
                    )
            throttled = failure is FailureKind.THROTTLED
            self._limiter.release(
                ticket,
                throttled=throttled,
                succeeded=failure is None,
                pause=decision.delay if (throttled and decision is not None and decision.retry) else None,
            )
            if response is not None and failure is None and self._honor_dop_hint:
                self._apply_dop_hint(response)
            request_id = _request_id(response)
            self._emit(
                RequestEvent(
                    method=method,
                    path=log_path,
                    attempt=attempt,
                    status=status,
                    elapsed_s=elapsed,
                    failure=failure,
                    retry_after=retry_after,
                    will_retry=bool(decision and decision.retry),
                    delay_s=decision.delay if decision and decision.retry else 0.0,
                    concurrency_limit=self._limiter.limit,
                    request_id=request_id,
                )
            )
            if failure is None:
                assert response is not None
                return response
            assert decision is not None
            if not decision.retry:
                context: dict[str, Any] = {
                    "method": method,
                    "path": log_path,
                    "attempts": attempt,
                    "request_id": request_id,
                    "maybe_applied_earlier": maybe_applied,
                }
                if response is None:
                    # TLS / invalid URL problems are not transient: retrying cannot fix them
                    kind = DataverseError if failure is FailureKind.CLIENT else TransientError
                    raise kind(
                        f"{type(network_error).__name__}: no response ({decision.reason})", **context
                    ) from network_error
                code, message = parse_error_body(response.content)
                raise error_for_status(
                    response.status_code, code, message, retry_after=retry_after, **context
                )
            logger.warning(
                "Dataverse %s %s: %s; retry %d in %.2fs (%s)",
                method,
                log_path,
                status if status is not None else type(network_error).__name__,
                attempt,
                decision.delay,
                decision.reason,
            )
            if failure in (FailureKind.SERVER, FailureKind.NETWORK):
                maybe_applied = True
            if decision.refresh_token:
                force_refresh = True
            elif not throttled:  # a throttle waits inside the limiter, together with every other thread
                self._sleep(decision.delay)

    def _apply_dop_hint(self, response: requests.Response) -> None:
        hint = response.headers.get("x-ms-dop-hint")
        if hint and hint.strip().isdigit() and int(hint) > 0:
            self._limiter.cap(int(hint))

    def _emit(self, event: RequestEvent) -> None:
        logger.debug(
            "Dataverse %s %s -> %s in %.3fs (attempt %d)",
            event.method,
            event.path,
            event.status if event.status is not None else event.failure,
            event.elapsed_s,
            event.attempt,
        )
        if self._on_request is not None:
            self._on_request(event)

    def _json(self, response: requests.Response) -> Any:
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise DataverseError(
                "response is not valid JSON",
                status=response.status_code,
                path=urlsplit(response.url).path,
            ) from exc

    # ------------------------------------------------------------------ reads

    def who_am_i(self) -> WhoAmI:
        body = self._json(self._request("GET", "WhoAmI", idempotent=True))
        return WhoAmI(str(body["UserId"]), str(body["BusinessUnitId"]), str(body["OrganizationId"]))

    def get(
        self,
        entity_set: str,
        key: str | uuid.UUID | Mapping[str, Any],
        *,
        select: Sequence[str] | None = None,
        expand: str | None = None,
        caller_object_id: str | None = None,
        include_annotations: str | None = None,
    ) -> dict[str, Any]:
        """One record by id or alternate key; :class:`NotFound` when it does not exist."""
        params: list[tuple[str, str]] = []
        if select:
            params.append(("$select", ",".join(select)))
        if expand:
            params.append(("$expand", expand))
        prefer = [f'odata.include-annotations="{include_annotations}"'] if include_annotations else []
        response = self._request(
            "GET",
            entity_set + key_segment(key),
            idempotent=True,
            params=params,
            prefer=prefer,
            caller_object_id=caller_object_id,
        )
        body = self._json(response)
        if not isinstance(body, dict):
            raise DataverseError("expected a JSON object", status=response.status_code)
        return body

    def query_pages(
        self,
        entity_set: str,
        *,
        filter: str | None = None,
        select: Sequence[str] | None = None,
        expand: str | None = None,
        orderby: str | None = None,
        top: int | None = None,
        page_size: int | None = None,
        aliases: Mapping[str, str] | None = None,
        caller_object_id: str | None = None,
        include_annotations: str | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of rows, following ``@odata.nextLink`` with ``Prefer: odata.maxpagesize``.

        ``aliases`` are parameter aliases used in ``filter``/``orderby`` (``{"@p1": "'lastname'"}``), sent
        verbatim: build their values with :func:`odata_literal`.
        """
        params: list[tuple[str, str]] = []
        if select:
            params.append(("$select", ",".join(select)))
        if filter:
            params.append(("$filter", filter))
        if expand:
            params.append(("$expand", expand))
        if orderby:
            params.append(("$orderby", orderby))
        if top is not None:
            params.append(("$top", str(top)))
        if aliases:
            params.extend(aliases.items())
        prefer: list[str] = []
        if top is None or page_size is not None:  # $top is ignored together with maxpagesize
            size = page_size or DEFAULT_PAGE_SIZE
            if not 1 <= size <= DEFAULT_PAGE_SIZE:
                raise ValueError("page_size must be between 1 and 5000")
            prefer.append(f"odata.maxpagesize={size}")
        if include_annotations:
            prefer.append(f'odata.include-annotations="{include_annotations}"')
        next_path: str | None = entity_set
        next_params: Sequence[tuple[str, str]] = params
        while next_path is not None:
            response = self._request(
                "GET",
                next_path,
                idempotent=True,
                params=next_params,
                prefer=prefer,
                caller_object_id=caller_object_id,
            )
            body = self._json(response)
            rows = body.get("value") if isinstance(body, dict) else None
            if not isinstance(rows, list):
                raise DataverseError("query response has no 'value' array", status=response.status_code)
            yield rows
            link = body.get("@odata.nextLink")
            next_path, next_params = (str(link), ()) if link else (None, ())

    def query(
        self,
        entity_set: str,
        *,
        filter: str | None = None,
        select: Sequence[str] | None = None,
        expand: str | None = None,
        orderby: str | None = None,
        top: int | None = None,
        page_size: int | None = None,
        aliases: Mapping[str, str] | None = None,
        caller_object_id: str | None = None,
        include_annotations: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Rows of ``entity_set`` across all pages (lazily, one page in memory); see :meth:`query_pages`."""
        for page in self.query_pages(
            entity_set,
            filter=filter,
            select=select,
            expand=expand,
            orderby=orderby,
            top=top,
            page_size=page_size,
            aliases=aliases,
            caller_object_id=caller_object_id,
            include_annotations=include_annotations,
        ):
            yield from page

    # ------------------------------------------------------------------ writes

    def create(
        self,
        entity_set: str,
        record: Mapping[str, Any],
        *,
        record_id: str | uuid.UUID | None = None,
        id_attribute: str | None = None,
        caller_object_id: str | None = None,
        suppress_duplicate_detection: bool | None = None,
    ) -> str:
        """Create a record and return its id (from ``OData-EntityId``).

        With ``record_id`` the record gets that primary key (``id_attribute``, by default derived from a
        known entity set) and the request is safe to retry: see the module docstring. If a retry after a
        dropped connection / 5xx answers DuplicateRecord, the first attempt did create it: the id is
        returned. A DuplicateRecord on the first attempt is raised (``is_duplicate_record``).
        """
        body = dict(record)
        if record_id is not None:
            attribute = id_attribute or self._id_attribute_for_set(entity_set)
            body[attribute] = str(record_id).lower()
        try:
            response = self._request(
                "POST",
                entity_set,
                idempotent=record_id is not None,
                json_body=body,
                caller_object_id=caller_object_id,
                suppress_duplicate_detection=suppress_duplicate_detection,
            )
        except DataverseError as exc:
            if record_id is not None and exc.is_duplicate_record and exc.maybe_applied_earlier:
                # The retry of our own create found the record: an earlier attempt created it (or, if its
                # lost answer was itself this error, it already existed). Either way the record with
                # this id exists, which is what the caller asked for.
                logger.info("Dataverse create %s: earlier attempt had created the record", entity_set)
                return str(record_id).lower()
            raise
        new_id = entity_id_from_url(response.headers.get("OData-EntityId"))
        if new_id is None:
            if record_id is not None:
                return str(record_id).lower()
            raise DataverseError("create response has no OData-EntityId", status=response.status_code)
        return new_id

    def update(
        self,
        entity_set: str,
        key: str | uuid.UUID | Mapping[str, Any],
        changes: Mapping[str, Any],
        *,
        caller_object_id: str | None = None,
        suppress_duplicate_detection: bool | None = None,
    ) -> None:
        """Update an existing record (``If-Match: *``: never creates; :class:`NotFound` if missing)."""
        self._request(
            "PATCH",
            entity_set + key_segment(key),
            idempotent=True,
            json_body=dict(changes),
            headers={"If-Match": "*"},
            caller_object_id=caller_object_id,
            suppress_duplicate_detection=suppress_duplicate_detection,
        )

    def upsert(
        self,
        entity_set: str,
        key: str | uuid.UUID | Mapping[str, Any],
        record: Mapping[str, Any],
        *,
        caller_object_id: str | None = None,
        suppress_duplicate_detection: bool | None = None,
    ) -> str | None:
        """Create the record with this key, or update it if it exists; returns its id when reported."""
        response = self._request(
            "PATCH",
            entity_set + key_segment(key),
            idempotent=True,
            json_body=dict(record),
            caller_object_id=caller_object_id,
            suppress_duplicate_detection=suppress_duplicate_detection,
        )
        return entity_id_from_url(response.headers.get("OData-EntityId")) or (
            None if isinstance(key, Mapping) else str(key).lower()
        )

    def delete(
        self,
        entity_set: str,
        key: str | uuid.UUID | Mapping[str, Any],
        *,
        caller_object_id: str | None = None,
    ) -> None:
        self._request(
            "DELETE", entity_set + key_segment(key), idempotent=True, caller_object_id=caller_object_id
        )

    # ------------------------------------------------------------------ bulk messages

    def _targets(self, table: str, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        if not records:
            raise ValueError("bulk messages need at least one record")
        odata_type = f"Microsoft.Dynamics.CRM.{table}"
        return [{"@odata.type": odata_type, **record} for record in records]

    def create_multiple(
        self,
        table: str,
        records: Sequence[Mapping[str, Any]],
        *,
        entity_set: str | None = None,
        id_attribute: str | None = None,
        caller_object_id: str | None = None,
        suppress_duplicate_detection: bool | None = None,
    ) -> list[str]:
        """``CreateMultiple`` on ``table`` (logical name); returns the new ids in request order.

        Retried after 5xx / dropped connections only when every record carries its primary key. A
        DuplicateRecord on such a retry is raised with ``maybe_applied_earlier``: the lost first answer
        may have been a failure, so which records exist is unknown — split and create one by one.
        """
        key = id_attribute or self.table(table).primary_id_attribute
        idempotent = all(record.get(key) for record in records)
        response = self._bulk(
            "CreateMultiple",
            table,
            records,
            entity_set,
            idempotent,
            caller_object_id,
            suppress_duplicate_detection,
        )
        body = self._json(response)
        ids = body.get("Ids") if isinstance(body, dict) else None
        if not isinstance(ids, list):
            raise DataverseError("CreateMultiple response has no Ids", status=response.status_code)
        return [str(i).lower() for i in ids]

    def update_multiple(
        self,
        table: str,
        records: Sequence[Mapping[str, Any]],
        *,
        entity_set: str | None = None,
        caller_object_id: str | None = None,
        suppress_duplicate_detection: bool | None = None,
    ) -> None:
        """``UpdateMultiple``: each record carries its primary key."""
        self._bulk(
            "UpdateMultiple", table, records, entity_set, True, caller_object_id, suppress_duplicate_detection
        )

    def upsert_multiple(
        self,
        table: str,
        records: Sequence[Mapping[str, Any]],
        *,
        entity_set: str | None = None,
        caller_object_id: str | None = None,
        suppress_duplicate_detection: bool | None = None,
    ) -> None:
        """``UpsertMultiple``: each record names itself with ``@odata.id`` (``contacts(key='v')``)."""
        self._bulk(
            "UpsertMultiple", table, records, entity_set, True, caller_object_id, suppress_duplicate_detection
        )

    def _bulk(
        self,
        message: str,
        table: str,
        records: Sequence[Mapping[str, Any]],
        entity_set: str | None,
        idempotent: bool,
        caller_object_id: str | None,
        suppress_duplicate_detection: bool | None,
    ) -> requests.Response:
        """POST one bulk message (``Targets`` typed with ``@odata.type``) to the table's entity set."""
        return self._request(
            "POST",
            f"{entity_set or self.entity_set_name(table)}/Microsoft.Dynamics.CRM.{message}",
            idempotent=idempotent,
            json_body={"Targets": self._targets(table, records)},
            caller_object_id=caller_object_id,
            suppress_duplicate_detection=suppress_duplicate_detection,
        )

    # ------------------------------------------------------------------ $batch

    def execute_batch(
        self,
        operations: Sequence[BatchItem],
        *,
        continue_on_error: bool = False,
        caller_object_id: str | None = None,
    ) -> list[BatchResponse]:
        """Send operations and change sets in one ``$batch``; one :class:`BatchResponse` per operation
        answered, in order (change sets flattened). Without ``continue_on_error`` Dataverse stops at the
        first failure, so the list can be shorter than the request; per-operation failures are in the
        responses (``.error`` / ``.raise_for_error()``), not raised.
        """
        idempotent = all(
            operation.safe_to_repeat
            for item in operations
            for operation in (item.operations if isinstance(item, ChangeSet) else (item,))
        )
        boundary, body = build_batch_body(operations, self.api_path)
        response = self._request(
            "POST",
            "$batch",
            idempotent=idempotent,
            data=body,
            content_type=f"multipart/mixed; boundary={boundary}",
            prefer=["odata.continue-on-error"] if continue_on_error else [],
            caller_object_id=caller_object_id,
            accept=lambda r: r.status_code in (200, 400) and bool(boundary_of(r.headers.get("Content-Type"))),
        )
        try:
            return parse_batch_response(response.headers.get("Content-Type"), response.content)
        except ValueError as exc:
            raise DataverseError(f"unreadable $batch response: {exc}", status=response.status_code) from exc

    # ------------------------------------------------------------------ metadata

    def entity_metadata(self, table: str) -> EntityMetadata:
        """Names of a table read from ``EntityDefinitions`` (always a request; see :meth:`table`)."""
        body = self._json(
            self._request(
                "GET",
                f"EntityDefinitions(LogicalName={odata_literal(table)})",
                idempotent=True,
                params=[("$select", "LogicalName,EntitySetName,PrimaryIdAttribute,PrimaryNameAttribute")],
            )
        )
        metadata = EntityMetadata(
            logical_name=str(body["LogicalName"]),
            entity_set_name=str(body["EntitySetName"]),
            primary_id_attribute=str(body["PrimaryIdAttribute"]),
            primary_name_attribute=body.get("PrimaryNameAttribute") or None,
        )
        with self._cache_lock:
            self._tables[table] = metadata
        return metadata

    def table(self, table: str) -> EntityMetadata:
        """Entity set, primary id and name of a table: standard ones known, others read once and cached."""
        with self._cache_lock:
            known = self._tables.get(table)
        return known or self.entity_metadata(table)

    def entity_set_name(self, table: str) -> str:
        return self.table(table).entity_set_name

    def _id_attribute_for_set(self, entity_set: str) -> str:
        with self._cache_lock:
            for metadata in self._tables.values():
                if metadata.entity_set_name == entity_set:
                    return metadata.primary_id_attribute
        raise ValueError(
            f"pass id_attribute (or call table() first): the primary key of {entity_set!r} is not known"
        )

    def attribute_rows(self, table: str) -> list[dict[str, Any]]:
        """Raw attribute objects of ``table``: the common properties merged with the type-specific ones.

        One request for the common properties, then one per type cast present (String, Memo, Picklist,
        multi-select, State, Status, Boolean, Lookup/Customer/Owner, Integer, BigInt, Decimal, Double,
        Money, DateTime) for MaxLength, options, targets, MinValue/MaxValue/Precision, Format and
        DateTimeBehavior. Metadata is never paged.
        """
        prefix = f"EntityDefinitions(LogicalName={odata_literal(table)})/Attributes"
        base_rows = self._values(prefix, [("$select", ",".join(BASE_ATTRIBUTE_SELECT))])
        casts: dict[tuple[str, str, str | None], None] = {}
        for row in base_rows:
            type_name = row.get("AttributeTypeName")
            if isinstance(type_name, Mapping) and type_name.get("Value") == MULTI_SELECT_TYPE_NAME:
                casts[MULTI_SELECT_CAST] = None
            elif str(row.get("AttributeType")) in TYPE_CASTS:
                casts[TYPE_CASTS[str(row["AttributeType"])]] = None
        merged = {str(row["LogicalName"]): dict(row) for row in base_rows}
        for cast, select, expand in casts:
            params = [("$select", select)]
            if expand:
                params.append(("$expand", expand))
            for row in self._values(f"{prefix}/Microsoft.Dynamics.CRM.{cast}", params):
                target = merged.get(str(row["LogicalName"]))
                if target is not None:
                    target.update({k: v for k, v in row.items() if not k.startswith("@odata.")})
        return list(merged.values())

    def attributes(self, table: str) -> list[DynamicsColumn]:
        """Typed columns of ``table`` (see :meth:`attribute_rows` for what is read)."""
        return [DynamicsColumn.from_metadata(row) for row in self.attribute_rows(table)]

    def _values(self, path: str, params: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        body = self._json(self._request("GET", path, idempotent=True, params=params))
        rows = body.get("value") if isinstance(body, dict) else None
        if not isinstance(rows, list):
            raise DataverseError("metadata response has no 'value' array")
        return rows

    def supports_bulk(self, table: str, message: str = "CreateMultiple") -> bool:
        """Whether ``table`` supports a bulk message (sdkmessagefilters); cached per client."""
        cache_key = (table, message)
        with self._cache_lock:
            cached = self._bulk_support.get(cache_key)
        if cached is not None:
            return cached
        filter_ = (
            f"sdkmessageid/name eq {odata_literal(message)}"
            f" and primaryobjecttypecode eq {odata_literal(table)}"
        )
        rows = next(
            self.query_pages("sdkmessagefilters", filter=filter_, select=["sdkmessagefilterid"], page_size=1),
            [],
        )
        supported = bool(rows)
        with self._cache_lock:
            self._bulk_support[cache_key] = supported
        return supported


def _classify_network_error(error: requests.RequestException) -> FailureKind:
    """CONNECT when the request surely never reached the server, else NETWORK (it may have run)."""
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return FailureKind.CONNECT
    if isinstance(error, requests.exceptions.ConnectionError):
        reason = getattr(error.args[0], "reason", None) if error.args else None
        text = f"{type(reason).__name__} {reason}" if reason is not None else ""
        if "NewConnectionError" in text or "NameResolutionError" in text:
            return FailureKind.CONNECT
        if isinstance(error, requests.exceptions.SSLError):
            return FailureKind.CLIENT  # a certificate problem does not go away by retrying
    if isinstance(error, requests.exceptions.InvalidURL | requests.exceptions.InvalidHeader):
        return FailureKind.CLIENT
    return FailureKind.NETWORK


def _request_id(response: requests.Response | None) -> str | None:
    if response is None:
        return None
    return response.headers.get("x-ms-service-request-id") or response.headers.get("REQ_ID")
