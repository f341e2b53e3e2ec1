"""SQLite connections: one writer task with group commit, and a pool of readers.

Every unit of work is a plain function of a ``sqlite3.Connection`` that runs in the
connection's own thread (aiosqlite's worker thread), so a unit of many statements costs one
thread hop, not one per statement.

Writes: callers ``await writer.submit(op)``. The writer task takes every op that is waiting,
runs them in one transaction (each inside its own SAVEPOINT, so one failing op is rolled back
alone) and commits once. A batch of small ops (``submit(op, cost=...)``) runs its
statements on the event loop and only its COMMIT in the writer's thread. Only after that
commit is durable (WAL, ``synchronous=FULL``) are the callers' futures resolved. If the
commit itself fails, every op of that batch fails and the database is left as it was; the
writer keeps running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard, TypeVar

import aiosqlite

from syncd.errors import CouchError
from syncd.store.migrations import migrate

if TYPE_CHECKING:
    from syncd.store.checkpoint import Checkpointer

log = logging.getLogger("syncd.store")

T = TypeVar("T")

MAX_BATCH = 256
BUSY_TIMEOUT_MS = 10_000
# A batch of ops whose costs add up to at most this (about one per short document) runs its
# statements on the event loop (~60 us a document: ~15 ms at most, what the GIL hand-offs of
# the thread path cost anyway); its COMMIT runs in the thread. 256 covers the _bulk_docs of
# 100 that PouchDB sends: 3 paired rounds of 4 clients' bulk writes, 4,499/7,766/9,872 vs
# 3,791/4,208/7,781 docs/s with the limit at 64.
INLINE_COST = 256
# SQLite's INTEGER range: binding a larger Python int raises OverflowError (a 500).
MAX_INTEGER = 2**63 - 1


def is_integer(value: object, minimum: int = 0) -> TypeGuard[int]:
    """An int (not a bool) from ``minimum`` up to the largest one SQLite can bind."""
    return type(value) is int and minimum <= value <= MAX_INTEGER


def configure(
    conn: sqlite3.Connection, *, synchronous: str = "FULL", max_bytes: int | None = None
) -> None:
    """Pragmas every connection gets (and, for the writer, the size limit of the file)."""
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA cache_size=-32000")
    conn.execute("PRAGMA temp_store=MEMORY")
    if max_bytes is not None:
        set_max_bytes(conn, max_bytes)


def set_max_bytes(conn: sqlite3.Connection, max_bytes: int) -> None:
    """Cap the database file: writes past it fail with "database or disk is full" (507)."""
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count={max(max_bytes // page_size, 1):d}")


async def open_connection(
    path: Path, *, synchronous: str = "FULL", max_bytes: int | None = None
) -> aiosqlite.Connection:
    """Open a connection in autocommit mode (we issue BEGIN/COMMIT ourselves)."""
    conn = await aiosqlite.connect(str(path), isolation_level=None, check_same_thread=False)
    await run(conn, configure, synchronous=synchronous, max_bytes=max_bytes)
    return conn


async def run(conn: aiosqlite.Connection, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``fn(sqlite3_connection, *args)`` in the connection's thread."""
    # aiosqlite's public API runs one statement per hop; _execute runs any callable there.
    return await conn._execute(lambda: fn(conn._conn, *args, **kwargs))  # type: ignore[no-untyped-call,no-any-return]


@dataclass
class WriteTx:
    """What a write op sees: the connection, and a place to say which databases changed."""

    conn: sqlite3.Connection
    changed: dict[str, int] = field(default_factory=dict)

    def mark_changed(self, db_name: str, update_seq: int) -> None:
        """Record that ``db_name`` now has ``update_seq`` (wakes its change listeners)."""
        self.changed[db_name] = update_seq


WriteOp = Callable[[WriteTx], Any]
CommitListener = Callable[[dict[str, int]], None]
CommitObserver = Callable[[int, float], None]  # (ops in the batch, seconds to commit)


@dataclass
class WriterStats:
    """Counters the metrics endpoint reads."""

    batches: int = 0
    ops: int = 0
    failed_batches: int = 0
    last_batch_size: int = 0
    last_commit_seconds: float = 0.0


