-- syncd: the complete current schema. A fresh database gets exactly this; an older file is
-- brought here by the numbered steps in migrations/. A test checks that both roads agree.

CREATE TABLE schema_version (
    version INTEGER NOT NULL
);

-- Server-wide facts that must survive restarts (the server uuid that PouchDB builds its
-- replication ids from).
CREATE TABLE server_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE dbs (
    id            INTEGER PRIMARY KEY,
    name          TEXT    NOT NULL UNIQUE,
    update_seq    INTEGER NOT NULL DEFAULT 0,
    doc_count     INTEGER NOT NULL DEFAULT 0,
    doc_del_count INTEGER NOT NULL DEFAULT 0,
    revs_limit    INTEGER NOT NULL DEFAULT 1000,
    created_at    TEXT    NOT NULL,
    security      TEXT    NOT NULL DEFAULT '{}'  -- CouchDB _security: {admins, members}
);

-- One row per document: its winning rev, whether that winner is deleted, the db's update
-- counter at the document's last change, and the whole revision tree as JSON
-- ({"rev": [parent_rev, deleted]}). The (db_id, seq) index is the changes feed.
CREATE TABLE docs (
    db_id   INTEGER NOT NULL REFERENCES dbs(id) ON DELETE CASCADE,
    doc_id  TEXT    NOT NULL,
    rev     TEXT    NOT NULL,
    deleted INTEGER NOT NULL,
    seq     INTEGER NOT NULL,
    tree    BLOB    NOT NULL,
    PRIMARY KEY (db_id, doc_id)
) WITHOUT ROWID;

CREATE UNIQUE INDEX docs_by_seq ON docs (db_id, seq);

-- One row per revision whose body is kept: every leaf, and older revisions until compaction.
-- body is the JSON of the document's own fields; atts the JSON of its attachment stubs.
-- A rowid table, not WITHOUT ROWID: bodies of a kilobyte fit in its pages (migration 006).
CREATE TABLE revs (
    db_id  INTEGER NOT NULL,
    doc_id TEXT    NOT NULL,
    rev    TEXT    NOT NULL,
    body   BLOB    NOT NULL,
    atts   BLOB,
    PRIMARY KEY (db_id, doc_id, rev),
    FOREIGN KEY (db_id, doc_id) REFERENCES docs (db_id, doc_id) ON DELETE CASCADE
);

-- Attachment bodies, once per digest ("md5-<base64>"); revisions refer to them from revs.atts.
CREATE TABLE att_bodies (
    id     INTEGER PRIMARY KEY,
    digest TEXT    NOT NULL UNIQUE,
    length INTEGER NOT NULL,
    data   BLOB    NOT NULL
);

-- _local documents: never replicated, never in _changes or _all_docs; revs are "0-N".
CREATE TABLE local_docs (
    db_id  INTEGER NOT NULL REFERENCES dbs(id) ON DELETE CASCADE,
    doc_id TEXT    NOT NULL,
    rev    INTEGER NOT NULL,
    body   BLOB    NOT NULL,
    PRIMARY KEY (db_id, doc_id)
) WITHOUT ROWID;


-- A person or device. Anonymous accounts have a generated name and a random device secret
-- (stored as SHA-256: it is 256 random bits, nothing to brute-force); named accounts have a
-- chosen name and an argon2id password hash.
CREATE TABLE accounts (
    id            TEXT    PRIMARY KEY,
    username      TEXT    NOT NULL UNIQUE,
    anonymous     INTEGER NOT NULL,
    password_hash TEXT    NOT NULL,
    roles         TEXT    NOT NULL DEFAULT '[]',
    status        TEXT    NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    db_name       TEXT    NOT NULL UNIQUE,
    created_at    TEXT    NOT NULL
) WITHOUT ROWID;

-- A login: one per device sign-in (app tokens or a /_session cookie). Revoking it ends every
-- access token, cookie and refresh token issued under it.
CREATE TABLE sessions (
    id         TEXT    PRIMARY KEY,
    account_id TEXT    NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    kind       TEXT    NOT NULL,
    created_at TEXT    NOT NULL,
    revoked_at TEXT
) WITHOUT ROWID;

CREATE INDEX sessions_by_account ON sessions (account_id);

-- Refresh tokens, stored only as SHA-256 hashes; single use. Presenting a used one again
-- revokes its whole session (reuse detection).
CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    expires_at REAL NOT NULL,
    used_at    REAL
) WITHOUT ROWID;

CREATE INDEX refresh_tokens_by_session ON refresh_tokens (session_id);


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
    created_at   TEXT NOT NULL,
    revoked_at   TEXT  -- set when an admin revokes the entitlement it granted
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


-- A published snapshot of a pack from its owner's database, reachable by a short code.
-- A withdrawn share (by its owner, a moderator, or the owner's account deletion) stays as a
-- row so its code answers 410 and is never reused.
CREATE TABLE shares (
    code       TEXT PRIMARY KEY,
    account_id TEXT REFERENCES accounts(id) ON DELETE SET NULL,
    doc_id     TEXT NOT NULL,
    snapshot   BLOB NOT NULL,
    status     TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'withdrawn')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) WITHOUT ROWID;

CREATE UNIQUE INDEX shares_active_by_doc ON shares (account_id, doc_id) WHERE status = 'active';

-- Prompts a moderator hid from a share.
CREATE TABLE hidden_prompts (
    code      TEXT NOT NULL REFERENCES shares(code) ON DELETE CASCADE,
    prompt_id TEXT NOT NULL,
    hidden_at TEXT NOT NULL,
    PRIMARY KEY (code, prompt_id)
) WITHOUT ROWID;

CREATE TABLE reports (
    id          TEXT PRIMARY KEY,
    reporter_id TEXT REFERENCES accounts(id) ON DELETE SET NULL,
    share_code  TEXT NOT NULL REFERENCES shares(code) ON DELETE CASCADE,
    prompt_id   TEXT NOT NULL DEFAULT '',
    reason      TEXT NOT NULL CHECK (reason IN
                    ('spam', 'hate', 'harassment', 'sexual', 'violence', 'self_harm', 'other')),
    note        TEXT,
    status      TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    resolution  TEXT,
    created_at  TEXT NOT NULL,
    resolved_at TEXT
) WITHOUT ROWID;

-- One open report per reporter and target.
CREATE UNIQUE INDEX reports_one_open ON reports (reporter_id, share_code, prompt_id)
    WHERE status = 'open';
CREATE INDEX reports_by_created ON reports (created_at, id);
CREATE INDEX reports_by_target ON reports (share_code, prompt_id);

-- Who did what, when: every moderation action.
CREATE TABLE moderation_audit (
    id         INTEGER PRIMARY KEY,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    report_id  TEXT,
    target     TEXT NOT NULL,
    comment    TEXT,
    created_at TEXT NOT NULL
);

-- Raw anonymous events, kept for the retention window. No IP, user agent or account.
CREATE TABLE analytics_events (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    ts          TEXT NOT NULL,
    day         TEXT NOT NULL,
    install_id  TEXT NOT NULL,
    app_version TEXT NOT NULL,
    platform    TEXT NOT NULL,
    props       TEXT NOT NULL,
    received_at REAL NOT NULL
);

CREATE INDEX analytics_events_by_received ON analytics_events (received_at);

-- Daily counts, rolled up as events arrive; kept after the raw events expire.
CREATE TABLE analytics_daily (
    day         TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    platform    TEXT    NOT NULL,
    app_version TEXT    NOT NULL,
    count       INTEGER NOT NULL,
    PRIMARY KEY (day, name, platform, app_version)
) WITHOUT ROWID;
