-- 003: the curated pack store (catalog), entitlements, purchases and idempotency keys.

-- Curated packs. `seq` is the catalog's change counter at the pack's last change; every
-- change also appends to catalog_history, which lets a listing page through the catalog as it
-- was when the listing began (no duplicates, no skips while packs are added or updated).
CREATE TABLE catalog_packs (
    rowid        INTEGER PRIMARY KEY,
    id           TEXT    NOT NULL UNIQUE,
    slug         TEXT    NOT NULL UNIQUE,
    title        TEXT    NOT NULL,
    description  TEXT    NOT NULL DEFAULT '',
    language     TEXT    NOT NULL,
    tags         TEXT    NOT NULL DEFAULT '[]',
    tier         TEXT    NOT NULL CHECK (tier IN ('free', 'premium')),
    sku          TEXT,
    version      INTEGER NOT NULL DEFAULT 1,
    prompt_count INTEGER NOT NULL,
    published    INTEGER NOT NULL DEFAULT 1,
    seq          INTEGER NOT NULL,
    created_at   TEXT    NOT NULL,
    updated_at   TEXT    NOT NULL,
    CHECK (tier = 'free' OR sku IS NOT NULL)
);

CREATE INDEX catalog_packs_by_language ON catalog_packs (language);
CREATE INDEX catalog_packs_by_sku ON catalog_packs (sku);

CREATE TABLE catalog_prompts (
    pack_id   TEXT    NOT NULL REFERENCES catalog_packs(id) ON DELETE CASCADE,
    position  INTEGER NOT NULL,
    prompt_id TEXT    NOT NULL,
    text      TEXT    NOT NULL,
    PRIMARY KEY (pack_id, position)
) WITHOUT ROWID;

-- What each pack's sort and filter keys were after each change (seq order).
CREATE TABLE catalog_history (
    seq       INTEGER PRIMARY KEY,
    pack_id   TEXT    NOT NULL,
    title     TEXT    NOT NULL,
    updated_at TEXT   NOT NULL,
    language  TEXT    NOT NULL,
    tier      TEXT    NOT NULL,
    tags      TEXT    NOT NULL,
    published INTEGER NOT NULL
);

CREATE INDEX catalog_history_by_pack ON catalog_history (pack_id, seq);

-- Full-text search over title and description.
CREATE VIRTUAL TABLE catalog_fts USING fts5 (
    title, description, content = 'catalog_packs', content_rowid = 'rowid'
);

CREATE TRIGGER catalog_fts_insert AFTER INSERT ON catalog_packs BEGIN
    INSERT INTO catalog_fts (rowid, title, description) VALUES (new.rowid, new.title, new.description);
END;

CREATE TRIGGER catalog_fts_delete AFTER DELETE ON catalog_packs BEGIN
    INSERT INTO catalog_fts (catalog_fts, rowid, title, description)
    VALUES ('delete', old.rowid, old.title, old.description);
END;

CREATE TRIGGER catalog_fts_update AFTER UPDATE OF title, description ON catalog_packs BEGIN
    INSERT INTO catalog_fts (catalog_fts, rowid, title, description)
    VALUES ('delete', old.rowid, old.title, old.description);
    INSERT INTO catalog_fts (rowid, title, description) VALUES (new.rowid, new.title, new.description);
END;

-- Which account may use which premium sku, and why (a verified purchase or an admin grant).
CREATE TABLE entitlements (
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    sku        TEXT NOT NULL,
    source     TEXT NOT NULL,
    granted_at TEXT NOT NULL,
    PRIMARY KEY (account_id, sku)
) WITHOUT ROWID;

CREATE TABLE purchases (
    id           TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    sku          TEXT NOT NULL,
    platform     TEXT NOT NULL,
    receipt_hash TEXT NOT NULL UNIQUE,
    created_at   TEXT NOT NULL
) WITHOUT ROWID;

-- Replays of mutations sent with an Idempotency-Key header (kept 24 h).
CREATE TABLE idempotency_keys (
    scope        TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status       INTEGER NOT NULL,
    response     BLOB NOT NULL,
    created_at   REAL NOT NULL,
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;

CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);

