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
CREATE TABLE revs (
    db_id  INTEGER NOT NULL,
    doc_id TEXT    NOT NULL,
    rev    TEXT    NOT NULL,
    body   BLOB    NOT NULL,
    atts   BLOB,
    PRIMARY KEY (db_id, doc_id, rev),
    FOREIGN KEY (db_id, doc_id) REFERENCES docs (db_id, doc_id) ON DELETE CASCADE
) WITHOUT ROWID;

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
