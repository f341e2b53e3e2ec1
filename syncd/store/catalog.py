"""SQL for the curated pack store: packs, prompts, history, entitlements, purchases, idempotency."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

import orjson


@dataclass(slots=True)
class CatalogPack:
    """A curated pack's metadata."""

    id: str
    slug: str
    title: str
    description: str
    language: str
    tags: list[str]
    tier: str
    sku: str | None
    version: int
    prompt_count: int
    published: bool
    seq: int
    created_at: str
    updated_at: str


@dataclass(slots=True)
class Prompt:
    """One prompt of a curated pack."""

    id: str
    text: str


_PACK_COLUMNS = (
    "p.id, p.slug, p.title, p.description, p.language, p.tags, p.tier, p.sku, p.version, "
    "p.prompt_count, p.published, p.seq, p.created_at, p.updated_at"
)


def _pack(row: Sequence[object]) -> CatalogPack:
    return CatalogPack(
        str(row[0]),
        str(row[1]),
        str(row[2]),
        str(row[3]),
        str(row[4]),
        orjson.loads(row[5]),  # type: ignore[arg-type]
        str(row[6]),
        None if row[7] is None else str(row[7]),
        int(row[8]),  # type: ignore[call-overload]
        int(row[9]),  # type: ignore[call-overload]
        bool(row[10]),
        int(row[11]),  # type: ignore[call-overload]
        str(row[12]),
        str(row[13]),
    )


def catalog_seq(conn: sqlite3.Connection) -> int:
    """The catalog's change counter (0 for an empty catalog)."""
    return int(conn.execute("SELECT coalesce(max(seq), 0) FROM catalog_history").fetchone()[0])


def get_pack(conn: sqlite3.Connection, pack_id: str) -> CatalogPack | None:
    """A pack by id (published or not)."""
    row = conn.execute(
        f"SELECT {_PACK_COLUMNS} FROM catalog_packs p WHERE p.id = ?", (pack_id,)
    ).fetchone()
    return _pack(row) if row else None


def get_pack_by_slug(conn: sqlite3.Connection, slug: str) -> CatalogPack | None:
    """A pack by slug."""
    row = conn.execute(
        f"SELECT {_PACK_COLUMNS} FROM catalog_packs p WHERE p.slug = ?", (slug,)
    ).fetchone()
    return _pack(row) if row else None


def get_prompts(conn: sqlite3.Connection, pack_id: str) -> list[Prompt]:
    """A pack's prompts in order."""
    return [
        Prompt(r[0], r[1])
        for r in conn.execute(
            "SELECT prompt_id, text FROM catalog_prompts WHERE pack_id = ? ORDER BY position",
            (pack_id,),
        )
    ]


def save_pack(
    conn: sqlite3.Connection, pack: CatalogPack, prompts: Sequence[Prompt] | None
) -> None:
    """Insert or update a pack (and replace its prompts when given); record its history row."""
    conn.execute(
        "INSERT INTO catalog_packs (id, slug, title, description, language, tags, tier, sku, "
        "version, prompt_count, published, seq, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET slug = excluded.slug, title = excluded.title, "
        "description = excluded.description, language = excluded.language, tags = excluded.tags, "
        "tier = excluded.tier, sku = excluded.sku, version = excluded.version, "
        "prompt_count = excluded.prompt_count, published = excluded.published, seq = excluded.seq, "
        "updated_at = excluded.updated_at",
        (
            pack.id,
            pack.slug,
            pack.title,
            pack.description,
            pack.language,
            orjson.dumps(pack.tags).decode(),
            pack.tier,
            pack.sku,
            pack.version,
            pack.prompt_count,
            int(pack.published),
            pack.seq,
            pack.created_at,
            pack.updated_at,
        ),
    )
    if prompts is not None:
        conn.execute("DELETE FROM catalog_prompts WHERE pack_id = ?", (pack.id,))
        conn.executemany(
            "INSERT INTO catalog_prompts (pack_id, position, prompt_id, text) VALUES (?, ?, ?, ?)",
            [(pack.id, i, p.id, p.text) for i, p in enumerate(prompts)],
        )
    conn.execute(
        "INSERT INTO catalog_history (seq, pack_id, title, updated_at, language, tier, tags, "
        "published) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            pack.seq,
            pack.id,
            pack.title,
            pack.updated_at,
            pack.language,
            pack.tier,
            orjson.dumps(pack.tags).decode(),
            int(pack.published),
        ),
    )


@dataclass(slots=True)
class ListQuery:
    """Filters, order and position of one page of the catalog."""

    snapshot: int
    sort: str  # "updated" (newest first) or "title"
    limit: int
    language: str | None = None
    tier: str | None = None
    tag: str | None = None
    fts: str | None = None  # an FTS5 query, already quoted
    after_seq: int | None = None  # sort=updated: continue below this seq
    after_title: tuple[str, str] | None = None  # sort=title: continue after (title, id)


@dataclass(slots=True)
class ListedPack:
    """A pack on a page, with the sort keys its cursor is made of."""

    pack: CatalogPack
    sort_seq: int
    sort_title: str