class Writer:
    """The single writer: queues ops, group-commits them, resolves futures after commit."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn
        self._queue: asyncio.Queue[tuple[WriteOp, asyncio.Future[Any], int | None]] = (
            asyncio.Queue()
        )
        self._task: asyncio.Task[None] | None = None
        self._listeners: list[CommitListener] = []
        self._observers: list[CommitObserver] = []
        self.path: Path | None = None
        self.stats = WriterStats()
        # Copies the WAL into the database file after commits; the writer's connection does
        # not (see syncd.store.checkpoint).
        self.checkpointer: Checkpointer | None = None

    def add_commit_listener(self, listener: CommitListener) -> None:
        """Call ``listener(changed)`` on the event loop after every successful commit."""
        self._listeners.append(listener)

    async def set_max_bytes(self, max_bytes: int) -> None:
        """Change the file's size cap while serving (operators; the disk-full tests)."""
        await run(self._conn, set_max_bytes, max_bytes)

    async def check(self) -> None:
        """Raise unless the writer's connection answers (health checks)."""
        await asyncio.wait_for(run(self._conn, lambda c: c.execute("SELECT 1").fetchone()), 2.0)

    def add_commit_observer(self, observer: CommitObserver) -> None:
        """Call ``observer(batch_size, seconds)`` after every commit (metrics)."""
        self._observers.append(observer)

    @property
    def queue_depth(self) -> int:
        """How many ops wait for the writer."""
        return self._queue.qsize()

    def start(self) -> None:
        """Start the writer task."""
        self._task = asyncio.create_task(self._loop(), name="syncd-writer")

    async def stop(self) -> None:
        """Finish what is queued, then stop."""
        if self._task is None:
            return
        await self._queue.join()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def submit(self, op: Callable[[WriteTx], T], cost: int | None = None) -> T:
        """Queue ``op`` and return its result once the transaction holding it committed.

        ``cost`` says how small ``op`` is (about one per short document written); a batch of
        ops whose costs add up to at most ``INLINE_COST`` runs its statements on the event
        loop and sends only the COMMIT to the writer's thread. Without a cost, the batch
        runs in the thread.
        """
        if self._task is None:
            raise CouchError(503, "service_unavailable", "The database is closed.")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((op, future, cost))
        return await future

    async def _loop(self) -> None:
        while True:
            first = await self._queue.get()
            batch = [first]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._commit(batch)
                checkpointer = self.checkpointer
                if checkpointer is not None and checkpointer.writer_should_checkpoint:
                    await checkpointer.checkpoint_on(self._conn)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _apply(
        self, ops: list[WriteOp], inline: bool
    ) -> tuple[list[tuple[bool, Any]], dict[str, int]]:
        """Run a batch and commit it: inline (statements here, COMMIT in the thread) or all
        in the writer's thread.

        In the thread every SQLite call releases the GIL and must take it back from a busy
        event loop, a wait of up to the interpreter's switch interval each time; a batch of
        small writes spent most of its time waiting so. Inline, the statements (~100 us a
        short document) run at once and the thread only waits for the fsync. Under the PUT
        benchmark: +15% documents/s and ~6% less CPU per PUT (3 paired rounds). The event
        loop never waits for a lock here: BEGIN IMMEDIATE is tried with no busy timeout and,
        if another connection holds the write lock, the batch goes to the thread, which waits.
        """
        if inline:
            conn = self._conn._conn  # idle: the writer task is its only user
            conn.execute("PRAGMA busy_timeout=0")  # never wait for a lock on the event loop
            try:
                began = _begin(conn)
            finally:
                conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            if began:
                outcomes, changed = _run_ops_or_roll_back(conn, ops)
                if conn.in_transaction:
                    await run(self._conn, _finish)
                return outcomes, changed
        return await run(self._conn, _run_batch, ops)

    async def _commit(self, batch: list[tuple[WriteOp, asyncio.Future[Any], int | None]]) -> None:
        ops = [op for op, _, _ in batch]
        costs = [cost for _, _, cost in batch]
        inline = None not in costs and sum(c for c in costs if c is not None) <= INLINE_COST
        started = time.perf_counter()
        try:
            outcomes, changed = await self._apply(ops, inline)
        except Exception as exc:  # the commit itself failed: the whole batch fails
            log.error("commit failed: %s", type(exc).__name__, extra={"error": str(exc)})
            self.stats.failed_batches += 1
            for _, future, _ in batch:
                if not future.done():
                    future.set_exception(
                        _storage_error(exc)
                        or CouchError(
                            500, "internal_server_error", "The write could not be committed."
                        )
                    )
            return
        self.stats.batches += 1
        self.stats.ops += len(batch)
        self.stats.last_batch_size = len(batch)
        self.stats.last_commit_seconds = time.perf_counter() - started
        for observer in self._observers:
            observer(len(batch), self.stats.last_commit_seconds)
        if self.checkpointer is not None:
            self.checkpointer.after_commit()
        # The writers' futures first: their callbacks then run before those of the feeds
        # this commit wakes, so a write is acknowledged before the (possibly many) feeds
        # that show it are served, not after them.
        for (ok, value), (_, future, _) in zip(outcomes, batch, strict=True):
            if future.done():  # the caller went away
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
        if changed:
            for listener in self._listeners:
                listener(changed)


