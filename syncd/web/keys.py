"""Typed keys for what hangs on the aiohttp Application."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from syncd.config import Settings
from syncd.services.accounts import AccountService
from syncd.services.analytics import AnalyticsService
from syncd.services.authz import Authorizer
from syncd.services.catalog import CatalogService
from syncd.services.changes import ChangesService
from syncd.services.documents import DocumentService
from syncd.services.entitlements import EntitlementService, SignedReceiptVerifier
from syncd.services.idempotency import IdempotencyService
from syncd.services.metrics import Metrics
from syncd.services.moderation import ModerationService
from syncd.services.sharing import SharingService
from syncd.store.sqlite import ReaderPool, Writer
from syncd.web.ratelimit import RateLimits


@dataclass
class Services:
    """Everything handlers may call, built by ``syncd.app.create_app``."""

    writer: Writer
    readers: ReaderPool
    documents: DocumentService
    changes: ChangesService
    accounts: AccountService
    authz: Authorizer
    catalog: CatalogService
    entitlements: EntitlementService
    receipts: SignedReceiptVerifier
    idempotency: IdempotencyService
    sharing: SharingService
    moderation: ModerationService
    analytics: AnalyticsService
    server_uuid: str


SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", Metrics)
RATE_LIMITS = web.AppKey("rate_limits", RateLimits)
SERVICES = web.AppKey("services", Services)


def services(request: web.Request) -> Services:
    """The services of the app serving ``request``."""
    return request.app[SERVICES]
