"""WAL checkpoints off the writer's path: the writer's commits never checkpoint, a background
connection does once the WAL is far enough ahead, and the WAL still starts over under
continuous writes (the writer checkpoints itself when it gets long)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from syncd.store.checkpoint import CHECKPOINT_FRAMES, WalPosition, open_wal_index
from syncd.store.sqlite import ReaderPool, Writer, WriteTx, open_database, run

Store = tuple[Writer, ReaderPool]
BLOB = 3 * 4096  # a row of this many random bytes takes at least 3 WAL frames


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with open_database(tmp_path / "wal.sqlite3", readers=1) as opened:
        await opened[0].submit(_create_table)
        yield opened


def _create_table(tx: WriteTx) -> None:
    tx.conn.execute("CREATE TABLE blobs (id INTEGER PRIMARY KEY, data BLOB NOT NULL)")


def insert_blobs(count: int) -> Callable[[WriteTx], None]:
    def op(tx: WriteTx) -> None:
        tx.conn.executemany(
            "INSERT INTO blobs (data) VALUES (?)", [(os.urandom(BLOB),) for _ in range(count)]
        )

    return op


def position(writer: Writer) -> WalPosition:
    assert writer.checkpointer is not None
    where = writer.checkpointer.wal_position()
    assert where is not None
    return where


def test_wal_index_reads_the_position_sqlite_reports(tmp_path: Path) -> None:
    path = tmp_path / "plain.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("CREATE TABLE t (data BLOB)")
    index = open_wal_index(path)
    assert index is not None
    for _ in range(3):
        conn.execute("INSERT INTO t VALUES (?)", (os.urandom(BLOB),))
    before = index.position()
    other = sqlite3.connect(path, isolation_level=None)
    busy, frames, copied = other.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    assert (busy, before) == (0, WalPosition(frames, 0))
    assert index.position() == WalPosition(frames, copied)
    assert copied == frames
    conn.execute("INSERT INTO t VALUES (?)", (b"x",))  # all copied: the WAL starts over
    assert index.position() == WalPosition(1, 0)
    index.close()
    other.close()
    conn.close()


def test_wal_index_is_none_without_a_wal(tmp_path: Path) -> None:
    path = tmp_path / "rollback.sqlite3"
    sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.close()
    assert open_wal_index(path) is None


async def test_writer_commits_never_checkpoint(store: Store) -> None:
    writer, _ = store
    assert writer.checkpointer is not None
    writer.checkpointer.checkpoint_frames = 10**9  # nor the background
    autocheckpoint = await run(
        writer._conn, lambda c: c.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
    )
    assert autocheckpoint == 0
    await writer.submit(insert_blobs(10))
    where = position(writer)
    assert where.frames >= 30
    assert where.copied == 0


async def test_background_checkpoint_runs_once_the_wal_is_far_enough_ahead(store: Store) -> None:
    writer, _ = store
    checkpointer = writer.checkpointer
    assert checkpointer is not None
    checkpointer.checkpoint_frames = 10**9
    await writer.submit(insert_blobs(5))
    assert checkpointer.stats.background == 0
    checkpointer.checkpoint_frames = position(writer).pending + 3
    await writer.submit(insert_blobs(1))  # 3 frames or more: now far enough
    await asyncio.wait_for(checkpointer.wait_background(1), 10)
    assert position(writer).pending == 0  # nothing committed since: all of it copied
    assert checkpointer.stats.by_writer == 0
    assert CHECKPOINT_FRAMES == 1000  # SQLite's own wal_autocheckpoint default


async def test_wal_starts_over_under_continuous_writes(store: Store, tmp_path: Path) -> None:
    writer, _ = store
    checkpointer = writer.checkpointer
    assert checkpointer is not None
    checkpointer.checkpoint_frames = 10
    checkpointer.restart_frames = 60
    longest = 0
    for _ in range(40):  # commits back to back, each a few ops of 2 rows
        await asyncio.gather(*(writer.submit(insert_blobs(2)) for _ in range(3)))
        longest = max(longest, position(writer).frames)
    # Without restarts the WAL would hold every frame written (~40 x 20).
    assert longest < checkpointer.restart_frames + 40
    wal = tmp_path / "wal.sqlite3-wal"
    assert wal.stat().st_size < (checkpointer.restart_frames + 40) * (4096 + 24) + 32
    assert checkpointer.stats.by_writer >= 1
    assert checkpointer.stats.background >= 1
    rows = await run(writer._conn, lambda c: c.execute("SELECT count(*) FROM blobs").fetchone())
    assert rows == (240,)
