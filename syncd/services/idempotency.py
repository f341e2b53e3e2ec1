"""Idempotency keys for mutations: the same key with the same request replays the first answer.

A client that retries a purchase or an install after a timeout sends the same
``Idempotency-Key``; it gets the first response again instead of a second effect. The same key
with a different request is refused with 422. Keys are kept for 24 hours.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import orjson

from syncd.errors import CouchError, bad_request
from syncd.store import catalog as store
from syncd.store.sqlite import ReaderPool, Writer, WriteTx

WINDOW_SECONDS = 24 * 3600
MAX_KEY = 255


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    """What a key is bound to: method, path and body (JSON compared with sorted keys)."""
    canonical = body
    with contextlib.suppress(orjson.JSONDecodeError):
        canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(method.encode() + b"\0" + path.encode() + b"\0" + canonical).hexdigest()


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A response to replay."""

    status: int
    body: bytes
    replayed: bool


@dataclass
class IdempotencyService:
    """Runs a mutation at most once per (scope, key)."""

    writer: Writer
    readers: ReaderPool
    _locks: dict[tuple[str, str], asyncio.Lock] = field(default_factory=dict)

    async def run(
        self,
        scope: str,
        key: str,
        fingerprint: str,
        action: Callable[[], Awaitable[tuple[int, bytes]]],
    ) -> StoredResponse:
        """``action``'s response, or the stored one for a key seen before."""
        if not key or len(key) > MAX_KEY or not key.isprintable():
            raise bad_request(f"Idempotency-Key must be 1-{MAX_KEY} printable characters")
        lock = self._locks.setdefault((scope, key), asyncio.Lock())
        try:
            async with lock:  # the same key in flight twice: the second waits for the first
                fresh_after = time.time() - WINDOW_SECONDS
                stored = await self.readers.run(store.get_idempotent, scope, key, fresh_after)
                if stored is not None:
                    if stored[0] != fingerprint:
                        raise CouchError(
                            422,
                            "idempotency_key_reused",
                            "This Idempotency-Key was used with a different request.",
                        )
                    return StoredResponse(stored[1], stored[2], replayed=True)
                status, body = await action()
                if status < 500:
                    now = time.time()

                    def op(tx: WriteTx) -> None:
                        store.purge_idempotent(tx.conn, now - WINDOW_SECONDS)
                        store.put_idempotent(tx.conn, scope, key, fingerprint, status, body, now)

                    await self.writer.submit(op)
                return StoredResponse(status, body, replayed=False)
        finally:
            if not lock.locked():
                self._locks.pop((scope, key), None)
