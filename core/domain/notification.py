"""An in-app notification of a workspace (e.g. "reconnect Dynamics 365"); stored by
``core.adapters.storage.notification_repository``, one per incident."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Notification:
    workspace_id: str
    id: str
    kind: str
    reason: str | None
    title: str
    message: str
    created_at: dt.datetime
    read_at: dt.datetime | None
    # A job's notice (``core.domain.alerts.JobAlert.detail``): kind, id, state, counts, top error codes, link.
    job: Mapping[str, Any] | None = None
