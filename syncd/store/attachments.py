"""SQL for attachment bodies: stored once per digest, dropped when no kept revision uses them."""

from __future__ import annotations

import sqlite3


def put_body(conn: sqlite3.Connection, digest: str, data: bytes) -> None:
    """Keep ``data`` under ``digest`` (a body already kept stays as it is)."""
    conn.execute(
        "INSERT INTO att_bodies (digest, length, data) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        (digest, len(data), data),
    )


def get_body(conn: sqlite3.Connection, digest: str) -> bytes | None:
    """The bytes kept under ``digest``."""
    row = conn.execute("SELECT data FROM att_bodies WHERE digest = ?", (digest,)).fetchone()
    return bytes(row[0]) if row else None


def has_body(conn: sqlite3.Connection, digest: str) -> bool:
    """Whether bytes are kept under ``digest``."""
    return (
        conn.execute("SELECT 1 FROM att_bodies WHERE digest = ?", (digest,)).fetchone() is not None
    )


def drop_unreferenced(conn: sqlite3.Connection) -> int:
    """Delete bodies no kept revision refers to; return how many went."""
    cur = conn.execute(
        "DELETE FROM att_bodies WHERE digest NOT IN ("
        " SELECT json_extract(a.value, '$.digest') FROM revs r, json_each(r.atts) a"
        " WHERE r.atts IS NOT NULL)"
    )
    return cur.rowcount
