"""Bulk writes of a chunk against an in-memory Dynamics: refused records isolated and every other record
written exactly once, and a create whose answer was lost reported created without being written again."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from requests.structures import CaseInsensitiveDict

from core.adapters.dataverse.batch import BatchOperation, BatchResponse
from core.adapters.dataverse.errors import DUPLICATE_RECORD, DataverseError
from core.services.jobs.bulk import create_with_own_ids, update_isolating

ALTERNATE_KEY_TAKEN = "0x80060892"


class Dynamics:
    """CreateMultiple / UpdateMultiple all-or-nothing, as on standard tables; records named ``bad`` are
    refused; ``lose_answer`` creates, then answers as the client's retry of a lost answer would."""

    def __init__(self, existing: Sequence[str] = (), taken_keys: Sequence[str] = ()) -> None:
        self.rows: set[str] = set(existing)
        self.taken_keys = set(taken_keys)
        self.writes: Counter[str] = Counter()
        self.lose_answer = False
        self.outage = False
        self.dropped = False  # every answer is the client's retry after a dropped connection
        self.calls = 0
        self.callers: set[str | None] = set()

    def entity_set_name(self, table: str) -> str:
        return table + "s"

    def create_multiple(self, table: str, records: Sequence[Mapping[str, Any]], **options: Any) -> list[str]:
        self._called(table, options)
        ids = [str(r["contactid"]) for r in records]
        if any(r.get("key") in self.taken_keys for r in records):
            raise DataverseError("key taken", status=412, code=ALTERNATE_KEY_TAKEN)
        if any(i in self.rows for i in ids):
            raise DataverseError(
                "duplicate", status=412, code=DUPLICATE_RECORD, maybe_applied_earlier=self.dropped
            )
        self._refuse_bad(records)
        self.rows.update(ids)
        self.writes.update(ids)
        if self.lose_answer:
            self.lose_answer = False
            raise DataverseError("duplicate", status=412, code=DUPLICATE_RECORD, maybe_applied_earlier=True)
        return ids

    def update_multiple(self, table: str, records: Sequence[Mapping[str, Any]], **options: Any) -> None:
        self._called(table, options)
        if self.outage:
            raise DataverseError("unavailable", status=503)
        self._refuse_bad(records)
        self.writes.update(str(r["contactid"]) for r in records)

    def execute_batch(self, operations: Sequence[BatchOperation], **_: Any) -> list[BatchResponse]:
        answers = []
        for operation in operations:
            # which of our ids exist: a GET of the table's ids, paged as lookups are
            assert (operation.method, operation.url) == ("GET", "contacts")
            assert dict(operation.params)["$select"] == "contactid"
            assert "odata.maxpagesize" in operation.headers["Prefer"]
            where = dict(operation.params)["$filter"]
            assert "PropertyName='contactid'" in where
            rows = [{"contactid": i} for i in sorted(self.rows) if f"'{i}'" in where]
            answers.append(BatchResponse(200, "OK", CaseInsensitiveDict(), {"value": rows}))
        return answers

    def _called(self, table: str, options: Mapping[str, Any]) -> None:
        assert table == "contact"
        self.calls += 1
        self.callers.add(options.get("caller_object_id"))

    @staticmethod
    def _refuse_bad(records: Sequence[Mapping[str, Any]]) -> None:
        if any(r.get("bad") for r in records):
            raise DataverseError("a value is not valid", status=400, code="0x80040203")


def contacts(count: int, bad: Sequence[int] = ()) -> list[dict[str, Any]]:
    return [{"contactid": f"c{i}", **({"bad": True} if i in bad else {})} for i in range(count)]


def test_refused_updates_stand_alone_and_every_other_record_is_written_once() -> None:
    dynamics = Dynamics()
    failures = update_isolating(dynamics, "contact", contacts(8, bad=[3, 6]))  # type: ignore[arg-type]
    assert sorted(failures) == [3, 6]
    assert failures[3].code == "0x80040203"
    assert dynamics.writes == Counter({f"c{i}": 1 for i in (0, 1, 2, 4, 5, 7)})


