"""Configuration storage against real Azurite: a save is one conditional write of ``current`` carrying its
history entry (preceded, now and then, by moving older entries to a block row), so every way of stopping
before, between or after those writes must leave a consistent configuration and a history that shows each
saved version exactly once."""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ServiceRequestError
from azure.data.tables import TableClient

from core.adapters.storage import config_repository as repo_module
from core.adapters.storage.config_repository import ConfigConflict, ConfigRepository
from core.adapters.storage.tables import Storage, escape_key
from core.domain.caller import Caller, Role
from core.services.config.service import ConfigService, PreconditionFailed
from core.settings import get_settings
from tests.support.app import storage as app_storage
from tests.support.azurite import Azurite
from tests.support.http import configure_app
from tests.unit.test_config_validation import valid_doc

pytestmark = pytest.mark.integration


class FaultyTable:
    """A TableClient whose next ``update_entity``/``create_entity`` of ``current`` misbehaves once."""

    def __init__(self, real: TableClient) -> None:
        self.real = real
        self.fail_current: str | None = None  # "before": never reaches storage; "after": lands, answer lost

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def create_entity(self, entity: dict[str, Any], **kw: Any) -> Any:
        if entity["RowKey"] != repo_module.CURRENT:
            return self.real.create_entity(entity, **kw)
        return self._current(
            self.real.create_entity, entity, ResourceExistsError("entity already exists"), **kw
        )

    def update_entity(self, entity: dict[str, Any], **kw: Any) -> Any:
        lost = ResourceModifiedError("The update condition specified in the request was not satisfied.")
        return self._current(self.real.update_entity, entity, lost, **kw)

    def _current(self, write: Any, entity: dict[str, Any], retried_answer: Exception, **kw: Any) -> Any:
        mode, self.fail_current = self.fail_current, None
        if mode == "before":  # the process dies (or the network drops) before the version is written
            raise ServiceRequestError("connection dropped before the request was sent")
        result = write(entity, **kw)
        if mode == "after":  # written, but the answer is lost and the retried write is refused
            raise retried_answer
        return result


class FaultyRepository(ConfigRepository):
    def __init__(self, storage: Storage) -> None:
        super().__init__(storage)
        self.faulty = FaultyTable(storage.table(repo_module.TABLE))

    @property
    def _table(self) -> Any:
        return self.faulty


