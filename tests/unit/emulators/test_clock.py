"""The emulator clock: tests move time instead of sleeping through a 300 s window."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest

from emulators.dataverse.clock import Clock


def test_running_clock_follows_wall_time() -> None:
    clock = Clock()
    assert abs(clock.now() - time.time()) < 0.5
    before = clock.now()
    time.sleep(0.02)
    assert clock.now() > before


def test_frozen_clock_stands_still_until_advanced() -> None:
    clock = Clock(start=1_000_000.0, frozen=True)
    time.sleep(0.01)
    assert clock.now() == 1_000_000.0
    assert clock.advance(300) == 1_000_300.0
    assert clock.now() == 1_000_300.0


def test_advance_moves_a_running_clock_ahead_of_wall_time() -> None:
    clock = Clock()
    clock.advance(3600)
    assert 3599 < clock.now() - time.time() < 3601


def test_set_and_utcnow_agree() -> None:
    clock = Clock(frozen=True)
    clock.set(1_767_225_600)  # 2026-01-01T00:00:00Z
    assert clock.utcnow() == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert clock.iso_now() == "2026-01-01T00:00:00Z"


def test_cannot_go_backwards_with_advance() -> None:
    with pytest.raises(ValueError):
        Clock().advance(-1)


def test_freeze_and_unfreeze_keep_the_instant() -> None:
    clock = Clock(start=500.0)
    clock.freeze()
    frozen_at = clock.now()
    time.sleep(0.01)
    assert clock.now() == frozen_at
    clock.unfreeze()
    assert frozen_at <= clock.now() < frozen_at + 0.5


def test_concurrent_advances_are_not_lost() -> None:
    clock = Clock(start=0.0, frozen=True)

    def step() -> None:
        for _ in range(1000):
            clock.advance(1)

    threads = [threading.Thread(target=step) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert clock.now() == 4000.0