def test_updates_without_a_refused_record_take_one_call() -> None:
    dynamics = Dynamics()
    assert update_isolating(dynamics, "contact", contacts(8)) == {}  # type: ignore[arg-type]
    assert dynamics.calls == 1 and len(dynamics.writes) == 8
    assert update_isolating(dynamics, "contact", []) == {}  # type: ignore[arg-type]
    assert dynamics.calls == 1  # nothing to send: no call


def test_a_failure_of_the_call_itself_goes_to_the_chunk_retry() -> None:
    dynamics = Dynamics()
    dynamics.outage = True
    with pytest.raises(DataverseError) as failed:
        update_isolating(dynamics, "contact", contacts(4))  # type: ignore[arg-type]
    assert failed.value.status == 503 and dynamics.calls == 1  # not bisected: not the records' fault


def test_a_create_whose_answer_was_lost_is_reported_created_and_not_written_again() -> None:
    dynamics = Dynamics()
    dynamics.lose_answer = True
    report = create_with_own_ids(dynamics, "contact", "contactid", contacts(4))  # type: ignore[arg-type]
    assert sorted(report.created) == [0, 1, 2, 3] and report.taken == [] and report.refused == {}
    assert dynamics.writes == Counter({f"c{i}": 1 for i in range(4)})


def test_records_another_attempt_created_are_taken_and_the_rest_created() -> None:
    dynamics = Dynamics(existing=["c1", "c2"])
    report = create_with_own_ids(dynamics, "contact", "contactid", contacts(5, bad=[4]))  # type: ignore[arg-type]
    assert report.taken == [1, 2]
    assert sorted(report.created) == [0, 3]
    assert list(report.refused) == [4]
    assert dynamics.writes == Counter({"c0": 1, "c3": 1})


def test_a_lost_answer_with_only_some_records_there_is_not_this_calls_create() -> None:
    # The call is atomic: if it had created, every record would be there; some are another attempt's.
    dynamics = Dynamics(existing=["c0"])
    dynamics.dropped = True
    report = create_with_own_ids(dynamics, "contact", "contactid", contacts(3))  # type: ignore[arg-type]
    assert report.taken == [0]
    assert sorted(report.created) == [1, 2]


def test_an_alternate_key_held_by_another_record_refuses_only_that_record() -> None:
    dynamics = Dynamics(taken_keys=["k2"])
    records = [{**r, "key": f"k{i}"} for i, r in enumerate(contacts(4))]
    report = create_with_own_ids(dynamics, "contact", "contactid", records)  # type: ignore[arg-type]
    assert list(report.refused) == [2] and report.refused[2].code == ALTERNATE_KEY_TAKEN
    assert sorted(report.created) == [0, 1, 3] and report.taken == []


def test_no_records_no_call() -> None:
    dynamics = Dynamics()
    report = create_with_own_ids(dynamics, "contact", "contactid", [])  # type: ignore[arg-type]
    assert (report.created, report.taken, report.refused, dynamics.calls) == ([], [], {}, 0)


def test_a_duplicate_id_nobody_can_see_is_refused_not_taken_for_ours() -> None:
    class Elsewhere(Dynamics):
        def execute_batch(self, operations: Sequence[BatchOperation], **_: Any) -> list[BatchResponse]:
            return [BatchResponse(200, "OK", CaseInsensitiveDict(), {"value": []}) for _ in operations]

    dynamics = Elsewhere(existing=["c1"])  # e.g. a record the integration user may not read
    report = create_with_own_ids(dynamics, "contact", "contactid", contacts(2))  # type: ignore[arg-type]
    assert report.created == [0] and report.taken == []
    assert list(report.refused) == [1] and report.refused[1].code == DUPLICATE_RECORD


def test_writes_are_made_as_the_owner_they_were_asked_for() -> None:
    dynamics = Dynamics(existing=["c1"])
    create_with_own_ids(dynamics, "contact", "contactid", contacts(3, bad=[2]), caller_object_id="aad-1")  # type: ignore[arg-type]
    update_isolating(dynamics, "contact", contacts(2, bad=[1]), caller_object_id="aad-1")  # type: ignore[arg-type]
    assert dynamics.callers == {"aad-1"}  # every call, bisected ones included, impersonates that user
