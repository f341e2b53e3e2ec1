"""Analytics ingestion internals: the fast ``ts`` check decides exactly as the full one, the
multi-row insert and its daily counts for any number of events, and batches stored together
(several requests, one writer op): all of them answered, counted once, and failing together.

The behaviour seen through the API is in test_analytics.py.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from test_analytics import EVENTS, event, rows

from syncd.config import Settings
from syncd.services.analytics import (
    DEFAULT_EVENTS,
    DEFAULT_PROPS,
    FUTURE_SECONDS,
    PAST_DAYS,
    AnalyticsRules,
    EventChecker,
    EventError,
    _timestamp,
    check_event,
    received_hour,
)
from syncd.store import analytics as store
from syncd.web.keys import SERVICES

RULES = AnalyticsRules(frozenset(DEFAULT_EVENTS), frozenset(DEFAULT_PROPS))
SCHEMA = Path(__file__).resolve().parents[1] / "syncd" / "store" / "sql" / "schema.sql"


# --- the ts check ---------------------------------------------------------------------------


def full_check(ts: object, now: float) -> tuple[str, str] | str:
    """(stored ts, day) as the full check makes them, or its reason for refusing."""
    try:
        moment = _timestamp(ts, now)
    except EventError as exc:
        return str(exc)
    return moment.isoformat(timespec="milliseconds"), moment.date().isoformat()


def checked(ts: object, now: float) -> tuple[str, str] | str:
    """(stored ts, day) as ingestion makes them, or its reason for refusing."""
    values, errors = EventChecker(RULES).check([event(ts=ts)], now)
    if errors:
        return errors[0][1]
    return values[1], values[2]


def ms(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def ts_cases(now: float) -> list[object]:
    at = datetime.fromtimestamp(now, UTC)
    oldest = at - timedelta(days=PAST_DAYS)
    latest = at + timedelta(seconds=FUTURE_SECONDS)
    milli = timedelta(milliseconds=1)
    return [
        ms(at),
        ms(at - timedelta(days=2, hours=3)),
        ms(oldest),
        ms(oldest - milli),
        ms(oldest + milli),
        ms(oldest + timedelta(seconds=1)),
        ms(oldest - timedelta(days=1)),
        ms(latest),
        ms(latest - milli),
        ms(latest + milli),
        ms(latest - timedelta(seconds=1)),
        ms(latest + timedelta(days=1)),
        ms(at).replace("Z", "+00:00"),
        ms(at).replace("Z", "z"),
        ms(at)[:19] + "Z",
        ms(at)[:19],
        ms(at)[:23] + "456Z",
        ms(at)[:23] + "+02:00",
        ms(at)[:11] + "24:00:00.000Z",
        ms(at)[:11] + "23:59:60.000Z",
        ms(at)[:11] + "23:60:00.000Z",
        ms(at)[:11] + "2\u0663:00:00.000Z",  # an Arabic-Indic digit
        ms(at)[:8] + "32" + ms(at)[10:],
        ms(at)[:5] + "02-30" + ms(at)[10:],
        ms(at)[:10] + " " + ms(at)[11:],
        ms(at)[:23] + "ZZ",
        "yesterday",
        "",
        int(now * 1000),
        int(now * 1000) - PAST_DAYS * 86_400_000 - 1,
        float(now * 1000),
        True,
        None,
        [ms(at)],
    ]


@pytest.mark.parametrize("offset", [0.0, 0.25, 0.999, 3599.5, 86399.9])
def test_the_fast_ts_check_decides_as_the_full_one(offset: float) -> None:
    now = float(int(time.time()) // 86400 * 86400) + offset
    for ts in ts_cases(now):
        assert checked(ts, now) == full_check(ts, now), ts


def test_a_window_serves_every_now_of_its_second() -> None:
    checker = EventChecker(RULES)
    second = int(time.time())
    window = checker.window(second + 0.1)
    assert checker.window(second + 0.9) is window
    for now in (second + 0.0, second + 0.5, second + 0.999):
        cases = ts_cases(now)
        values, errors = checker.check([event(ts=ts) for ts in cases], now)
        assert checker.window(now) is window
        refused = dict(errors)
        width = len(store.EVENT_COLUMNS)
        at = 0
        for index, ts in enumerate(cases):
            if index in refused:
                assert refused[index] == full_check(ts, now), ts
            else:
                assert (values[at + 1], values[at + 2]) == full_check(ts, now), ts
                assert values[at + 7] == received_hour(now)
                at += width
        assert at == len(values)


def test_check_event_gives_the_stored_row() -> None:
    now = time.time()
    moment = datetime.fromtimestamp(now, UTC) - timedelta(hours=5)
    row = check_event(event(ts=ms(moment), props={"screen": "home", "count": 3}), RULES, now)
    assert row == store.EventRow(
        "app_open",
        moment.isoformat(timespec="milliseconds"),
        moment.date().isoformat(),
        "install-0001",
        "1.4.0",
        "ios",
        '{"count":3,"screen":"home"}',
        now - now % 3600,
    )
    assert check_event(event(props={}), RULES, now).props == "{}"
    assert check_event({k: v for k, v in event().items() if k != "props"}, RULES, now).props == "{}"


@pytest.mark.parametrize(
    ("field", "value"),
    [("install_id", "install-0001\n"), ("app_version", "1.4.0\n")],
)
def test_a_trailing_newline_is_not_part_of_a_valid_id_or_version(field: str, value: str) -> None:
    with pytest.raises(EventError, match=f"{field} must be"):
        check_event(event(**{field: value}), RULES, time.time())


def test_the_first_failing_check_gives_the_reason() -> None:
    bad = event(name="nope", ts="yesterday", platform="windows", props={"email": "x"})
    with pytest.raises(EventError, match="name is not an allowed event name"):
        check_event(bad, RULES, time.time())
    with pytest.raises(EventError, match=r"props\.email is not an allowed property"):
        check_event(event(props={"email": {"a": 1}, "screen": "s" * 500}), RULES, time.time())
    with pytest.raises(EventError, match=r"props\.screen must be at most 200"):
        check_event(event(props={"screen": "s" * 500, "email": 1}), RULES, time.time())
    with pytest.raises(EventError, match="unknown fields: a, ip"):
        check_event({**event(), "ip": "x", "a": 1}, RULES, time.time())


# --- the insert -----------------------------------------------------------------------------


def fresh_db() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.executescript(SCHEMA.read_text())
    return conn


def made_rows(count: int) -> list[store.EventRow]:
    now = time.time()
    at = datetime.fromtimestamp(now, UTC)
    return [
        check_event(
            event(
                name=DEFAULT_EVENTS[n % 3],
                ts=ms(at - timedelta(days=n % 4, seconds=n)),
                platform=("ios", "android")[n % 2],
                app_version=f"1.{n % 5}.0",
                install_id=f"install-{n:05d}",
            ),
            RULES,
            now,
        )
        for n in range(count)
    ]


def expected_counts(made: list[store.EventRow]) -> list[tuple[Any, ...]]:
    counts = Counter((r.day, r.name, r.platform, r.app_version) for r in made)
    return sorted((*key, n) for key, n in counts.items())


def daily(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    return sorted(
        conn.execute("SELECT day, name, platform, app_version, count FROM analytics_daily")
    )


@pytest.mark.parametrize("count", [1, 3, 99, 100, 101, 257, 1000, 1999, 2000, 3300])
def test_any_number_of_events_is_stored_and_counted(count: int) -> None:
    conn = fresh_db()
    made = made_rows(count)
    conn.execute("BEGIN")
    store.insert_events(conn, [value for row in made for value in row])
    conn.execute("COMMIT")
    stored = conn.execute(f"SELECT {', '.join(store.EVENT_COLUMNS)} FROM analytics_events")
    assert [store.EventRow(*r) for r in stored] == made
    assert daily(conn) == expected_counts(made)


def test_counts_add_to_what_is_there_and_only_new_rows_are_counted() -> None:
    conn = fresh_db()
    first, second = made_rows(150), made_rows(70)
    store.insert_events(conn, [value for row in first for value in row])
    store.insert_events(conn, [value for row in second for value in row])
    assert daily(conn) == expected_counts(first + second)


def test_counts_are_right_when_row_ids_are_not_consecutive() -> None:
    conn = fresh_db()
    # Past the largest row id SQLite picks free ids at random: the read-back by id range
    # cannot be used, the counts are made from the values instead.
    conn.execute(
        "INSERT INTO analytics_events (id, name, ts, day, install_id, app_version, platform, "
        "props, received_at) VALUES (9223372036854775807, 'x', 'x', 'x', 'x', 'x', 'x', '{}', 0)"
    )
    made = made_rows(250)
    store.insert_events(conn, [value for row in made for value in row])
    assert conn.execute("SELECT count(*) FROM analytics_events").fetchone() == (251,)
    assert daily(conn) == expected_counts(made)


def test_no_events_is_nothing_to_do() -> None:
    conn = fresh_db()
    store.insert_events(conn, [])
    assert daily(conn) == []


# --- batches stored together --------------------------------------------------------------


async def test_concurrent_batches_are_each_answered_and_counted_once(
    anon_client: TestClient, client: TestClient, settings: Settings
) -> None:
    async def send(n: int) -> Any:
        batch = [event(install_id=f"install-{n:04d}-{i:02d}") for i in range(n % 7 + 1)]
        batch.append({"name": "nope"})
        resp = await anon_client.post(EVENTS, json={"events": batch})
        assert resp.status == 200, await resp.text()
        return await resp.json()

    answers = await asyncio.gather(*(send(n) for n in range(60)))
    for n, body in enumerate(answers):
        size = n % 7 + 1
        assert (body["accepted"], body["rejected"]) == (size, 1)
        assert body["results"][:size] == [{"index": i, "ok": True} for i in range(size)]
        assert body["results"][size]["error"] == "invalid_event"
    total = sum(n % 7 + 1 for n in range(60))
    assert rows(settings, "SELECT count(*), count(DISTINCT install_id) FROM analytics_events") == [
        (total, total)
    ]
    assert rows(settings, "SELECT sum(count) FROM analytics_daily") == [(total,)]


async def test_a_caller_going_away_does_not_cancel_the_others_write(
    anon_client: TestClient, settings: Settings
) -> None:
    assert anon_client.app is not None
    analytics = anon_client.app[SERVICES].analytics
    batches = [{"events": [event(install_id=f"install-gone-{n}")]} for n in range(5)]
    tasks = [asyncio.ensure_future(analytics.ingest(b)) for b in batches]
    await asyncio.sleep(0)
    tasks[0].cancel()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(done[0], asyncio.CancelledError)
    assert [d["accepted"] for d in done[1:]] == [1, 1, 1, 1]
    # The write went on: the events of the caller that left are stored too.
    assert rows(settings, "SELECT count(*) FROM analytics_events") == [(5,)]


async def test_batches_stored_together_fail_together_and_the_next_ones_work(
    anon_client: TestClient, settings: Settings
) -> None:
    assert anon_client.app is not None
    writer = anon_client.app[SERVICES].writer
    await anon_client.post(EVENTS, json={"events": [event()]})  # the file as it will stay
    pages = rows(settings, "PRAGMA page_count")[0][0]
    await writer.set_max_bytes(pages * 4096)
    big = {"screen": "s" * 200}
    sends = [
        anon_client.post(EVENTS, json={"events": [event(props=big) for _ in range(100)]})
        for _ in range(4)
    ]
    statuses = [resp.status for resp in await asyncio.gather(*sends)]
    assert statuses == [507, 507, 507, 507]
    assert rows(settings, "SELECT count(*) FROM analytics_events") == [(1,)]
    await writer.set_max_bytes(1 << 30)
    resp = await anon_client.post(EVENTS, json={"events": [event(), event()]})
    assert resp.status == 200, await resp.text()
    assert rows(settings, "SELECT count(*) FROM analytics_events") == [(3,)]
    assert rows(settings, "SELECT sum(count) FROM analytics_daily") == [(3,)]
