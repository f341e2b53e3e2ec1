"""Replication routes: ``_bulk_docs``, ``_bulk_get``, ``_revs_diff``, ``_all_docs``."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from syncd.errors import CouchError, bad_request, forbidden
from syncd.replication.documents import parse_doc, parse_local_doc, validate_rev
from syncd.services.documents import AllDocsQuery, PreparedDoc, ReadOptions
from syncd.store.sqlite import is_integer
from syncd.web.auth import identity
from syncd.web.databases import db_name
from syncd.web.http import (
    MAX_INT,
    json_response,
    query_bool,
    query_int,
    query_json,
    read_json_object,
)
from syncd.web.keys import services

DESIGN_FORBIDDEN = "You are not a db or server admin."


def _prepare(raw: Any, new_edits: bool, docs_service: Any, may_design: bool) -> PreparedDoc:
    raw_id = raw.get("_id") if isinstance(raw, dict) else None
    if isinstance(raw_id, str) and raw_id.startswith("_local/"):
        return _prepare_local(raw, raw_id, docs_service)
    try:
        doc = parse_doc(raw)
    except CouchError as exc:
        return PreparedDoc(None, error=exc, error_id=raw_id if isinstance(raw_id, str) else None)
    if doc.id is None:
        if not new_edits:
            return PreparedDoc(None, error=bad_request("Document must have an _id"))
        doc.id = uuid.uuid4().hex
    if doc.id.startswith("_design/") and not may_design:
        return PreparedDoc(None, error=forbidden(DESIGN_FORBIDDEN), error_id=doc.id)
    prepared: PreparedDoc = docs_service.prepare(doc)
    return prepared


async def bulk_docs(request: web.Request) -> web.Response:
    """``POST /{db}/_bulk_docs``: each document succeeds or fails on its own."""
    body = await read_json_object(request)
    raw_docs = body.get("docs")
    if not isinstance(raw_docs, list):
        raise bad_request("POST body must include `docs` parameter.")
    new_edits = body.get("new_edits", True)
    if not isinstance(new_edits, bool):
        raise bad_request("`new_edits` parameter must be a boolean.")
    documents = services(request).documents
    may_design = await services(request).authz.is_db_admin(identity(request), db_name(request))
    prepared = [_prepare(raw, new_edits, documents, may_design) for raw in raw_docs]
    results = await documents.write_docs(db_name(request), prepared, new_edits)
    if new_edits:
        out = [r.to_json() for r in results]
    else:  # CouchDB lists only the failures of a replicated write, each with its rev
        out = [
            _replicated_error(r.to_json(), p.doc.rev if p.doc is not None else None)
            for r, p in zip(results, prepared, strict=True)
            if r.error is not None
        ]
    return json_response(out, status=201)


def _prepare_local(raw: dict[str, Any], raw_id: str, docs_service: Any) -> PreparedDoc:
    """A ``_local/`` document in a bulk write: stored apart, like ``PUT /{db}/_local/{id}``
    (CouchDB accepts them here in both modes and keeps them out of the revision trees)."""
    try:
        doc = parse_local_doc(raw, raw_id)
    except CouchError as exc:
        return PreparedDoc(None, error=exc, error_id=raw_id)
    prepared: PreparedDoc = docs_service.prepare_local(doc)
    return prepared


def _replicated_error(entry: dict[str, Any], rev: str | None) -> dict[str, Any]:
    if rev is None:
        return entry
    return {"id": entry["id"], "rev": rev, "error": entry["error"], "reason": entry["reason"]}


async def revs_diff(request: web.Request) -> web.Response:
    """``POST /{db}/_revs_diff``: which of these revs are missing here."""
    body = await read_json_object(request)
    wanted: dict[str, list[str]] = {}
    for doc_id, revs in body.items():
        if not isinstance(revs, list) or not all(isinstance(r, str) for r in revs):
            raise bad_request("Each value of _revs_diff must be a list of revs")
        wanted[doc_id] = [validate_rev(r) for r in revs]
    return json_response(await services(request).documents.revs_diff(db_name(request), wanted))


async def bulk_get(request: web.Request) -> web.Response:
    """``POST /{db}/_bulk_get``: many (id, rev) reads in one request."""
    body = await read_json_object(request)
    docs = body.get("docs")
    if not isinstance(docs, list) or not all(isinstance(d, dict) for d in docs):
        raise bad_request("`docs` must be a list of objects")
    opts = ReadOptions(
        revs=query_bool(request, "revs"),
        latest=query_bool(request, "latest"),
        attachments=query_bool(request, "attachments"),
    )
    results = await services(request).documents.bulk_get(db_name(request), docs, opts)
    return json_response({"results": results})


def _all_docs_query(request: web.Request, body: dict[str, Any] | None) -> AllDocsQuery:
    def param(*names: str) -> Any:
        for name in names:
            if body is not None and name in body:
                return body[name]
            value = query_json(request, name)
            if value is not None:
                return value
        return None

    q = AllDocsQuery(
        start=param("startkey", "start_key"),
        end=param("endkey", "end_key"),
        inclusive_end=query_bool(request, "inclusive_end", True),
        descending=query_bool(request, "descending"),
        skip=query_int(request, "skip", 0) or 0,
        limit=query_int(request, "limit"),
        include_docs=query_bool(request, "include_docs"),
        conflicts=query_bool(request, "conflicts"),
        update_seq=query_bool(request, "update_seq"),
    )
    key = param("key")
    if key is not None:
        q.start = q.end = key
        q.inclusive_end = True
    keys = body["keys"] if body is not None and "keys" in body else query_json(request, "keys")
    if keys is not None:
        if not isinstance(keys, list):
            raise bad_request("`keys` must be an array")
        q.keys = keys
    for name in ("limit", "skip"):
        if body is not None and name in body:
            value = body[name]
            if not is_integer(value):
                raise bad_request(f"`{name}` must be a non-negative integer up to {MAX_INT}")
            setattr(q, name, value)
    return q


async def all_docs(request: web.Request) -> web.Response:
    """``GET``/``POST /{db}/_all_docs``."""
    body = await read_json_object(request) if request.method == "POST" else None
    query = _all_docs_query(request, body)
    return json_response(await services(request).documents.all_docs(db_name(request), query))
