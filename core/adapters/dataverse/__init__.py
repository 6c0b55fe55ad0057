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
PrivilegeDenied, TransientError). Retries: :mod:`core.domain.retry`; which calls are repeated and why:
:mod:`core.adapters.dataverse.client`.
"""

from core.adapters.dataverse.batch import BatchOperation, BatchResponse, ChangeSet
from core.adapters.dataverse.client import (
    DataverseClient,
    RequestEvent,
    TokenSource,
    WhoAmI,
    WorkspaceTokenProvider,
    key_segment,
    odata_literal,
    token_source_for,
)
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
    "Unauthorized",
    "WhoAmI",
    "WorkspaceTokenProvider",
    "key_segment",
    "odata_literal",
    "token_source_for",
]
