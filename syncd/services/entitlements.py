"""Entitlements (purchase gating): who may use which premium sku, and purchases that grant them.

A purchase is checked by the verifier registered for its platform. syncd ships one verifier,
``SignedReceiptVerifier`` (platform ``"syncd"``): receipts signed with the server's key, which an
admin mints with ``POST /v1/admin/store/receipts`` — for testing and self-hosting. App Store and
Google Play verification plug in the same way: implement ``ReceiptVerifier`` (call the store's
server API from ``verify``) and register it for ``"ios"`` / ``"android"`` in ``syncd.app``.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from itsdangerous import BadSignature, URLSafeSerializer

from syncd.errors import CouchError, bad_request, not_found
from syncd.store import accounts as account_store
from syncd.store import catalog as store
from syncd.store.sqlite import ReaderPool, Writer, WriteTx


class ReceiptVerifier(Protocol):
    """Checks a platform's purchase receipt for a sku; returns a stable id of the purchase."""

    async def verify(self, sku: str, receipt: str) -> str:
        """The purchase's unique id on its platform; raise CouchError(400) if invalid."""
        ...


def invalid_receipt(reason: str = "The receipt could not be verified.") -> CouchError:
    """400 ``invalid_receipt``."""
    return CouchError(400, "invalid_receipt", reason)


class SignedReceiptVerifier:
    """Receipts signed with the server's key (``{"sku", "nonce"}``); for tests and self-hosting."""

    def __init__(self, secret_keys: Sequence[str]) -> None:
        self._signer = URLSafeSerializer(list(secret_keys), salt="syncd.receipt")

    def mint(self, sku: str) -> str:
        """A new receipt for ``sku`` (admins hand these out)."""
        return str(self._signer.dumps({"sku": sku, "nonce": secrets.token_hex(16)}))

    async def verify(self, sku: str, receipt: str) -> str:
        try:
            data = self._signer.loads(receipt)
        except BadSignature:
            raise invalid_receipt() from None
        if not isinstance(data, dict) or data.get("sku") != sku:
            raise invalid_receipt("The receipt is for another sku.")
        return f"syncd:{data.get('nonce')}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class EntitlementService:
    """Purchases, grants and revocations of premium skus."""

    writer: Writer
    readers: ReaderPool
    verifiers: dict[str, ReceiptVerifier] = field(default_factory=dict)

    async def mine(self, account_id: str) -> list[dict[str, Any]]:
        """The entitlements of an account."""
        rows = await self.readers.run(store.list_entitlements, account_id)
        return [{"sku": sku, "source": source, "granted_at": when} for sku, source, when in rows]

    async def purchase(self, account_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Verify a receipt and grant its sku (the same receipt twice is idempotent)."""
        sku, platform, receipt = body.get("sku"), body.get("platform"), body.get("receipt")
        if not all(isinstance(v, str) and v for v in (sku, platform, receipt)):
            raise bad_request("sku, platform and receipt are required strings")
        assert isinstance(sku, str) and isinstance(platform, str) and isinstance(receipt, str)
        verifier = self.verifiers.get(platform)
        if verifier is None:
            raise bad_request(f"Unknown platform '{platform}'; known: {', '.join(self.verifiers)}")
        purchase_key = await verifier.verify(sku, receipt)
        receipt_hash = hashlib.sha256(f"{platform}\0{purchase_key}".encode()).hexdigest()
        purchase_id = secrets.token_hex(8)
        when = _now()

        def op(tx: WriteTx) -> dict[str, Any]:
            if not store.sku_exists(tx.conn, sku):
                raise not_found(f"No premium pack is sold as '{sku}'.")
            used = store.purchase_by_receipt(tx.conn, receipt_hash)
            if used is not None and used[1] != account_id:
                raise CouchError(409, "conflict", "This receipt was used by another account.")
            if used is not None and used[3]:
                raise CouchError(409, "conflict", "This purchase was revoked.")
            if used is None:
                store.insert_purchase(
                    tx.conn, purchase_id, account_id, sku, platform, receipt_hash, when
                )
            store.grant(tx.conn, account_id, sku, "purchase", when)
            return {
                "ok": True,
                "purchase": {
                    "id": used[0] if used else purchase_id,
                    "sku": sku,
                    "platform": platform,
                },
                "entitlement": {"sku": sku},
            }

        return await self.writer.submit(op)

    async def grant(self, account_id: object, sku: object) -> None:
        """Admin: entitle an account to a sku."""
        if not isinstance(account_id, str) or not isinstance(sku, str) or not sku:
            raise bad_request("account_id and sku are required strings")

        def op(tx: WriteTx) -> None:
            if account_store.get_account(tx.conn, account_id) is None:
                raise not_found("No such account.")
            store.grant(tx.conn, account_id, sku, "grant", _now())

        await self.writer.submit(op)

    async def revoke(self, account_id: str, sku: str) -> None:
        """Admin: take an entitlement away."""

        when = _now()

        def op(tx: WriteTx) -> None:
            if not store.revoke(tx.conn, account_id, sku):
                raise not_found("No such entitlement.")
            store.revoke_purchases(tx.conn, account_id, sku, when)

        await self.writer.submit(op)
