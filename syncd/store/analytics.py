"""SQL for anonymous analytics: raw events, daily roll-ups, retention."""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(slots=True)
class EventRow:
    """One accepted event, ready to store (nothing that identifies a person)."""

    name: str
    ts: str
    day: str
    install_id: str
    app_version: str
    platform: str
    props: str
    received_at: float


def insert_events(conn: sqlite3.Connection, events: Sequence[EventRow]) -> None:
    """Store events and add them to the daily counts, in the caller's transaction."""
    conn.executemany(
        "INSERT INTO analytics_events (name, ts, day, install_id, app_version, platform, props, "
        "received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (e.name, e.ts, e.day, e.install_id, e.app_version, e.platform, e.props, e.received_at)
            for e in events
        ],
    )
    counts = Counter((e.day, e.name, e.platform, e.app_version) for e in events)
    conn.executemany(
        "INSERT INTO analytics_daily (day, name, platform, app_version, count) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET count = count + excluded.count",
        [(*key, n) for key, n in counts.items()],
    )


def delete_older_than(conn: sqlite3.Connection, received_before: float, batch: int = 10_000) -> int:
    """Drop raw events received before a time (a batch at a time); return how many went."""
    cur = conn.execute(
        "DELETE FROM analytics_events WHERE id IN (SELECT id FROM analytics_events "
        "WHERE received_at < ? LIMIT ?)",
        (received_before, batch),
    )
    return cur.rowcount


def daily_counts(
    conn: sqlite3.Connection, first_day: str, last_day: str, name: str | None
) -> list[tuple[str, str, str, str, int]]:
    """(day, name, platform, app_version, count) between two days, inclusive."""
    sql = (
        "SELECT day, name, platform, app_version, count FROM analytics_daily "
        "WHERE day >= ? AND day <= ?"
    )
    params: list[object] = [first_day, last_day]
    if name is not None:
        sql += " AND name = ?"
        params.append(name)
    return list(conn.execute(sql + " ORDER BY day, name, platform, app_version", params))


def count_events(conn: sqlite3.Connection) -> int:
    """How many raw events are kept."""
    return int(conn.execute("SELECT count(*) FROM analytics_events").fetchone()[0])
