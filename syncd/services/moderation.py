"""Abuse reports on shared packs, and what moderators do about them.

Anyone with an account (anonymous included) may report a share or one of its prompts, with a
reason from a fixed list; a repeat of an open report is idempotent. Moderators (the
``moderator`` role, or server admins) list reports and resolve them with an action; every
action is written to an audit log that admins read. Notes are never logged.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from syncd.errors import CouchError, bad_request, not_found
from syncd.services.accounts import Identity
from syncd.services.sharing import gone, normalize_code
from syncd.store import accounts as account_store
from syncd.store import sharing as store
from syncd.store.sqlite import ReaderPool, Writer, WriteTx, is_integer

REASONS = ("spam", "hate", "harassment", "sexual", "violence", "self_harm", "other")
ACTIONS = ("dismiss", "hide_prompt", "withdraw_share", "suspend_account")
MAX_NOTE = 500
MAX_COMMENT = 1000
PAGE = 50


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def report_json(report: store.ReportRow, target_reports: int | None = None) -> dict[str, Any]:
    """A report as the API shows it."""
    out: dict[str, Any] = {
        "id": report.id,
        "share_code": report.share_code,
        "prompt_id": report.prompt_id or None,
        "reason": report.reason,
        "note": report.note,
        "status": report.status,
        "resolution": report.resolution,
        "created_at": report.created_at,
        "resolved_at": report.resolved_at,
    }
    if target_reports is not None:
        out["target_report_count"] = target_reports
    return out


def _cursor(data: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(data)).decode().rstrip("=")


def _uncursor(cursor: str) -> list[Any]:
    try:
        data = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        raise bad_request("Invalid cursor") from None
    if not isinstance(data, list):
        raise bad_request("Invalid cursor")
    return data


@dataclass
class ModerationService:
    """Reports in, decisions out, everything audited."""

    writer: Writer
    readers: ReaderPool
    forget_credentials: Callable[[], None]  # AccountService.forget_cached, after a suspension

    async def report(self, identity: Identity, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """File a report; the same open report again returns the first. (json, created?)"""
        if identity.account_id is None:
            raise bad_request("Reports are filed by accounts.")
        code = body.get("share_code")
        if not isinstance(code, str):
            raise bad_request("share_code is required")
        canonical = normalize_code(code)
        reason = body.get("reason")
        if reason not in REASONS:
            raise bad_request(f"reason must be one of {', '.join(REASONS)}")
        prompt_id = body.get("prompt_id") or ""
        if not isinstance(prompt_id, str):
            raise bad_request("prompt_id must be a string")
        note = body.get("note")
        if note is not None and (not isinstance(note, str) or len(note) > MAX_NOTE):
            raise bad_request(f"note must be a string of at most {MAX_NOTE} characters")
        reporter = identity.account_id

        def op(tx: WriteTx) -> tuple[store.ReportRow, bool]:
            share = store.get_share(tx.conn, canonical)
            if share is None:
                raise not_found("No such share.")
            if share.status != "active":
                raise gone()
            if prompt_id and prompt_id not in _prompt_ids(share):
                raise not_found("No such prompt in this share.")
            existing = store.open_report_by(tx.conn, reporter, canonical, prompt_id)
            if existing is not None:
                return existing, False
            report = store.ReportRow(
                secrets.token_hex(8),
                reporter,
                canonical,
                prompt_id,
                str(reason),
                note,
                "open",
                None,
                _now(),
                None,
            )
            store.insert_report(tx.conn, report)
            return report, True

        report, created = await self.writer.submit(op)
        return report_json(report), created

    async def list_reports(
        self, status: str | None, reason: str | None, cursor: str | None, limit: int = PAGE
    ) -> dict[str, Any]:
        """Reports newest first with the count of reports per target."""
        if status not in (None, "open", "resolved"):
            raise bad_request("status must be open or resolved")
        if reason is not None and reason not in REASONS:
            raise bad_request(f"reason must be one of {', '.join(REASONS)}")
        after = None
        if cursor:
            data = _uncursor(cursor)
            if len(data) != 2 or not all(isinstance(x, str) for x in data):
                raise bad_request("Invalid cursor")
            after = (data[0], data[1])

        def read(conn: sqlite3.Connection) -> dict[str, Any]:
            rows = store.list_reports(conn, status=status, reason=reason, after=after, limit=limit)
            page = rows[:limit]
            next_cursor = None
            if len(rows) > limit:
                last = page[-1][0]
                next_cursor = _cursor([last.created_at, last.id])
            return {
                "items": [report_json(r, count) for r, count in page],
                "next_cursor": next_cursor,
            }

        return await self.readers.run(read)

    async def resolve(
        self, moderator: Identity, report_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """Act on a report: dismiss, hide the prompt, withdraw the share or suspend its owner."""
        action = body.get("action")
        if action not in ACTIONS:
            raise bad_request(f"action must be one of {', '.join(ACTIONS)}")
        comment = body.get("comment")
        if comment is not None and (not isinstance(comment, str) or len(comment) > MAX_COMMENT):
            raise bad_request(f"comment must be a string of at most {MAX_COMMENT} characters")
        actor = moderator.account_id or moderator.name
        when = _now()

        def op(tx: WriteTx) -> tuple[store.ReportRow, str | None]:
            report = store.get_report(tx.conn, report_id)
            if report is None:
                raise not_found("No such report.")
            if report.status != "open":
                raise CouchError(409, "conflict", "This report is already resolved.")
            share = store.get_share(tx.conn, report.share_code)
            assert share is not None  # reports cascade with their share
            target = report.share_code + (f"/{report.prompt_id}" if report.prompt_id else "")
            owner = None
            if action == "hide_prompt":
                if not report.prompt_id:
                    raise bad_request("This report names no prompt; withdraw the share instead.")
                store.hide_prompt(tx.conn, report.share_code, report.prompt_id, when)
            elif action == "withdraw_share":
                store.withdraw(tx.conn, report.share_code, when)
                target = report.share_code  # the whole share, whichever prompt was reported
            elif action == "suspend_account":
                owner = share.account_id
                if owner is None:
                    raise CouchError(409, "conflict", "The share's owner no longer exists.")
                account_store.set_status(tx.conn, owner, "suspended")
                account_store.revoke_sessions_of(tx.conn, owner, when)
                target = f"account:{owner}"
            store.resolve_report(tx.conn, report_id, str(action), when)
            store.add_audit(tx.conn, actor, str(action), report_id, target, comment, when)
            resolved = store.get_report(tx.conn, report_id)
            assert resolved is not None
            return resolved, owner

        report, owner = await self.writer.submit(op)
        if owner is not None:
            self.forget_credentials()  # cached logins of the suspended account stop working
        return report_json(report)

    async def audit_log(self, cursor: str | None, limit: int = PAGE) -> dict[str, Any]:
        """The moderation audit log, newest first (admins)."""
        before = None
        if cursor:
            data = _uncursor(cursor)
            if len(data) != 1 or not is_integer(data[0]):
                raise bad_request("Invalid cursor")
            before = data[0]

        def read(conn: sqlite3.Connection) -> dict[str, Any]:
            rows = store.list_audit(conn, before, limit)
            page = rows[:limit]
            items = [
                {
                    "id": r[0],
                    "actor": r[1],
                    "action": r[2],
                    "report_id": r[3],
                    "target": r[4],
                    "comment": r[5],
                    "created_at": r[6],
                }
                for r in page
            ]
            next_cursor = _cursor([page[-1][0]]) if len(rows) > limit else None
            return {"items": items, "next_cursor": next_cursor}

        return await self.readers.run(read)


def _prompt_ids(share: store.ShareRow) -> set[str]:
    pack = orjson.loads(share.snapshot)
    return {str(p.get("id")) for p in pack.get("prompts", []) if isinstance(p, dict)}
