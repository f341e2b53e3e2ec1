"""The storage engine on a real SQLite file: pragmas, group commit, failure isolation, migrations."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from syncd.errors import CouchError
from syncd.store.migrations import (
    apply_migrations_from_zero,
    available_migrations,
    current_version,
    latest_version,
    migrate,
)
from syncd.store.sqlite import INLINE_COST, ReaderPool, Writer, WriteTx, open_database

Store = tuple[Writer, ReaderPool]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """A writer and two readers on a fresh file."""
    async with open_database(tmp_path / "store.sqlite3", readers=2) as opened:
        yield opened


def put_meta(key: str, value: str = "v") -> Callable[[WriteTx], str]:
    """A write op storing one server_meta row; it returns the key."""

    def op(tx: WriteTx) -> str:
        tx.conn.execute("INSERT INTO server_meta (key, value) VALUES (?, ?)", (key, value))
        return key

    return op


def meta_keys(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT key FROM server_meta ORDER BY key")]


def pragmas(conn: sqlite3.Connection) -> tuple[str, int, int]:
    return (
        conn.execute("PRAGMA journal_mode").fetchone()[0],
        conn.execute("PRAGMA synchronous").fetchone()[0],
        conn.execute("PRAGMA foreign_keys").fetchone()[0],
    )


# pragmas -------------------------------------------------------------------------------------


async def test_reader_connections_use_wal_full_sync_and_foreign_keys(store: Store) -> None:
    _, readers = store
    first, second = await asyncio.gather(readers.run(pragmas), readers.run(pragmas))
    assert first == second == ("wal", 2, 1)  # synchronous 2 is FULL


async def test_writer_connection_uses_wal_full_sync_and_foreign_keys(store: Store) -> None:
    writer, _ = store

    def read_pragmas(tx: WriteTx) -> tuple[str, int, int]:
        return pragmas(tx.conn)

    assert await writer.submit(read_pragmas) == ("wal", 2, 1)


async def test_the_file_itself_is_in_wal_mode(store: Store, tmp_path: Path) -> None:
    writer, _ = store
    await writer.submit(put_meta("k"))
    conn = sqlite3.connect(tmp_path / "store.sqlite3")
    try:
        # WAL is a property of the file: a plain new connection sees it.
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


# group commit --------------------------------------------------------------------------------


async def test_concurrent_submits_share_commits(store: Store) -> None:
    writer, readers = store
    before = dataclasses.replace(writer.stats)
    keys = await asyncio.gather(*(writer.submit(put_meta(f"k{i:02d}")) for i in range(50)))
    assert keys == [f"k{i:02d}" for i in range(50)]
    assert writer.stats.ops - before.ops == 50
    assert writer.stats.batches - before.batches < 50
    assert writer.stats.last_batch_size > 1
    assert [k for k in await readers.run(meta_keys) if k.startswith("k")] == keys


async def test_sequential_submits_each_commit(store: Store) -> None:
    writer, _ = store
    before = writer.stats.batches
    for i in range(3):
        await writer.submit(put_meta(f"s{i}"))
    assert writer.stats.batches - before == 3


async def test_failing_op_is_rolled_back_alone(store: Store) -> None:
    writer, readers = store

    def fails(tx: WriteTx) -> None:
        tx.conn.execute("INSERT INTO server_meta (key, value) VALUES ('b', 'v')")
        raise CouchError(409, "conflict", "Document update conflict.")

    before = writer.stats.batches
    a, b, c = await asyncio.gather(
        writer.submit(put_meta("a")),
        writer.submit(fails),
        writer.submit(put_meta("c")),
        return_exceptions=True,
    )
    assert writer.stats.batches - before == 1  # all three were in one transaction
    assert (a, c) == ("a", "c")
    assert isinstance(b, CouchError)
    assert (b.status, b.error) == (409, "conflict")
    stored = await readers.run(meta_keys)
    assert "a" in stored and "c" in stored
    assert "b" not in stored


async def test_failing_lone_op_writes_nothing_and_the_next_commits(store: Store) -> None:
    writer, readers = store

    def fails(tx: WriteTx) -> None:
        tx.conn.execute("INSERT INTO server_meta (key, value) VALUES ('lone', 'v')")
        raise CouchError(409, "conflict", "Document update conflict.")

    with pytest.raises(CouchError):
        await writer.submit(fails)  # a batch of its own: no savepoint, the transaction rolls back
    assert await writer.submit(put_meta("after")) == "after"
    stored = await readers.run(meta_keys)
    assert "lone" not in stored and "after" in stored


async def test_unexpected_exception_in_op_becomes_500_and_is_rolled_back_alone(
    store: Store,
) -> None:
    writer, readers = store

    def breaks(tx: WriteTx) -> None:
        tx.conn.execute("INSERT INTO server_meta (key, value) VALUES ('x', 'v')")
        tx.conn.execute("INSERT INTO no_such_table VALUES (1)")

    ok, failed = await asyncio.gather(
        writer.submit(put_meta("fine")), writer.submit(breaks), return_exceptions=True
    )
    assert ok == "fine"
    assert isinstance(failed, CouchError)
    assert (failed.status, failed.error) == (500, "internal_server_error")
    stored = await readers.run(meta_keys)
    assert "fine" in stored and "x" not in stored


def deferred_fk_violation(tx: WriteTx) -> None:
    """An op that succeeds itself but makes the COMMIT fail.

    With ``defer_foreign_keys`` on, a row pointing at a missing parent is only checked at
    COMMIT, so the op's savepoint releases fine and the whole transaction's COMMIT fails.
    """
    tx.conn.execute("PRAGMA defer_foreign_keys=ON")
    tx.conn.execute(
        "INSERT INTO revs (db_id, doc_id, rev, body) VALUES (999, 'ghost', '1-a', x'7b7d')"
    )


def count_revs(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM revs").fetchone()[0])


async def test_failed_commit_fails_every_op_of_the_batch(store: Store) -> None:
    writer, readers = store
    await writer.submit(put_meta("existing"))
    before = dataclasses.replace(writer.stats)

    results = await asyncio.gather(
        writer.submit(put_meta("a")),
        writer.submit(deferred_fk_violation),
        writer.submit(put_meta("c")),
        return_exceptions=True,
    )

    for result in results:
        assert isinstance(result, CouchError)
        assert (result.status, result.error) == (500, "internal_server_error")
    assert writer.stats.failed_batches - before.failed_batches == 1
    assert writer.stats.batches == before.batches  # nothing was committed
    assert await readers.run(meta_keys) == ["existing"]
    assert await readers.run(count_revs) == 0


async def test_writer_keeps_running_after_a_failed_commit(store: Store) -> None:
    writer, readers = store
    with pytest.raises(CouchError) as failed:
        await writer.submit(deferred_fk_violation)
    assert failed.value.status == 500
    assert writer.stats.failed_batches == 1

    assert await writer.submit(put_meta("after")) == "after"
    assert "after" in await readers.run(meta_keys)

    # defer_foreign_keys was reset by the rollback: a violation now fails its op at once,
    # alone, and the commit of the batch goes through.
    def immediate_violation(tx: WriteTx) -> None:
        tx.conn.execute(
            "INSERT INTO revs (db_id, doc_id, rev, body) VALUES (999, 'ghost', '1-b', x'7b7d')"
        )

    bad, good = await asyncio.gather(
        writer.submit(immediate_violation), writer.submit(put_meta("also")), return_exceptions=True
    )
    assert isinstance(bad, CouchError)
    assert good == "also"
    assert writer.stats.failed_batches == 1
    assert await readers.run(count_revs) == 0


# readers -------------------------------------------------------------------------------------


async def test_reader_sees_a_committed_write(store: Store) -> None:
    writer, readers = store
    await writer.submit(put_meta("seen", "value"))

    def value(conn: sqlite3.Connection) -> str | None:
        row = conn.execute("SELECT value FROM server_meta WHERE key = 'seen'").fetchone()
        return row[0] if row else None

    # Both reader connections, at once.
    assert await asyncio.gather(readers.run(value), readers.run(value)) == ["value", "value"]


async def test_reader_does_not_see_an_uncommitted_write(store: Store) -> None:
    writer, readers = store
    inserted, release = threading.Event(), threading.Event()

    def slow(tx: WriteTx) -> str:
        tx.conn.execute("INSERT INTO server_meta (key, value) VALUES ('pending', 'v')")
        inserted.set()
        # Runs in the writer's thread: holds the transaction open until the test says so.
        assert release.wait(10)
        return "pending"

    pending = asyncio.ensure_future(writer.submit(slow))
    try:
        assert await asyncio.to_thread(inserted.wait, 10)
        assert "pending" not in await readers.run(meta_keys)
        assert not pending.done()
    finally:
        release.set()
    assert await pending == "pending"
    assert "pending" in await readers.run(meta_keys)


async def test_submit_after_close_is_503(tmp_path: Path) -> None:
    async with open_database(tmp_path / "closed.sqlite3", readers=1) as (writer, _):
        pass
    with pytest.raises(CouchError) as closed:
        await writer.submit(put_meta("late"))
    assert closed.value.status == 503


async def test_writes_survive_reopening_the_file(tmp_path: Path) -> None:
    path = tmp_path / "durable.sqlite3"
    async with open_database(path, readers=1) as (writer, _):
        await writer.submit(put_meta("kept"))
    async with open_database(path, readers=1) as (_, readers):
        assert "kept" in await readers.run(meta_keys)


# migrations ----------------------------------------------------------------------------------


def connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def _normalized_sql(sql: str | None) -> str:
    # Comments and layout differ between schema.sql and the migration steps (ALTER TABLE
    # appends its column to the stored CREATE statement); what is declared must not.
    without_comments = re.sub(r"--[^\n]*", "", sql or "")
    return re.sub(r"\s+", "", without_comments)


def schema_of(conn: sqlite3.Connection) -> dict[str, Any]:
    """Everything a schema declares: objects, columns, indexes, foreign keys, normalized SQL."""
    objects = conn.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master "
        "WHERE name NOT LIKE 'sqlite_autoindex%' ORDER BY type, name"
    ).fetchall()
    out: dict[str, Any] = {
        "objects": [(t, n, tbl, _normalized_sql(sql)) for t, n, tbl, sql in objects]
    }
    for kind, name, _, _ in objects:
        if kind != "table":
            continue
        out[f"columns:{name}"] = conn.execute(f"PRAGMA table_xinfo({name})").fetchall()
        out[f"fks:{name}"] = conn.execute(f"PRAGMA foreign_key_list({name})").fetchall()
        indexes = conn.execute(f"PRAGMA index_list({name})").fetchall()
        out[f"indexes:{name}"] = sorted(
            (
                idx[2],  # unique
                idx[3],  # origin
                conn.execute(f"PRAGMA index_xinfo({idx[1]})").fetchall(),
            )
            for idx in indexes
        )
        out[f"table:{name}"] = conn.execute(
            "SELECT type, ncol, wr, strict FROM pragma_table_list WHERE name = ?", (name,)
        ).fetchall()
    return out


def test_fresh_file_gets_schema_sql(tmp_path: Path) -> None:
    conn = connect(tmp_path / "fresh.sqlite3")
    try:
        assert migrate(conn) == ["schema.sql"]
        assert current_version(conn) == latest_version()
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"schema_version", "server_meta", "dbs", "docs", "revs", "local_docs"} <= tables
    finally:
        conn.close()


def test_migrations_from_zero_build_the_same_schema_as_schema_sql(tmp_path: Path) -> None:
    fresh, stepped = connect(tmp_path / "fresh.sqlite3"), connect(tmp_path / "stepped.sqlite3")
    try:
        migrate(fresh)
        apply_migrations_from_zero(stepped)
        assert current_version(stepped) == current_version(fresh) == latest_version()
        assert schema_of(stepped) == schema_of(fresh)
    finally:
        fresh.close()
        stepped.close()


def test_migrating_an_up_to_date_file_applies_nothing(tmp_path: Path) -> None:
    conn = connect(tmp_path / "db.sqlite3")
    try:
        migrate(conn)
        before = schema_of(conn)
        assert migrate(conn) == []
        assert current_version(conn) == latest_version()
        assert schema_of(conn) == before
    finally:
        conn.close()


def test_an_old_file_is_brought_to_the_latest_version_step_by_step(tmp_path: Path) -> None:
    steps = available_migrations()
    conn = connect(tmp_path / "old.sqlite3")
    try:
        first = steps[0]
        conn.executescript(first.sql)
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (first.version,))
        conn.execute(
            "INSERT INTO dbs (name, created_at) VALUES ('kept', '2024-01-01T00:00:00+00:00')"
        )
        assert current_version(conn) == first.version
        assert migrate(conn) == [step.name for step in steps[1:]]
        assert current_version(conn) == latest_version()
        assert conn.execute("SELECT name FROM dbs").fetchall() == [("kept",)]
    finally:
        conn.close()


def test_revisions_keep_their_bodies_when_revs_becomes_a_rowid_table(tmp_path: Path) -> None:
    steps = available_migrations()
    before = [step for step in steps if step.version < 6]
    conn = connect(tmp_path / "v5.sqlite3")
    conn.execute("PRAGMA foreign_keys=ON")
    try:
        for step in before:
            conn.executescript(step.sql)
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (before[-1].version,))
        conn.execute("INSERT INTO dbs (id, name, created_at) VALUES (1, 'd', '2026-01-01')")
        conn.execute(
            "INSERT INTO docs (db_id, doc_id, rev, deleted, seq, tree) "
            "VALUES (1, 'a', '2-b', 0, 1, '{}')"
        )
        kept = [(1, "a", "1-a", b'{"n":1}', None), (1, "a", "2-b", b"x" * 3000, b"[]")]
        conn.executemany("INSERT INTO revs VALUES (?, ?, ?, ?, ?)", kept)
        assert migrate(conn) == [step.name for step in steps if step.version >= 6]
        assert conn.execute("SELECT * FROM revs ORDER BY rev").fetchall() == kept
        create = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'revs'").fetchone()[0]
        assert "WITHOUT ROWID" not in create
        conn.execute("DELETE FROM docs")  # the foreign key still cascades
        assert conn.execute("SELECT count(*) FROM revs").fetchone()[0] == 0
    finally:
        conn.close()


def test_a_file_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    conn = connect(tmp_path / "future.sqlite3")
    try:
        migrate(conn)
        conn.execute("UPDATE schema_version SET version = ?", (latest_version() + 1,))
        before = schema_of(conn)
        with pytest.raises(RuntimeError, match="newer"):
            migrate(conn)
        assert current_version(conn) == latest_version() + 1
        assert schema_of(conn) == before
    finally:
        conn.close()


async def test_open_database_refuses_a_file_from_a_newer_version(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite3"
    conn = connect(path)
    try:
        migrate(conn)
        conn.execute("UPDATE schema_version SET version = ?", (latest_version() + 1,))
    finally:
        conn.close()
    threads_before = set(threading.enumerate())
    with pytest.raises(RuntimeError, match="newer"):
        async with open_database(path, readers=1):
            pass
    # Its connections were closed again: no SQLite worker thread is left to block exit.
    for thread in set(threading.enumerate()) - threads_before:
        thread.join(timeout=5)
        assert not thread.is_alive(), thread.name


def test_migration_files_are_numbered_without_gaps() -> None:
    versions = [step.version for step in available_migrations()]
    assert versions == list(range(1, len(versions) + 1))
    assert latest_version() == versions[-1]


async def test_small_read_runs_on_the_event_loop_thread(store: Store) -> None:
    writer, readers = store
    await writer.submit(put_meta("k"))

    def read(conn: sqlite3.Connection) -> tuple[list[str], int]:
        return meta_keys(conn), threading.get_ident()

    keys, thread = await readers.run_small(read)
    assert "k" in keys
    assert thread == threading.get_ident()


async def test_small_read_goes_to_the_pool_when_sqlite_is_busy(store: Store) -> None:
    writer, readers = store
    await writer.submit(put_meta("k"))
    threads: list[int] = []

    def read(conn: sqlite3.Connection) -> list[str]:
        threads.append(threading.get_ident())
        if len(threads) == 1:  # what SQLite raises when a lock is held (busy_timeout is 0 here)
            raise sqlite3.OperationalError("database is locked")
        return meta_keys(conn)

    assert "k" in await readers.run_small(read)
    assert threads[0] == threading.get_ident()
    assert threads[1] != threading.get_ident()


async def test_small_read_errors_other_than_busy_reach_the_caller(store: Store) -> None:
    _, readers = store
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        await readers.run_small(lambda conn: conn.execute("SELECT * FROM nowhere").fetchall())


def record_thread(key: str, threads: list[int]) -> Callable[[WriteTx], str]:
    """A write op storing one server_meta row and noting the thread it ran on."""

    def op(tx: WriteTx) -> str:
        threads.append(threading.get_ident())
        return put_meta(key)(tx)

    return op


async def test_small_batch_runs_on_the_event_loop_and_is_committed(store: Store) -> None:
    writer, readers = store
    threads: list[int] = []
    assert await writer.submit(record_thread("small", threads), cost=1) == "small"
    assert threads == [threading.get_ident()]
    assert "small" in await readers.run(meta_keys)


async def test_batch_without_a_cost_runs_in_the_writer_thread(store: Store) -> None:
    writer, _ = store
    threads: list[int] = []
    await writer.submit(record_thread("uncosted", threads))
    assert threads and threads[0] != threading.get_ident()


async def test_costly_batch_runs_in_the_writer_thread(store: Store) -> None:
    writer, _ = store
    threads: list[int] = []
    await writer.submit(record_thread("big", threads), cost=INLINE_COST + 1)
    assert threads and threads[0] != threading.get_ident()


async def test_failing_op_of_a_small_batch_is_rolled_back_alone(store: Store) -> None:
    writer, readers = store

    def fails(tx: WriteTx) -> None:
        tx.conn.execute("INSERT INTO server_meta (key, value) VALUES ('bad', 'v')")
        raise CouchError(409, "conflict", "Document update conflict.")

    good, bad = await asyncio.gather(
        writer.submit(put_meta("good"), cost=1),
        writer.submit(fails, cost=1),
        return_exceptions=True,
    )
    assert good == "good"
    assert isinstance(bad, CouchError)
    stored = await readers.run(meta_keys)
    assert "good" in stored and "bad" not in stored


async def test_small_batch_waits_in_the_thread_while_another_connection_writes(
    store: Store, tmp_path: Path
) -> None:
    writer, readers = store
    other = sqlite3.connect(tmp_path / "store.sqlite3", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # holds the write lock
    threads: list[int] = []
    write = asyncio.create_task(writer.submit(record_thread("later", threads), cost=1))
    # Nothing to await for "the inline BEGIN failed and the thread is waiting": give the
    # writer a moment, then check the write is held, not failed, and the loop still runs.
    await asyncio.sleep(0.2)
    assert not write.done() and not threads
    other.execute("COMMIT")
    other.close()
    assert await asyncio.wait_for(write, 10) == "later"
    assert threads[0] != threading.get_ident()
    assert "later" in await readers.run(meta_keys)
