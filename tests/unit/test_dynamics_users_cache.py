"""The users page cache and cursor: a page is served from memory for a minute and then read again, the
cache stays bounded, and a cursor is only accepted back for the query (and workspace) it was made for."""

from __future__ import annotations

import pytest

from core.services.dynamics.users import (
    MAX_CURSOR,
    InvalidCursor,
    PageCache,
    UsersPage,
    _fingerprint,
    decode_cursor,
    encode_cursor,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _page(n: int) -> UsersPage:
    return UsersPage(f"https://org{n}.crm.dynamics.com", (), None, cached=False)


def test_a_page_expires_after_its_time_to_live() -> None:
    clock = Clock()
    cache = PageCache(ttl_s=60, monotonic=clock)
    key = ("ws-1", "env", "", False, 50, None)
    cache.put(key, _page(1))
    clock.now += 59.9
    assert cache.get(key) == _page(1)
    clock.now += 0.1
    assert cache.get(key) is None


def test_the_cache_keeps_at_most_its_entries_and_drops_one_workspace() -> None:
    cache = PageCache(max_entries=3, monotonic=Clock())
    for n in range(5):
        cache.put((f"ws-{n % 2}", "env", str(n)), _page(n))
    assert cache.get(("ws-0", "env", "0")) is None and cache.get(("ws-1", "env", "1")) is None
    assert cache.get(("ws-0", "env", "4")) == _page(4)
    cache.drop_workspace("ws-0")
    assert cache.get(("ws-0", "env", "4")) is None and cache.get(("ws-1", "env", "3")) == _page(3)


def test_a_cursor_round_trips_only_for_its_own_query() -> None:
    mine = _fingerprint("ws-1", "ann", False, 50)
    cursor = encode_cursor('<cookie pagenumber="2" />', mine)
    assert decode_cursor(cursor, mine) == '<cookie pagenumber="2" />'
    for other in (
        _fingerprint("ws-2", "ann", False, 50),
        _fingerprint("ws-1", "bob", False, 50),
        _fingerprint("ws-1", "ann", True, 50),
        _fingerprint("ws-1", "ann", False, 20),
    ):
        with pytest.raises(InvalidCursor):
            decode_cursor(cursor, other)


@pytest.mark.parametrize("cursor", ["!!!", "bm90IGpzb24", "e30", "eyJ0IjoiIn0", "x" * (MAX_CURSOR + 1)])
def test_a_made_up_cursor_is_refused(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor, _fingerprint("ws-1", "", False, 50))
