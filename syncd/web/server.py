"""Server-level CouchDB routes: welcome, health, uuids, database list."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections import Counter

from aiohttp import web

from syncd import __version__
from syncd.errors import CouchError, bad_request
from syncd.services.metrics import Labels
from syncd.web.http import json_response, query_int
from syncd.web.keys import METRICS, SETTINGS, services

COUCHDB_VERSION = "3.3.3"  # the CouchDB API level we answer as
MAX_UUIDS = 1000


async def welcome(request: web.Request) -> web.Response:
    """``GET /``: CouchDB's welcome object."""
    return json_response(
        {
            "couchdb": "Welcome",
            "version": COUCHDB_VERSION,
            "uuid": services(request).server_uuid,
            "features": [],
            "vendor": {"name": "syncd", "version": __version__},
        }
    )


async def up(request: web.Request) -> web.Response:
    """``GET /_up``: 200 when the database answers reads and the writer; 503 with a reason."""
    found = services(request)
    try:
        await asyncio.wait_for(found.documents.all_dbs(), 2.0)
        await found.writer.check()
    except (TimeoutError, sqlite3.Error, CouchError) as exc:
        reason = "database timeout" if isinstance(exc, TimeoutError) else "database error"
        return json_response({"status": "error", "reason": reason}, status=503)
    return json_response({"status": "ok", "seeds": {}})


async def metrics(request: web.Request) -> web.Response:
    """``GET /metrics``: Prometheus text format (admins or the metrics token)."""
    found = services(request)
    settings = request.app[SETTINGS]
    db_path = settings.database_path
    wal = db_path.with_name(db_path.name + "-wal")
    dbs, docs = await found.documents.totals()
    hub = found.changes.hub
    gauges: dict[str, tuple[str, dict[Labels, float]]] = {
        "syncd_changes_feeds_open": (
            "Open changes feeds by mode.",
            {(("mode", mode),): float(n) for mode, n in hub.open_feeds.items()},
        ),
        "syncd_changes_feeds_waiting": ("Feeds waiting for a commit.", {(): float(hub.waiting)}),
        "syncd_writer_queue_depth": (
            "Write operations queued.",
            {(): float(found.writer.queue_depth)},
        ),
        "syncd_database_file_bytes": (
            "Size of the SQLite file and its WAL.",
            {
                (("file", "db"),): float(db_path.stat().st_size if db_path.exists() else 0),
                (("file", "wal"),): float(wal.stat().st_size if wal.exists() else 0),
            },
        ),
        "syncd_databases": ("Databases.", {(): float(dbs)}),
        "syncd_documents": ("Live documents across all databases.", {(): float(docs)}),
    }
    counters: dict[str, tuple[str, Counter[Labels]]] = {}
    checkpointer = found.writer.checkpointer
    if checkpointer is not None:
        where = checkpointer.wal_position()
        if where is not None:
            gauges["syncd_wal_frames"] = (
                "Pages in the WAL, and those of them not yet copied into the database file.",
                {
                    (("state", "written"),): float(where.frames),
                    (("state", "pending"),): float(where.pending),
                },
            )
        stats = checkpointer.stats
        counters["syncd_wal_checkpoints_total"] = (
            "WAL checkpoints run, by the background checkpointer or the writer itself.",
            Counter(
                {(("by", "background"),): stats.background, (("by", "writer"),): stats.by_writer}
            ),
        )
        counters["syncd_wal_checkpoint_failures_total"] = (
            "WAL checkpoints that failed (a full disk); the WAL keeps the pages.",
            Counter({(): stats.failed}),
        )
    return web.Response(
        text=request.app[METRICS].render(gauges, counters),
        content_type="text/plain",
        charset="utf-8",
        headers={"Cache-Control": "no-store"},
    )


async def uuids(request: web.Request) -> web.Response:
    """``GET /_uuids?count=N``: fresh random ids."""
    count = query_int(request, "count", 1, minimum=1)
    assert count is not None
    if count > MAX_UUIDS:
        raise bad_request(f"count must not exceed {MAX_UUIDS}")
    return json_response(
        {"uuids": [uuid.uuid4().hex for _ in range(count)]},
        headers={"Cache-Control": "must-revalidate, no-cache", "Pragma": "no-cache"},
    )


async def all_dbs(request: web.Request) -> web.Response:
    """``GET /_all_dbs``: every database name, sorted."""
    return json_response(await services(request).documents.all_dbs())
