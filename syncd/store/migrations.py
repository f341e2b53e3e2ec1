"""Bring a database file to the current schema.

A fresh file gets ``schema.sql`` whole. An existing file records its version in
``schema_version``; every ``migrations/NNN_name.sql`` with a higher number is applied in
order, each in its own transaction together with the version bump, so a failed step leaves
the file at the previous version.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

_MIGRATION_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True)
class Migration:
    """One numbered schema step."""

    version: int
    name: str
    sql: str


def _sql_dir() -> Path:
    return Path(str(resources.files("syncd.store") / "sql"))


def schema_sql() -> str:
    """The complete current schema."""
    return (_sql_dir() / "schema.sql").read_text(encoding="utf-8")


def available_migrations() -> list[Migration]:
    """Every migration shipped with this version of syncd, in order."""
    found = []
    for path in sorted((_sql_dir() / "migrations").iterdir()):
        match = _MIGRATION_NAME.match(path.name)
        if match:
            found.append(Migration(int(match.group(1)), path.name, path.read_text("utf-8")))
    return found


def latest_version() -> int:
    """The schema version this code expects."""
    return max(m.version for m in available_migrations())


def current_version(conn: sqlite3.Connection) -> int:
    """The version a file is at: 0 for a file without syncd's tables."""
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if row is None:
        return 0
    version = conn.execute("SELECT max(version) FROM schema_version").fetchone()[0]
    return int(version or 0)


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Bring the file to the latest version; return the names of the steps applied."""
    version = current_version(conn)
    target = latest_version()
    if version > target:
        raise RuntimeError(
            f"database schema version {version} is newer than this syncd ({target}); upgrade syncd"
        )
    if version == 0 and _is_empty(conn):
        _in_transaction(conn, schema_sql(), target)
        return ["schema.sql"]
    applied = []
    for step in available_migrations():
        if step.version > version:
            _in_transaction(conn, step.sql, step.version)
            applied.append(step.name)
    return applied


def apply_migrations_from_zero(conn: sqlite3.Connection) -> None:
    """Build a schema by running every migration in order (tests compare it with schema.sql)."""
    for step in available_migrations():
        _in_transaction(conn, step.sql, step.version)


def _is_empty(conn: sqlite3.Connection) -> bool:
    return bool(conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0)


def _in_transaction(conn: sqlite3.Connection, script: str, version: int) -> None:
    # executescript() commits on its own, so the transaction is written into the script.
    try:
        conn.executescript(
            "BEGIN IMMEDIATE;\n"
            + script
            + "\nDELETE FROM schema_version;"
            + f"\nINSERT INTO schema_version (version) VALUES ({version:d});\nCOMMIT;"
        )
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