@pytest.fixture()
def ws(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    configure_app(monkeypatch, azurite.connection_string)
    yield f"ws-{uuid.uuid4().hex[:12]}"
    get_settings.cache_clear()


def _caller(ws: str, user: str = "user-1") -> Caller:
    return Caller(ws, user, Role.ADMIN)


def _doc(senders: str) -> dict[str, Any]:
    doc = valid_doc()
    doc["campaignMapping"]["senders"] = senders
    return doc


def _history_rows(ws: str) -> list[dict[str, Any]]:
    table = app_storage().table(repo_module.TABLE)
    return list(table.query_entities("PartitionKey eq @pk and RowKey ge 'h-' and RowKey lt 'h.'",
                                     parameters={"pk": escape_key(ws)}))  # fmt: skip


def _history(service: ConfigService, ws: str) -> list[tuple[int, str]]:
    return [(e.version, e.saved_by) for e in service.history(_caller(ws))]


def test_a_save_that_never_lands_changes_nothing_visible(ws: str) -> None:
    repo = FaultyRepository(app_storage())
    service = ConfigService(repo)
    service.save(_caller(ws, "alice"), _doc("new_v1"), None)
    repo.faulty.fail_current = "before"
    with pytest.raises(ServiceRequestError):
        service.save(_caller(ws, "mallory"), _doc("new_never_saved"), '"v1"')
    fresh = ConfigService(ConfigRepository(app_storage()))  # another host, nothing memoised
    view = fresh.get(_caller(ws))
    assert view.version == 1 and view.config.campaign_mapping.senders == "new_v1"
    assert _history(fresh, ws) == [(1, "alice")]
    assert _history_rows(ws) == []  # no row of the attempt is left behind
    assert fresh.save(_caller(ws, "bob"), _doc("new_v2"), '"v1"').version == 2  # nothing is stuck
    assert _history(fresh, ws) == [(2, "bob"), (1, "alice")]


def test_long_history_moves_to_blocks_and_reads_whole(ws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(repo_module, "MAX_RECENT_CHARS", 700)  # a block every few saves
    service = ConfigService(ConfigRepository(app_storage()))
    etag = None
    for version in range(1, 31):
        saved = service.save(_caller(ws, f"user-{version}"), _doc(f"new_s{version}"), etag)
        assert saved.version == version
        etag = saved.etag
    assert len(_history_rows(ws)) >= 5  # it did move entries out of the current row
    fresh = ConfigService(ConfigRepository(app_storage()))
    assert _history(fresh, ws) == [(v, f"user-{v}") for v in range(30, 0, -1)]
    for limit in (1, 2, 7, 29):
        assert [e.version for e in fresh.history(_caller(ws), limit)] == list(range(30, 30 - limit, -1))
    changed = fresh.history(_caller(ws))
    assert all(e.changes == [{"op": "replace", "path": "/campaignMapping/senders"}] for e in changed[:-1])


def test_a_writer_that_moves_history_then_dies_or_loses_leaves_it_whole(
    ws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(repo_module, "MAX_RECENT_CHARS", 700)
    repo = FaultyRepository(app_storage())
    service = ConfigService(repo)
    etag = None
    for version in range(1, 5):
        etag = service.save(_caller(ws, f"user-{version}"), _doc(f"new_s{version}"), etag).etag
    rows_before = len(_history_rows(ws))
    many = [{"op": "replace", "path": f"/fieldMapping/contacts/{i}/mode"} for i in range(40)]
    repo.faulty.fail_current = "before"  # an entry that does not fit: recent moves to a block first
    with pytest.raises(ServiceRequestError):
        repo.save(ws, _doc("new_dies"), previous=repo.load(ws), saved_by="dies", step=None, changes=many)
    assert len(_history_rows(ws)) == rows_before + 1  # the block was written, the version was not
    fresh = ConfigService(ConfigRepository(app_storage()))
    assert fresh.get(_caller(ws)).version == 4
    assert _history(fresh, ws) == [(v, f"user-{v}") for v in range(4, 0, -1)]
    # A short save from the same version wins (no block of its own); the copy is harmless.
    assert fresh.save(_caller(ws, "user-5"), _doc("new_s5"), etag).version == 5
    assert _history(fresh, ws) == [(v, f"user-{v}") for v in range(5, 0, -1)]
    for version in range(6, 12):
        etag = fresh.get(_caller(ws)).etag
        fresh.save(_caller(ws, f"user-{version}"), _doc(f"new_s{version}"), etag)
    assert _history(fresh, ws) == [(v, f"user-{v}") for v in range(11, 0, -1)]


def test_losers_leave_nothing_and_history_shows_the_winner(ws: str) -> None:
    service = ConfigService(ConfigRepository(app_storage()))
    service.save(_caller(ws, "alice"), _doc("new_v1"), None)
    results: list[tuple[str, int | None]] = []
    barrier = threading.Barrier(6)

    def writer(i: int) -> None:
        host = ConfigService(ConfigRepository(app_storage()))  # one host each: no shared memo
        barrier.wait()
        try:
            saved = host.save(_caller(ws, f"writer-{i}"), _doc(f"new_w{i}"), '"v1"')
            results.append((f"writer-{i}", saved.version))
        except PreconditionFailed as exc:
            results.append((f"writer-{i}", None))
            assert exc.current_version == 2

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [name for name, version in results if version == 2]
    assert len(winners) == 1 and len(results) == 6
    fresh = ConfigService(ConfigRepository(app_storage()))
    assert fresh.get(_caller(ws)).config.campaign_mapping.senders == f"new_w{winners[0][7:]}"
    assert _history(fresh, ws) == [(2, winners[0]), (1, "alice")]
    assert _history_rows(ws) == []


def test_the_largest_inline_document_with_the_largest_history_entry_saves(ws: str) -> None:
    doc = _doc("new_big")
    per = 50_000
    count = (repo_module.MAX_INLINE_CHARS - 6_000) // (per + 100)
    doc["fieldMapping"]["companies"] = [
        {"kind": "fixed_value", "dynamicsField": f"new_c{i}", "value": "z" * per, "valueType": "text"}
        for i in range(count)
    ]
    service = ConfigService(ConfigRepository(app_storage()))
    first = service.save(_caller(ws, "alice"), doc, None)
    assert first.version == 1
    stored = ConfigRepository(app_storage()).load(ws)
    assert stored is not None and stored.blob is None  # inline, next to its history
    many = [{"op": "replace", "path": f"/fieldMapping/companies/{i}/value"} for i in range(2_000)]
    repo = ConfigRepository(app_storage())
    for version in (2, 3):
        saved = repo.save(ws, doc, previous=stored, saved_by=f"user-{version}", step=None, changes=many)
        assert saved.version == version
        stored = repo.load(ws)
        assert stored is not None and stored.document == doc
    newest = repo.history(ws)
    assert [e.version for e in newest] == [3, 2, 1]
    assert newest[0].changes_truncated and len(newest[0].changes) < 2_000


def test_a_lost_answer_to_a_landed_write_is_still_a_success(ws: str) -> None:
    repo = FaultyRepository(app_storage())
    service = ConfigService(repo)
    service.save(_caller(ws, "alice"), _doc("new_v1"), None)
    repo.faulty.fail_current = "after"
    saved = service.save(_caller(ws, "bob"), _doc("new_v2"), '"v1"')  # not a 412 for our own write
    assert saved.version == 2
    assert service.save(_caller(ws, "bob"), _doc("new_v3"), '"v2"').version == 3
    assert _history(service, ws) == [(3, "bob"), (2, "bob"), (1, "alice")]  # version 2 once


def test_a_first_save_whose_answer_was_lost_is_a_success(ws: str) -> None:
    repo = FaultyRepository(app_storage())
    repo.faulty.fail_current = "after"  # the insert lands; its retry is told "exists"
    stored = repo.save(ws, _doc("new_v1"), previous=None, saved_by="alice", step=None, changes=[])
    assert stored.version == 1 and stored.saved_by == "alice"
    with pytest.raises(ConfigConflict):  # a genuinely different first writer still loses
        repo.save(ws, _doc("new_other"), previous=None, saved_by="bob", step=None, changes=[])
    assert [e.saved_by for e in repo.history(ws)] == ["alice"]


def test_history_written_before_it_moved_into_current_still_reads(ws: str) -> None:
    """One-version rows of the earlier layout (written in one transaction with ``current``) still read."""
    table = app_storage().table(repo_module.TABLE)
    pk = escape_key(ws)
    text = json.dumps(_doc("new_legacy"), ensure_ascii=True, separators=(",", ":"))
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    for version in (1, 2):
        table.create_entity(
            {
                "PartitionKey": pk,
                "RowKey": f"h-{10**10 - version:010d}",
                "version": version,
                "savedAt": now,
                "savedBy": f"legacy-{version}",
                "step": "",
                "changes": "[]",
                "changeCount": 0,
            }
        )
    table.create_entity(
        {"PartitionKey": pk, "RowKey": "current", "version": 2, "savedAt": now, "savedBy": "legacy-2",
         "size": len(text), "chunks": 1, "d000": text}
    )  # fmt: skip
    service = ConfigService(ConfigRepository(app_storage()))
    assert _history(service, ws) == [(2, "legacy-2"), (1, "legacy-1")]
    assert service.save(_caller(ws, "carol"), _doc("new_v3"), '"v2"').version == 3
    assert _history(service, ws) == [(3, "carol"), (2, "legacy-2"), (1, "legacy-1")]


def test_a_big_configuration_lost_race_leaves_no_blob(ws: str) -> None:
    big = _doc("new_big")
    big["fieldMapping"]["companies"] = [
        {"kind": "fixed_value", "dynamicsField": f"new_big_{i}", "value": "x" * 90_000, "valueType": "text"}
        for i in range(6)
    ]
    repo = ConfigRepository(app_storage())
    first = repo.save(ws, big, previous=None, saved_by="alice", step=None, changes=[])
    assert first.blob is not None
    second = repo.save(ws, big, previous=first, saved_by="bob", step=None, changes=[])
    with pytest.raises(ConfigConflict) as info:
        repo.save(ws, big, previous=first, saved_by="carol", step=None, changes=[])  # stale: lost
    assert info.value.current_version == 2
    container = app_storage().container(repo_module.CONTAINER)
    assert [b.name for b in container.list_blobs(name_starts_with=f"{escape_key(ws)}/")] == [second.blob]
    loaded = repo.load(ws)
    assert loaded is not None and loaded.document == big and loaded.version == 2
    assert [e.saved_by for e in repo.history(ws)] == ["bob", "alice"]
