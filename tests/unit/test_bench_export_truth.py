"""bench.export's correctness figures count per record, so one error cannot hide another."""

from __future__ import annotations

from typing import Any

from bench.export_truth import check_outcomes, classify, existing_rows
from core.services.jobs.queries import JobRecords
from emulators.dataverse.seed import SeedSpec, build_seed

OWN = frozenset({"row-1", "row-1-dup"})


def test_classify_each_outcome() -> None:
    assert classify({"action": "updated", "dynamicsId": "ROW-1"}, OWN) == "existing_matched"
    assert classify({"action": "unchanged", "dynamicsId": "row-1-dup"}, OWN) == "existing_matched"
    assert classify({"action": "created", "dynamicsId": "new"}, OWN) == "existing_created"
    assert classify({"action": "updated", "dynamicsId": "row-9"}, OWN) == "existing_wrong_row"
    ambiguous = {"action": "updated", "dynamicsId": "row-9", "match": {"candidates": ["row-9", "row-1"]}}
    assert classify(ambiguous, OWN) == "existing_ambiguous_ok"
    assert classify({"action": "skipped"}, OWN) == "existing_skipped"
    assert classify({"action": "created"}, None) == "new_created"
    assert classify({"action": "updated", "dynamicsId": "row-1"}, None) == "new_matched_existing"
    assert classify({"action": "failed"}, None) == "new_failed"


class _Pages:
    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records_ = records

    def records(
        self, workspace_id: str, job_id: str, status: str | None, cursor: str | None, limit: int
    ) -> JobRecords:
        start = int(cursor or 0)
        page = self.records_[start : start + limit]
        more = start + limit < len(self.records_)
        return JobRecords(page, str(start + limit) if more else None)


def test_a_false_merge_does_not_hide_a_missed_contact() -> None:
    """Netted row counts would say 0 here (one extra create, one missing create)."""
    spec = SeedSpec(accounts=5, contacts=30, users=2, seed=7)
    contact_ids = build_seed(spec).truth.contact_ids
    assert f"p-{contact_ids[0][:8]}" in existing_rows(spec)
    records = [
        {"platformId": f"p-{contact_ids[0][:8]}", "action": "created", "dynamicsId": "x"},
        {"platformId": f"p-{contact_ids[1][:8]}", "action": "updated", "dynamicsId": contact_ids[1]},
        {"platformId": "p-new-0", "action": "updated", "dynamicsId": contact_ids[2]},
    ] + [{"platformId": f"p-new-{i}", "action": "created", "dynamicsId": f"n{i}"} for i in range(1, 1500)]
    result = check_outcomes(_Pages(records), "ws", "job", spec)
    assert result["existing_created"] == 1
    assert result["false_merges"] == 1
    assert result["outcomes"] == {
        "existing_created": 1,
        "existing_matched": 1,
        "new_created": 1499,
        "new_matched_existing": 1,
    }
    assert result["outcome_examples"] == {
        "existing_created": [f"p-{contact_ids[0][:8]}"],
        "new_matched_existing": ["p-new-0"],
    }
