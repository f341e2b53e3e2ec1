"""Every URL the server answers, in one table.

Order matters: aiohttp tries routes in the order they are added, so fixed paths (``/_up``)
come before the ``/{db}`` patterns, and ``/{db}/_special`` before ``/{db}/{docid}``.
Every route names who may call it (``Access``); ``add_routes`` wraps each handler in that
check, so a route cannot exist without a rule. The authorization-matrix test reads ``ROUTES``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from aiohttp import web

from syncd.config import Settings
from syncd.services.authz import Access
from syncd.web import (
    analytics,
    attachments,
    auth,
    bulk,
    changes,
    databases,
    documents,
    openapi,
    server,
    sharing,
    store,
)
from syncd.web import transfer as transfer_web
from syncd.web.keys import RATE_LIMITS, services
from syncd.web.shape_index import ShapeIndex

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Route:
    """One method on one path pattern: its handler, a unique name, and who may call it."""

    method: str
    path: str
    handler: Handler
    name: str
    access: Access
    rate_limited: bool = False  # the sign-in limits (per address and per username)
    limit: str | None = None  # "share_read", "analytics" (per address), "report" (per account)


DB = "/{db:[^/_][^/]*}"
DOC = DB + "/{docid:[^/]+}"

ROUTES: tuple[Route, ...] = (
    Route("GET", "/", server.welcome, "welcome", Access.PUBLIC),
    # sign-in and accounts
    Route("GET", "/_session", auth.get_session, "session_get", Access.PUBLIC),
    Route("POST", "/_session", auth.post_session, "session_post", Access.PUBLIC, True),
    Route("DELETE", "/_session", auth.delete_session, "session_delete", Access.PUBLIC),
    Route("POST", "/v1/auth/anonymous", auth.anonymous, "auth_anonymous", Access.PUBLIC, True),
    Route("POST", "/v1/auth/register", auth.register, "auth_register", Access.PUBLIC, True),
    Route("POST", "/v1/auth/login", auth.login, "auth_login", Access.PUBLIC, True),
    Route("POST", "/v1/auth/refresh", auth.refresh, "auth_refresh", Access.PUBLIC, True),
    Route("POST", "/v1/auth/logout", auth.logout, "auth_logout", Access.AUTHENTICATED),
    Route("GET", "/v1/auth/me", auth.me, "auth_me", Access.AUTHENTICATED),
    Route("DELETE", "/v1/auth/me", auth.delete_me, "auth_delete_me", Access.AUTHENTICATED),
    Route(
        "POST",
        "/v1/auth/password",
        auth.change_password,
        "auth_password",
        Access.AUTHENTICATED,
        True,
    ),
    Route("POST", "/v1/auth/upgrade", auth.upgrade, "auth_upgrade", Access.AUTHENTICATED, True),
    Route(
        "PUT",
        "/v1/admin/accounts/{account_id}/roles",
        auth.set_roles,
        "admin_account_roles",
        Access.SERVER_ADMIN,
    ),
    Route("GET", "/_up", server.up, "up", Access.PUBLIC),
    Route("GET", "/metrics", server.metrics, "metrics", Access.METRICS),
    Route("GET", "/openapi.json", openapi.openapi, "openapi", Access.PUBLIC),
    Route("GET", "/_uuids", server.uuids, "uuids", Access.PUBLIC),
    Route("GET", "/_all_dbs", server.all_dbs, "all_dbs", Access.SERVER_ADMIN),
    # the pack store
    Route("GET", "/v1/store/packs", store.list_packs, "store_list", Access.PUBLIC),
    Route("GET", "/v1/store/packs/{pack_id}", store.get_pack, "store_pack", Access.PUBLIC),
    Route(
        "GET",
        "/v1/store/packs/{pack_id}/content",
        store.pack_content,
        "store_content",
        Access.PUBLIC,
    ),
    Route(
        "POST",
        "/v1/store/packs/{pack_id}/install",
        store.install,
        "store_install",
        Access.AUTHENTICATED,
    ),
    Route("POST", "/v1/store/purchases", store.purchase, "store_purchase", Access.AUTHENTICATED),
    Route(
        "GET",
        "/v1/store/entitlements",
        store.my_entitlements,
        "store_entitlements",
        Access.AUTHENTICATED,
    ),
    Route(
        "POST",
        "/v1/admin/store/packs",
        store.admin_create_pack,
        "admin_pack_create",
        Access.SERVER_ADMIN,
    ),
    Route(
        "PUT",
        "/v1/admin/store/packs/{pack_id}",
        store.admin_update_pack,
        "admin_pack_update",
        Access.SERVER_ADMIN,
    ),
    Route(
        "DELETE",
        "/v1/admin/store/packs/{pack_id}",
        store.admin_unpublish_pack,
        "admin_pack_unpublish",
        Access.SERVER_ADMIN,
    ),
    Route(
        "POST",
        "/v1/admin/store/entitlements",
        store.admin_grant,
        "admin_entitlement_grant",
        Access.SERVER_ADMIN,
    ),
    Route(
        "DELETE",
        "/v1/admin/store/entitlements/{account_id}/{sku}",
        store.admin_revoke,
        "admin_entitlement_revoke",
        Access.SERVER_ADMIN,
    ),
    Route(
        "POST",
        "/v1/admin/store/receipts",
        store.admin_mint_receipt,
        "admin_receipt_mint",
        Access.SERVER_ADMIN,
    ),
    # sharing, reports and moderation
    Route("POST", "/v1/shares", sharing.publish, "share_publish", Access.AUTHENTICATED),
    Route(
        "GET", "/v1/shares/{code}", sharing.read, "share_read", Access.PUBLIC, limit="share_read"
    ),
    Route("DELETE", "/v1/shares/{code}", sharing.withdraw, "share_withdraw", Access.AUTHENTICATED),
    Route(
        "POST", "/v1/shares/{code}/install", sharing.install, "share_install", Access.AUTHENTICATED
    ),
    Route(
        "POST", "/v1/reports", sharing.report, "report_file", Access.AUTHENTICATED, limit="report"
    ),
    Route(
        "GET",
        "/v1/moderation/reports",
        sharing.list_reports,
        "moderation_reports",
        Access.MODERATOR,
    ),
    Route(
        "POST",
        "/v1/moderation/reports/{report_id}/resolve",
        sharing.resolve_report,
        "moderation_resolve",
        Access.MODERATOR,
    ),
    Route(
        "GET", "/v1/moderation/audit", sharing.audit_log, "moderation_audit", Access.SERVER_ADMIN
    ),
    # anonymous analytics
    Route(
        "POST",
        "/v1/analytics/events",
        analytics.ingest,
        "analytics_ingest",
        Access.PUBLIC,
        limit="analytics",
    ),
    Route(
        "GET", "/v1/analytics/summary", analytics.summary, "analytics_summary", Access.SERVER_ADMIN
    ),
    # databases (PouchDB also calls them with a trailing slash)
    Route("PUT", DB, databases.create_db, "db_create", Access.SERVER_ADMIN),
    Route("PUT", DB + "/", databases.create_db, "db_create_slash", Access.SERVER_ADMIN),
    Route("GET", DB, databases.db_info, "db_info", Access.DB_MEMBER),
    Route("GET", DB + "/", databases.db_info, "db_info_slash", Access.DB_MEMBER),
    Route("DELETE", DB, databases.delete_db, "db_delete", Access.SERVER_ADMIN),
    Route("DELETE", DB + "/", databases.delete_db, "db_delete_slash", Access.SERVER_ADMIN),
    Route("POST", DB, documents.post_doc, "doc_post", Access.DB_MEMBER),
    Route("POST", DB + "/", documents.post_doc, "doc_post_slash", Access.DB_MEMBER),
    # database endpoints
    Route("POST", DB + "/_bulk_docs", bulk.bulk_docs, "bulk_docs", Access.DB_MEMBER),
    Route("POST", DB + "/_bulk_get", bulk.bulk_get, "bulk_get", Access.DB_MEMBER),
    Route("POST", DB + "/_revs_diff", bulk.revs_diff, "revs_diff", Access.DB_MEMBER),
    Route("GET", DB + "/_all_docs", bulk.all_docs, "all_docs", Access.DB_MEMBER),
    Route("POST", DB + "/_all_docs", bulk.all_docs, "all_docs_post", Access.DB_MEMBER),
    Route("GET", DB + "/_changes", changes.changes, "changes", Access.DB_MEMBER),
    Route("POST", DB + "/_changes", changes.changes, "changes_post", Access.DB_MEMBER),
    Route(
        "POST",
        DB + "/_ensure_full_commit",
        databases.ensure_full_commit,
        "ensure_full_commit",
        Access.DB_MEMBER,
    ),
    Route("GET", DB + "/_revs_limit", databases.get_revs_limit, "revs_limit_get", Access.DB_MEMBER),
    Route(
        "PUT", DB + "/_revs_limit", databases.put_revs_limit, "revs_limit_put", Access.SERVER_ADMIN
    ),
    Route("POST", DB + "/_compact", databases.compact, "compact", Access.SERVER_ADMIN),
    Route("GET", DB + "/_security", auth.get_security, "security_get", Access.DB_MEMBER),
    Route("PUT", DB + "/_security", auth.put_security, "security_put", Access.DB_ADMIN),
    # packs as one JSON file (docs/export-format.md)
    Route("GET", DB + "/_export", transfer_web.export_packs, "db_export", Access.DB_ADMIN),
    Route("POST", DB + "/_import", transfer_web.import_packs, "db_import", Access.DB_ADMIN),
    # _local documents
    Route("GET", DB + "/_local/{localid}", documents.get_local, "local_get", Access.DB_MEMBER),
    Route("PUT", DB + "/_local/{localid}", documents.put_local, "local_put", Access.DB_MEMBER),
    Route(
        "DELETE", DB + "/_local/{localid}", documents.delete_local, "local_delete", Access.DB_MEMBER
    ),
    # design documents are stored as ordinary documents
    Route("GET", DB + "/_design/{ddoc}", documents.get_doc, "design_get", Access.DB_MEMBER),
    Route("PUT", DB + "/_design/{ddoc}", documents.put_doc, "design_put", Access.DB_ADMIN),
    Route("DELETE", DB + "/_design/{ddoc}", documents.delete_doc, "design_delete", Access.DB_ADMIN),
    Route(
        "GET",
        DB + "/_design/{ddoc}/{attname:.+}",
        attachments.get_attachment,
        "design_att_get",
        Access.DB_MEMBER,
    ),
    Route(
        "PUT",
        DB + "/_design/{ddoc}/{attname:.+}",
        attachments.put_attachment,
        "design_att_put",
        Access.DB_ADMIN,
    ),
    Route(
        "DELETE",
        DB + "/_design/{ddoc}/{attname:.+}",
        attachments.delete_attachment,
        "design_att_delete",
        Access.DB_ADMIN,
    ),
    # documents
    Route("GET", DOC, documents.get_doc, "doc_get", Access.DB_MEMBER),
    Route("PUT", DOC, documents.put_doc, "doc_put", Access.DB_MEMBER),
    Route("DELETE", DOC, documents.delete_doc, "doc_delete", Access.DB_MEMBER),
    # attachments (names may contain "/")
    Route("GET", DOC + "/{attname:.+}", attachments.get_attachment, "att_get", Access.DB_MEMBER),
    Route("PUT", DOC + "/{attname:.+}", attachments.put_attachment, "att_put", Access.DB_MEMBER),
    Route(
        "DELETE",
        DOC + "/{attname:.+}",
        attachments.delete_attachment,
        "att_delete",
        Access.DB_MEMBER,
    ),
)


def _guarded(route: Route, handler: Handler) -> Handler:
    async def guarded(request: web.Request) -> web.StreamResponse:
        await services(request).authz.check(
            route.access, auth.identity(request), request.match_info.get("db")
        )
        return await handler(request)

    guarded.__name__ = f"{route.name}_guarded"
    return guarded


def add_routes(app: web.Application, settings: Settings) -> None:
    """Register ``ROUTES`` on ``app``, each behind its access rule (GET answers HEAD too)."""
    limits = app[RATE_LIMITS]
    entries: list[tuple[Route, Handler]] = []
    for route in ROUTES:
        handler = route.handler
        if route.rate_limited:
            handler = limits.wrap(route.name, handler)
        if route.limit == "share_read":
            handler = limits.per_address(route.name, settings.share_rate_limit, handler)
        elif route.limit == "report":
            handler = limits.per_account(route.name, settings.report_rate_limit, handler)
        elif route.limit == "analytics":
            handler = limits.per_address(route.name, settings.analytics_rate_limit, handler)
        entries.append((route, _guarded(route, handler)))
    mount(app.router, entries)


def mount(router: web.UrlDispatcher, entries: Iterable[tuple[Route, Handler]]) -> None:
    """Add each route with its handler, in order; the ``/{db}...`` ones go in a ShapeIndex.

    They all share aiohttp's index bucket for paths starting with a variable, where aiohttp
    would try them one by one; ``ShapeIndex`` tries only those whose shape fits the path.
    """
    by_shape = ShapeIndex(DB)
    for route, handler in entries:
        if route.path.startswith("/{"):
            resource = by_shape.add_resource(route.path, name=route.name)
        else:
            resource = router.add_resource(route.path, name=route.name)
        if route.method == "GET":
            resource.add_route("HEAD", handler)
        resource.add_route(route.method, handler)
    router.register_resource(by_shape)
