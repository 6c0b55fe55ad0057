"""Dataverse (Dynamics 365) Web API client: the one way the product talks to Dynamics."""

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
from core.adapters.dataverse.metadata import AttributeMetadata, EntityMetadata, OptionMetadata

__all__ = [
    "DUPLICATE_RECORD",
    "PRIVILEGE_DENIED",
    "AdaptiveLimiter",
    "AttributeMetadata",
    "BatchOperation",
    "BatchResponse",
    "ChangeSet",
    "DataverseClient",
    "DataverseError",
    "EntityMetadata",
    "NotFound",
    "OptionMetadata",
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
