"""The changes feed: reading pages of changes, and waking waiting feeds after a commit.

A waiting feed (longpoll, continuous, eventsource) holds no database connection and no thread:
it awaits a future in ``ChangesHub``, which the writer resolves right after a commit that
touched the feed's database. No polling.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from syncd.replication import revtree
from syncd.services.documents import ReadOptions, require_db, shape_doc
from syncd.store import changes as store
from syncd.store import documents as doc_store
from syncd.store.sqlite import ReaderPool

PAGE = 1000
# A page read of at most this many changes (no bodies) runs on the event loop's connection.
SMALL_READ_CHANGES = 50
SHARED_PAGES = 10_000  # databases whose last small page is kept for feeds woken together


@dataclass(slots=True)
class ChangesQuery:
    """What a feed shows, after parameter parsing."""

    descending: bool = False
    include_docs: bool = False
    all_docs_style: bool = False
    conflicts: bool = False
    attachments: bool = False
    att_encoding_info: bool = False
    doc_ids: list[str] | None = None
    selector: Callable[[dict[str, Any]], bool] | None = None
    design_only: bool = False


@dataclass(slots=True)
class ChangesPage:
    """Rows of one read, the seq to continue from, and how many changes remain after it."""

    results: list[dict[str, Any]]
    last_seq: int
    pending: int
    exhausted: bool


@dataclass
class ChangesHub:
    """Wakes feeds waiting on a database when the writer commits a change to it."""

    latest: dict[str, int] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)  # notifications per database
    _waiters: dict[str, set[asyncio.Future[bool]]] = field(default_factory=dict)
    open_feeds: Counter[str] = field(default_factory=Counter)
    closing: bool = False

    def notify(self, changed: dict[str, int]) -> None:
        """Writer commit listener: record the new seqs and wake every waiter of those dbs.

        A negative seq means the database was deleted (or re-created): its seq is forgotten
        and its waiters wake to find out.
        """
        for db, seq in changed.items():
            self.versions[db] = self.versions.get(db, 0) + 1
            if seq < 0:
                self.latest.pop(db, None)
            else:
                self.latest[db] = seq
            for future in self._waiters.pop(db, ()):
                if not future.done():
                    future.set_result(True)

    def version(self, db: str) -> int:
        """How many commits to ``db`` were notified: a read's result for ``db`` is current
        as long as this has not moved since the read began."""
        return self.versions.get(db, 0)

    def observe(self, db: str, seq: int, version: int) -> None:
        """A read that began at ``version`` of ``db`` saw it at ``seq``.

        Remembered only if no commit to ``db`` was notified since the read began (it might
        have changed or deleted ``db`` after the read's snapshot) and no seq is known for
        it: ``latest`` must never claim less than a committed seq, or a feed would miss it.
        """
        if version == self.version(db):
            self.latest.setdefault(db, seq)

    def nothing_after(self, db: str, since: int) -> bool:
        """Whether ``db`` is known to have no change after ``since`` (no read needed)."""
        latest = self.latest.get(db)
        return latest is not None and since >= latest

    async def wait(self, db: str, since: int, timeout: float | None) -> bool:
        """Wait until ``db`` has a change after ``since``; False on timeout or shutdown."""
        if self.latest.get(db, -1) > since:
            return True
        if self.closing:
            return False
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        waiters = self._waiters.setdefault(db, set())
        waiters.add(future)
        # A bare timer rather than asyncio.wait_for: a thousand live feeds re-wait after
        # every change, and wait_for's extra future and callbacks showed in the profile.
        timer = None if timeout is None else loop.call_later(timeout, _expire, future)
        try:
            woken = await future
        finally:
            if timer is not None:
                timer.cancel()
            waiters.discard(future)
            if not waiters and self._waiters.get(db) is waiters:
                del self._waiters[db]
        return woken and not self.closing

    @property
    def waiting(self) -> int:
        """How many feeds are waiting right now."""
        return sum(len(w) for w in self._waiters.values())

    def close(self) -> None:
        """Shutdown: wake every waiter so feeds end with their last_seq."""
        self.closing = True
        for waiters in list(self._waiters.values()):
            for future in waiters:
                if not future.done():
                    future.set_result(False)


def _expire(future: asyncio.Future[bool]) -> None:
    if not future.done():
        future.set_result(False)


@dataclass
class ChangesService:
    """Reads the changes feed of a database."""

    readers: ReaderPool
    hub: ChangesHub
    # db -> (hub version of the db when read, what was asked, the page): the last small page
    _shared: dict[str, tuple[int, tuple[object, ...], ChangesPage]] = field(
        default_factory=dict, repr=False
    )

    async def update_seq(self, db_name: str) -> int:
        """The database's current update_seq (404 if it does not exist)."""
        return (await self.readers.run(require_db, db_name)).update_seq

    async def page(
        self,
        db_name: str,
        query: ChangesQuery,
        since: int,
        limit: int | None,
        before: int | None = None,
        count_pending: bool = True,
    ) -> ChangesPage:
        """At most ``limit`` (default one page) matching changes after ``since``.

        Descending feeds page downwards: pass the previous page's ``last_seq`` as ``before``.
        ``count_pending=False`` leaves ``pending`` at 0 instead of counting the changes after
        the page (a count over the rest of the feed), for a caller that does not report it.
        """

        def read(conn: sqlite3.Connection) -> ChangesPage:
            conn.execute("BEGIN")  # one snapshot for the rows, update_seq and pending
            try:
                return _read_page(conn, db_name, query, since, limit, before, count_pending)
            finally:
                conn.execute("COMMIT")

        version = self.hub.version(db_name)
        small = self._small(db_name, query, since, before)
        if small:
            # Feeds woken by the same commit re-read the same page (PouchDB clients of one
            # database re-poll from the same seq): the first read serves them all until the
            # next commit to that database.
            key = (since, limit, count_pending, query.all_docs_style, query.conflicts)
            shared = self._shared.get(db_name)
            if shared is not None and shared[0] == version and shared[1] == key:
                return shared[2]
            page = await self.readers.run_small(read)
            if len(self._shared) >= SHARED_PAGES:
                self._shared.clear()  # a bound; an entry only matters for a moment anyway
            self._shared[db_name] = (version, key, page)
        else:
            page = await self.readers.run(read)
        if page.exhausted and not query.descending:
            self.hub.observe(db_name, page.last_seq, version)
        return page

    def _small(self, db_name: str, query: ChangesQuery, since: int, before: int | None) -> bool:
        """Whether a page read is bounded to a few short rows (a live feed catching up)."""
        latest = self.hub.latest.get(db_name)
        return (
            latest is not None
            and before is None
            and not query.descending
            and not query.include_docs
            and query.selector is None
            and query.doc_ids is None
            and not query.design_only
            and 0 <= latest - since <= SMALL_READ_CHANGES
        )


def _read_page(
    conn: sqlite3.Connection,
    db_name: str,
    query: ChangesQuery,
    since: int,
    limit: int | None,
    before: int | None,
    count_pending: bool = True,
) -> ChangesPage:
    db = require_db(conn, db_name)
    want = PAGE if limit is None else min(limit, PAGE)
    needs_body = query.include_docs or query.selector is not None
    opts = ReadOptions(conflicts=query.conflicts, attachments=query.attachments)
    results: list[dict[str, Any]] = []
    cursor: int | None = before if query.descending else since
    exhausted = False
    while len(results) < want and not exhausted:
        rows = store.read_changes(
            conn,
            db.id,
            since if query.descending or cursor is None else cursor,
            want,
            before=cursor if query.descending else None,
            descending=query.descending,
            include_bodies=needs_body,
            doc_ids=query.doc_ids,
            design_only=query.design_only,
        )
        exhausted = len(rows) < want
        for index, row in enumerate(rows):
            cursor = row.seq
            entry = _entry(conn, db, row, query, opts, needs_body)
            if entry is not None:
                results.append(entry)
                if len(results) >= want:
                    exhausted = exhausted and index == len(rows) - 1
                    break
    if query.descending:
        last_seq = cursor if cursor is not None else db.update_seq
        return ChangesPage(results, last_seq, 0, exhausted)
    assert cursor is not None
    if exhausted:
        return ChangesPage(results, max(cursor, db.update_seq), 0, True)
    pending = store.count_after(conn, db.id, cursor) if count_pending else 0
    return ChangesPage(results, cursor, pending, False)


def _entry(
    conn: sqlite3.Connection,
    db: doc_store.DbRow,
    row: store.ChangeRow,
    query: ChangesQuery,
    opts: ReadOptions,
    needs_body: bool,
) -> dict[str, Any] | None:
    tree = None
    doc = None
    if needs_body:
        tree = revtree.from_json(orjson.loads(row.tree))
        doc_row = doc_store.DocRow(row.doc_id, row.rev, row.deleted, row.seq, tree)
        kept = doc_store.RevBody(row.rev, row.body or b"{}", row.atts)
        doc = shape_doc(conn, db, row.doc_id, doc_row, kept, opts)
        if query.selector is not None and not query.selector(doc):
            return None
    if query.all_docs_style:
        tree = tree or revtree.from_json(orjson.loads(row.tree))
        changes = [{"rev": rev} for rev in revtree.sorted_leaves(tree)]
    else:
        changes = [{"rev": row.rev}]
    entry: dict[str, Any] = {"seq": row.seq, "id": row.doc_id, "changes": changes}
    if row.deleted:
        entry["deleted"] = True
    if query.include_docs:
        entry["doc"] = doc
    return entry
