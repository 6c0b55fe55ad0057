"""The emulator's in-memory store: eager and lazy column indexes stay exact through every kind of write."""

from __future__ import annotations

import pytest

from emulators.dataverse.odata import fold
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
