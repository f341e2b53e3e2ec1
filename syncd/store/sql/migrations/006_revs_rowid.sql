-- 006: revs becomes an ordinary (rowid) table. As a WITHOUT ROWID table its rows lived in an
-- index b-tree, where a row over ~1,000 bytes (a 1 KB document body) spills into an overflow
-- page of its own: ~3.6 KB of file per 1 KB document. Declared the same way otherwise.
ALTER TABLE revs RENAME TO revs_without_rowid;

CREATE TABLE revs (
    db_id  INTEGER NOT NULL,
    doc_id TEXT    NOT NULL,
    rev    TEXT    NOT NULL,
    body   BLOB    NOT NULL,
    atts   BLOB,
    PRIMARY KEY (db_id, doc_id, rev),
    FOREIGN KEY (db_id, doc_id) REFERENCES docs (db_id, doc_id) ON DELETE CASCADE
);

INSERT INTO revs (db_id, doc_id, rev, body, atts)
SELECT db_id, doc_id, rev, body, atts FROM revs_without_rowid;

DROP TABLE revs_without_rowid;
