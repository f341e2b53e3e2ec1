"""SQL for databases, documents, revision bodies and _local documents.

Plain functions of a ``sqlite3.Connection``; they run in a connection's thread (see
``syncd.store.sqlite``). They know tables, not CouchDB rules: those live in
``syncd.services`` and ``syncd.replication``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import orjson

from syncd.replication import revtree
from syncd.replication.revtree import RevTree


@dataclass(slots=True)
class DbRow:
    """A database's row in ``dbs``."""

    id: int
    name: str
    update_seq: int
    doc_count: int
    doc_del_count: int
    revs_limit: int


@dataclass(slots=True)
class DocRow:
    """A document's row: winner, deletion, last change seq, and the revision tree."""

    doc_id: str
    rev: str
    deleted: bool
    seq: int
    tree: RevTree


@dataclass(slots=True)
class RevBody:
    """A kept revision body: the JSON of the document's own fields and of its attachments."""

    rev: str
    body: bytes
    atts: bytes | None


_DB_COLUMNS = "id, name, update_seq, doc_count, doc_del_count, revs_limit"


def get_db(conn: sqlite3.Connection, name: str) -> DbRow | None:
    """The database called ``name``, if any."""
    row = conn.execute(f"SELECT {_DB_COLUMNS} FROM dbs WHERE name = ?", (name,)).fetchone()
    return DbRow(*row) if row else None


def list_dbs(conn: sqlite3.Connection) -> list[str]:
    """All database names, sorted."""
    return [r[0] for r in conn.execute("SELECT name FROM dbs ORDER BY name")]


def totals(conn: sqlite3.Connection) -> tuple[int, int]:
    """(number of databases, live documents in all of them)."""
    row = conn.execute("SELECT count(*), coalesce(sum(doc_count), 0) FROM dbs").fetchone()
    return int(row[0]), int(row[1])


def create_db(conn: sqlite3.Connection, name: str, created_at: str) -> bool:
    """Create a database; False if the name is taken."""
    cur = conn.execute(
        "INSERT INTO dbs (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
        (name, created_at),
    )
    return cur.rowcount == 1


def delete_db(conn: sqlite3.Connection, db_id: int) -> None:
    """Delete a database with everything in it."""
    conn.execute("DELETE FROM revs WHERE db_id = ?", (db_id,))
    conn.execute("DELETE FROM docs WHERE db_id = ?", (db_id,))
    conn.execute("DELETE FROM local_docs WHERE db_id = ?", (db_id,))
    conn.execute("DELETE FROM dbs WHERE id = ?", (db_id,))


def set_revs_limit(conn: sqlite3.Connection, db_id: int, limit: int) -> None:
    """Change how many revisions per branch the database keeps."""
    conn.execute("UPDATE dbs SET revs_limit = ? WHERE id = ?", (limit, db_id))


def update_db_counters(
    conn: sqlite3.Connection, db_id: int, update_seq: int, doc_delta: int, del_delta: int
) -> None:
    """Record a new update_seq and the change in live and deleted document counts."""
    conn.execute(
        "UPDATE dbs SET update_seq = ?, doc_count = doc_count + ?, "
        "doc_del_count = doc_del_count + ? WHERE id = ?",
        (update_seq, doc_delta, del_delta, db_id),
    )


def body_size(conn: sqlite3.Connection, db_id: int) -> int:
    """Bytes of kept revision bodies in a database (CouchDB's ``sizes.external``)."""
    row = conn.execute(
        "SELECT coalesce(sum(length(body) + coalesce(length(atts), 0)), 0) FROM revs WHERE db_id = ?",
        (db_id,),
    ).fetchone()
    return int(row[0])


def _doc_row(row: Sequence[object]) -> DocRow:
    return DocRow(
        row[0],  # type: ignore[arg-type]
        row[1],  # type: ignore[arg-type]
        bool(row[2]),
        row[3],  # type: ignore[arg-type]
        revtree.from_json(orjson.loads(row[4])),  # type: ignore[arg-type]
    )


def load_doc(conn: sqlite3.Connection, db_id: int, doc_id: str) -> DocRow | None:
    """A document's row with its revision tree, if the document exists."""
    row = conn.execute(
        "SELECT doc_id, rev, deleted, seq, tree FROM docs WHERE db_id = ? AND doc_id = ?",
        (db_id, doc_id),
    ).fetchone()
    return _doc_row(row) if row else None


