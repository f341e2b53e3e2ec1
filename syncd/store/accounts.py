"""SQL for accounts, login sessions, refresh tokens and database security objects."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import orjson


@dataclass(slots=True)
class AccountRow:
    """An account as stored."""

    id: str
    username: str
    anonymous: bool
    password_hash: str
    roles: list[str]
    status: str
    db_name: str
    created_at: str


_COLUMNS = "id, username, anonymous, password_hash, roles, status, db_name, created_at"


def _account(row: tuple[object, ...] | None) -> AccountRow | None:
    if row is None:
        return None
    return AccountRow(
        str(row[0]),
        str(row[1]),
        bool(row[2]),
        str(row[3]),
        orjson.loads(row[4]),  # type: ignore[arg-type]
        str(row[5]),
        str(row[6]),
        str(row[7]),
    )


def get_account(conn: sqlite3.Connection, account_id: str) -> AccountRow | None:
    """The account with this id."""
    return _account(
        conn.execute(f"SELECT {_COLUMNS} FROM accounts WHERE id = ?", (account_id,)).fetchone()
    )


def find_by_username(conn: sqlite3.Connection, username: str) -> AccountRow | None:
    """The account with this login name."""
    return _account(
        conn.execute(f"SELECT {_COLUMNS} FROM accounts WHERE username = ?", (username,)).fetchone()
    )


def insert_account(conn: sqlite3.Connection, account: AccountRow) -> bool:
    """Create an account; False if the username is taken."""
    cur = conn.execute(
        f"INSERT INTO accounts ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (
            account.id,
            account.username,
            int(account.anonymous),
            account.password_hash,
            orjson.dumps(account.roles).decode(),
            account.status,
            account.db_name,
            account.created_at,
        ),
    )
    return cur.rowcount == 1


def update_credentials(
    conn: sqlite3.Connection, account_id: str, username: str, password_hash: str, anonymous: bool
) -> bool:
    """Set name, password hash and the anonymous flag; False if the name is taken."""
    try:
        conn.execute(
            "UPDATE accounts SET username = ?, password_hash = ?, anonymous = ? WHERE id = ?",
            (username, password_hash, int(anonymous), account_id),
        )
    except sqlite3.IntegrityError:
        return False
    return True


def set_password_hash(conn: sqlite3.Connection, account_id: str, password_hash: str) -> None:
    """Replace the stored password hash (rehash on login, password change)."""
    conn.execute("UPDATE accounts SET password_hash = ? WHERE id = ?", (password_hash, account_id))


def set_roles(conn: sqlite3.Connection, account_id: str, roles: list[str]) -> None:
    """Replace an account's roles."""
    conn.execute(
        "UPDATE accounts SET roles = ? WHERE id = ?", (orjson.dumps(roles).decode(), account_id)
    )


def set_status(conn: sqlite3.Connection, account_id: str, status: str) -> None:
    """Set ``active`` or ``suspended``."""
    conn.execute("UPDATE accounts SET status = ? WHERE id = ?", (status, account_id))


def delete_account(conn: sqlite3.Connection, account_id: str) -> None:
    """Remove an account with its sessions and tokens."""
    conn.execute("DELETE FROM accounts WHERE id = ?", (account_id,))


# sessions and refresh tokens --------------------------------------------------------------


def insert_session(
    conn: sqlite3.Connection, session_id: str, account_id: str, kind: str, created_at: str
) -> None:
    """Record a new login session."""
    conn.execute(
        "INSERT INTO sessions (id, account_id, kind, created_at) VALUES (?, ?, ?, ?)",
        (session_id, account_id, kind, created_at),
    )


def session_active(conn: sqlite3.Connection, session_id: str) -> str | None:
    """The account id of an unrevoked session, else None."""
    row = conn.execute(
        "SELECT account_id FROM sessions WHERE id = ? AND revoked_at IS NULL", (session_id,)
    ).fetchone()
    return str(row[0]) if row else None


def revoke_session(conn: sqlite3.Connection, session_id: str, when: str) -> None:
    """End one session."""
    conn.execute(
        "UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
        (when, session_id),
    )


def revoke_sessions_of(
    conn: sqlite3.Connection, account_id: str, when: str, keep: str | None = None
) -> list[str]:
    """End every session of an account except ``keep``; return the ids ended."""
    rows = conn.execute(
        "SELECT id FROM sessions WHERE account_id = ? AND revoked_at IS NULL AND id IS NOT ?",
        (account_id, keep),
    ).fetchall()
    ids = [str(r[0]) for r in rows]
    conn.executemany(
        "UPDATE sessions SET revoked_at = ? WHERE id = ?", [(when, sid) for sid in ids]
    )
    return ids


def insert_refresh_token(
    conn: sqlite3.Connection, token_hash: str, session_id: str, expires_at: float
) -> None:
    """Keep the hash of a new refresh token."""
    conn.execute(
        "INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES (?, ?, ?)",
        (token_hash, session_id, expires_at),
    )


@dataclass(slots=True)
class RefreshRow:
    """A refresh token's record."""

    session_id: str
    expires_at: float
    used_at: float | None
    session_revoked: bool
    account_id: str


def get_refresh_token(conn: sqlite3.Connection, token_hash: str) -> RefreshRow | None:
    """The record of a refresh token, with its session's state."""
    row = conn.execute(
        "SELECT t.session_id, t.expires_at, t.used_at, s.revoked_at IS NOT NULL, s.account_id "
        "FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id WHERE t.token_hash = ?",
        (token_hash,),
    ).fetchone()
    if row is None:
        return None
    return RefreshRow(str(row[0]), float(row[1]), row[2], bool(row[3]), str(row[4]))


def mark_refresh_used(conn: sqlite3.Connection, token_hash: str, when: float) -> bool:
    """Spend a refresh token; False if it was already spent (a concurrent reuse)."""
    cur = conn.execute(
        "UPDATE refresh_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL",
        (when, token_hash),
    )
    return cur.rowcount == 1


def prune_tokens(conn: sqlite3.Connection, now: float, revoked_before: str) -> int:
    """Forget spent or expired refresh tokens and sessions revoked long ago."""
    removed = conn.execute(
        "DELETE FROM refresh_tokens WHERE expires_at < ? OR used_at < ?", (now, now - 86400)
    ).rowcount
    removed += conn.execute(
        "DELETE FROM sessions WHERE revoked_at IS NOT NULL AND revoked_at < ?", (revoked_before,)
    ).rowcount
    return removed


# database security objects ----------------------------------------------------------------


def get_security(conn: sqlite3.Connection, db_name: str) -> dict[str, object] | None:
    """A database's ``_security`` object; None if the database does not exist."""
    row = conn.execute("SELECT security FROM dbs WHERE name = ?", (db_name,)).fetchone()
    return orjson.loads(row[0]) if row else None


def set_security(conn: sqlite3.Connection, db_name: str, security: dict[str, object]) -> bool:
    """Replace a database's ``_security``; False if the database does not exist."""
    cur = conn.execute(
        "UPDATE dbs SET security = ? WHERE name = ?", (orjson.dumps(security).decode(), db_name)
    )
    return cur.rowcount == 1
