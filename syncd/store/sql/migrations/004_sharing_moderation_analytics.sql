-- 004: shared pack snapshots, abuse reports and moderation, anonymous analytics.

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