def list_packs(conn: sqlite3.Connection, q: ListQuery) -> list[ListedPack]:
    """One page of published packs as the catalog was at ``q.snapshot`` (limit + 1 rows)."""
    clauses = [
        "h.seq = (SELECT max(h2.seq) FROM catalog_history h2 "
        "WHERE h2.pack_id = h.pack_id AND h2.seq <= ?)",
        "h.published = 1",
    ]
    params: list[object] = [q.snapshot]
    if q.language is not None:
        clauses.append("h.language = ?")
        params.append(q.language)
    if q.tier is not None:
        clauses.append("h.tier = ?")
        params.append(q.tier)
    if q.tag is not None:
        clauses.append("EXISTS (SELECT 1 FROM json_each(h.tags) t WHERE t.value = ?)")
        params.append(q.tag)
    if q.fts is not None:
        clauses.append("p.rowid IN (SELECT rowid FROM catalog_fts WHERE catalog_fts MATCH ?)")
        params.append(q.fts)
    if q.sort == "title":
        if q.after_title is not None:
            clauses.append("(h.title, h.pack_id) > (?, ?)")
            params.extend(q.after_title)
        order = "h.title, h.pack_id"
    else:
        if q.after_seq is not None:
            clauses.append("h.seq < ?")
            params.append(q.after_seq)
        order = "h.seq DESC"
    sql = (
        f"SELECT {_PACK_COLUMNS}, h.seq, h.title FROM catalog_history h "
        f"JOIN catalog_packs p ON p.id = h.pack_id WHERE {' AND '.join(clauses)} "
        f"ORDER BY {order} LIMIT ?"
    )
    return [
        ListedPack(_pack(row[:14]), int(row[14]), str(row[15]))
        for row in conn.execute(sql, (*params, q.limit + 1))
    ]


def sku_exists(conn: sqlite3.Connection, sku: str) -> bool:
    """Whether some curated pack is sold as ``sku``."""
    return conn.execute("SELECT 1 FROM catalog_packs WHERE sku = ?", (sku,)).fetchone() is not None


# entitlements and purchases ---------------------------------------------------------------


def has_entitlement(conn: sqlite3.Connection, account_id: str, sku: str) -> bool:
    """Whether the account may use ``sku``."""
    return (
        conn.execute(
            "SELECT 1 FROM entitlements WHERE account_id = ? AND sku = ?", (account_id, sku)
        ).fetchone()
        is not None
    )


def list_entitlements(conn: sqlite3.Connection, account_id: str) -> list[tuple[str, str, str]]:
    """(sku, source, granted_at) of an account, by sku."""
    return [
        (r[0], r[1], r[2])
        for r in conn.execute(
            "SELECT sku, source, granted_at FROM entitlements WHERE account_id = ? ORDER BY sku",
            (account_id,),
        )
    ]


def grant(conn: sqlite3.Connection, account_id: str, sku: str, source: str, when: str) -> None:
    """Entitle an account to a sku (a second grant keeps the first)."""
    conn.execute(
        "INSERT INTO entitlements (account_id, sku, source, granted_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT DO NOTHING",
        (account_id, sku, source, when),
    )


def revoke(conn: sqlite3.Connection, account_id: str, sku: str) -> bool:
    """Take an entitlement away; False if there was none."""
    cur = conn.execute(
        "DELETE FROM entitlements WHERE account_id = ? AND sku = ?", (account_id, sku)
    )
    return cur.rowcount == 1


def purchase_by_receipt(
    conn: sqlite3.Connection, receipt_hash: str
) -> tuple[str, str, str, bool] | None:
    """(purchase id, account id, sku, revoked?) of a receipt already used."""
    row = conn.execute(
        "SELECT id, account_id, sku, revoked_at IS NOT NULL FROM purchases WHERE receipt_hash = ?",
        (receipt_hash,),
    ).fetchone()
    return (row[0], row[1], row[2], bool(row[3])) if row else None


def revoke_purchases(conn: sqlite3.Connection, account_id: str, sku: str, when: str) -> None:
    """Mark an account's purchases of a sku revoked, so their receipts cannot be replayed."""
    conn.execute(
        "UPDATE purchases SET revoked_at = ? WHERE account_id = ? AND sku = ? "
        "AND revoked_at IS NULL",
        (when, account_id, sku),
    )


def insert_purchase(
    conn: sqlite3.Connection,
    purchase_id: str,
    account_id: str,
    sku: str,
    platform: str,
    receipt_hash: str,
    when: str,
) -> None:
    """Record a verified purchase."""
    conn.execute(
        "INSERT INTO purchases (id, account_id, sku, platform, receipt_hash, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (purchase_id, account_id, sku, platform, receipt_hash, when),
    )


# idempotency keys -------------------------------------------------------------------------


def get_idempotent(
    conn: sqlite3.Connection, scope: str, key: str, newer_than: float
) -> tuple[str, int, bytes] | None:
    """(request hash, status, response body) stored for a key, if still fresh."""
    row = conn.execute(
        "SELECT request_hash, status, response FROM idempotency_keys "
        "WHERE scope = ? AND key = ? AND created_at > ?",
        (scope, key, newer_than),
    ).fetchone()
    return (row[0], int(row[1]), bytes(row[2])) if row else None


def put_idempotent(
    conn: sqlite3.Connection,
    scope: str,
    key: str,
    request_hash: str,
    status: int,
    response: bytes,
    when: float,
) -> None:
    """Remember the response to replay for a key."""
    conn.execute(
        "INSERT INTO idempotency_keys (scope, key, request_hash, status, response, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (scope, key) DO UPDATE SET "
        "request_hash = excluded.request_hash, status = excluded.status, "
        "response = excluded.response, created_at = excluded.created_at",
        (scope, key, request_hash, status, response, when),
    )


def purge_idempotent(conn: sqlite3.Connection, older_than: float) -> int:
    """Forget keys older than the window."""
    return conn.execute(
        "DELETE FROM idempotency_keys WHERE created_at <= ?", (older_than,)
    ).rowcount
