"""Export and import of the packs of a database, as one JSON file (docs/export-format.md).

Export: ``{"format": "syncd.packs", "version": 1, "exported_at": ..., "packs": [...]}`` with
every pack (winning, not deleted, ``"type": "pack"``) in doc-id order, each as ``{"id": <doc
id>, ...its own fields}``; revision metadata is left out. It is produced page by page, so a
database of any size exports in constant memory.

Import: a file whose shape, format or version is wrong is refused as a whole (400) before
anything is written. Otherwise each pack stands alone: one that breaks a rule is reported
``rejected`` with the reason; a new id is ``created``; an existing pack is ``updated`` as a
new revision on top of its current winner (its attachments kept), or left ``unchanged`` when
its fields are already the same. Writes go through ``DocumentService`` (the single writer),
a batch at a time.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from syncd.errors import CouchError, bad_request, not_found
from syncd.replication.documents import IncomingDoc, validate_doc_id
from syncd.services.documents import DocumentService, PreparedDoc, require_db
from syncd.services.packs import validate_pack
from syncd.store import transfer as store

FORMAT = "syncd.packs"
VERSION = 1
PAGE_SIZE = 500  # packs read per query while exporting
BATCH_SIZE = 500  # packs written per write_docs call while importing
MAX_ATTEMPTS = 3  # tries for a pack whose document changes between our read and our write

STATUSES = ("created", "updated", "unchanged", "rejected")

Progress = Callable[[int], None]  # called with how many more packs were handled


def exported_at() -> str:
    """The current time as ISO-8601 UTC, to the second (``2024-05-01T12:00:00Z``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pack_entry(row: store.PackRow) -> dict[str, Any]:
    """A stored pack as the file holds it: ``id`` first, then the document's own fields.

    A top-level field of the document that is itself called ``id`` cannot be told apart
    from the document id in this format, so it is left out.
    """
    body = orjson.loads(row.body)
    entry: dict[str, Any] = {"id": row.doc_id}
    entry.update((k, v) for k, v in body.items() if k != "id" and not k.startswith("_"))
    return entry


# export ---------------------------------------------------------------------------------


@dataclass
class PackExport:
    """An export whose database (and pack) exist; ``chunks()`` yields the file's bytes."""

    service: TransferService
    db_name: str
    single: bool
    first_page: list[store.PackRow]
    exported_at: str = field(default_factory=exported_at)
    exported: int = 0  # packs yielded so far

    async def chunks(self) -> AsyncIterator[bytes]:
        """The file, a page of packs per chunk; reads the next page only when asked."""
        header = {"format": FORMAT, "version": VERSION, "exported_at": self.exported_at}
        yield orjson.dumps(header)[:-1] + b',"packs":['
        rows = self.first_page
        while rows:
            parts = b",\n".join(orjson.dumps(pack_entry(row)) for row in rows)
            yield (b"\n" if self.exported == 0 else b",\n") + parts
            self.exported += len(rows)
            if self.single or len(rows) < self.service.page_size:
                break
            rows = await self.service.pack_page(self.db_name, rows[-1].doc_id)
        yield b"\n]}\n"


# import ---------------------------------------------------------------------------------


@dataclass(slots=True)
class PackOutcome:
    """What an import did with one pack of the file."""

    id: Any
    status: str
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        """``{"id", "status", "reason"?}``."""
        out: dict[str, Any] = {"id": self.id, "status": self.status}
        if self.reason is not None:
            out["reason"] = self.reason
        return out


@dataclass
class ImportReport:
    """One outcome per pack of the file, in file order."""

    results: list[PackOutcome]

    def counts(self) -> dict[str, int]:
        """How many packs got each status."""
        counts = dict.fromkeys(STATUSES, 0)
        for outcome in self.results:
            counts[outcome.status] += 1
        return counts

    def to_json(self) -> dict[str, Any]:
        """``{"counts": {...}, "results": [...]}``."""
        return {"counts": self.counts(), "results": [r.to_json() for r in self.results]}


def _describe(value: Any) -> str:
    text = orjson.dumps(value).decode()
    return text if len(text) <= 60 else text[:57] + "..."


def parse_file(raw: bytes) -> list[Any]:
    """The packs of an export file; 400 with the reason when the file as a whole is wrong."""
    if not raw.strip():
        raise bad_request("The import file is empty.")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"The import file is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise bad_request("The import file must be a JSON object with format, version and packs.")
    if data.get("format") != FORMAT:
        raise bad_request(
            f"The import file's format must be {FORMAT!r}, not {_describe(data.get('format'))}."
        )
    version = data.get("version")
    if type(version) is not int or version != VERSION:
        raise bad_request(
            f"Version {_describe(version)} of {FORMAT} is not supported; "
            f"this server reads version {VERSION}."
        )
    packs = data.get("packs")
    if not isinstance(packs, list):
        raise bad_request("The import file's packs must be a list.")
    return packs


def check_pack(raw: Any) -> tuple[str, dict[str, Any]]:
    """A pack of the file as (doc id, fields); ``CouchError`` naming the broken rule."""
    if not isinstance(raw, dict):
        raise bad_request("A pack must be a JSON object.")
    if "id" not in raw:
        raise bad_request("The pack has no id.")
    doc_id = raw["id"]
    if isinstance(doc_id, str) and doc_id.startswith("_"):
        raise bad_request("A pack id must not start with '_'.")
    doc_id = validate_doc_id(doc_id)
    fields = {k: v for k, v in raw.items() if k != "id"}
    special = next((k for k in fields if k.startswith("_")), None)
    if special is not None:
        raise bad_request(f"Field {special!r} is not allowed: field names must not start with '_'.")
    if fields.get("type") != "pack":
        raise bad_request("type must be 'pack'.")
    validate_pack(fields)
    return doc_id, fields


def _stubs(atts: bytes | None) -> dict[str, Any] | None:
    """The winner's attachments as stubs, so that an update keeps them."""
    if not atts:
        return None
    return {name: {**meta, "stub": True} for name, meta in orjson.loads(atts).items()}


@dataclass(slots=True)
class _Candidate:
    index: int  # position in the file
    doc_id: str
    fields: dict[str, Any]


@dataclass
class TransferService:
    """Export and import of packs over ``DocumentService``."""

    documents: DocumentService
    page_size: int = PAGE_SIZE
    batch_size: int = BATCH_SIZE

    # export -----------------------------------------------------------------------------

    async def start_export(self, db_name: str, pack_id: str | None = None) -> PackExport:
        """Check the database (and the pack) exist and read the first page; 404 otherwise."""

        def read(conn: sqlite3.Connection) -> list[store.PackRow]:
            db = require_db(conn, db_name)
            if pack_id is None:
                return store.pack_page(conn, db.id, None, self.page_size)
            row = store.get_pack(conn, db.id, pack_id)
            if row is None:
                raise not_found(f"No pack with id {pack_id!r}.")
            return [row]

        first = await self.documents.readers.run(read)
        return PackExport(self, db_name, pack_id is not None, first)

    async def pack_page(self, db_name: str, after: str | None) -> list[store.PackRow]:
        """The next page of packs after ``after``."""

        def read(conn: sqlite3.Connection) -> list[store.PackRow]:
            return store.pack_page(conn, require_db(conn, db_name).id, after, self.page_size)

        return await self.documents.readers.run(read)

    async def count_packs(self, db_name: str) -> int:
        """How many packs ``db_name`` holds (404 for a missing database)."""

        def read(conn: sqlite3.Connection) -> int:
            return store.count_packs(conn, require_db(conn, db_name).id)

        return await self.documents.readers.run(read)

    # import -----------------------------------------------------------------------------

    async def import_file(
        self, db_name: str, raw: bytes, progress: Progress | None = None
    ) -> ImportReport:
        """Import an export file: 400 for a bad file (nothing written), else a report."""
        packs = parse_file(raw)
        return await self.import_packs(db_name, packs, progress)

    async def import_packs(
        self, db_name: str, packs: Sequence[Any], progress: Progress | None = None
    ) -> ImportReport:
        """Validate and write each pack on its own; 404 for a missing database."""
        await self.documents.readers.run(require_db, db_name)
        outcomes: list[PackOutcome | None] = [None] * len(packs)
        seen: set[str] = set()
        for start in range(0, len(packs), self.batch_size):
            batch = packs[start : start + self.batch_size]
            candidates: list[_Candidate] = []
            for index, raw in enumerate(batch, start):
                try:
                    doc_id, fields = check_pack(raw)
                except CouchError as exc:
                    raw_id = raw.get("id") if isinstance(raw, dict) else None
                    outcomes[index] = PackOutcome(raw_id, "rejected", exc.reason)
                    continue
                if doc_id in seen:
                    outcomes[index] = PackOutcome(
                        doc_id, "rejected", "The id appears more than once in the file."
                    )
                    continue
                seen.add(doc_id)
                candidates.append(_Candidate(index, doc_id, fields))
            await self._write(db_name, candidates, outcomes)
            if progress is not None:
                progress(len(batch))
        assert all(o is not None for o in outcomes)
        return ImportReport([o for o in outcomes if o is not None])

    async def _write(
        self,
        db_name: str,
        candidates: list[_Candidate],
        outcomes: list[PackOutcome | None],
    ) -> None:
        """Write one batch; a pack whose document changed meanwhile is tried again."""
        pending = candidates
        for _ in range(MAX_ATTEMPTS):
            if not pending:
                return
            pending = await self._attempt(db_name, pending, outcomes)
        for cand in pending:
            outcomes[cand.index] = PackOutcome(
                cand.doc_id, "rejected", "The document kept changing during the import."
            )

    async def _attempt(
        self,
        db_name: str,
        candidates: list[_Candidate],
        outcomes: list[PackOutcome | None],
    ) -> list[_Candidate]:
        """Compare with the stored winners, write what differs; return the conflicted."""

        def read(conn: sqlite3.Connection) -> dict[str, store.CurrentDoc]:
            db = require_db(conn, db_name)
            return store.current_docs(conn, db.id, [c.doc_id for c in candidates])

        current = await self.documents.readers.run(read)
        writes: list[tuple[_Candidate, str, PreparedDoc]] = []
        for cand in candidates:
            found = current.get(cand.doc_id)
            if found is None or found.deleted:
                doc = IncomingDoc(cand.doc_id, None, None, False, cand.fields, None)
                status = "created"
            else:
                stored = orjson.loads(found.body) if found.body is not None else None
                if stored is not None and stored.get("type") != "pack":
                    outcomes[cand.index] = PackOutcome(
                        cand.doc_id, "rejected", "A document that is not a pack has this id."
                    )
                    continue
                if stored == cand.fields:
                    outcomes[cand.index] = PackOutcome(cand.doc_id, "unchanged")
                    continue
                doc = IncomingDoc(
                    cand.doc_id, found.rev, None, False, cand.fields, _stubs(found.atts)
                )
                status = "updated"
            prepared = self.documents.prepare(doc)
            if prepared.error is not None:
                outcomes[cand.index] = PackOutcome(
                    cand.doc_id, "rejected", self._reason(prepared.error)
                )
                continue
            writes.append((cand, status, prepared))
        if not writes:
            return []
        results = await self.documents.write_docs(
            db_name, [p for _, _, p in writes], new_edits=True
        )
        retry: list[_Candidate] = []
        for (cand, status, _), result in zip(writes, results, strict=True):
            if result.error is None:
                outcomes[cand.index] = PackOutcome(cand.doc_id, status)
            elif result.error.status == 409:
                retry.append(cand)
            else:
                outcomes[cand.index] = PackOutcome(
                    cand.doc_id, "rejected", self._reason(result.error)
                )
        return retry

    def _reason(self, error: CouchError) -> str:
        if error.error == "document_too_large":
            return f"The pack is larger than {self.documents.max_doc_bytes} bytes."
        return error.reason
