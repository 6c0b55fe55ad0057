"""Skipped duplicates carry the result of the record they were merged into (``mergedInto``), read when
the results are read: that record ran after the skip was decided. The records endpoint and the results
download both join them this way."""

from __future__ import annotations

from typing import Any

from core.adapters.storage.job_store import JobStore, StoredOutcome


def join_merged(store: JobStore, workspace_id: str, job_id: str, details: list[dict[str, Any]]) -> None:
    """Fill ``mergedInto.action``/``dynamicsId`` (and the record's ``dynamicsId``) of the skipped records
    in ``details``: one row read per distinct earlier record; before that record has a result, ``action``
    and the ids are null."""
    into: dict[int, StoredOutcome | None] = {}
    for detail in details:
        merged = detail.get("mergedInto")
        if not isinstance(merged, dict):
            continue
        seq = int(merged.get("seq", -1))
        if seq not in into:
            rows = store.outcomes_between(workspace_id, job_id, seq, seq) if seq >= 0 else []
            into[seq] = rows[0] if rows else None
        keeper = into[seq]
        merged["action"] = keeper.action.value if keeper is not None else None
        merged["dynamicsId"] = keeper.dynamics_id if keeper is not None else None
        detail["dynamicsId"] = keeper.dynamics_id if keeper is not None else None