def load_docs(conn: sqlite3.Connection, db_id: int, doc_ids: Sequence[str]) -> dict[str, DocRow]:
    """The rows of those of ``doc_ids`` that exist, by id."""
    out: dict[str, DocRow] = {}
    unique = list(dict.fromkeys(doc_ids))
    # Chunked so no statement exceeds SQLite's bound-variable limit.
    for start in range(0, len(unique), 500):
        chunk = unique[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for row in conn.execute(
            "SELECT doc_id, rev, deleted, seq, tree FROM docs "
            f"WHERE db_id = ? AND doc_id IN ({marks})",
            (db_id, *chunk),
        ):
            out[row[0]] = _doc_row(row)
    return out


def save_doc(
    conn: sqlite3.Connection,
    db_id: int,
    doc_id: str,
    rev: str,
    deleted: bool,
    seq: int,
    tree: RevTree,
) -> None:
    """Insert or replace a document's row."""
    conn.execute(
        "INSERT INTO docs (db_id, doc_id, rev, deleted, seq, tree) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (db_id, doc_id) DO UPDATE SET rev = excluded.rev, "
        "deleted = excluded.deleted, seq = excluded.seq, tree = excluded.tree",
        (db_id, doc_id, rev, int(deleted), seq, orjson.dumps(revtree.to_json(tree))),
    )


def insert_rev(
    conn: sqlite3.Connection, db_id: int, doc_id: str, rev: str, body: bytes, atts: bytes | None
) -> None:
    """Keep a revision body (a body already kept for that rev stays as it is)."""
    conn.execute(
        "INSERT INTO revs (db_id, doc_id, rev, body, atts) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT DO NOTHING",
        (db_id, doc_id, rev, body, atts),
    )


def delete_revs(conn: sqlite3.Connection, db_id: int, doc_id: str, revs: Iterable[str]) -> None:
    """Drop the bodies of these revisions."""
    conn.executemany(
        "DELETE FROM revs WHERE db_id = ? AND doc_id = ? AND rev = ?",
        [(db_id, doc_id, rev) for rev in revs],
    )


def read_revs(
    conn: sqlite3.Connection, db_id: int, doc_id: str, revs: Sequence[str]
) -> dict[str, RevBody]:
    """The kept bodies among ``revs``, by rev."""
    if not revs:
        return {}
    out: dict[str, RevBody] = {}
    # Chunked so no statement exceeds SQLite's bound-variable limit.
    for start in range(0, len(revs), 500):
        chunk = revs[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for rev, body, atts in conn.execute(
            f"SELECT rev, body, atts FROM revs WHERE db_id = ? AND doc_id = ? AND rev IN ({marks})",
            (db_id, doc_id, *chunk),
        ):
            out[rev] = RevBody(rev, body, atts)
    return out


def kept_revs(conn: sqlite3.Connection, db_id: int, doc_id: str) -> set[str]:
    """Revs whose bodies are kept for a document."""
    return {
        r[0]
        for r in conn.execute(
            "SELECT rev FROM revs WHERE db_id = ? AND doc_id = ?", (db_id, doc_id)
        )
    }


def iter_doc_trees(conn: sqlite3.Connection, db_id: int) -> Iterable[tuple[str, RevTree]]:
    """Every document id with its tree (compaction walks these)."""
    for doc_id, tree in conn.execute("SELECT doc_id, tree FROM docs WHERE db_id = ?", (db_id,)):
        yield doc_id, revtree.from_json(orjson.loads(tree))


@dataclass(slots=True)
class AllDocsRow:
    """One row of ``_all_docs`` before shaping: id, winner, deletion, winner body."""

    doc_id: str
    rev: str
    deleted: bool
    tree: RevTree
    body: bytes | None
    atts: bytes | None


def all_docs_range(
    conn: sqlite3.Connection,
    db_id: int,
    *,
    start: str | None,
    end: str | None,
    inclusive_end: bool,
    descending: bool,
    skip: int,
    limit: int | None,
    include_bodies: bool,
) -> tuple[list[AllDocsRow], int]:
    """Non-deleted documents in id order within a range; also the offset of the first row."""
    clauses = ["d.db_id = ?", "d.deleted = 0"]
    params: list[object] = [db_id]
    lo_op, hi_op = (">=", "<=" if inclusive_end else "<")
    if descending:
        if start is not None:
            clauses.append("d.doc_id <= ?")
            params.append(start)
        if end is not None:
            clauses.append(f"d.doc_id {'>=' if inclusive_end else '>'} ?")
            params.append(end)
    else:
        if start is not None:
            clauses.append(f"d.doc_id {lo_op} ?")
            params.append(start)
        if end is not None:
            clauses.append(f"d.doc_id {hi_op} ?")
            params.append(end)
    order = "DESC" if descending else "ASC"
    select = "d.doc_id, d.rev, d.deleted, d.tree"
    join = ""
    if include_bodies:
        select += ", r.body, r.atts"
        join = "LEFT JOIN revs r ON r.db_id = d.db_id AND r.doc_id = d.doc_id AND r.rev = d.rev"
    sql = (
        f"SELECT {select} FROM docs d {join} WHERE {' AND '.join(clauses)} "
        f"ORDER BY d.doc_id {order} LIMIT ? OFFSET ?"
    )
    rows = conn.execute(sql, (*params, -1 if limit is None else limit, skip)).fetchall()
    # offset: how many live documents sort before the first row in this direction.
    if start is None:
        offset = skip
    else:
        cmp = ">" if descending else "<"
        before = conn.execute(
            f"SELECT count(*) FROM docs WHERE db_id = ? AND deleted = 0 AND doc_id {cmp} ?",
            (db_id, start),
        ).fetchone()[0]
        offset = before + skip
    out = []
    for row in rows:
        out.append(
            AllDocsRow(
                row[0],
                row[1],
                bool(row[2]),
                revtree.from_json(orjson.loads(row[3])),
                row[4] if include_bodies else None,
                row[5] if include_bodies else None,
            )
        )
    return out, offset


def docs_by_ids(
    conn: sqlite3.Connection, db_id: int, doc_ids: Sequence[str], include_bodies: bool
) -> dict[str, AllDocsRow]:
    """The rows (deleted ones too) of the given ids that exist."""
    out: dict[str, AllDocsRow] = {}
    for doc_id in dict.fromkeys(doc_ids):
        row = conn.execute(
            "SELECT d.doc_id, d.rev, d.deleted, d.tree, r.body, r.atts FROM docs d "
            "LEFT JOIN revs r ON r.db_id = d.db_id AND r.doc_id = d.doc_id AND r.rev = d.rev "
            "WHERE d.db_id = ? AND d.doc_id = ?",
            (db_id, doc_id),
        ).fetchone()
        if row:
            out[doc_id] = AllDocsRow(
                row[0],
                row[1],
                bool(row[2]),
                revtree.from_json(orjson.loads(row[3])),
                row[4] if include_bodies else None,
                row[5] if include_bodies else None,
            )
    return out


# _local documents ------------------------------------------------------------------------


def get_local(conn: sqlite3.Connection, db_id: int, doc_id: str) -> tuple[int, bytes] | None:
    """A _local document's rev number and body."""
    row = conn.execute(
        "SELECT rev, body FROM local_docs WHERE db_id = ? AND doc_id = ?", (db_id, doc_id)
    ).fetchone()
    return (row[0], row[1]) if row else None


def put_local(conn: sqlite3.Connection, db_id: int, doc_id: str, rev: int, body: bytes) -> None:
    """Write a _local document."""
    conn.execute(
        "INSERT INTO local_docs (db_id, doc_id, rev, body) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (db_id, doc_id) DO UPDATE SET rev = excluded.rev, body = excluded.body",
        (db_id, doc_id, rev, body),
    )


def delete_local(conn: sqlite3.Connection, db_id: int, doc_id: str) -> None:
    """Remove a _local document."""
    conn.execute("DELETE FROM local_docs WHERE db_id = ? AND doc_id = ?", (db_id, doc_id))


# server facts ----------------------------------------------------------------------------


def get_meta(conn: sqlite3.Connection, key: str) -> str | None:
    """A server-wide fact."""
    row = conn.execute("SELECT value FROM server_meta WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def set_meta_once(conn: sqlite3.Connection, key: str, value: str) -> str:
    """Store ``value`` under ``key`` unless a value is there; return the value kept."""
    conn.execute(
        "INSERT INTO server_meta (key, value) VALUES (?, ?) ON CONFLICT DO NOTHING", (key, value)
    )
    return get_meta(conn, key)  # type: ignore[return-value]
