"""Documents and databases: CouchDB's write and read rules over the store.

Writes are prepared on the event loop (bodies encoded, validation run) and then applied by
one op in the writer's transaction, which reads the current revision trees, merges, stems and
writes. Reads run as one unit of work on a reader connection.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from syncd.errors import CouchError, bad_request, conflict, db_not_found, not_found
from syncd.replication import revtree
from syncd.replication.documents import IncomingDoc, validate_db_name
from syncd.replication.revs import canonical_body, new_rev
from syncd.replication.revtree import RevTree
from syncd.services import attachments
from syncd.store import attachments as att_store
from syncd.store import documents as store
from syncd.store.sqlite import ReaderPool, Writer, WriteTx

Validator = Callable[[dict[str, Any]], None]
Result = dict[str, Any]


@dataclass(slots=True)
class WriteResult:
    """The outcome of writing one document: its new rev, or the error that refused it."""

    id: str | None
    rev: str | None = None
    error: CouchError | None = None

    def to_json(self) -> Result:
        """CouchDB's per-document entry of a ``_bulk_docs`` response."""
        if self.error is None:
            return {"ok": True, "id": self.id, "rev": self.rev}
        return {"id": self.id, "error": self.error.error, "reason": self.error.reason}


@dataclass(slots=True)
class PreparedDoc:
    """A document ready for the writer: encoded once, validated, or already failed."""

    doc: IncomingDoc | None
    body: bytes = b""
    error: CouchError | None = None
    error_id: str | None = None
    atts: attachments.IncomingAttachments = field(default_factory=attachments.IncomingAttachments)
    local: bool = False  # a ``_local/`` document: no revision tree, revs count 0-1, 0-2, ...
    local_rev: int | None = None  # the ``0-N`` it names, for a local document
    # The rev an edit gets when it extends the rev it names (almost every edit does), made on
    # the event loop by ``write_docs`` so that the writer's transaction does not hash bodies.
    next_rev: str | None = None


@dataclass(slots=True)
class ReadOptions:
    """What a document read asks for, as CouchDB's query parameters name it."""

    rev: str | None = None
    revs: bool = False
    revs_info: bool = False
    conflicts: bool = False
    deleted_conflicts: bool = False
    local_seq: bool = False
    latest: bool = False
    open_revs: list[str] | str | None = None  # "all" or a list of revs
    attachments: bool = False  # inline attachment data instead of stubs
    atts_since: list[str] | None = None  # ...only for attachments newer than these revs


@dataclass(slots=True)
class AllDocsQuery:
    """``_all_docs`` parameters after parsing."""

    keys: list[Any] | None = None
    start: Any = None
    end: Any = None
    inclusive_end: bool = True
    descending: bool = False
    skip: int = 0
    limit: int | None = None
    include_docs: bool = False
    conflicts: bool = False
    update_seq: bool = False


@dataclass(slots=True)
class DbInfo:
    """What ``GET /{db}`` reports."""

    row: store.DbRow
    external_size: int
    file_size: int


