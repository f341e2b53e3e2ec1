"""WAL checkpoints in the background, off the writer's path.

SQLite checkpoints, by default, inside the COMMIT that takes the WAL past 1,000 pages: that
commit copies the pages into the database file and fsyncs it, about a third of what the
commits of a bulk load cost (200-document transactions on a 40,000-document database: 30 ->
20 us per document without it), and a stall for whichever write is unlucky. Here the writer's
connection never checkpoints by itself (``wal_autocheckpoint=0``). After each commit the
writer reads how far the WAL is ahead of the database file, and at the same 1,000 pages a
connection of its own runs the checkpoint in its own thread while the writer goes on: a
PASSIVE checkpoint never blocks the writer or the readers, and its I/O and CPU land on
another core. The WAL grows as it did (no checkpoint before 1,000 pages, as SQLite does).

The WAL starts over from its beginning only when a checkpoint has copied all of it, and under
continuous writes a concurrent checkpoint seldom ends between two commits. So once the WAL is
``restart_frames`` long, the writer runs one checkpoint itself between two batches (nothing
commits meanwhile, so it copies what is left), and the next commit starts the WAL over.

How far the WAL is ahead is read from the WAL-index header in the ``-shm`` file (SQLite's
documented WAL-index format: ``mxFrame`` at byte 16, ``nBackfill`` at byte 96, native byte
order): a 100-byte read instead of a checkpoint call. Where that header is not what this
module knows, the writer's connection keeps SQLite's own checkpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import struct
from dataclasses import dataclass
from pathlib import Path

import aiosqlite

from syncd.store.sqlite import run

log = logging.getLogger("syncd.store")

# Pages of WAL not yet in the database file that start a background checkpoint (SQLite's own
# wal_autocheckpoint default).
CHECKPOINT_FRAMES = 1000
# A WAL this long (4 KB pages: 16 MB) gets a checkpoint by the writer, which lets it restart.
RESTART_FRAMES = 4000

_WAL_INDEX_VERSION = 3007000
# iVersion, (unused, iChange), isInit, (bigEndCksum, szPage), mxFrame at byte 16
_HEADER = struct.Struct("=I8xB3xI")
_BACKFILL = struct.Struct("=I")  # nBackfill, first field of the checkpoint info at byte 96
_BACKFILL_OFFSET = 96


@dataclass(slots=True)
class WalPosition:
    """The WAL's length in frames and how many of them are copied into the database file."""

    frames: int
    copied: int

    @property
    def pending(self) -> int:
        """Frames not yet in the database file."""
        return max(self.frames - self.copied, 0)


class WalIndex:
    """Reads the WAL's position from the ``-shm`` file SQLite keeps beside the database."""

    def __init__(self, database: Path) -> None:
        self._fd = os.open(f"{database}-shm", os.O_RDONLY)

    def position(self) -> WalPosition | None:
        """Where the WAL is, or None if the header is not one this module knows."""
        raw = os.pread(self._fd, _BACKFILL_OFFSET + _BACKFILL.size, 0)
        if len(raw) < _BACKFILL_OFFSET + _BACKFILL.size:
            return None
        version, is_init, frames = _HEADER.unpack_from(raw)
        if version != _WAL_INDEX_VERSION or is_init != 1:
            return None
        (copied,) = _BACKFILL.unpack_from(raw, _BACKFILL_OFFSET)
        return WalPosition(frames, copied)

    def close(self) -> None:
        """Close the file."""
        os.close(self._fd)


def open_wal_index(database: Path) -> WalIndex | None:
    """A reader of the WAL's position, or None where it cannot be read (then SQLite's own
    checkpoints stay on)."""
    try:
        index = WalIndex(database)
    except OSError:
        return None
    if index.position() is None:
        index.close()
        return None
    return index


def checkpoint_passive(conn: sqlite3.Connection) -> None:
    """Copy what the WAL holds into the database file, waiting for no lock."""
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()


@dataclass
class CheckpointStats:
    """Counters the metrics endpoint reads."""

    background: int = 0
    by_writer: int = 0
    failed: int = 0


class Checkpointer:
    """Runs PASSIVE checkpoints on its own connection when the WAL is far enough ahead, and
    says when the writer should run one itself."""

    def __init__(
        self,
        conn: aiosqlite.Connection,
        wal: WalIndex,
        *,
        checkpoint_frames: int = CHECKPOINT_FRAMES,
        restart_frames: int = RESTART_FRAMES,
    ) -> None:
        self._conn = conn
        self._wal = wal
        self.checkpoint_frames = checkpoint_frames
        self.restart_frames = restart_frames
        self._wanted = asyncio.Event()
        self._ran = asyncio.Condition()
        # One checkpoint at a time: the writer's own waits for a background one to end (a
        # PASSIVE checkpoint beside another copies nothing), then copies what is left.
        self._running = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.writer_should_checkpoint = False
        self.stats = CheckpointStats()

    def start(self) -> None:
        """Start the background task."""
        self._task = asyncio.create_task(self._loop(), name="syncd-checkpointer")

    async def stop(self) -> None:
        """Stop the background task (a checkpoint under way finishes first) and close."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._wal.close()

    def wal_position(self) -> WalPosition | None:
        """Where the WAL is now (metrics)."""
        return self._wal.position()

    def after_commit(self) -> None:
        """A commit added to the WAL: checkpoint when it is far enough ahead."""
        where = self._wal.position()
        if where is None:  # cannot happen once opened; checkpoint rather than let it grow
            self.writer_should_checkpoint = True
            return
        if where.frames >= self.restart_frames:
            self.writer_should_checkpoint = True
        if where.pending >= self.checkpoint_frames:
            self._wanted.set()

    async def wait_background(self, count: int) -> None:
        """Until ``count`` background checkpoints have run since start (tests)."""
        async with self._ran:
            await self._ran.wait_for(lambda: self.stats.background >= count)

    async def checkpoint_on(self, writer_conn: aiosqlite.Connection) -> None:
        """The writer's own checkpoint, between two batches."""
        self.writer_should_checkpoint = False
        async with self._running:
            await self._checkpoint(writer_conn)
        self.stats.by_writer += 1

    async def _checkpoint(self, conn: aiosqlite.Connection) -> None:
        try:
            await run(conn, checkpoint_passive)
        except sqlite3.Error as exc:  # a full disk: the WAL keeps the pages, nothing is lost
            self.stats.failed += 1
            log.warning("checkpoint failed: %s", type(exc).__name__)

    async def _loop(self) -> None:
        while True:
            await self._wanted.wait()
            self._wanted.clear()
            async with self._running:
                await self._checkpoint(self._conn)
            async with self._ran:
                self.stats.background += 1
                self._ran.notify_all()
