"""The curated pack store: admins publish packs, anyone browses, entitled accounts install.

Listings page with an opaque cursor over the catalog *as it was when the listing began* (a
snapshot of the catalog's change counter), so packs added or updated between pages never
cause duplicates or skips. Reads are served from an in-process cache that every catalog write
clears; concurrent misses for one key run one query (single flight).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
import secrets
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson

from syncd.errors import CouchError, bad_request, not_found
from syncd.replication.documents import IncomingDoc
from syncd.services.accounts import Identity
from syncd.services.documents import DocumentService, ReadOptions
from syncd.services.packs import validate_pack
from syncd.store import catalog as store
from syncd.store.sqlite import ReaderPool, Writer, WriteTx, is_integer

T = TypeVar("T")

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,99}$")
_SKU = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
_TAG = re.compile(r"^[a-z0-9][a-z0-9 _-]{0,31}$")
MAX_DESCRIPTION = 2000
MAX_TAGS = 20
DEFAULT_PAGE = 20
MAX_PAGE = 100
CACHE_ENTRIES = 2048


def entitlement_required(sku: str) -> CouchError:
    """403 for premium content without an entitlement, naming the sku to buy."""
    return CouchError(403, "entitlement_required", f"This pack needs the entitlement '{sku}'.")


def pack_json(pack: store.CatalogPack) -> dict[str, Any]:
    """A curated pack's public metadata."""
    return {
        "id": pack.id,
        "slug": pack.slug,
        "title": pack.title,
        "description": pack.description,
        "language": pack.language,
        "tags": pack.tags,
        "tier": pack.tier,
        "sku": pack.sku,
        "version": pack.version,
        "prompt_count": pack.prompt_count,
        "created_at": pack.created_at,
        "updated_at": pack.updated_at,
    }


@dataclass(frozen=True, slots=True)
class PackInput:
    """A validated curated pack as an admin sends it."""

    slug: str
    title: str
    description: str
    language: str
    tags: list[str]
    tier: str
    sku: str | None
    prompts: list[store.Prompt]


def parse_pack_input(data: object) -> PackInput:
    """Validate an admin's pack (the pack document rules, plus store fields)."""
    if not isinstance(data, dict):
        raise bad_request("A pack must be a JSON object")
    slug = data.get("slug")
    if not isinstance(slug, str) or not _SLUG.match(slug):
        raise bad_request("slug must be 1-100 lowercase letters, digits or '-'")
    prompts = data.get("prompts", [])
    try:
        validate_pack({**data, "type": "pack", "prompts": prompts})
    except CouchError as exc:
        raise bad_request(exc.reason) from None
    description = data.get("description", "")
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        raise bad_request(f"description must be a string of at most {MAX_DESCRIPTION} characters")
    tags = data.get("tags", [])
    if (
        not isinstance(tags, list)
        or len(tags) > MAX_TAGS
        or not all(isinstance(t, str) and _TAG.match(t) for t in tags)
    ):
        raise bad_request(f"tags must be at most {MAX_TAGS} lowercase tags of 1-32 characters")
    tier = data.get("tier", "free")
    if tier not in ("free", "premium"):
        raise bad_request("tier must be free or premium")
    sku = data.get("sku")
    if tier == "premium" and (not isinstance(sku, str) or not _SKU.match(sku)):
        raise bad_request("a premium pack needs a sku of 1-100 letters, digits, '.', '_' or '-'")
    if tier == "free":
        sku = None
    return PackInput(
        slug,
        data["title"],
        description,
        data["language"],
        sorted(set(tags)),
        tier,
        sku,
        [store.Prompt(p["id"], p["text"]) for p in prompts],
    )


@dataclass(frozen=True, slots=True)
class ListParams:
    """A listing request: filters, order, page size and the cursor from the previous page."""

    language: str | None = None
    tag: str | None = None
    tier: str | None = None
    q: str | None = None
    sort: str = "updated"
    limit: int = DEFAULT_PAGE
    cursor: str | None = None


