"""The product's Dataverse Web API client: every call to Dynamics goes through :class:`DataverseClient`.

This module holds the operations (one request built, one answer read): reads (``who_am_i``, ``get``,
``query``), writes (``create``, ``update``, ``upsert``, ``delete``), bulk messages (``CreateMultiple``,
``UpdateMultiple``, ``UpsertMultiple``) and ``$batch``; table metadata is read by
:class:`~core.adapters.dataverse.metadata.TableReader`. Sending, retrying, throttling and request events
are the :class:`~core.adapters.dataverse.transport.Transport`'s; OData text is written by
:mod:`core.adapters.dataverse.odata`.

Which requests are safe to repeat after a 5xx or a dropped connection (the server may have run them);
each operation passes this as ``idempotent`` to the transport:

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

The bearer token never leaves the transport (see :mod:`core.adapters.dataverse.transport`).

Over 400 lines on purpose: one short method per Web API operation the product uses (build the request,
send it, read the answer), kept on one class so that callers and tests hold a single ``DataverseClient``
and the idempotency list above sits next to the code it justifies.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from core.adapters.dataverse.batch import (
    BatchItem,
    BatchOperation,
    BatchResponse,
    ChangeSet,
    boundary_of,
    build_batch_body,
    entity_id_from_url,
    parse_batch_response,
)
from core.adapters.dataverse.errors import DataverseError
from core.adapters.dataverse.metadata import EntityMetadata, TableReader
from core.adapters.dataverse.odata import (
    DIRECT_GET_MAX_URL,
    MAX_PAGE_SIZE,
    URL_HEADROOM,
    decode_target,
    key_segment,
    prefer_page_size,
)
from core.adapters.dataverse.transport import (
    DEFAULT_USER_AGENT,
    RequestEvent,
    TokenSource,
    Transport,
    read_json,
    token_source_for,
)
from core.domain.dynamics_metadata import DynamicsColumn
from core.domain.retry import RetryPolicy

__all__ = [
    "DataverseClient",
    "RequestEvent",
    "TokenSource",
    "WhoAmI",
    "token_source_for",
]

logger = logging.getLogger(__name__)


class MorePagesThanRead(Exception):
    """A query stopped at its page cap while Dataverse still offered a next page."""

    def __init__(self, pages: int) -> None:
        super().__init__(f"stopped after {pages} page(s); more rows match")
        self.pages = pages


@dataclass(frozen=True)
class WhoAmI:
    user_id: str
    business_unit_id: str
    organization_id: str


class DataverseClient:
    """A Dataverse Web API client for one environment (thread-safe; share one per workspace/process).

    The keyword arguments configure its :class:`Transport` (retry policy, parallelism, the
    ``on_request`` hook, duplicate detection default, clocks for tests).
    """

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
        before_send: Callable[[], None] | None = None,
        suppress_duplicate_detection: bool | None = None,
        honor_dop_hint: bool = True,
        timeout: tuple[float, float] = (10.0, 120.0),
        api_version: str = "v9.2",
        rng: random.Random | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.transport = Transport(
            environment_url,
            token_source,
            session=session,
            retry=retry,
            user_agent=user_agent,
            max_concurrency=max_concurrency,
            on_request=on_request,
            before_send=before_send,
            suppress_duplicate_detection=suppress_duplicate_detection,
            honor_dop_hint=honor_dop_hint,
            timeout=timeout,
            api_version=api_version,
            rng=rng,
            sleep=sleep,
            clock=clock,
            now=now,
        )
        self.tables = TableReader(self.transport, self.execute_batch)
        self.environment_url = self.transport.environment_url
        self.api_path = self.transport.api_path
        self.api_url = self.transport.api_url

    def __repr__(self) -> str:
        return f"DataverseClient({self.environment_url!r})"

    @property
    def concurrency_limit(self) -> int:
        """The current adaptive parallelism (lowered by 429s, regrown by successes)."""
        return self.transport.limiter.limit

    @property
    def throttle_events(self) -> int:
        return self.transport.limiter.throttle_events

    # ------------------------------------------------------------------ reads

    def who_am_i(self) -> WhoAmI:
        body = read_json(self.transport.send("GET", "WhoAmI", idempotent=True))
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
        response = self.transport.send(
            "GET",
            entity_set + key_segment(key),
            idempotent=True,
            params=params,
            prefer=prefer,
            caller_object_id=caller_object_id,
        )
        body = read_json(response)
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
        max_pages: int | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of rows, following ``@odata.nextLink`` with ``Prefer: odata.maxpagesize``.

        ``max_pages``: after that many pages, a further ``@odata.nextLink`` is not followed: the iteration
        raises ``MorePagesThanRead`` instead (the pages read were already yielded).

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
            prefer.append(prefer_page_size(page_size or MAX_PAGE_SIZE))
        if include_annotations:
            prefer.append(f'odata.include-annotations="{include_annotations}"')
        next_path: str | None = entity_set
        next_params: Sequence[tuple[str, str]] = params
        read = 0
        while next_path is not None:
            if max_pages is not None and read >= max_pages:
                raise MorePagesThanRead(read)
            if not next_params and self._too_long_for_get(next_path):
                body = self._get_inside_batch(next_path, prefer, caller_object_id)
            else:
                response = self.transport.send(
                    "GET",
                    next_path,
                    idempotent=True,
                    params=next_params,
                    prefer=prefer,
                    caller_object_id=caller_object_id,
                )
                body = read_json(response)
            rows = body.get("value") if isinstance(body, dict) else None
            if not isinstance(rows, list):
                raise DataverseError("query response has no 'value' array", status=response.status_code)
            yield rows
            read += 1
            link = body.get("@odata.nextLink")
            next_path, next_params = (str(link), ()) if link else (None, ())

    def _too_long_for_get(self, link: str) -> bool:
        """True when a next-page link is longer than a direct GET may be. The link repeats the query, so
        the next page of a query sent inside ``$batch`` (URLs up to 64 KB there, 32 KB for a direct GET:
        https://learn.microsoft.com/power-apps/developer/data-platform/webapi/execute-batch-operations-using-web-api)
        has to go inside ``$batch`` too; sent directly it is refused with 414."""
        if not link.lower().startswith(("https://", "http://")):
            return False  # an entity set: the query's own options are measured by whoever built them
        return len(link) - len(self.environment_url) > DIRECT_GET_MAX_URL - URL_HEADROOM

    def _get_inside_batch(self, link: str, prefer: Sequence[str], caller_object_id: str | None) -> Any:
        """The answer of a GET of ``link`` (inside this environment's Web API) sent as a ``$batch`` part."""
        root = self.transport.api_url
        if not link.lower().startswith(root.lower()):
            raise DataverseError("refusing to follow a link outside the environment URL")
        path, params = decode_target(link[len(root) :])
        headers = {"Prefer": ",".join(prefer)} if prefer else {}
        operation = BatchOperation("GET", path, headers=headers, params=params)
        responses = self.execute_batch([operation], caller_object_id=caller_object_id)
        if not responses:
            raise DataverseError("$batch answered no part for a next-page GET")
        responses[0].raise_for_error()
        return responses[0].body

    def query_page(
        self,
        entity_set: str,
        *,
        page_size: int,
        filter: str | None = None,
        select: Sequence[str] | None = None,
        expand: str | None = None,
        orderby: str | None = None,
        skiptoken: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of ``page_size`` rows and the ``$skiptoken`` of the next page (``None`` on the last).

        For callers that hand paging to their own client: the same query with the returned token reads
        the next page (https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query/page-results).
        Only the token is taken from ``@odata.nextLink``, never its host: a token a caller sends back is a
        query value, not a URL this client would follow with its bearer token.
        """
        params: list[tuple[str, str]] = [("$select", ",".join(select))] if select else []
        for name, value in (("$filter", filter), ("$expand", expand), ("$orderby", orderby)):
            if value:
                params.append((name, value))
        if skiptoken:
            params.append(("$skiptoken", skiptoken))
        response = self.transport.send(
            "GET", entity_set, idempotent=True, params=params, prefer=[prefer_page_size(page_size)]
        )
        body = read_json(response)
        rows = body.get("value") if isinstance(body, dict) else None
        if not isinstance(rows, list):
            raise DataverseError("query response has no 'value' array", status=response.status_code)
        link = body.get("@odata.nextLink")
        tokens = parse_qs(urlsplit(str(link)).query).get("$skiptoken") if link else None
        return rows, (tokens[0] if tokens else None)

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
            attribute = id_attribute or self.tables.id_attribute_for_set(entity_set)
            body[attribute] = str(record_id).lower()
        try:
            response = self.transport.send(
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
        self.transport.send(
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
        response = self.transport.send(
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
        self.transport.send(
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
        body = read_json(response)
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
        return self.transport.send(
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
        response = self.transport.send(
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

    # ------------------------------------------------------------------ metadata (TableReader)

    def entity_metadata(self, table: str) -> EntityMetadata:
        """Names of a table read from ``EntityDefinitions`` (always a request; see :meth:`table`)."""
        return self.tables.entity_metadata(table)

    def table(self, table: str) -> EntityMetadata:
        """Entity set, primary id and name of a table: standard ones known, others read once and cached."""
        return self.tables.table(table)

    def entity_set_name(self, table: str) -> str:
        return self.tables.table(table).entity_set_name

    def attribute_rows(self, table: str) -> list[dict[str, Any]]:
        """Raw attribute objects of ``table`` (see :meth:`TableReader.attribute_rows`)."""
        return self.tables.attribute_rows(table)

    def attributes(self, table: str) -> list[DynamicsColumn]:
        """Typed columns of ``table`` (see :meth:`TableReader.attribute_rows` for what is read)."""
        return self.tables.attributes(table)

    def supports_bulk(self, table: str, message: str = "CreateMultiple") -> bool:
        """Whether ``table`` supports a bulk message (sdkmessagefilters); cached per client."""
        return self.tables.supports_bulk(table, message)
