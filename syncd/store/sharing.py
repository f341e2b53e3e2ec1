"""SQL for shares, hidden prompts, abuse reports and the moderation audit log."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(slots=True)
class ShareRow:
    """A share as stored."""

    code: str
    account_id: str | None
    doc_id: str
    snapshot: bytes
    status: str
    created_at: str
    updated_at: str


_SHARE = "code, account_id, doc_id, snapshot, status, created_at, updated_at"


def _share(row: Sequence[object] | None) -> ShareRow | None:
    if row is None:
        return None
    return ShareRow(
        str(row[0]),
        None if row[1] is None else str(row[1]),
        str(row[2]),
        bytes(row[3]),  # type: ignore[call-overload]
        str(row[4]),
        str(row[5]),
        str(row[6]),
    )


def get_share(conn: sqlite3.Connection, code: str) -> ShareRow | None:
    """A share by code."""
    return _share(conn.execute(f"SELECT {_SHARE} FROM shares WHERE code = ?", (code,)).fetchone())


def active_share_of(conn: sqlite3.Connection, account_id: str, doc_id: str) -> ShareRow | None:
    """The account's live share of a document."""
    return _share(
        conn.execute(
            f"SELECT {_SHARE} FROM shares WHERE account_id = ? AND doc_id = ? AND status = 'active'",
            (account_id, doc_id),
        ).fetchone()
    )


def insert_share(conn: sqlite3.Connection, share: ShareRow) -> bool:
    """Create a share; False when the code is taken (the caller draws another)."""
    cur = conn.execute(
        f"INSERT INTO shares ({_SHARE}) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (
            share.code,
            share.account_id,
            share.doc_id,
            share.snapshot,
            share.status,
            share.created_at,
            share.updated_at,
        ),
    )
    return cur.rowcount == 1


def update_snapshot(conn: sqlite3.Connection, code: str, snapshot: bytes, when: str) -> None:
    """Replace a share's snapshot."""
    conn.execute(
        "UPDATE shares SET snapshot = ?, updated_at = ? WHERE code = ?", (snapshot, when, code)
    )


def withdraw(conn: sqlite3.Connection, code: str, when: str) -> None:
    """Withdraw a share for good."""
    conn.execute(
        "UPDATE shares SET status = 'withdrawn', updated_at = ? WHERE code = ?", (when, code)
    )


def withdraw_all_of(conn: sqlite3.Connection, account_id: str, when: str) -> None:
    """Withdraw every share of an account (its deletion)."""
    conn.execute(
        "UPDATE shares SET status = 'withdrawn', updated_at = ? WHERE account_id = ?",
        (when, account_id),
    )


def hide_prompt(conn: sqlite3.Connection, code: str, prompt_id: str, when: str) -> None:
    """Hide one prompt of a share."""
    conn.execute(
        "INSERT INTO hidden_prompts (code, prompt_id, hidden_at) VALUES (?, ?, ?) "
        "ON CONFLICT DO NOTHING",
        (code, prompt_id, when),
    )


def hidden_prompts(conn: sqlite3.Connection, code: str) -> set[str]:
    """Ids of the prompts hidden in a share."""
    return {
        str(r[0])
        for r in conn.execute("SELECT prompt_id FROM hidden_prompts WHERE code = ?", (code,))
    }


# reports --------------------------------------------------------------------------------------


@dataclass(slots=True)
class ReportRow:
    """An abuse report."""

    id: str
    reporter_id: str | None
    share_code: str
    prompt_id: str
    reason: str
    note: str | None
    status: str
    resolution: str | None
    created_at: str
    resolved_at: str | None


_REPORT = (
    "id, reporter_id, share_code, prompt_id, reason, note, status, resolution, created_at, "
    "resolved_at"
)


def _report(row: Sequence[object] | None) -> ReportRow | None:
    return ReportRow(*row) if row else None  # type: ignore[arg-type]


def open_report_by(
    conn: sqlite3.Connection, reporter_id: str, code: str, prompt_id: str
) -> ReportRow | None:
    """The reporter's open report on this target, if any."""
    return _report(
        conn.execute(
            f"SELECT {_REPORT} FROM reports WHERE reporter_id = ? AND share_code = ? "
            "AND prompt_id = ? AND status = 'open'",
            (reporter_id, code, prompt_id),
        ).fetchone()
    )


def insert_report(conn: sqlite3.Connection, report: ReportRow) -> None:
    """File a report."""
    conn.execute(
        f"INSERT INTO reports ({_REPORT}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            report.id,
            report.reporter_id,
            report.share_code,
            report.prompt_id,
            report.reason,
            report.note,
            report.status,
            report.resolution,
            report.created_at,
            report.resolved_at,
        ),
    )


def get_report(conn: sqlite3.Connection, report_id: str) -> ReportRow | None:
    """A report by id."""
    return _report(
        conn.execute(f"SELECT {_REPORT} FROM reports WHERE id = ?", (report_id,)).fetchone()
    )


def resolve_report(conn: sqlite3.Connection, report_id: str, resolution: str, when: str) -> None:
    """Close a report with the action taken."""
    conn.execute(
        "UPDATE reports SET status = 'resolved', resolution = ?, resolved_at = ? WHERE id = ?",
        (resolution, when, report_id),
    )


def list_reports(
    conn: sqlite3.Connection,
    *,
    status: str | None,
    reason: str | None,
    after: tuple[str, str] | None,
    limit: int,
) -> list[tuple[ReportRow, int]]:
    """Reports newest first, each with how many reports its target has (limit + 1 rows)."""
    clauses, params = ["1 = 1"], []
    if status is not None:
        clauses.append("r.status = ?")
        params.append(status)
    if reason is not None:
        clauses.append("r.reason = ?")
        params.append(reason)
    if after is not None:
        clauses.append("(r.created_at, r.id) < (?, ?)")
        params.extend(after)
    columns = ", ".join(f"r.{c.strip()}" for c in _REPORT.split(","))
    sql = (
        f"SELECT {columns}, (SELECT count(*) FROM reports t WHERE t.share_code = r.share_code "
        f"AND t.prompt_id = r.prompt_id) FROM reports r WHERE {' AND '.join(clauses)} "
        "ORDER BY r.created_at DESC, r.id DESC LIMIT ?"
    )
    return [(ReportRow(*row[:10]), int(row[10])) for row in conn.execute(sql, (*params, limit + 1))]


def add_audit(
    conn: sqlite3.Connection,
    actor: str,
    action: str,
    report_id: str | None,
    target: str,
    comment: str | None,
    when: str,
) -> None:
    """Record a moderation action."""
    conn.execute(
        "INSERT INTO moderation_audit (actor, action, report_id, target, comment, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (actor, action, report_id, target, comment, when),
    )


def list_audit(
    conn: sqlite3.Connection, before_id: int | None, limit: int
) -> list[tuple[int, str, str, str | None, str, str | None, str]]:
    """Audit entries newest first (limit + 1 rows)."""
    sql = (
        "SELECT id, actor, action, report_id, target, comment, created_at FROM moderation_audit "
        + ("WHERE id < ? " if before_id is not None else "")
        + "ORDER BY id DESC LIMIT ?"
    )
    params = (before_id, limit + 1) if before_id is not None else (limit + 1,)
    return list(conn.execute(sql, params))