def _run_batch(
    conn: sqlite3.Connection, ops: list[WriteOp]
) -> tuple[list[tuple[bool, Any]], dict[str, int]]:
    """Run ops in one transaction and commit once. Runs in the writer thread."""
    conn.execute("BEGIN IMMEDIATE")
    outcomes, changed = _run_ops_or_roll_back(conn, ops)
    if conn.in_transaction:
        _finish(conn)
    return outcomes, changed


def _run_ops_or_roll_back(
    conn: sqlite3.Connection, ops: list[WriteOp]
) -> tuple[list[tuple[bool, Any]], dict[str, int]]:
    """``_run_ops`` in the open transaction; if the batch fails, roll it back and raise."""
    try:
        return _run_ops(conn, ops)
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _begin(conn: sqlite3.Connection) -> bool:
    """BEGIN IMMEDIATE, or False if another connection holds the write lock right now."""
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if _is_busy(exc):
            return False
        raise
    return True


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    """Whether SQLite refused because another connection holds a lock ("database is locked",
    SQLITE_BUSY): what a connection with no busy timeout answers instead of waiting."""
    return "locked" in str(exc) or "busy" in str(exc)


def _run_ops(
    conn: sqlite3.Connection, ops: list[WriteOp]
) -> tuple[list[tuple[bool, Any]], dict[str, int]]:
    """Each op in its own savepoint inside the open transaction, one failing op undone alone.

    A lone op needs no savepoint: if it fails, the whole transaction is rolled back. Raises
    (the caller rolls back) only if SQLite itself ended the transaction.
    """
    outcomes: list[tuple[bool, Any]] = []
    changed: dict[str, int] = {}
    alone = len(ops) == 1
    for op in ops:
        tx = WriteTx(conn)
        if not alone:
            conn.execute("SAVEPOINT op")
        try:
            value = op(tx)
        except Exception as exc:
            if not conn.in_transaction:
                # SQLite rolled the whole transaction back (a full disk or size cap does
                # that): the ops before this one are undone too, so the batch fails.
                raise
            if alone:
                conn.execute("ROLLBACK")
            else:
                conn.execute("ROLLBACK TO op")
                conn.execute("RELEASE op")
            outcomes.append((False, _op_error(exc)))
        else:
            if not alone:
                conn.execute("RELEASE op")
            outcomes.append((True, value))
            changed.update(tx.changed)
    return outcomes, changed


def _finish(conn: sqlite3.Connection) -> None:
    """COMMIT (the fsync); if it fails, roll back and raise. Runs in the writer thread."""
    try:
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _op_error(exc: Exception) -> CouchError:
    """What the caller of a failed op gets: its CouchError, 507 for a full disk, else 500."""
    if isinstance(exc, CouchError):
        return exc
    full = _storage_error(exc)
    if full is None:
        log.error("write op failed: %s", type(exc).__name__, exc_info=exc)
    return full or CouchError(500, "internal_server_error", "The write failed.")


