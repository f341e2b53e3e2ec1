"""The composition root: ``create_app(settings)`` builds the store, services and web app.

Importing this module does nothing; the database opens when the app starts (a cleanup
context) and closes when it stops.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator

from aiohttp import web

from syncd.config import Settings
from syncd.services.changes import ChangesHub, ChangesService
from syncd.services.documents import DocumentService
from syncd.services.packs import validate_pack
from syncd.store import documents as doc_store
from syncd.store.sqlite import WriteTx, open_database
from syncd.web.keys import SERVICES, SETTINGS, Services
from syncd.web.middlewares import error_middleware, request_id_middleware
from syncd.web.routes import add_routes

log = logging.getLogger("syncd.app")


def create_app(settings: Settings) -> web.Application:
    """A ready-to-run aiohttp application for ``settings``."""
    app = web.Application(
        middlewares=[request_id_middleware, error_middleware],
        client_max_size=settings.max_request_bytes,
    )
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_database)
    app.on_shutdown.append(_end_feeds)
    add_routes(app)
    return app


async def _end_feeds(app: web.Application) -> None:
    """On shutdown, wake every waiting changes feed so it ends with its last_seq."""
    app[SERVICES].changes.hub.close()


def _file_size(settings: Settings) -> int:
    total = 0
    for suffix in ("", "-wal"):
        path = settings.database_path.with_name(settings.database_path.name + suffix)
        if path.exists():
            total += path.stat().st_size
    return total


async def _database(app: web.Application) -> AsyncIterator[None]:
    """Open the SQLite file (migrating it), build the services; close all on shutdown."""
    settings = app[SETTINGS]
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    async with open_database(
        settings.database_path,
        readers=settings.reader_connections,
        synchronous=settings.sqlite_synchronous,
    ) as (writer, readers):

        def ensure_uuid(tx: WriteTx) -> str:
            return doc_store.set_meta_once(tx.conn, "server_uuid", uuid.uuid4().hex)

        server_uuid = await writer.submit(ensure_uuid)
        documents = DocumentService(
            writer=writer,
            readers=readers,
            max_doc_bytes=settings.max_document_bytes,
            validators=[validate_pack],
            file_size=lambda: _file_size(settings),
        )
        hub = ChangesHub()
        writer.add_commit_listener(hub.notify)
        app[SERVICES] = Services(
            documents=documents,
            changes=ChangesService(readers=readers, hub=hub),
            server_uuid=server_uuid,
        )
        yield
