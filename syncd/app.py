"""The composition root: ``create_app(settings)`` builds the store, services and web app.

Importing this module does nothing; the database opens when the app starts (a cleanup
context) and closes when it stops.
"""

from __future__ import annotations

import gc
import logging
import os
import secrets
import uuid
from collections.abc import AsyncIterator

from aiohttp import web

from syncd.config import Settings
from syncd.services.accounts import AccountService, TokenSettings
from syncd.services.analytics import (
    DEFAULT_EVENTS,
    DEFAULT_PROPS,
    AnalyticsRules,
    AnalyticsService,
)
from syncd.services.authz import Authorizer
from syncd.services.catalog import CatalogService
from syncd.services.changes import ChangesHub, ChangesService
from syncd.services.documents import DocumentService
from syncd.services.entitlements import EntitlementService, SignedReceiptVerifier
from syncd.services.housekeeping import Housekeeping
from syncd.services.idempotency import IdempotencyService
from syncd.services.metrics import Metrics
from syncd.services.moderation import ModerationService
from syncd.services.packs import validate_pack
from syncd.services.sharing import SharingService, withdraw_shares_of_deleted_account
from syncd.store import documents as doc_store
from syncd.store.sqlite import WriteTx, open_database
from syncd.web.auth import auth_middleware
from syncd.web.keys import METRICS, RATE_LIMITS, SERVICES, SETTINGS, Services
from syncd.web.middlewares import error_middleware, request_id_middleware
from syncd.web.ratelimit import RateLimits
from syncd.web.routes import add_routes

log = logging.getLogger("syncd.app")


def create_app(settings: Settings) -> web.Application:
    """A ready-to-run aiohttp application for ``settings``."""
    app = web.Application(
        middlewares=[request_id_middleware, error_middleware, auth_middleware],
        client_max_size=settings.max_request_bytes,
    )
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    app[RATE_LIMITS] = RateLimits(settings)
    app.cleanup_ctx.append(_database)
    app.on_startup.append(_freeze_startup_objects)
    app.on_shutdown.append(_end_feeds)
    add_routes(app, settings)
    return app


async def _freeze_startup_objects(app: web.Application) -> None:
    """Move what startup made (modules, routes, services) out of the cyclic GC's sight.

    They live as long as the process; left in the oldest generation, every full
    collection walked all of them again: 15-20 ms pauses under load, the tail of the PUT
    latency. (``gc.freeze``, as the gc module's documentation suggests for servers.)
    """
    gc.collect()
    gc.freeze()


async def _end_feeds(app: web.Application) -> None:
    """On shutdown, wake every waiting changes feed so it ends with its last_seq."""
    app[SERVICES].changes.hub.close()


def signing_keys(settings: Settings) -> list[str]:
    """Token signing keys, oldest first: previous keys still verify, the last one signs.

    Without a configured key, one is generated into the data directory (mode 0600) on first
    start and reused after that.
    """
    keys = [k.value for k in settings.previous_secret_keys]
    if settings.secret_key is not None:
        return [*keys, settings.secret_key.value]
    path = settings.data_dir / "secret.key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(48))
        log.warning(
            "generated a token signing key; set SYNCD_SECRET_KEY to manage it yourself",
            extra={"path": str(path)},
        )
    return [*keys, path.read_text().strip()]


def public_url(settings: Settings) -> str:
    """The base URL clients reach this server at (share links use it)."""
    return settings.public_url or f"http://{settings.host}:{settings.port}"


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
        max_bytes=settings.max_database_bytes,
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
        writer.add_commit_observer(app[METRICS].observe_commit)
        analytics = AnalyticsService(
            writer,
            readers,
            AnalyticsRules(
                frozenset(settings.analytics_events or DEFAULT_EVENTS),
                frozenset(settings.analytics_props or DEFAULT_PROPS),
                settings.analytics_retention_days,
            ),
        )
        keys = signing_keys(settings)  # generated on first start if unset
        accounts = AccountService(
            writer=writer,
            readers=readers,
            tokens=TokenSettings(
                secret_keys=keys,
                access_ttl=settings.access_token_ttl,
                refresh_ttl=settings.refresh_token_ttl,
                cookie_ttl=settings.session_timeout,
                admin_name=settings.admin_user,
                admin_password=settings.admin_password.value if settings.admin_password else None,
                metrics_token=settings.metrics_token.value if settings.metrics_token else None,
            ),
        )
        receipts = SignedReceiptVerifier(keys)
        app[SERVICES] = Services(
            writer=writer,
            readers=readers,
            documents=documents,
            changes=ChangesService(readers=readers, hub=hub),
            accounts=accounts,
            authz=Authorizer(readers=readers, writer=writer),
            catalog=CatalogService(writer=writer, readers=readers, documents=documents),
            # App Store / Play verifiers register here under "ios" / "android".
            entitlements=EntitlementService(writer, readers, verifiers={"syncd": receipts}),
            receipts=receipts,
            idempotency=IdempotencyService(writer=writer, readers=readers),
            sharing=SharingService(writer, readers, documents, public_url(settings)),
            moderation=ModerationService(writer, readers, accounts.forget_cached),
            analytics=analytics,
            server_uuid=server_uuid,
        )
        accounts.on_delete.append(withdraw_shares_of_deleted_account)
        async with Housekeeping(writer, analytics).running(every_seconds=3600):
            yield
