"""The limiter's in-memory storage: exact limits, expired entries swept inline, no task per hit."""

from __future__ import annotations

import time

from limits import parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from syncd.web.ratelimit import SweepingMemoryStorage


def test_the_hook_it_replaces_still_exists_in_limits() -> None:
    # If limits renames its expiry hook, the override would silently stop applying.
    assert hasattr(MemoryStorage, "_MemoryStorage__schedule_expiry")


async def test_the_moving_window_still_refuses_the_hit_over_the_limit() -> None:
    window = MovingWindowRateLimiter(SweepingMemoryStorage())
    three = parse("3/minute")
    assert [await window.hit(three, "k") for _ in range(4)] == [True, True, True, False]
    assert await window.hit(three, "other")


async def test_hits_start_no_expiry_task() -> None:
    storage = SweepingMemoryStorage()
    window = MovingWindowRateLimiter(storage)
    for _ in range(5):
        await window.hit(parse("10/minute"), "k")
    assert storage.timer is None


async def test_a_sweep_drops_expired_entries_and_keeps_live_ones() -> None:
    storage = SweepingMemoryStorage()
    await storage.acquire_entry("short", limit=5, expiry=1)
    await storage.acquire_entry("long", limit=5, expiry=3600)
    storage.sweep(time.time() + 2)
    assert "short" not in storage.events
    assert "short" not in storage.locks
    assert len(storage.events["long"]) == 1


async def test_a_sweep_drops_expired_counters() -> None:
    storage = SweepingMemoryStorage()
    await storage.incr("counter", expiry=1)
    storage.sweep(time.time() + 2)
    assert "counter" not in storage.storage
    assert "counter" not in storage.expirations


async def test_sweeps_run_at_most_once_a_second_as_hits_arrive() -> None:
    storage = SweepingMemoryStorage()
    window = MovingWindowRateLimiter(storage)
    await window.hit(parse("5/hour"), "first")  # sweeps (the first hit always does)
    swept_at = storage._last_sweep
    await window.hit(parse("5/hour"), "second")
    assert storage._last_sweep == swept_at
    storage._last_sweep -= SweepingMemoryStorage.SWEEP_SECONDS
    await window.hit(parse("5/hour"), "third")
    assert storage._last_sweep >= swept_at
