-- 002: accounts, login sessions, refresh tokens, and per-database security objects.

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

ALTER TABLE dbs ADD COLUMN security TEXT NOT NULL DEFAULT '{}';
