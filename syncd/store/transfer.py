"""SQL for exporting and importing packs: winning pack revisions, in doc-id order, by pages.

A pack is a document whose winning revision is not deleted and whose body has
``"type": "pack"``. Pages are keyset-paged on ``doc_id`` (``doc_id > after``), so each page
costs the same however deep into the database it starts.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(slots=True)
class PackRow:
    """A pack's id and the JSON body of its winning revision."""

    doc_id: str
    body: bytes


@dataclass(slots=True)
class CurrentDoc:
    """What an import needs to know of an existing document: its winner and that body."""

    doc_id: str
    rev: str
    deleted: bool
    body: bytes | None  # None when the winner's body is not kept
    atts: bytes | None


# The body is stored as a BLOB of JSON text; CAST keeps json_extract reading it as text on
# every SQLite version (3.45+ would otherwise consider a BLOB to be JSONB).
_WINNING_PACKS = (
    "SELECT d.doc_id, r.body FROM docs d "
    "JOIN revs r ON r.db_id = d.db_id AND r.doc_id = d.doc_id AND r.rev = d.rev "
    "WHERE d.db_id = ? AND d.deleted = 0 "
    "AND json_extract(CAST(r.body AS TEXT), '$.type') = 'pack'"
)


def pack_page(conn: sqlite3.Connection, db_id: int, after: str | None, limit: int) -> list[PackRow]:
    """Up to ``limit`` packs whose id sorts after ``after`` (from the start if None)."""
    if after is None:
        sql = f"{_WINNING_PACKS} ORDER BY d.doc_id LIMIT ?"
        params: tuple[object, ...] = (db_id, limit)
    else:
        sql = f"{_WINNING_PACKS} AND d.doc_id > ? ORDER BY d.doc_id LIMIT ?"
        params = (db_id, after, limit)
    return [PackRow(doc_id, body) for doc_id, body in conn.execute(sql, params)]


def get_pack(conn: sqlite3.Connection, db_id: int, doc_id: str) -> PackRow | None:
    """One pack by id (None when missing, deleted, or not a pack)."""
    row = conn.execute(f"{_WINNING_PACKS} AND d.doc_id = ?", (db_id, doc_id)).fetchone()
    return PackRow(row[0], row[1]) if row else None


def count_packs(conn: sqlite3.Connection, db_id: int) -> int:
    """How many packs the database holds."""
    sql = f"SELECT count(*) FROM ({_WINNING_PACKS})"
    return int(conn.execute(sql, (db_id,)).fetchone()[0])


def current_docs(
    conn: sqlite3.Connection, db_id: int, doc_ids: Sequence[str]
) -> dict[str, CurrentDoc]:
    """The winners of those of ``doc_ids`` that exist (deleted ones too), by id."""
    out: dict[str, CurrentDoc] = {}
    unique = list(dict.fromkeys(doc_ids))
    # Chunked so no statement exceeds SQLite's bound-variable limit.
    for start in range(0, len(unique), 500):
        chunk = unique[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for doc_id, rev, deleted, body, atts in conn.execute(
            "SELECT d.doc_id, d.rev, d.deleted, r.body, r.atts FROM docs d "
            "LEFT JOIN revs r ON r.db_id = d.db_id AND r.doc_id = d.doc_id AND r.rev = d.rev "
            f"WHERE d.db_id = ? AND d.doc_id IN ({marks})",
            (db_id, *chunk),
        ):
            out[doc_id] = CurrentDoc(doc_id, rev, bool(deleted), body, atts)
    return out
