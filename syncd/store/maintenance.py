"""Backups, restores and consistency checks of the SQLite file (used by the CLI).

``backup`` uses SQLite's online backup API in one step: it reads one consistent snapshot while
the server keeps writing (WAL mode lets the writer go on), so every write acknowledged before
the backup started is in the copy.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from syncd.replication import revtree


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


def backup(source: Path, dest: Path) -> int:
    """Copy ``source`` to ``dest`` online; return the copy's size in bytes."""
    if dest.exists():
        raise FileExistsError(f"{dest} exists; choose a new file name")
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    src = _connect(source)
    try:
        out = sqlite3.connect(partial)
        try:
            src.backup(out, pages=-1)  # one step: one snapshot
            out.execute("PRAGMA journal_mode=DELETE")  # a self-contained file, no -wal beside it
        finally:
            out.close()
    finally:
        src.close()
    with open(partial, "rb") as handle:
        os.fsync(handle.fileno())
    partial.rename(dest)
    return dest.stat().st_size


def restore(source: Path, target: Path) -> Path | None:
    """Replace ``target`` with a copy of ``source``; the old file is kept aside (returned)."""
    problems = list(check(source))
    if problems:
        raise ValueError(f"{source} is not a sound syncd database: {problems[0]}")
    staged = target.with_name(target.name + ".restoring")
    if staged.exists():
        staged.unlink()
    src = _connect(source)
    try:
        out = sqlite3.connect(staged)
        try:
            src.backup(out, pages=-1)
        finally:
            out.close()
    finally:
        src.close()
    kept = None
    if target.exists():
        kept = target.with_name(f"{target.name}.before-restore-{int(time.time())}")
        shutil.move(target, kept)
    for suffix in ("-wal", "-shm"):
        stale = target.with_name(target.name + suffix)
        if stale.exists():
            stale.unlink()
    staged.rename(target)
    return kept


@dataclass(frozen=True)
class Problem:
    """One thing ``check`` found wrong."""

    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"


def check(path: Path) -> Iterator[Problem]:
    """SQLite's integrity check, then syncd's own consistency rules."""
    conn = _connect(path)
    try:
        yield from _check(conn)
    finally:
        conn.close()


def _check(conn: sqlite3.Connection) -> Iterator[Problem]:
    for (line,) in conn.execute("PRAGMA integrity_check"):
        if line != "ok":
            yield Problem("integrity", str(line))
    for row in conn.execute("PRAGMA foreign_key_check"):
        yield Problem("foreign_key", f"{row[0]} row {row[1]} refers to a missing {row[2]}")
    for db, doc_id in conn.execute(
        "SELECT b.name, d.doc_id FROM docs d JOIN dbs b ON b.id = d.db_id "
        "LEFT JOIN revs r ON r.db_id = d.db_id AND r.doc_id = d.doc_id AND r.rev = d.rev "
        "WHERE r.rev IS NULL"
    ):
        yield Problem("missing_body", f"{db}/{doc_id}: the winning revision has no body")
    for db, top, update_seq in conn.execute(
        "SELECT b.name, max(d.seq), b.update_seq FROM dbs b JOIN docs d ON d.db_id = b.id "
        "GROUP BY b.id HAVING max(d.seq) > b.update_seq"
    ):
        yield Problem("seq", f"{db}: a document has seq {top} beyond update_seq {update_seq}")
    for db, stored, live in conn.execute(
        "SELECT b.name, b.doc_count, (SELECT count(*) FROM docs d WHERE d.db_id = b.id "
        "AND d.deleted = 0) AS live FROM dbs b WHERE b.doc_count != live"
    ):
        yield Problem("doc_count", f"{db}: doc_count {stored} but {live} live documents")
    for db, doc_id, digest in conn.execute(
        "SELECT b.name, r.doc_id, json_extract(a.value, '$.digest') FROM revs r "
        "JOIN dbs b ON b.id = r.db_id, json_each(r.atts) a WHERE r.atts IS NOT NULL "
        "AND json_extract(a.value, '$.digest') NOT IN (SELECT digest FROM att_bodies)"
    ):
        yield Problem("attachment", f"{db}/{doc_id}: no body for {digest}")
    for db, doc_id, rev, deleted, tree in conn.execute(
        "SELECT b.name, d.doc_id, d.rev, d.deleted, d.tree FROM docs d JOIN dbs b ON b.id = d.db_id"
    ):
        parsed = revtree.from_json(orjson.loads(tree))
        winner = revtree.winner(parsed)
        if winner != rev or parsed[winner][1] != bool(deleted):
            yield Problem("winner", f"{db}/{doc_id}: stored winner {rev}, tree says {winner}")
