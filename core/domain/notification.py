"""An in-app notification of a workspace (e.g. "reconnect Dynamics 365"); stored by
``core.adapters.storage.notification_repository``, one per incident."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


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
