"""Sharing user-made packs: a snapshot of a pack document, reachable by a short code.

Codes are 10 characters of Crockford's base32 (no I, L, O or U), about 50 random bits: not
guessable, and forgiving when typed (lowercase, ``O`` for ``0``, ``I``/``L`` for ``1``).
Withdrawn shares answer 410 for good; prompts hidden by a moderator are never served.
"""

from __future__ import annotations

import secrets
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from syncd.errors import CouchError, bad_request, not_found
from syncd.replication.documents import IncomingDoc
from syncd.services.accounts import Identity
from syncd.services.documents import DocumentService, ReadOptions
from syncd.services.packs import validate_pack
from syncd.store import sharing as store
from syncd.store.sqlite import ReaderPool, Writer, WriteTx

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 10
_TYPO = str.maketrans({"O": "0", "I": "1", "L": "1"})
SNAPSHOT_FIELDS = ("type", "title", "language", "description", "tags", "prompts")


def new_code() -> str:
    """A fresh share code."""
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(code: str) -> str:
    """The canonical form of a typed code (404 for anything that cannot be one)."""
    canonical = code.strip().upper().replace("-", "").translate(_TYPO)
    if len(canonical) != CODE_LENGTH or any(c not in ALPHABET for c in canonical):
        raise not_found("No such share.")
    return canonical


def gone() -> CouchError:
    """410 for withdrawn content."""
    return CouchError(410, "gone", "This share was withdrawn.")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class SharingService:
    """Publishing, reading, withdrawing and installing shared packs."""

    writer: Writer
    readers: ReaderPool
    documents: DocumentService
    public_url: str

    def url(self, code: str) -> str:
        """Where a share can be fetched."""
        return f"{self.public_url}/v1/shares/{code}"

    def _json(self, share: store.ShareRow) -> dict[str, Any]:
        return {
            "code": share.code,
            "url": self.url(share.code),
            "doc_id": share.doc_id,
            "created_at": share.created_at,
            "updated_at": share.updated_at,
        }

    async def publish(self, identity: Identity, doc_id: object) -> tuple[dict[str, Any], bool]:
        """Share a pack of the caller's own database; again: update the snapshot. (json, new?)"""
        if not isinstance(doc_id, str) or not doc_id:
            raise bad_request("doc_id is required")
        if identity.account_id is None or identity.db_name is None:
            raise bad_request("Only accounts with a database can share packs.")
        try:
            doc, _ = await self.documents.get_doc(identity.db_name, doc_id, ReadOptions())
        except CouchError as exc:
            if exc.status == 404:
                raise not_found("No such pack in your database.") from None
            raise
        if doc.get("type") != "pack":
            raise bad_request("Only pack documents can be shared.")
        validate_pack(doc)
        snapshot = orjson.dumps({k: doc[k] for k in SNAPSHOT_FIELDS if k in doc})
        account_id, when = identity.account_id, _now()

        def op(tx: WriteTx) -> tuple[store.ShareRow, bool]:
            current = store.active_share_of(tx.conn, account_id, doc_id)
            if current is not None:
                store.update_snapshot(tx.conn, current.code, snapshot, when)
                current.updated_at = when
                return current, False
            while True:
                share = store.ShareRow(
                    new_code(), account_id, doc_id, snapshot, "active", when, when
                )
                if store.insert_share(tx.conn, share):
                    return share, True

        share, created = await self.writer.submit(op)
        return self._json(share), created

    async def withdraw(self, identity: Identity, code: str) -> None:
        """The owner (or an admin) withdraws a share."""
        canonical = normalize_code(code)
        when = _now()

        def op(tx: WriteTx) -> None:
            share = store.get_share(tx.conn, canonical)
            if share is None or (share.account_id != identity.account_id and not identity.is_admin):
                raise not_found("No such share.")
            if share.status != "active":
                raise gone()
            store.withdraw(tx.conn, canonical, when)

        await self.writer.submit(op)

    async def read(self, code: str) -> dict[str, Any]:
        """A shared pack as anyone may see it (hidden prompts left out)."""
        canonical = normalize_code(code)

        def read(conn: sqlite3.Connection) -> dict[str, Any]:
            share = store.get_share(conn, canonical)
            if share is None:
                raise not_found("No such share.")
            if share.status != "active":
                raise gone()
            pack = orjson.loads(share.snapshot)
            hidden = store.hidden_prompts(conn, canonical)
            if hidden:
                pack["prompts"] = [p for p in pack.get("prompts", []) if p.get("id") not in hidden]
            return {"code": share.code, "pack": pack, "updated_at": share.updated_at}

        return await self.readers.run(read)

    async def install(self, identity: Identity, code: str) -> dict[str, Any]:
        """Copy a shared pack into the caller's database (again: update that copy)."""
        if identity.db_name is None:
            raise bad_request("This identity has no database to install into.")
        shared = await self.read(code)
        doc_id = f"pack:share-{shared['code']}"
        body = {**shared["pack"], "source": {"kind": "share", "code": shared["code"]}}
        for _ in range(3):
            try:
                current, rev = await self.documents.get_doc(identity.db_name, doc_id, ReadOptions())
            except CouchError as exc:
                if exc.status != 404 or exc.reason not in ("missing", "deleted"):
                    raise
                current, rev = None, None
            if current is not None:
                same = {k: v for k, v in current.items() if not k.startswith("_")} == body
                if same:
                    return {"ok": True, "id": doc_id, "rev": rev, "status": "unchanged"}
            try:
                new_rev = await self.documents.write_doc(
                    identity.db_name, IncomingDoc(doc_id, rev, None, False, body, None)
                )
            except CouchError as exc:
                if exc.status == 409:
                    continue
                raise
            status = "updated" if current is not None else "installed"
            return {"ok": True, "id": doc_id, "rev": new_rev, "status": status}
        raise CouchError(409, "conflict", "The pack document kept changing; try again.")


def withdraw_shares_of_deleted_account(tx: WriteTx, account_id: str) -> None:
    """Account deletion hook: the account's shares are withdrawn (their codes answer 410)."""
    store.withdraw_all_of(tx.conn, account_id, _now())