@dataclass
class DocumentService:
    """Every database and document operation the CouchDB API offers."""

    writer: Writer
    readers: ReaderPool
    max_doc_bytes: int
    validators: list[Validator] = field(default_factory=list)
    file_size: Callable[[], int] = lambda: 0
    # db id -> (the db's counters when measured, body bytes): ``db_info`` sums every kept body,
    # and PouchDB asks for it after every replication batch, so the sum is kept until the
    # counters move (every write does) or compaction, creation or deletion clears it.
    _sizes: dict[int, tuple[tuple[str, int, int, int], int]] = field(
        default_factory=dict, init=False, repr=False
    )
    _sizes_generation: int = field(default=0, init=False, repr=False)

    def _forget_sizes(self) -> None:
        self._sizes.clear()
        self._sizes_generation += 1

    # databases -------------------------------------------------------------------------

    async def create_db(self, name: str) -> None:
        """Create a database; 412 ``file_exists`` if it exists."""
        validate_db_name(name)
        created_at = datetime.now(UTC).isoformat(timespec="seconds")

        def op(tx: WriteTx) -> None:
            if not store.create_db(tx.conn, name, created_at):
                raise CouchError(
                    412,
                    "file_exists",
                    "The database could not be created, the file already exists.",
                )
            tx.mark_changed(name, -1)  # a new database: feeds forget what they knew of the name

        await self.writer.submit(op)
        self._forget_sizes()

    async def delete_db(self, name: str) -> None:
        """Delete a database and everything in it."""

        def op(tx: WriteTx) -> None:
            db = require_db(tx.conn, name)
            store.delete_db(tx.conn, db.id)
            tx.mark_changed(name, -1)  # its waiting feeds wake and find it gone

        await self.writer.submit(op)
        self._forget_sizes()

    async def totals(self) -> tuple[int, int]:
        """(databases, live documents) across the server."""
        return await self.readers.run(store.totals)

    async def all_dbs(self) -> list[str]:
        """Every database name."""
        return await self.readers.run(store.list_dbs)

    async def db_exists(self, name: str) -> bool:
        """Whether ``name`` exists."""
        return await self.readers.run(store.get_db, name) is not None

    async def db_info(self, name: str) -> DbInfo:
        """Counts, sequence and sizes of a database."""

        generation = self._sizes_generation

        def read(conn: sqlite3.Connection) -> tuple[DbInfo, bool]:
            db = require_db(conn, name)
            key = (db.name, db.update_seq, db.doc_count, db.doc_del_count)
            cached = self._sizes.get(db.id)
            if cached is not None and cached[0] == key:
                return DbInfo(db, cached[1], 0), False
            return DbInfo(db, store.body_size(conn, db.id), 0), True

        info, measured = await self.readers.run(read)
        if measured and generation == self._sizes_generation:
            row = info.row
            key = (row.name, row.update_seq, row.doc_count, row.doc_del_count)
            self._sizes[row.id] = (key, info.external_size)
        info.file_size = self.file_size()
        return info

    async def get_revs_limit(self, name: str) -> int:
        """How many revisions per branch the database keeps."""
        return (await self.readers.run(require_db, name)).revs_limit

    async def set_revs_limit(self, name: str, limit: int) -> None:
        """Change ``revs_limit`` (later writes stem to it)."""

        def op(tx: WriteTx) -> None:
            store.set_revs_limit(tx.conn, require_db(tx.conn, name).id, limit)

        await self.writer.submit(op)

    async def compact(self, name: str) -> None:
        """Drop the bodies of every revision that is not a leaf."""

        def op(tx: WriteTx) -> None:
            db = require_db(tx.conn, name)
            for doc_id, tree in list(store.iter_doc_trees(tx.conn, db.id)):
                leaves = set(revtree.leaves(tree))
                stale = [
                    rev for rev in store.kept_revs(tx.conn, db.id, doc_id) if rev not in leaves
                ]
                if stale:
                    store.delete_revs(tx.conn, db.id, doc_id, stale)
            att_store.drop_unreferenced(tx.conn)

        await self.writer.submit(op)
        self._forget_sizes()

    # writes ----------------------------------------------------------------------------

    def prepare(self, doc: IncomingDoc) -> PreparedDoc:
        """Encode and validate one document on the event loop, before it goes to the writer."""
        try:
            body = orjson.dumps(doc.body)
            if len(body) > self.max_doc_bytes:
                raise CouchError(413, "document_too_large", doc.id or "document")
            if not doc.deleted:
                for validate in self.validators:
                    validate(doc.body)
            atts = attachments.decode(doc.attachments)
            return PreparedDoc(doc, body, atts=atts)
        except CouchError as exc:
            return PreparedDoc(doc, error=exc, error_id=doc.id)

    async def write_docs(
        self, db_name: str, prepared: Sequence[PreparedDoc], new_edits: bool
    ) -> list[WriteResult]:
        """Apply a bulk write; one result per document, in order."""
        if new_edits:
            _hash_edits(prepared)

        def op(tx: WriteTx) -> list[WriteResult]:
            return _apply_writes(tx, db_name, prepared, new_edits)

        return await self.writer.submit(op, cost=_write_cost(prepared))

    async def write_doc(self, db_name: str, doc: IncomingDoc, new_edits: bool = True) -> str:
        """Write one document and return its rev; raise its error (409, 403, ...)."""
        prepared = self.prepare(doc)
        if prepared.error is not None:
            raise prepared.error
        (result,) = await self.write_docs(db_name, [prepared], new_edits)
        if result.error is not None:
            raise result.error
        assert result.rev is not None
        return result.rev

    # reads -----------------------------------------------------------------------------

    async def get_doc(self, db_name: str, doc_id: str, opts: ReadOptions) -> tuple[Any, str | None]:
        """A document (or, with ``open_revs``, a list of results) and its ETag rev."""

        def read(conn: sqlite3.Connection) -> tuple[Any, str | None]:
            db = require_db(conn, db_name)
            row = store.load_doc(conn, db.id, doc_id)
            if opts.open_revs is not None:
                return _open_revs(conn, db, doc_id, row, opts), None
            if row is None:
                raise not_found("missing")
            rev = opts.rev or row.rev
            if opts.rev is not None and opts.latest and rev in row.tree:
                rev = revtree.latest_leaves(row.tree, rev)[0]
            if opts.rev is None and row.deleted:
                raise not_found("deleted")
            if rev not in row.tree:
                raise not_found("missing")
            bodies = store.read_revs(conn, db.id, doc_id, [rev])
            if rev not in bodies:
                raise not_found("missing")
            return shape_doc(conn, db, doc_id, row, bodies[rev], opts), rev

        return await self.readers.run(read)

    async def revs_diff(self, db_name: str, wanted: dict[str, list[str]]) -> dict[str, Any]:
        """For each doc, the revs this database lacks and the leaves that may be ancestors."""

        def read(conn: sqlite3.Connection) -> dict[str, Any]:
            db = require_db(conn, db_name)
            out: dict[str, Any] = {}
            for doc_id, revs in wanted.items():
                row = store.load_doc(conn, db.id, doc_id)
                missing, ancestors = revtree.missing_revs(row.tree if row else None, revs)
                if missing:
                    entry: dict[str, Any] = {"missing": missing}
                    if ancestors:
                        entry["possible_ancestors"] = ancestors
                    out[doc_id] = entry
            return out

        return await self.readers.run(read)

    async def bulk_get(
        self, db_name: str, requests: list[dict[str, Any]], opts: ReadOptions
    ) -> list[dict[str, Any]]:
        """``_bulk_get``: per requested (id, rev) a doc or an error, in CouchDB's shape."""

        def read(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            db = require_db(conn, db_name)
            results = []
            for req in requests:
                doc_id = req.get("id")
                rev = req.get("rev")
                if not isinstance(doc_id, str) or (rev is not None and not isinstance(rev, str)):
                    results.append(
                        _bulk_get_error(doc_id, rev, bad_request("id and rev must be strings"))
                    )
                    continue
                row = store.load_doc(conn, db.id, doc_id)
                if row is None:
                    results.append(_bulk_get_error(doc_id, rev, not_found("missing")))
                    continue
                atts_since = req.get("atts_since")
                one = ReadOptions(
                    revs=opts.revs,
                    latest=opts.latest,
                    open_revs=[row.rev if rev is None else rev],  # "" is no rev, not the winner
                    attachments=opts.attachments,
                    atts_since=atts_since if isinstance(atts_since, list) else None,
                )
                docs = _open_revs(conn, db, doc_id, row, one)
                out = []
                for entry in docs:
                    if "missing" in entry:
                        out.append(_error_entry(doc_id, entry["missing"], not_found("missing")))
                    else:
                        out.append(entry)
                results.append({"id": doc_id, "docs": out})
            return results

        return await self.readers.run(read)

    async def all_docs(self, db_name: str, q: AllDocsQuery) -> dict[str, Any]:
        """``_all_docs`` in CouchDB's shape."""
        _id_range(q)  # a reversed range is refused before any read

        def read(conn: sqlite3.Connection) -> dict[str, Any]:
            db = require_db(conn, db_name)
            opts = ReadOptions(conflicts=q.conflicts)
            rows: list[dict[str, Any]] = []
            if q.keys is not None:
                ids = [k for k in q.keys if isinstance(k, str)]
                found = store.docs_by_ids(conn, db.id, ids, q.include_docs)
                keys = list(reversed(q.keys)) if q.descending else q.keys
                for key in keys[q.skip :]:
                    if q.limit is not None and len(rows) >= q.limit:
                        break
                    hit = found.get(key) if isinstance(key, str) else None
                    if hit is None:
                        rows.append({"key": key, "error": "not_found"})
                    else:
                        rows.append(_all_docs_row(conn, db, hit, q.include_docs, opts))
                offset = None
            else:
                start, end, empty = _id_range(q)
                if empty:
                    return {"total_rows": db.doc_count, "offset": db.doc_count, "rows": []}
                found_rows, offset = store.all_docs_range(
                    conn,
                    db.id,
                    start=start,
                    end=end,
                    inclusive_end=q.inclusive_end,
                    descending=q.descending,
                    skip=q.skip,
                    limit=q.limit,
                    include_bodies=q.include_docs,
                )
                rows = [_all_docs_row(conn, db, r, q.include_docs, opts) for r in found_rows]
            result: dict[str, Any] = {"total_rows": db.doc_count, "offset": offset, "rows": rows}
            if q.update_seq:
                result["update_seq"] = db.update_seq
            return result

        return await self.readers.run(read)

    # standalone attachments --------------------------------------------------------------

    async def get_attachment(
        self, db_name: str, doc_id: str, name: str, rev: str | None
    ) -> tuple[dict[str, Any], bytes]:
        """An attachment's stub and bytes, from ``rev`` or the winning revision."""

        def read(conn: sqlite3.Connection) -> tuple[dict[str, Any], bytes]:
            db = require_db(conn, db_name)
            row = store.load_doc(conn, db.id, doc_id)
            if row is None or (rev is None and row.deleted):
                raise not_found("missing" if row is None else "deleted")
            wanted = rev or row.rev
            kept = store.read_revs(conn, db.id, doc_id, [wanted]).get(wanted)
            atts = orjson.loads(kept.atts) if kept and kept.atts else {}
            if name not in atts:
                raise not_found("Document is missing attachment")
            data = att_store.get_body(conn, atts[name]["digest"])
            if data is None:
                raise not_found("Document is missing attachment")
            return atts[name], data

        return await self.readers.run(read)

    async def put_attachment(
        self,
        db_name: str,
        doc_id: str,
        name: str,
        rev: str | None,
        content_type: str | None,
        data: bytes | None,
    ) -> str:
        """Write a new revision with attachment ``name`` set to ``data`` (or removed if None)."""
        body: dict[str, Any] = {}
        stubs: dict[str, dict[str, Any]] = {}
        if rev is not None:
            try:
                current, _ = await self.get_doc(db_name, doc_id, ReadOptions(rev=rev))
            except CouchError as exc:
                if exc.status == 404 and exc.reason in ("missing", "deleted"):
                    raise conflict() from None  # CouchDB: an unknown rev is a conflict here
                raise
            body = {k: v for k, v in current.items() if not k.startswith("_")}
            stubs = dict(current.get("_attachments", {}))
        if data is None:
            if name not in stubs:
                raise not_found("Document is missing attachment")
            del stubs[name]
        else:
            stubs.pop(name, None)
        doc = IncomingDoc(doc_id, rev, None, False, body, None)
        prepared = self.prepare(doc)
        if prepared.error is not None:
            raise prepared.error
        prepared.atts.stubs = stubs
        if data is not None:
            prepared.atts.new[name] = attachments.NewAttachment(
                content_type or "application/octet-stream", data, attachments.digest_of(data), None
            )
        (result,) = await self.write_docs(db_name, [prepared], new_edits=True)
        if result.error is not None:
            raise result.error
        assert result.rev is not None
        return result.rev

    # _local documents -------------------------------------------------------------------

    async def get_local(self, db_name: str, doc_id: str) -> dict[str, Any]:
        """A ``_local`` document with its ``0-N`` rev."""

        def read(conn: sqlite3.Connection) -> dict[str, Any]:
            db = require_db(conn, db_name)
            found = store.get_local(conn, db.id, doc_id)
            if found is None:
                raise not_found("missing")
            rev, body = found
            return {"_id": doc_id, "_rev": f"0-{rev}", **orjson.loads(body)}

        return await self.readers.run(read)

    async def put_local(self, db_name: str, doc_id: str, doc: IncomingDoc) -> Result:
        """Write a ``_local`` document; its rev must match the stored one (else 409)."""
        prepared = self.prepare_local(doc)
        if prepared.error is not None:
            raise prepared.error

        def op(tx: WriteTx) -> Result:
            db = require_db(tx.conn, db_name)
            result = _write_local(tx.conn, db, prepared)
            if result.error is not None:
                raise result.error
            return result.to_json()

        return await self.writer.submit(op)

    def prepare_local(self, doc: IncomingDoc) -> PreparedDoc:
        """Encode and check a ``_local`` document (size, ``0-N`` rev) for the writer."""
        try:
            body = orjson.dumps(doc.body)
            if len(body) > self.max_doc_bytes:
                raise CouchError(413, "document_too_large", doc.id or "document")
            given = _local_rev_number(doc.rev)
        except CouchError as exc:
            return PreparedDoc(doc, error=exc, error_id=doc.id)
        return PreparedDoc(doc, body, local=True, local_rev=given)

    async def delete_local(self, db_name: str, doc_id: str, rev: str | None) -> Result:
        """Delete a ``_local`` document."""
        doc = IncomingDoc(doc_id, rev, None, True, {}, None)
        return await self.put_local(db_name, doc_id, doc)


# helpers used inside units of work --------------------------------------------------------


def _side(key: Any) -> int:
    """Where a key sorts against document ids (strings) in CouchDB's collation."""
    if key is None or isinstance(key, (bool, int, float)):
        return -1  # null, booleans and numbers sort before every string
    if isinstance(key, str):
        return 0
    return 1  # arrays and objects sort after every string


def _id_range(q: AllDocsQuery) -> tuple[str | None, str | None, bool]:
    """String bounds for an ``_all_docs`` range: (start, end, nothing-can-match)."""
    first, last = (1, -1) if q.descending else (-1, 1)  # which side is "open" for each bound
    start = end = None
    empty = False
    if q.start is not None:
        side = _side(q.start)
        if side == 0:
            start = q.start
        elif side != first:
            empty = True
    if q.end is not None:
        side = _side(q.end)
        if side == 0:
            end = q.end
        elif side != last:
            empty = True
    if start is not None and end is not None and (start > end if not q.descending else start < end):
        raise CouchError(
            400,
            "query_parse_error",
            "No rows can match your key range, reverse your start_key and end_key or set "
            f"descending={'false' if q.descending else 'true'}",
        )
    return start, end, empty


def require_db(conn: sqlite3.Connection, name: str) -> store.DbRow:
    db = store.get_db(conn, name)
    if db is None:
        raise db_not_found()
    return db


def _write_local(conn: sqlite3.Connection, db: store.DbRow, item: PreparedDoc) -> WriteResult:
    """Store (or delete) one ``_local`` document: the rev given must be the stored one.

    A new document may name any ``0-N``; as in CouchDB, counting goes on from there.
    """
    doc = item.doc
    assert doc is not None and doc.id is not None
    found = store.get_local(conn, db.id, doc.id)
    current = found[0] if found else None
    given = item.local_rev
    if doc.deleted:
        if current is None:
            return WriteResult(doc.id, error=not_found("missing"))
        if given != current:
            return WriteResult(doc.id, error=conflict())
        store.delete_local(conn, db.id, doc.id)
        return WriteResult(doc.id, "0-0")
    if current is not None and given != current:
        return WriteResult(doc.id, error=conflict())
    rev = (given or 0) + 1
    store.put_local(conn, db.id, doc.id, rev, item.body)
    return WriteResult(doc.id, f"0-{rev}")


def _local_rev_number(rev: str | None) -> int | None:
    if rev is None:
        return None
    prefix, _, number = rev.partition("-")
    # ASCII digits only, and few of them: int() refuses "²" and numbers of 4300+ digits.
    if prefix != "0" or not (number.isascii() and number.isdigit()) or len(number) > 19:
        raise bad_request("Invalid rev format")
    return int(number)


def _apply_writes(
    tx: WriteTx, db_name: str, prepared: Sequence[PreparedDoc], new_edits: bool
) -> list[WriteResult]:
    """The writer-side half of a bulk write: merge each doc into its tree and store it."""
    conn = tx.conn
    db = require_db(conn, db_name)
    seq = db.update_seq
    doc_delta = del_delta = 0
    # Every tree the batch touches, read with one statement per 500 ids (None: a new doc).
    ids = [p.doc.id for p in prepared if p.doc is not None and p.doc.id and not p.local]
    trees: dict[str, store.DocRow | None] = dict.fromkeys(ids)
    trees.update(store.load_docs(conn, db.id, ids))
    results: list[WriteResult] = []
    for item in prepared:
        if item.error is not None or item.doc is None:
            results.append(
                WriteResult(item.error_id, error=item.error or bad_request("invalid doc"))
            )
            continue
        if item.local:  # kept apart from the revisioned documents, as CouchDB does
            results.append(_write_local(conn, db, item))
            continue
        doc = item.doc
        doc_id = doc.id
        assert doc_id is not None
        row = trees[doc_id]
        try:
            if new_edits:
                tree, rev, ancestors = _edit(row, doc, item)
            else:
                grafted, rev, ancestors = _graft(row, doc)
                if grafted is None:  # a replicated revision we already have: nothing to write
                    results.append(WriteResult(doc_id, rev))
                    continue
                tree = grafted
            # CouchDB resolves an edit's stubs against the parent revision alone (412 for a
            # stub it lacks, even if an older revision has it); a replicated revision's
            # against the nearest ancestor kept here.
            stub_sources = ancestors[:1] if new_edits else ancestors
            atts = _resolve_attachments(conn, db, doc_id, item, stub_sources, rev)
        except CouchError as exc:
            results.append(WriteResult(doc_id, error=exc))
            continue
        if revtree.longest_branch(tree) > db.revs_limit:
            tree, dropped = revtree.stem(tree, db.revs_limit)
            if dropped:
                store.delete_revs(conn, db.id, doc_id, dropped)
        winner = revtree.winner(tree)
        deleted = tree[winner][1]
        seq += 1
        was_live = row is not None and not row.deleted
        was_deleted = row is not None and row.deleted
        doc_delta += int(not deleted) - int(was_live)
        del_delta += int(deleted) - int(was_deleted)
        store.save_doc(conn, db.id, doc_id, winner, deleted, seq, tree)
        # A rev stemmed away at once (revs_limit below its own depth) keeps no body.
        if rev in tree:
            store.insert_rev(conn, db.id, doc_id, rev, item.body, atts)
        trees[doc_id] = store.DocRow(doc_id, winner, deleted, seq, tree)
        results.append(WriteResult(doc_id, rev))
    if seq != db.update_seq:
        store.update_db_counters(conn, db.id, seq, doc_delta, del_delta)
        tx.mark_changed(db_name, seq)
    return results


def _write_cost(prepared: Sequence[PreparedDoc]) -> int:
    """About one per short document, one more per 16 KB of bodies and attachments."""
    size = sum(len(p.body) + sum(len(a.data) for a in p.atts.new.values()) for p in prepared)
    return len(prepared) + size // 16384


def _resolve_attachments(
    conn: sqlite3.Connection,
    db: store.DbRow,
    doc_id: str,
    item: PreparedDoc,
    ancestors: list[str],
    rev: str,
) -> bytes | None:
    """Store new attachment bodies and find stubs in the nearest earlier revisions."""
    if not item.atts:
        return None
    candidates: list[dict[str, Any]] = []
    if item.atts.stubs and ancestors:
        kept = store.read_revs(conn, db.id, doc_id, ancestors)
        candidates = [orjson.loads(kept[r].atts) for r in ancestors if r in kept and kept[r].atts]  # type: ignore[arg-type]
    resolved = attachments.resolve(conn, doc_id, item.atts, candidates, revtree.generation(rev))
    return orjson.dumps(resolved) if resolved else None


def _edit(
    row: store.DocRow | None, doc: IncomingDoc, item: PreparedDoc
) -> tuple[RevTree, str, list[str]]:
    """new_edits=true: the new rev must extend a current leaf (or start a new document)."""
    if row is None:
        if doc.rev is not None:
            raise conflict()
        parent = None
    elif doc.rev is None:
        if not row.deleted:
            raise conflict()
        parent = row.rev  # re-creating a deleted document extends its tombstone
    else:
        if doc.rev not in row.tree or doc.rev not in revtree.leaves(row.tree):
            raise conflict()
        parent = doc.rev
    rev = item.next_rev if parent == doc.rev and item.next_rev else _new_rev(item, parent)
    tree = row.tree if row else {}
    ancestors = revtree.ancestry(tree, parent) if parent else []
    merged, _ = revtree.merge_path(tree, [rev, *ancestors], doc.deleted)
    return merged, rev, ancestors


def _hash_edits(prepared: Sequence[PreparedDoc]) -> None:
    """Give each edit the rev it gets when it extends the rev it names (``next_rev``)."""
    for item in prepared:
        if item.doc is not None and item.error is None and not item.local:
            item.next_rev = _new_rev(item, item.doc.rev)


def _new_rev(item: PreparedDoc, parent: str | None) -> str:
    """The rev of ``item``'s edit when it extends ``parent``."""
    assert item.doc is not None
    digests = attachments.digests(item.atts)
    return new_rev(parent, item.doc.deleted, canonical_body(item.doc.body), digests)


def _graft(row: store.DocRow | None, doc: IncomingDoc) -> tuple[RevTree | None, str, list[str]]:
    """new_edits=false: take the given rev and history as they are (replication)."""
    if doc.rev is None:
        raise bad_request(
            "When `new_edits: false`, the document needs `_rev` or `_revisions` specified"
        )
    path = doc.path or [doc.rev]
    tree = row.tree if row else {}
    merged, status = revtree.merge_path(tree, path, doc.deleted)
    if status == "internal_node" and row is not None and merged == row.tree:
        return None, doc.rev, []
    ancestors = [r for r in path[1:] if r in tree]
    if row is not None and not ancestors:
        ancestors = revtree.sorted_leaves(row.tree)
    return merged, doc.rev, ancestors


def shape_doc(
    conn: sqlite3.Connection,
    db: store.DbRow,
    doc_id: str,
    row: store.DocRow,
    kept: store.RevBody,
    opts: ReadOptions,
) -> dict[str, Any]:
    """A stored revision as CouchDB returns it, with the metadata asked for."""
    rev = kept.rev
    tree = row.tree
    doc: dict[str, Any] = {"_id": doc_id, "_rev": rev}
    if tree[rev][1]:
        doc["_deleted"] = True
    doc.update(orjson.loads(kept.body))
    if kept.atts:
        doc["_attachments"] = attachments.shape(
            conn,
            kept.atts,
            inline=opts.attachments,
            since_generation=_atts_since_generation(tree, rev, opts.atts_since),
        )
    if opts.conflicts and rev == row.rev:
        found = revtree.conflicts(tree)
        if found:
            doc["_conflicts"] = found
    if opts.deleted_conflicts and rev == row.rev:
        found = revtree.deleted_conflicts(tree)
        if found:
            doc["_deleted_conflicts"] = found
    if opts.local_seq:
        doc["_local_seq"] = row.seq
    if opts.revs:
        doc["_revisions"] = revtree.revisions(tree, rev)
    if opts.revs_info:
        kept_revs = store.kept_revs(conn, db.id, doc_id)
        doc["_revs_info"] = [
            {"rev": r, "status": _rev_status(tree, r, kept_revs)}
            for r in revtree.ancestry(tree, rev)
        ]
    return doc


def _rev_status(tree: RevTree, rev: str, kept_revs: set[str]) -> str:
    if tree[rev][1]:
        return "deleted"
    return "available" if rev in kept_revs else "missing"


def _atts_since_generation(tree: RevTree, rev: str, atts_since: list[str] | None) -> int:
    """Attachments at or below this revpos the client already has (CouchDB's atts_since)."""
    if not atts_since:
        return 0
    history = set(revtree.ancestry(tree, rev))
    known = [revtree.generation(r) for r in atts_since if r in history]
    return max(known, default=0)


def _open_revs(
    conn: sqlite3.Connection,
    db: store.DbRow,
    doc_id: str,
    row: store.DocRow | None,
    opts: ReadOptions,
) -> list[dict[str, Any]]:
    """``open_revs``: ``[{"ok": doc} | {"missing": rev}]`` for the requested revs."""
    if opts.open_revs == "all":
        if row is None:
            raise not_found("missing")
        revs = revtree.sorted_leaves(row.tree)
    else:
        assert isinstance(opts.open_revs, list)
        revs = list(opts.open_revs)
        if row is not None and opts.latest:
            expanded: list[str] = []
            for rev in revs:
                expanded.extend(revtree.latest_leaves(row.tree, rev) if rev in row.tree else [rev])
            revs = list(dict.fromkeys(expanded))
    if row is None:
        return [{"missing": rev} for rev in revs]
    bodies = store.read_revs(conn, db.id, doc_id, [r for r in revs if r in row.tree])
    out: list[dict[str, Any]] = []
    for rev in revs:
        kept = bodies.get(rev)
        if kept is None:
            out.append({"missing": rev})
        else:
            out.append({"ok": shape_doc(conn, db, doc_id, row, kept, opts)})
    return out


def _error_entry(doc_id: str, rev: str | None, exc: CouchError) -> dict[str, Any]:
    return {
        "error": {"id": doc_id, "rev": rev or "undefined", "error": exc.error, "reason": exc.reason}
    }


def _bulk_get_error(doc_id: Any, rev: Any, exc: CouchError) -> dict[str, Any]:
    return {"id": doc_id, "docs": [_error_entry(doc_id, rev, exc)]}


def _all_docs_row(
    conn: sqlite3.Connection,
    db: store.DbRow,
    row: store.AllDocsRow,
    include_docs: bool,
    opts: ReadOptions,
) -> dict[str, Any]:
    value: dict[str, Any] = {"rev": row.rev}
    if row.deleted:
        value["deleted"] = True
    out: dict[str, Any] = {"id": row.doc_id, "key": row.doc_id, "value": value}
    if include_docs:
        if row.deleted or row.body is None:
            out["doc"] = None
        else:
            doc_row = store.DocRow(row.doc_id, row.rev, row.deleted, 0, row.tree)
            kept = store.RevBody(row.rev, row.body, row.atts)
            out["doc"] = shape_doc(conn, db, row.doc_id, doc_row, kept, opts)
    return out