def _fts_query(text: str) -> str | None:
    """User words as an FTS5 query: every word must match (the last one as a prefix).

    NUL separates words too: FTS5 reads its query as a C string, so a NUL inside would cut
    the query short (an unterminated string, a 500 instead of a listing).
    """
    words = [w for w in re.split(r"[\s\x00]+", text) if w][:10]
    if not words:
        return None
    quoted = ['"' + w.replace('"', '""') + '"' for w in words]
    quoted[-1] += "*"
    return " ".join(quoted)


def _encode_cursor(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(data)).decode().rstrip("=")


def _decode_cursor(cursor: str, sort: str) -> dict[str, Any]:
    """The position a cursor of ``sort`` holds (400 for anything else, never a 500 later)."""
    try:
        data = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        raise bad_request("Invalid cursor") from None
    if not isinstance(data, dict) or not is_integer(data.get("w")):
        raise bad_request("Invalid cursor")
    if sort == "title":
        valid = isinstance(data.get("t"), str) and isinstance(data.get("i"), str)
    else:
        valid = is_integer(data.get("s"))
    if not valid:
        raise bad_request("Invalid cursor")
    return data


class SingleFlightCache:
    """Cached values by key; concurrent misses share one load; ``clear`` on every write."""

    def __init__(self, size: int = CACHE_ENTRIES) -> None:
        self._values: dict[Any, Any] = {}
        self._loading: dict[Any, asyncio.Future[Any]] = {}
        self._running: set[asyncio.Future[Any]] = set()
        self._size = size
        self._generation = 0
        self.loads = 0  # how many loads ran (tests and metrics read it)

    async def get(self, key: Any, load: Callable[[], Awaitable[T]]) -> T:
        """The value for ``key``, loading it once however many callers ask at the same time.

        The load runs as a task of its own, so a caller that goes away (its client hung up)
        does not cancel it for the others.
        """
        if key in self._values:
            return self._values[key]  # type: ignore[no-any-return]
        pending = self._loading.get(key)
        if pending is None:
            self.loads += 1
            pending = asyncio.ensure_future(self._load(key, load, self._generation))
            pending.add_done_callback(_retrieve)
            self._loading[key] = pending
            self._running.add(pending)  # a strong reference until it ends, even after clear()
            pending.add_done_callback(self._running.discard)
        return await asyncio.shield(pending)

    async def _load(self, key: Any, load: Callable[[], Awaitable[T]], generation: int) -> T:
        try:
            value = await load()
        finally:
            if self._loading.get(key) is asyncio.current_task():
                del self._loading[key]
        if generation == self._generation:  # a write during the load makes the value stale
            if len(self._values) >= self._size:
                self._values.clear()
            self._values[key] = value
        return value

    def clear(self) -> None:
        """Forget everything (a catalog write happened).

        Loads still running began before the write: later callers start a new one.
        """
        self._generation += 1
        self._values.clear()
        self._loading.clear()


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a load's error as seen (its callers got it; nobody may be left to await it)."""
    if not future.cancelled():
        future.exception()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class CatalogService:
    """Publishing, browsing, gating and installing curated packs."""

    writer: Writer
    readers: ReaderPool
    documents: DocumentService
    cache: SingleFlightCache = field(default_factory=SingleFlightCache)

    # admin ------------------------------------------------------------------------------

    async def create(self, data: object) -> store.CatalogPack:
        """Publish a new curated pack (409 if the slug is taken)."""
        item = parse_pack_input(data)
        pack_id = secrets.token_hex(8)

        def op(tx: WriteTx) -> store.CatalogPack:
            if store.get_pack_by_slug(tx.conn, item.slug) is not None:
                raise CouchError(409, "conflict", f"A pack with slug '{item.slug}' exists.")
            return _save_new(tx.conn, pack_id, item)

        return await self._write(op)

    async def update(self, pack_id: str, data: object) -> store.CatalogPack:
        """Replace a pack's content; its ``version`` goes up by one."""
        item = parse_pack_input(data)

        def op(tx: WriteTx) -> store.CatalogPack:
            current = store.get_pack(tx.conn, pack_id)
            if current is None:
                raise not_found("missing")
            other = store.get_pack_by_slug(tx.conn, item.slug)
            if other is not None and other.id != pack_id:
                raise CouchError(409, "conflict", f"A pack with slug '{item.slug}' exists.")
            return _save_update(tx.conn, current, item)

        return await self._write(op)

    async def unpublish(self, pack_id: str) -> store.CatalogPack:
        """Take a pack out of the store (installed copies stay with their owners)."""

        def op(tx: WriteTx) -> store.CatalogPack:
            current = store.get_pack(tx.conn, pack_id)
            if current is None:
                raise not_found("missing")
            pack = replace(
                current,
                published=False,
                seq=store.catalog_seq(tx.conn) + 1,
                updated_at=_now(),
            )
            store.save_pack(tx.conn, pack, None)
            return pack

        return await self._write(op)

    async def import_catalog(self, data: object) -> dict[str, int]:
        """Create or update (by slug) every pack of a catalog file ``{"packs": [...]}``."""
        if not isinstance(data, dict) or not isinstance(data.get("packs"), list):
            raise bad_request('A catalog file is {"packs": [...]}')
        items = []
        for index, raw in enumerate(data["packs"]):
            try:
                items.append(parse_pack_input(raw))
            except CouchError as exc:
                raise bad_request(f"packs[{index}]: {exc.reason}") from None

        def op(tx: WriteTx) -> dict[str, int]:
            counts = {"created": 0, "updated": 0}
            for item in items:
                current = store.get_pack_by_slug(tx.conn, item.slug)
                if current is None:
                    _save_new(tx.conn, secrets.token_hex(8), item)
                    counts["created"] += 1
                else:
                    _save_update(tx.conn, current, item)
                    counts["updated"] += 1
            return counts

        return await self._write(op)

    async def _write(self, op: Callable[[WriteTx], T]) -> T:
        try:
            return await self.writer.submit(op)
        finally:
            self.cache.clear()

    # browsing ---------------------------------------------------------------------------

    async def list_packs(self, params: ListParams) -> dict[str, Any]:
        """One page: ``{"items": [...], "next_cursor": str | None}``."""
        if params.sort not in ("updated", "title"):
            raise bad_request("sort must be updated or title")
        if not 1 <= params.limit <= MAX_PAGE:
            raise bad_request(f"limit must be 1 to {MAX_PAGE}")
        if params.tier not in (None, "free", "premium"):
            raise bad_request("tier must be free or premium")
        cursor = _decode_cursor(params.cursor, params.sort) if params.cursor else None
        return await self.cache.get(("list", params), lambda: self._list(params, cursor))

    async def _list(self, params: ListParams, cursor: dict[str, Any] | None) -> dict[str, Any]:
        def read(conn: sqlite3.Connection) -> dict[str, Any]:
            snapshot = cursor["w"] if cursor else store.catalog_seq(conn)
            query = store.ListQuery(
                snapshot=snapshot,
                sort=params.sort,
                limit=params.limit,
                language=params.language,
                tier=params.tier,
                tag=params.tag,
                fts=_fts_query(params.q) if params.q else None,
            )
            if cursor and params.sort == "title":
                query.after_title = (str(cursor.get("t", "")), str(cursor.get("i", "")))
            elif cursor:
                query.after_seq = int(cursor.get("s", 0))
            rows = store.list_packs(conn, query)
            page, more = rows[: params.limit], len(rows) > params.limit
            next_cursor = None
            if more:
                last = page[-1]
                key = (
                    {"w": snapshot, "t": last.sort_title, "i": last.pack.id}
                    if params.sort == "title"
                    else {"w": snapshot, "s": last.sort_seq}
                )
                next_cursor = _encode_cursor(key)
            return {"items": [pack_json(r.pack) for r in page], "next_cursor": next_cursor}

        return await self.readers.run(read)

    async def get(self, pack_id: str) -> store.CatalogPack:
        """A published pack's metadata (404 when unknown or unpublished)."""

        async def load() -> store.CatalogPack | None:
            return await self.readers.run(store.get_pack, pack_id)

        pack = await self.cache.get(("pack", pack_id), load)
        if pack is None or not pack.published:
            raise not_found("missing")
        return pack

    async def content(self, pack_id: str, identity: Identity | None) -> dict[str, Any]:
        """The prompts of a pack: free for anyone, premium only with the entitlement."""
        pack = await self.get(pack_id)
        await self._require_entitlement(pack, identity)

        async def load() -> list[store.Prompt]:
            return await self.readers.run(store.get_prompts, pack_id)

        prompts = await self.cache.get(("prompts", pack_id, pack.version), load)
        return {
            "id": pack.id,
            "version": pack.version,
            "prompts": [{"id": p.id, "text": p.text} for p in prompts],
        }

    async def _require_entitlement(
        self, pack: store.CatalogPack, identity: Identity | None
    ) -> None:
        if pack.tier == "free":
            return
        assert pack.sku is not None
        if identity is not None and identity.is_admin:
            return
        if identity is None or identity.account_id is None:
            raise entitlement_required(pack.sku)
        account_id = identity.account_id
        if not await self.readers.run(store.has_entitlement, account_id, pack.sku):
            raise entitlement_required(pack.sku)

    async def install(self, pack_id: str, identity: Identity) -> dict[str, Any]:
        """Write the pack into the caller's own database as a pack document.

        Installing again after a new store version updates that document as a new revision;
        installing the same version again changes nothing.
        """
        if identity.db_name is None:
            raise bad_request("This identity has no database to install into.")
        pack = await self.get(pack_id)
        await self._require_entitlement(pack, identity)
        content = await self.content(pack_id, identity)
        doc_id = f"pack:store-{pack.id}"
        db = identity.db_name
        for _ in range(3):  # a concurrent edit of the same doc: read again and retry
            current, rev = await self._current(db, doc_id)
            if current is not None and current.get("source", {}).get("version") == pack.version:
                return {"ok": True, "id": doc_id, "rev": rev, "status": "unchanged"}
            now = _now()
            body = {
                "type": "pack",
                "title": pack.title,
                "language": pack.language,
                "description": pack.description,
                "tags": pack.tags,
                "prompts": content["prompts"],
                "source": {"kind": "store", "pack_id": pack.id, "version": pack.version},
                "created_at": current.get("created_at", now) if current else now,
                "updated_at": now,
            }
            try:
                new_rev = await self.documents.write_doc(
                    db, IncomingDoc(doc_id, rev if current else None, None, False, body, None)
                )
            except CouchError as exc:
                if exc.status == 409:
                    continue
                raise
            return {
                "ok": True,
                "id": doc_id,
                "rev": new_rev,
                "status": "updated" if current else "installed",
            }
        raise CouchError(409, "conflict", "The pack document kept changing; try again.")

    async def _current(self, db: str, doc_id: str) -> tuple[dict[str, Any] | None, str | None]:
        try:
            doc, rev = await self.documents.get_doc(db, doc_id, ReadOptions())
        except CouchError as exc:
            if exc.status == 404 and exc.reason in ("missing", "deleted"):
                return None, None
            raise
        return doc, rev


def _save_new(conn: sqlite3.Connection, pack_id: str, item: PackInput) -> store.CatalogPack:
    now = _now()
    pack = store.CatalogPack(
        pack_id,
        item.slug,
        item.title,
        item.description,
        item.language,
        item.tags,
        item.tier,
        item.sku,
        1,
        len(item.prompts),
        True,
        store.catalog_seq(conn) + 1,
        now,
        now,
    )
    store.save_pack(conn, pack, item.prompts)
    return pack


def _save_update(
    conn: sqlite3.Connection, current: store.CatalogPack, item: PackInput
) -> store.CatalogPack:
    pack = replace(
        current,
        slug=item.slug,
        title=item.title,
        description=item.description,
        language=item.language,
        tags=item.tags,
        tier=item.tier,
        sku=item.sku,
        version=current.version + 1,
        prompt_count=len(item.prompts),
        published=True,
        seq=store.catalog_seq(conn) + 1,
        updated_at=_now(),
    )
    store.save_pack(conn, pack, item.prompts)
    return pack
