"""Periodic clean-up while the server runs: expired analytics events, spent tokens, old
sessions, and attachment bodies no kept revision refers to (after database deletions).

Each job is one short write; the loop sleeps between runs and stops with the app.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from syncd.errors import CouchError
from syncd.services.analytics import AnalyticsService
from syncd.store import accounts as account_store
from syncd.store import attachments as att_store
from syncd.store.sqlite import Writer, WriteTx

log = logging.getLogger("syncd.housekeeping")
REVOKED_SESSIONS_KEPT = timedelta(days=30)  # long enough to explain a revoked token


@dataclass
class Housekeeping:
    """The periodic jobs."""

    writer: Writer
    analytics: AnalyticsService

    async def run_once(self) -> dict[str, int]:
        """Run every job once; return how many rows each removed."""
        now = time.time()
        revoked_before = (datetime.now(UTC) - REVOKED_SESSIONS_KEPT).isoformat(timespec="seconds")

        def tokens(tx: WriteTx) -> int:
            return account_store.prune_tokens(tx.conn, now, revoked_before)

        def orphans(tx: WriteTx) -> int:
            return att_store.drop_unreferenced(tx.conn)

        return {
            "analytics_events": await self.analytics.purge(now),
            "tokens": await self.writer.submit(tokens),
            "attachments": await self.writer.submit(orphans),
        }

    @contextlib.asynccontextmanager
    async def running(self, every_seconds: float) -> AsyncIterator[None]:
        """Run the jobs every ``every_seconds`` while the app runs."""

        async def loop() -> None:
            while True:
                try:
                    removed = await self.run_once()
                    if any(removed.values()):
                        log.info("housekeeping removed %s", removed)
                except CouchError:
                    log.warning("housekeeping run failed")
                await asyncio.sleep(every_seconds)

        task = asyncio.create_task(loop(), name="syncd-housekeeping")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
