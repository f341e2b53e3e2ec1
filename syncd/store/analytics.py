"""SQL for anonymous analytics: raw events, daily roll-ups, retention."""

from __future__ import annotations

import functools
import sqlite3
from collections import Counter
from collections.abc import Sequence
from typing import NamedTuple

EVENT_COLUMNS = (
    "name",
    "ts",
    "day",
    "install_id",
    "app_version",
    "platform",
    "props",
    "received_at",
)


class EventRow(NamedTuple):
    """One accepted event, ready to store (nothing that identifies a person)."""

    name: str
    ts: str
    day: str
    install_id: str
    app_version: str
    platform: str
    props: str
    received_at: float


_WIDTH = len(EVENT_COLUMNS)
# Rows per INSERT statement, largest first: every count is a sum of a few of them, and the
# connection's statement cache keeps a couple of dozen shapes of the statement, not one per
# count. Whole batches (multiples of 100 events, up to 1,000) take one statement.
_SHAPES = (*range(1000, 0, -100), 64, 32, 16, 8, 4, 2, 1)
_ROW = "(" + ", ".join("?" * _WIDTH) + ")"
_INSERT = f"INSERT INTO analytics_events ({', '.join(EVENT_COLUMNS)}) VALUES {_ROW}"


@functools.cache
def _insert_sql(rows: int) -> str:
    return _INSERT + f", {_ROW}" * (rows - 1)


def _chunks(count: int) -> list[int]:
    """Rows per statement for ``count`` events (greedy over _SHAPES)."""
    sizes = []
    for shape in _SHAPES:
        while count >= shape:
            sizes.append(shape)
            count -= shape
    return sizes


# One upsert per new row: cheaper than grouping them first (SQLite sorts to GROUP BY).
_ROLL_UP = (
    "INSERT INTO analytics_daily (day, name, platform, app_version, count) "
    "SELECT day, name, platform, app_version, 1 FROM analytics_events WHERE id BETWEEN ? AND ? "
    "ON CONFLICT DO UPDATE SET count = count + excluded.count"
)
_ADD_COUNT = (
    "INSERT INTO analytics_daily (day, name, platform, app_version, count) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET count = count + excluded.count"
)


def insert_events(conn: sqlite3.Connection, values: Sequence[object]) -> None:
    """Store events and add them to the daily counts, in the caller's transaction.

    ``values`` holds the events' values one event after another, each in EVENT_COLUMNS
    order. A few multi-row INSERTs (one SQLite step, so one GIL release and one wait to get
    it back, per statement rather than per row), then one statement adds the new rows to
    the daily counts, read back by their row ids: SQLite gives the rows of one INSERT
    consecutive ids (one more than the largest), and nothing else writes between our
    statements.
    """
    count = len(values) // _WIDTH
    if count == 0:
        return
    first = last = 0
    start = 0
    for rows in _chunks(count):
        end = start + rows * _WIDTH
        last = conn.execute(_insert_sql(rows), values[start:end]).lastrowid or 0
        if start == 0:
            first = last - rows + 1
        start = end
    if last - first + 1 == count:
        conn.execute(_ROLL_UP, (first, last))
        return
    # Not consecutive (SQLite picks random ids once the largest id is taken): count here.
    counts = Counter(
        (values[i + 2], values[i], values[i + 5], values[i + 4])
        for i in range(0, len(values), _WIDTH)
    )
    conn.executemany(_ADD_COUNT, [(*key, n) for key, n in counts.items()])


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