def _storage_error(exc: BaseException) -> CouchError | None:
    """507 when SQLite says the disk (or the configured size limit) is full."""
    if isinstance(exc, sqlite3.OperationalError) and "full" in str(exc):
        log.error("write refused: the database or disk is full")
        return CouchError(507, "insufficient_storage", "The server's storage is full.")
    return None


class ReaderPool:
    """A fixed set of read connections; each read borrows one for one unit of work.

    Besides the pooled connections (each in its own thread) there is one for small reads on
    the event loop itself (``run_small``). Handing a unit of work to a connection thread costs
    ~150-250 us of CPU in thread switches and GIL hand-offs, several times what a read of a
    few rows costs in SQLite; under WAL a read never waits for the writer, so a small one is
    cheaper run where it is asked for.
    """

    def __init__(
        self, conns: list[aiosqlite.Connection], inline: sqlite3.Connection | None = None
    ) -> None:
        self._free: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._all = conns
        self._inline = inline
        for conn in conns:
            self._free.put_nowait(conn)

    async def run_small(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` on the event loop's own connection.

        Only for reads bounded to a few rows: the event loop waits while it runs. If SQLite
        is busy (it never waits here: ``busy_timeout`` is 0), the read goes to the pool.
        """
        if self._inline is not None:
            try:
                return fn(self._inline, *args)
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise
                if self._inline.in_transaction:
                    self._inline.execute("ROLLBACK")
        return await self.run(fn, *args)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` on a free reader connection."""
        conn = await self._free.get()
        try:
            return await run(conn, fn, *args)
        finally:
            self._free.put_nowait(conn)

    async def close(self) -> None:
        """Close every reader connection."""
        for conn in self._all:
            await conn.close()
        if self._inline is not None:
            self._inline.close()
            self._inline = None


def open_inline_reader(path: Path, *, synchronous: str = "FULL") -> sqlite3.Connection:
    """The event loop's read connection: never waits for a lock (the caller falls back)."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    configure(conn, synchronous=synchronous)
    conn.execute("PRAGMA busy_timeout=0")
    return conn


@contextlib.asynccontextmanager
async def open_database(
    path: Path, *, readers: int = 4, synchronous: str = "FULL", max_bytes: int | None = None
) -> AsyncIterator[tuple[Writer, ReaderPool]]:
    """Migrate ``path``, open the writer, its checkpointer and the reader pool; close them in
    reverse order."""
    from syncd.store.checkpoint import Checkpointer, open_wal_index  # they build on this

    write_conn = await open_connection(path, synchronous=synchronous, max_bytes=max_bytes)
    read_conns: list[aiosqlite.Connection] = []
    checkpointer: Checkpointer | None = None
    try:
        applied = await run(write_conn, migrate)
        if applied:
            log.info("schema migrated: %s", ", ".join(applied))
        for _ in range(readers):
            read_conns.append(await open_connection(path, synchronous=synchronous))
        inline = open_inline_reader(path, synchronous=synchronous)
        wal = open_wal_index(path)
        if wal is not None:
            # Checkpoints move to a connection of their own; the writer's commits stop
            # making them (see syncd.store.checkpoint).
            checkpoint_conn = await open_connection(path, synchronous=synchronous)
            read_conns.append(checkpoint_conn)  # closed with the readers on failure
            checkpointer = Checkpointer(checkpoint_conn, wal)
            await run(write_conn, lambda c: c.execute("PRAGMA wal_autocheckpoint=0"))
    except BaseException:
        # A refused file (newer schema, failed migration) must not leave connection threads
        # behind: they would keep the process from exiting.
        for conn in (*read_conns, write_conn):
            await conn.close()
        raise
    writer = Writer(write_conn)
    writer.path = path
    writer.checkpointer = checkpointer
    pool = ReaderPool(read_conns[:readers], inline)
    writer.start()
    if checkpointer is not None:
        checkpointer.start()
    try:
        yield writer, pool
    finally:
        await writer.stop()
        if checkpointer is not None:
            await checkpointer.stop()
        for conn in read_conns[readers:]:
            await conn.close()
        await pool.close()
        await run(write_conn, lambda c: c.execute("PRAGMA wal_checkpoint(TRUNCATE)"))
        await write_conn.close()
