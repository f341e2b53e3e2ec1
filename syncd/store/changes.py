"""SQL for the changes feed: the (db_id, seq) index read in order."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(slots=True)
class ChangeRow:
    """A document at its latest seq: winner, deletion, tree JSON, and (maybe) winner body."""

    seq: int
    doc_id: str
    rev: str
    deleted: bool
    tree: bytes
    body: bytes | None
    atts: bytes | None


def read_changes(
    conn: sqlite3.Connection,
    db_id: int,
    since: int,
    limit: int,
    *,
    before: int | None = None,
    descending: bool = False,
    include_bodies: bool = False,
    doc_ids: Sequence[str] | None = None,
    design_only: bool = False,
) -> list[ChangeRow]:
    """Up to ``limit`` documents changed after ``since`` (and before ``before``), in seq order."""
    clauses = ["d.db_id = ?", "d.seq > ?"]
    params: list[object] = [db_id, since]
    if before is not None:
        clauses.append("d.seq < ?")
        params.append(before)
    if doc_ids is not None:
        clauses.append(f"d.doc_id IN ({','.join('?' * len(doc_ids))})")
        params.extend(doc_ids)
    if design_only:
        clauses.append("d.doc_id >= '_design/' AND d.doc_id < '_design0'")
    select = "d.seq, d.doc_id, d.rev, d.deleted, d.tree"
    join = ""
    if include_bodies:
        select += ", r.body, r.atts"
        join = "LEFT JOIN revs r ON r.db_id = d.db_id AND r.doc_id = d.doc_id AND r.rev = d.rev"
    else:
        select += ", NULL, NULL"
    order = "DESC" if descending else "ASC"
    sql = (
        f"SELECT {select} FROM docs d {join} WHERE {' AND '.join(clauses)} "
        f"ORDER BY d.seq {order} LIMIT ?"
    )
    return [
        ChangeRow(r[0], r[1], r[2], bool(r[3]), r[4], r[5], r[6])
        for r in conn.execute(sql, (*params, limit))
    ]


def count_after(conn: sqlite3.Connection, db_id: int, seq: int) -> int:
    """How many documents changed after ``seq`` (the feed's ``pending``)."""
    return int(
        conn.execute(
            "SELECT count(*) FROM docs WHERE db_id = ? AND seq > ?", (db_id, seq)
        ).fetchone()[0]
    )
