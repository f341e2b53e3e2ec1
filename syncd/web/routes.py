"""Every URL the server answers, in one table.

Order matters: aiohttp tries routes in the order they are added, so fixed paths (``/_up``)
come before the ``/{db}`` patterns, and ``/{db}/_special`` before ``/{db}/{docid}``.
The authorization-matrix test reads ``ROUTES``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from syncd.web import attachments, bulk, changes, databases, documents, server

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Route:
    """One method on one path pattern, with its handler and a unique name."""

    method: str
    path: str
    handler: Handler
    name: str


DB = "/{db:[^/_][^/]*}"
DOC = DB + "/{docid:[^/]+}"

ROUTES: tuple[Route, ...] = (
    Route("GET", "/", server.welcome, "welcome"),
    Route("GET", "/_up", server.up, "up"),
    Route("GET", "/_uuids", server.uuids, "uuids"),
    Route("GET", "/_all_dbs", server.all_dbs, "all_dbs"),
    # databases (PouchDB also calls them with a trailing slash)
    Route("PUT", DB, databases.create_db, "db_create"),
    Route("PUT", DB + "/", databases.create_db, "db_create_slash"),
    Route("GET", DB, databases.db_info, "db_info"),
    Route("GET", DB + "/", databases.db_info, "db_info_slash"),
    Route("DELETE", DB, databases.delete_db, "db_delete"),
    Route("DELETE", DB + "/", databases.delete_db, "db_delete_slash"),
    Route("POST", DB, documents.post_doc, "doc_post"),
    Route("POST", DB + "/", documents.post_doc, "doc_post_slash"),
    # database endpoints
    Route("POST", DB + "/_bulk_docs", bulk.bulk_docs, "bulk_docs"),
    Route("POST", DB + "/_bulk_get", bulk.bulk_get, "bulk_get"),
    Route("POST", DB + "/_revs_diff", bulk.revs_diff, "revs_diff"),
    Route("GET", DB + "/_all_docs", bulk.all_docs, "all_docs"),
    Route("POST", DB + "/_all_docs", bulk.all_docs, "all_docs_post"),
    Route("GET", DB + "/_changes", changes.changes, "changes"),
    Route("POST", DB + "/_changes", changes.changes, "changes_post"),
    Route("POST", DB + "/_ensure_full_commit", databases.ensure_full_commit, "ensure_full_commit"),
    Route("GET", DB + "/_revs_limit", databases.get_revs_limit, "revs_limit_get"),
    Route("PUT", DB + "/_revs_limit", databases.put_revs_limit, "revs_limit_put"),
    Route("POST", DB + "/_compact", databases.compact, "compact"),
    # _local documents
    Route("GET", DB + "/_local/{localid}", documents.get_local, "local_get"),
    Route("PUT", DB + "/_local/{localid}", documents.put_local, "local_put"),
    Route("DELETE", DB + "/_local/{localid}", documents.delete_local, "local_delete"),
    # design documents are stored as ordinary documents
    Route("GET", DB + "/_design/{ddoc}", documents.get_doc, "design_get"),
    Route("PUT", DB + "/_design/{ddoc}", documents.put_doc, "design_put"),
    Route("DELETE", DB + "/_design/{ddoc}", documents.delete_doc, "design_delete"),
    Route("GET", DB + "/_design/{ddoc}/{attname:.+}", attachments.get_attachment, "design_att_get"),
    Route("PUT", DB + "/_design/{ddoc}/{attname:.+}", attachments.put_attachment, "design_att_put"),
    Route(
        "DELETE",
        DB + "/_design/{ddoc}/{attname:.+}",
        attachments.delete_attachment,
        "design_att_delete",
    ),
    # documents
    Route("GET", DOC, documents.get_doc, "doc_get"),
    Route("PUT", DOC, documents.put_doc, "doc_put"),
    Route("DELETE", DOC, documents.delete_doc, "doc_delete"),
    # attachments (names may contain "/")
    Route("GET", DOC + "/{attname:.+}", attachments.get_attachment, "att_get"),
    Route("PUT", DOC + "/{attname:.+}", attachments.put_attachment, "att_put"),
    Route("DELETE", DOC + "/{attname:.+}", attachments.delete_attachment, "att_delete"),
)


def add_routes(app: web.Application) -> None:
    """Register ``ROUTES`` on ``app`` (GET routes answer HEAD too)."""
    for route in ROUTES:
        if route.method == "GET":
            app.router.add_get(route.path, route.handler, name=route.name)
        else:
            app.router.add_route(route.method, route.path, route.handler, name=route.name)
