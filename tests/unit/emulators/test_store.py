"""The emulator's in-memory store: eager and lazy column indexes stay exact through every kind of write."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emulators.dataverse import store as store_module
from emulators.dataverse.odata import AllHint, AnyHint, ContainsHint, EqHint, fold, like_fold
from emulators.dataverse.schema import load_schema
from emulators.dataverse.store import Store


def _store() -> Store:
    return Store(
        ["contact"],
        fold,
        primary_ids={"contact": "contactid"},
        eager_indexes={"contact": ["emailaddress1", "lastname"]},
    )


def _ids(store: Store, column: str, *values: str) -> list[str]:
    rows = store.candidates("contact", column, frozenset(fold(v) for v in values))
    return [row["contactid"] for row in rows]


def test_eager_columns_are_indexed_before_any_query_and_after_clear() -> None:
    store = _store()
    assert store.indexed_columns("contact") == ["emailaddress1", "lastname"]
    store.put("contact", "c1", {"contactid": "c1", "emailaddress1": "A@x.example", "lastname": "Smith"})
    store.clear()
    assert store.indexed_columns("contact") == ["emailaddress1", "lastname"]
    assert _ids(store, "emailaddress1", "a@x.example") == []


def test_shared_and_unique_values_through_puts_updates_deletes_and_rollback() -> None:
    store = _store()
    for i, name in enumerate(["Smith", "Smith", "Jones"]):
        store.put(
            "contact", f"c{i}", {"contactid": f"c{i}", "emailaddress1": f"c{i}@x.example", "lastname": name}
        )
    assert _ids(store, "lastname", "SMITH") == ["c0", "c1"]
    assert _ids(store, "emailaddress1", "C2@X.example", "nobody@x.example") == ["c2"]
    store.put("contact", "c1", {"contactid": "c1", "emailaddress1": "c1@x.example", "lastname": "Jones"})
    assert _ids(store, "lastname", "smith") == ["c0"]
    assert _ids(store, "lastname", "jones") == ["c1", "c2"]
    store.delete("contact", "c2")
    assert _ids(store, "lastname", "jones") == ["c1"]
    with pytest.raises(RuntimeError), store.transaction():
        store.put("contact", "c3", {"contactid": "c3", "emailaddress1": "c3@x.example", "lastname": "Smith"})
        store.delete("contact", "c0")
        raise RuntimeError("roll back")
    assert _ids(store, "lastname", "smith") == ["c0"]
    assert _ids(store, "emailaddress1", "c3@x.example") == []


def test_lazy_index_and_primary_key_lookups() -> None:
    store = _store()
    store.put("contact", "c1", {"contactid": "c1", "jobtitle": "Engineer"})
    store.put("contact", "c2", {"contactid": "c2", "jobtitle": "engineer "})
    assert "jobtitle" not in store.indexed_columns("contact")
    assert _ids(store, "jobtitle", "ENGINEER") == ["c1", "c2"]
    assert "jobtitle" in store.indexed_columns("contact")
    store.put("contact", "c3", {"contactid": "c3", "jobtitle": "Engineer"})
    assert _ids(store, "jobtitle", "engineer") == ["c1", "c2", "c3"]
    assert _ids(store, "contactid", "c3", "c1", "missing") == ["c1", "c3"]


def test_restore_rebuilds_the_indexes() -> None:
    store = _store()
    store.put("contact", "c1", {"contactid": "c1", "emailaddress1": "a@x.example", "lastname": "Ng"})
    snapshot = store.snapshot()
    store.clear()
    store.restore(snapshot, {"contact": "contactid"})
    assert _ids(store, "emailaddress1", "A@X.EXAMPLE") == ["c1"]


def test_default_schema_indexes_the_columns_integrations_look_records_up_by() -> None:
    tables = load_schema().tables
    contact = tables["contact"].eager_index_columns()
    for column in ("fullname", "emailaddress1", "new_linkedinurl", "lastname", "firstname", "websiteurl"):
        assert column in contact
    assert "contactid" not in contact
    account = tables["account"].eager_index_columns()
    assert {"name", "emailaddress1", "websiteurl"} <= set(account)
    user = tables["systemuser"].eager_index_columns()
    assert {"domainname", "internalemailaddress", "azureactivedirectoryobjectid"} <= set(user)


def _contains(store: Store, column: str, *needles: str) -> list[str] | None:
    rows = store.hinted("contact", ContainsHint(column, tuple(like_fold(n) for n in needles)))
    return None if rows is None else [row["contactid"] for row in rows]


def _url_store(count: int = 50) -> Store:
    store = Store(["contact"], fold, text_fold=like_fold, primary_ids={"contact": "contactid"})
    for i in range(count):
        url = f"https://www.linkedin.com/in/Person-{i:04d}/"
        store.put("contact", f"c{i}", {"contactid": f"c{i}", "new_linkedinurl": url})
    return store


def test_contains_uses_a_q_gram_index_that_follows_every_write() -> None:
    """The q-gram index yields every row whose folded value holds a needle (plus at most a few extra that
    the query re-checks); it is built on the first contains() and kept through updates, deletes,
    rollbacks and clear."""
    store = _url_store()
    assert _contains(store, "new_linkedinurl", "/in/PERSON-0007") == ["c7"]
    assert _contains(store, "new_linkedinurl", "person-0012", "person-0031/") == ["c12", "c31"]
    store.put("contact", "c7", {"contactid": "c7", "new_linkedinurl": "linkedin.com/in/Renamed-7"})
    found = _contains(store, "new_linkedinurl", "renamed-7")
    assert found == ["c7"]
    assert "c7" in (_contains(store, "new_linkedinurl", "person-0007") or [])  # a stale posting: re-checked
    store.delete("contact", "c12")
    assert _contains(store, "new_linkedinurl", "person-0012") == []
    with pytest.raises(RuntimeError), store.transaction():
        store.put("contact", "c99", {"contactid": "c99", "new_linkedinurl": "https://x.example/in/new-99"})
        raise RuntimeError("roll back")
    assert _contains(store, "new_linkedinurl", "new-99") == []
    store.clear()
    store.put("contact", "n1", {"contactid": "n1", "new_linkedinurl": "https://x.example/in/person-0001"})
    store.put("contact", "n2", {"contactid": "n2", "new_linkedinurl": "https://x.example/in/other"})
    assert _contains(store, "new_linkedinurl", "person-0001") == ["n1"]  # rebuilt from the rows left


def test_short_needles_and_broad_hints_fall_back_to_a_scan() -> None:
    store = _url_store()
    assert _contains(store, "new_linkedinurl", "in") is None  # shorter than a q-gram
    assert _contains(store, "new_linkedinurl", "linkedin.com") is None  # every row: no saving
    broad = AllHint((ContainsHint("new_linkedinurl", ("linkedin",)), EqHint("contactid", frozenset({"c3"}))))
    rows = store.hinted("contact", broad)
    assert rows is not None and [r["contactid"] for r in rows] == ["c3"]  # the cheapest part of an AND
    union = AnyHint(
        (ContainsHint("new_linkedinurl", ("person-0002",)), EqHint("contactid", frozenset({"c9"})))
    )
    rows = store.hinted("contact", union)
    assert rows is not None and [r["contactid"] for r in rows] == ["c2", "c9"]


def _domain_store(count: int) -> Store:
    store = Store(["contact"], fold, text_fold=like_fold, primary_ids={"contact": "contactid"})
    for i in range(count):
        row = {"contactid": f"c{i}", "websiteurl": f"https://www.company{i:07d}.example/about"}
        store.put("contact", f"c{i}", row)
    return store


def test_low_entropy_needles_narrow_through_the_sampled_long_grams(monkeypatch: pytest.MonkeyPatch) -> None:
    """Digits share 4-grams with many rows ("3456" with ~80 of 200,000 domains); a needle long enough is
    looked up through the sampled 8-grams instead, so the rows it returns are the true matches, whatever
    the table size, and the index follows every write."""
    monkeypatch.setattr(store_module, "LONG_WHEN", 0)  # the sampled index wherever it is cheaper
    store = _domain_store(3000)
    rows = store.hinted("contact", ContainsHint("websiteurl", (like_fold("company0001234.example"),)))
    assert rows is not None and [r["contactid"] for r in rows] == ["c1234"]
    needles = tuple(like_fold(f"company{i:07d}.example") for i in (7, 1999, 2500))
    rows = store.hinted("contact", ContainsHint("websiteurl", needles))
    assert rows is not None and [r["contactid"] for r in rows] == ["c7", "c1999", "c2500"]
    store.put("contact", "c7", {"contactid": "c7", "websiteurl": "https://renamed0009999.example"})
    rows = store.hinted("contact", ContainsHint("websiteurl", (like_fold("renamed0009999.exa"),)))
    assert rows is not None and [r["contactid"] for r in rows] == ["c7"]
    with pytest.raises(RuntimeError), store.transaction():
        store.put("contact", "n1", {"contactid": "n1", "websiteurl": "https://www.new0000042.example"})
        raise RuntimeError("roll back")
    rows = store.hinted("contact", ContainsHint("websiteurl", (like_fold("new0000042.example"),)))
    assert rows == []


@settings(max_examples=150, deadline=None)
@given(
    picks=st.lists(st.integers(min_value=0, max_value=599), min_size=1, max_size=5),
    starts=st.lists(st.integers(min_value=0, max_value=30), min_size=5, max_size=5),
    lengths=st.lists(st.integers(min_value=4, max_value=24), min_size=5, max_size=5),
    when=st.sampled_from([0, 3, 64]),
)
def test_contains_candidates_hold_every_match(
    picks: list[int], starts: list[int], lengths: list[int], when: int
) -> None:
    """Differential check against a scan: whichever index a needle goes through (4-grams, sampled
    8-grams at any offset), no row holding it is missed."""
    store = _DIFF_STORE
    values = {f"c{i}": like_fold(f"https://www.company{i:07d}.example/about") for i in range(600)}
    needles = tuple(values[f"c{p}"][s : s + n] for p, s, n in zip(picks, starts, lengths, strict=False))
    needles = tuple(n for n in needles if len(n) >= 4)
    if not needles:
        return
    original = store_module.LONG_WHEN
    store_module.LONG_WHEN = when
    try:
        rows = store.hinted("contact", ContainsHint("websiteurl", needles))
    finally:
        store_module.LONG_WHEN = original
    expected = {cid for cid, text in values.items() if any(n in text for n in needles)}
    got = None if rows is None else {r["contactid"] for r in rows}
    assert got is None or expected <= got


_DIFF_STORE = _domain_store(600)
