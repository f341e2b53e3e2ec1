"""The OpenAPI 3.1 description of the whole API, built from the route table.

Every route in ``ROUTES`` appears (a route cannot be added without showing up here); the
details below add request bodies, query parameters and response shapes where they matter.
``GET /openapi.json`` serves it; the fuzzing tests (schemathesis) read it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from syncd import __version__
from syncd.services.authz import Access

Schema = dict[str, Any]

ERROR: Schema = {
    "type": "object",
    "required": ["error", "reason"],
    "properties": {
        "error": {"type": "string"},
        "reason": {"type": "string"},
        "request_id": {"type": "string"},
    },
}
OBJECT: Schema = {"type": "object"}
ANY_JSON: Schema = {}
DOC: Schema = {
    "type": "object",
    "properties": {"_id": {"type": "string"}, "_rev": {"type": "string"}},
}
OK: Schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}}
ITEMS: Schema = {
    "type": "object",
    "required": ["items", "next_cursor"],
    "properties": {"items": {"type": "array"}, "next_cursor": {"type": ["string", "null"]}},
}
CREDENTIALS: Schema = {
    "type": "object",
    "required": ["username", "password"],
    "properties": {"username": {"type": "string"}, "password": {"type": "string"}},
}
PACK_INPUT: Schema = {
    "type": "object",
    "required": ["slug", "title", "language"],
    "properties": {
        "slug": {"type": "string"},
        "title": {"type": "string"},
        "description": {"type": "string"},
        "language": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "tier": {"enum": ["free", "premium"]},
        "sku": {"type": "string"},
        "prompts": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"id": {"type": "string"}, "text": {"type": "string"}},
            },
        },
    },
}


def _q(name: str, schema: Schema, description: str = "") -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


BOOL = {"type": "string", "enum": ["true", "false"]}
INT = {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}  # SQLite's INTEGER range
DOC_READ = [
    _q("rev", {"type": "string"}),
    _q("revs", BOOL),
    _q("revs_info", BOOL),
    _q("conflicts", BOOL),
    _q("deleted_conflicts", BOOL),
    _q("meta", BOOL),
    _q("local_seq", BOOL),
    _q("latest", BOOL),
    _q("attachments", BOOL),
    _q("atts_since", {"type": "string"}, "JSON array of revs"),
    _q("open_revs", {"type": "string"}, "'all' or a JSON array of revs"),
]
CHANGES = [
    _q("feed", {"enum": ["normal", "longpoll", "continuous", "eventsource"]}),
    _q("since", {"type": "string"}, "an integer or 'now'"),
    _q("limit", INT),
    _q("descending", BOOL),
    _q("include_docs", BOOL),
    _q("style", {"enum": ["main_only", "all_docs"]}),
    _q("conflicts", BOOL),
    _q("attachments", BOOL),
    _q("heartbeat", INT),
    _q("timeout", INT),
    _q("seq_interval", INT),
    _q("filter", {"type": "string"}),
    _q("doc_ids", {"type": "string"}, "JSON array"),
]
ALL_DOCS = [
    _q("key", {"type": "string"}, "JSON"),
    _q("keys", {"type": "string"}, "JSON array"),
    _q("startkey", {"type": "string"}, "JSON"),
    _q("endkey", {"type": "string"}, "JSON"),
    _q("inclusive_end", BOOL),
    _q("limit", INT),
    _q("skip", INT),
    _q("descending", BOOL),
    _q("include_docs", BOOL),
    _q("conflicts", BOOL),
    _q("update_seq", BOOL),
]
STORE_LIST = [
    _q("language", {"type": "string"}),
    _q("tag", {"type": "string"}),
    _q("tier", {"enum": ["free", "premium"]}),
    _q("q", {"type": "string"}),
    _q("sort", {"enum": ["updated", "title"]}),
    _q("limit", {"type": "integer", "minimum": 1, "maximum": 100}),
    _q("cursor", {"type": "string"}),
]

# route name -> (summary, request body schema or None, 2xx response schema, query parameters)
DETAILS: dict[str, tuple[str, Schema | None, Schema, Sequence[Schema]]] = {
    "welcome": ("CouchDB welcome", None, OBJECT, ()),
    "up": ("Health check", None, OBJECT, ()),
    "metrics": ("Prometheus metrics", None, {"type": "string"}, ()),
    "openapi": ("This description", None, OBJECT, ()),
    "uuids": ("Fresh uuids", None, OBJECT, [_q("count", {"type": "integer", "minimum": 1})]),
    "all_dbs": ("Every database", None, {"type": "array", "items": {"type": "string"}}, ()),
    "session_post": ("Start a cookie session", CREDENTIALS | {"required": []}, OBJECT, ()),
    "auth_register": ("Register a named account", CREDENTIALS, OBJECT, ()),
    "auth_login": ("Sign in", CREDENTIALS, OBJECT, ()),
    "auth_upgrade": ("Anonymous to named", CREDENTIALS, OBJECT, ()),
    "auth_refresh": (
        "Rotate tokens",
        {"type": "object", "properties": {"refresh_token": {"type": "string"}}},
        OBJECT,
        (),
    ),
    "db_info": ("Database information", None, OBJECT, ()),
    "doc_get": ("Read a document", None, ANY_JSON, DOC_READ),
    "design_get": ("Read a design document", None, ANY_JSON, DOC_READ),
    "doc_put": (
        "Write a document",
        DOC,
        OBJECT,
        [_q("rev", {"type": "string"}), _q("new_edits", BOOL)],
    ),
    "doc_post": ("Create a document", DOC, OBJECT, ()),
    "bulk_docs": (
        "Write many documents",
        {
            "type": "object",
            "required": ["docs"],
            "properties": {
                "docs": {"type": "array", "items": DOC},
                "new_edits": {"type": "boolean"},
            },
        },
        {"type": "array"},
        (),
    ),
    "bulk_get": (
        "Read many revisions",
        {
            "type": "object",
            "required": ["docs"],
            "properties": {"docs": {"type": "array", "items": OBJECT}},
        },
        OBJECT,
        [_q("revs", BOOL), _q("latest", BOOL), _q("attachments", BOOL)],
    ),
    "revs_diff": (
        "Which revisions are missing",
        {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
        OBJECT,
        (),
    ),
    "all_docs": ("List documents", None, OBJECT, ALL_DOCS),
    "all_docs_post": ("List documents by keys", OBJECT, OBJECT, ALL_DOCS),
    "changes": ("The changes feed", None, ANY_JSON, CHANGES),
    "changes_post": ("The changes feed (filters in the body)", OBJECT, ANY_JSON, CHANGES),
    "store_list": ("Browse the pack store", None, ITEMS, STORE_LIST),
    "admin_pack_create": ("Publish a curated pack", PACK_INPUT, OBJECT, ()),
    "admin_pack_update": ("Update a curated pack", PACK_INPUT, OBJECT, ()),
    "store_purchase": (
        "Record a purchase",
        {
            "type": "object",
            "required": ["sku", "platform", "receipt"],
            "properties": {
                "sku": {"type": "string"},
                "platform": {"type": "string"},
                "receipt": {"type": "string"},
            },
        },
        OBJECT,
        (),
    ),
    "share_publish": (
        "Share a pack",
        {"type": "object", "required": ["doc_id"], "properties": {"doc_id": {"type": "string"}}},
        OBJECT,
        (),
    ),
    "report_file": (
        "Report abuse",
        {
            "type": "object",
            "required": ["share_code", "reason"],
            "properties": {
                "share_code": {"type": "string"},
                "prompt_id": {"type": "string"},
                "reason": {"type": "string"},
                "note": {"type": "string"},
            },
        },
        OBJECT,
        (),
    ),
    "moderation_reports": (
        "Reports to moderate",
        None,
        ITEMS,
        [
            _q("status", {"type": "string"}),
            _q("reason", {"type": "string"}),
            _q("cursor", {"type": "string"}),
        ],
    ),
    "analytics_ingest": (
        "Send anonymous events",
        {"type": "object", "required": ["events"], "properties": {"events": {"type": "array"}}},
        OBJECT,
        (),
    ),
    "analytics_summary": (
        "Daily event counts",
        None,
        OBJECT,
        [
            _q("from", {"type": "string"}),
            _q("to", {"type": "string"}),
            _q("name", {"type": "string"}),
        ],
    ),
}

_PARAM = re.compile(r"\{(\w+)(?::[^{}]*)?\}")


def _path(pattern: str) -> tuple[str, list[str]]:
    names = _PARAM.findall(pattern)
    return _PARAM.sub(lambda m: "{" + m.group(1) + "}", pattern), names


def build_spec(routes: Sequence[Any]) -> dict[str, Any]:
    """The OpenAPI document for ``routes`` (``syncd.web.routes.ROUTES``)."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        path, params = _path(route.path)
        summary, body, ok, query = DETAILS.get(
            route.name, (route.name.replace("_", " "), None, ANY_JSON, ())
        )
        operation: dict[str, Any] = {
            "operationId": route.name,
            "summary": summary,
            "description": f"Access: {route.access.value}.",
            "parameters": [
                {"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                for n in params
            ]
            + list(query),
            "responses": {
                "2XX": {"description": "success", "content": _content(route.name, ok)},
                "304": {"description": "not modified"},
                "default": {
                    "description": "an error in CouchDB's shape",
                    "content": {"application/json": {"schema": ERROR}},
                },
            },
        }
        if route.access is not Access.PUBLIC:
            operation["security"] = [{"basic": []}, {"bearer": []}, {"cookie": []}]
        if body is not None or (route.method in ("PUT", "POST") and route.name not in _NO_BODY):
            operation["requestBody"] = {
                "required": body is not None,
                "content": {"application/json": {"schema": body if body is not None else ANY_JSON}},
            }
        paths.setdefault(path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "syncd",
            "version": __version__,
            "description": "A CouchDB-compatible sync server: the CouchDB replication API plus "
            "the app API under /v1.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "basic": {"type": "http", "scheme": "basic"},
                "bearer": {"type": "http", "scheme": "bearer"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "AuthSession"},
            }
        },
    }


_NO_BODY = {
    "db_create",
    "db_create_slash",
    "ensure_full_commit",
    "compact",
    "auth_anonymous",
    "auth_logout",
    "store_install",
    "share_install",
    "att_put",
    "design_att_put",
}


def _content(name: str, schema: Schema) -> dict[str, Any]:
    if name == "metrics":
        return {"text/plain": {"schema": schema}}
    if name in ("att_get", "design_att_get"):
        return {"*/*": {"schema": {}}}
    if name in ("changes", "changes_post"):
        return {"application/json": {"schema": schema}, "text/event-stream": {"schema": {}}}
    if name in ("db_export",):
        return {"application/json": {"schema": OBJECT}}
    return {"application/json": {"schema": schema}}


async def openapi(request: web.Request) -> web.Response:
    """``GET /openapi.json``."""
    from syncd.web.routes import ROUTES  # the route table imports this module

    return web.json_response(build_spec(ROUTES))
