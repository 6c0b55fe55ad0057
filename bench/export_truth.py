"""Per-record correctness of a ``bench.export`` run: did each exported contact land where it should?

Counting rows in Dynamics (created minus expected) nets errors out: a new contact wrongly matched onto an
existing one hides an existing contact that was missed and created again. Here every record's reported
outcome is checked against the seed's ground truth instead:

- an *existing* contact (platform id ``p-<first 8 hex of its contactid>``) must be updated or unchanged,
  on its own Dynamics row or on one of the rows the seed made as its duplicates; created = a duplicate
  in Dynamics (matching missed it); matched onto another row = a false merge (unless that was an
  ambiguous match listing its own row among the candidates);
- a *new* contact (any other id) must be created; updated or unchanged = a false merge (it overwrote
  somebody else's record).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from core.adapters.dataverse.client import DataverseClient
from core.adapters.dataverse.errors import DataverseError
from emulators.dataverse.seed import SeedSpec, build_seed

MATCHED = ("updated", "unchanged")
EXAMPLES = 5


class RecordsPage(Protocol):
    records: list[dict[str, Any]]
    next_cursor: str | None


class RecordsSource(Protocol):
    def records(
        self, workspace_id: str, job_id: str, status: str | None, cursor: str | None, limit: int
    ) -> RecordsPage | None: ...


def existing_rows(spec: SeedSpec) -> dict[str, frozenset[str]]:
    """Platform id of each seeded contact -> the Dynamics rows it may match (itself and its duplicates)."""
    truth = build_seed(spec).truth
    groups = {group[0]: group for group in truth.duplicate_contact_groups}
    return {
        f"p-{contact_id[:8]}": frozenset(groups.get(contact_id, [contact_id]))
        for contact_id in truth.contact_ids
    }


def classify(record: Mapping[str, Any], expected: frozenset[str] | None) -> str:
    """``existing_matched``, ``existing_ambiguous_ok``, ``existing_created``, ``existing_wrong_row``,
    ``new_created``, ``new_matched_existing`` or ``<existing|new>_<other action>``."""
    action = str(record.get("action"))
    if expected is None:
        if action == "created":
            return "new_created"
        return "new_matched_existing" if action in MATCHED else f"new_{action}"
    if action == "created":
        return "existing_created"
    if action not in MATCHED:
        return f"existing_{action}"
    if str(record.get("dynamicsId") or "").lower() in expected:
        return "existing_matched"
    match = record.get("match") or {}
    candidates = {str(c).lower() for c in match.get("candidates") or ()}
    return "existing_ambiguous_ok" if candidates & expected else "existing_wrong_row"


def check_outcomes(source: RecordsSource, workspace_id: str, job_id: str, spec: SeedSpec) -> dict[str, Any]:
    """Counts per class (see ``classify``) and a few example platform ids of every bad class."""
    expected = existing_rows(spec)
    classes: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}
    cursor: str | None = None
    while True:
        page = source.records(workspace_id, job_id, None, cursor, 1000)
        if page is None:
            raise RuntimeError(f"job {job_id} has no records")
        for record in page.records:
            platform_id = str(record.get("platformId"))
            kind = classify(record, expected.get(platform_id))
            classes[kind] += 1
            if kind not in ("existing_matched", "existing_ambiguous_ok", "new_created"):
                examples.setdefault(kind, [])
                if len(examples[kind]) < EXAMPLES:
                    examples[kind].append(platform_id)
        cursor = page.next_cursor
        if not cursor:
            break
    return {
        "outcomes": dict(sorted(classes.items())),
        # new contacts (created by this export) reported as anything but created: must be 0
        "created_reported_otherwise": sum(
            n for k, n in classes.items() if k.startswith("new_") and k != "new_created"
        ),
        "outcome_examples": examples,
        "existing_created": classes["existing_created"],
        "false_merges": classes["new_matched_existing"] + classes["existing_wrong_row"],
    }


class WriteCountingClient(DataverseClient):
    """The real client, counting per contact id the write calls that reached Dynamics: answered with
    success, or failed after an attempt the server may have run (``maybe_applied_earlier``: an answer
    lost to a dropped connection or a 5xx after commit). A contact counted twice was written twice."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.contact_writes: Counter[str] = Counter()
        self._writes_lock = threading.Lock()

    def _note(self, table: str, records: Sequence[Mapping[str, Any]]) -> None:
        if table != "contact":
            return
        with self._writes_lock:
            self.contact_writes.update(str(r.get("contactid", "")).lower() for r in records)

    def create_multiple(self, table: str, records: Sequence[Mapping[str, Any]], **options: Any) -> list[str]:
        try:
            ids = super().create_multiple(table, records, **options)
        except DataverseError as exc:
            if exc.maybe_applied_earlier:
                self._note(table, records)
            raise
        self._note(table, records)
        return ids

    def update_multiple(self, table: str, records: Sequence[Mapping[str, Any]], **options: Any) -> None:
        try:
            super().update_multiple(table, records, **options)
        except DataverseError as exc:
            if exc.maybe_applied_earlier:
                self._note(table, records)
            raise
        self._note(table, records)

    def update(self, entity_set: str, key: Any, changes: Mapping[str, Any], **options: Any) -> None:
        try:
            super().update(entity_set, key, changes, **options)
        except DataverseError as exc:
            if exc.maybe_applied_earlier and entity_set == "contacts":
                self._note("contact", [{"contactid": key}])
            raise
        if entity_set == "contacts":
            self._note("contact", [{"contactid": key}])


def written_twice(writes: Sequence[Mapping[str, int]]) -> int:
    """Contacts written more than once, over the counts of every worker process."""
    total: Counter[str] = Counter()
    for counts in writes:
        total.update(counts)
    return sum(1 for n in total.values() if n > 1)
