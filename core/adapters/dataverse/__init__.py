"""Dataverse (Dynamics 365) Web API client: the one way the product talks to Dynamics.

    client = DataverseClient(connection.environment_url, token_source_for(provider, workspace_id),
                             max_concurrency=8, on_request=ledger.record)
    client.who_am_i(); client.get("contacts", id, select=[...])
    client.query("contacts", filter=..., select=[...], page_size=500)
    client.create("contacts", body, record_id=deterministic_id, caller_object_id=user_oid)
    client.update(...) / upsert(...) / delete(...)
    client.create_multiple("contact", records) / update_multiple / upsert_multiple
    client.execute_batch([ChangeSet([BatchOperation("POST", "accounts", {...}, content_id="1"), ...]),
                          BatchOperation("GET", "contacts", params=[("$filter", ...)])],
                         continue_on_error=True)
    client.attributes("contact") / attribute_rows("contact") / table("new_x") / supports_bulk("contact")

Errors: :class:`DataverseError` and its subclasses (Throttled, Unauthorized, NotFound, PreconditionFailed,
PrivilegeDenied, TransientError). Sending and retrying (the one retry policy, :mod:`core.domain.retry`):
:mod:`core.adapters.dataverse.transport`; which calls are repeated and why:
:mod:`core.adapters.dataverse.client`. OData literals, filters, percent-encoding and URL limits:
:mod:`core.adapters.dataverse.odata` (the only place that writes them); a lookup plan as requests:
:mod:`core.adapters.dataverse.lookup_queries`.
"""

from core.adapters.dataverse.batch import BatchOperation, BatchResponse, ChangeSet
from core.adapters.dataverse.client import DataverseClient, WhoAmI
from core.adapters.dataverse.errors import (
    DUPLICATE_RECORD,
    PRIVILEGE_DENIED,
    DataverseError,
    NotFound,
    PreconditionFailed,
    PrivilegeDenied,
    Throttled,
    TransientError,
    Unauthorized,
)
from core.adapters.dataverse.limiter import AdaptiveLimiter
from core.adapters.dataverse.metadata import EntityMetadata
from core.adapters.dataverse.odata import in_filter, key_segment, odata_literal
from core.adapters.dataverse.transport import (
    RequestEvent,
    TokenSource,
    Transport,
    token_source_for,
)

__all__ = [
    "DUPLICATE_RECORD",
    "PRIVILEGE_DENIED",
    "AdaptiveLimiter",
    "BatchOperation",
    "BatchResponse",
    "ChangeSet",
    "DataverseClient",
    "DataverseError",
    "EntityMetadata",
    "NotFound",
    "PreconditionFailed",
    "PrivilegeDenied",
    "RequestEvent",
    "Throttled",
    "TokenSource",
    "TransientError",
    "Transport",
    "Unauthorized",
    "WhoAmI",
    "in_filter",
    "key_segment",
    "odata_literal",
    "token_source_for",
]
