"""Document routes: ``/{db}/{docid}``, ``/{db}/_design/{name}``, ``/{db}/_local/{id}``, ``POST /{db}``."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote, unquote_to_bytes

import orjson
from aiohttp import web

from syncd.errors import CouchError, bad_request, forbidden, not_found
from syncd.replication.documents import (
    IncomingDoc,
    parse_doc,
    parse_local_doc,
    validate_doc_id,
    validate_rev,
)
from syncd.services.documents import ReadOptions
from syncd.web.auth import identity
from syncd.web.databases import db_name
from syncd.web.http import json_response, query_bool, query_json, read_json_object
from syncd.web.keys import services


def _check_utf8_path(request: web.Request) -> None:
    """400 for a path whose percent-escapes do not decode as UTF-8 (``/db/%FF``).

    aiohttp leaves such escapes undecoded, so ``PUT /db/%FF`` would write the id ``"%FF"``.
    """
    try:
        unquote_to_bytes(request.raw_path.partition("?")[0]).decode("utf-8")
    except UnicodeDecodeError:
        raise bad_request("Invalid UTF-8 in the URL path") from None


def doc_id(request: web.Request) -> str:
    """The document id the path names (``_design/x`` for design documents)."""
    _check_utf8_path(request)
    info = request.match_info
    if "ddoc" in info:
        return validate_doc_id("_design/" + info["ddoc"])
    return validate_doc_id(info["docid"])


def local_id(request: web.Request) -> str:
    """The ``_local/...`` id the path names."""
    _check_utf8_path(request)
    return validate_doc_id("_local/" + request.match_info["localid"], allow_local=True)


def _etag(rev: str) -> str:
    return f'"{rev}"'


def rev_from_request(request: web.Request, body_rev: str | None = None) -> str | None:
    """The rev a write names: query ``rev``, ``If-Match`` or the body's ``_rev``; all must agree."""
    given = [
        r
        for r in (
            request.query.get("rev"),
            request.headers.get("If-Match", "").strip('"') or None,
            body_rev,
        )
        if r is not None
    ]
    if len(set(given)) > 1:
        raise bad_request("Document rev from request body and query string have different values")
    return validate_rev(given[0]) if given else None


def read_options(request: web.Request) -> ReadOptions:
    """Parse the query parameters of a document read."""
    meta = query_bool(request, "meta")
    opts = ReadOptions(
        rev=request.query.get("rev"),
        revs=query_bool(request, "revs"),
        revs_info=query_bool(request, "revs_info") or meta,
        conflicts=query_bool(request, "conflicts") or meta,
        deleted_conflicts=query_bool(request, "deleted_conflicts") or meta,
        local_seq=query_bool(request, "local_seq"),
        latest=query_bool(request, "latest"),
        attachments=query_bool(request, "attachments"),
    )
    if opts.rev is not None:
        validate_rev(opts.rev)
    atts_since = query_json(request, "atts_since")
    if atts_since is not None:
        if not isinstance(atts_since, list) or not all(isinstance(r, str) for r in atts_since):
            raise bad_request("atts_since must be a JSON array of revs")
        opts.atts_since = atts_since
        opts.attachments = True
    raw = request.query.get("open_revs")
    if raw is not None:
        opts.open_revs = _parse_open_revs(raw)
    return opts


def _parse_open_revs(raw: str) -> list[str] | str:
    if raw == "all":
        return "all"
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise bad_request("open_revs must be 'all' or a JSON array of revs") from None
    if value == "all":
        return "all"
    if not isinstance(value, list) or not all(isinstance(r, str) for r in value):
        raise bad_request("open_revs must be 'all' or a JSON array of revs")
    return [validate_rev(r) for r in value]


async def get_doc(request: web.Request) -> web.Response:
    """``GET``/``HEAD /{db}/{docid}``: a revision, or ``open_revs`` results."""
    opts = read_options(request)
    doc, rev = await services(request).documents.get_doc(db_name(request), doc_id(request), opts)
    if rev is None:
        return json_response(doc)
    etag = _etag(rev)
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers={"ETag": etag})
    return json_response(doc, headers={"ETag": etag})


async def _write(request: web.Request, doc: IncomingDoc) -> web.Response:
    new_edits = query_bool(request, "new_edits", True)
    name = db_name(request)
    rev = await services(request).documents.write_doc(name, doc, new_edits)
    assert doc.id is not None
    if request.query.get("batch") == "ok":
        return json_response({"ok": True, "id": doc.id}, status=202)
    return json_response(
        {"ok": True, "id": doc.id, "rev": rev},
        status=201,
        # Percent-encoded as CouchDB does: an id may hold "/", spaces or even a newline.
        headers={
            "ETag": _etag(rev),
            "Location": f"/{quote(name, safe='')}/{quote(doc.id, safe='')}",
        },
    )


async def put_doc(request: web.Request) -> web.Response:
    """``PUT /{db}/{docid}``: create or update a document."""
    the_id = doc_id(request)
    body = await read_json_object(request, lenient_type=True)
    doc = parse_doc(body, the_id)
    if doc.path is None:
        doc.rev = rev_from_request(request, doc.rev)
    return await _write(request, doc)


async def post_doc(request: web.Request) -> web.Response:
    """``POST /{db}``: create a document, with a server-made id when it has none."""
    body = await read_json_object(request)
    doc = parse_doc(body)
    if doc.id is None:
        doc.id = uuid.uuid4().hex
    if doc.id.startswith("_design/"):
        name = db_name(request)
        if not await services(request).authz.is_db_admin(identity(request), name):
            raise forbidden("You are not a db or server admin.")
    return await _write(request, doc)


async def delete_doc(request: web.Request) -> web.Response:
    """``DELETE /{db}/{docid}?rev=R``: write a tombstone."""
    the_id = doc_id(request)
    rev = rev_from_request(request)
    docs = services(request).documents
    # CouchDB opens the current winner first: 404 ``missing`` for a document that is not there
    # and 404 ``deleted`` for one already deleted, whatever rev was given; then 409 when the
    # rev was left out or is not a leaf.
    try:
        await docs.get_doc(db_name(request), the_id, ReadOptions())
    except CouchError as exc:
        if exc.status == 404 and exc.reason != "Database does not exist.":
            raise not_found(exc.reason) from None
        raise
    doc = IncomingDoc(the_id, rev, None, True, {}, None)
    new_rev = await docs.write_doc(db_name(request), doc)
    return json_response(
        {"ok": True, "id": the_id, "rev": new_rev}, headers={"ETag": _etag(new_rev)}
    )


# _local documents -------------------------------------------------------------------------


async def get_local(request: web.Request) -> web.Response:
    """``GET /{db}/_local/{id}``."""
    doc = await services(request).documents.get_local(db_name(request), local_id(request))
    return json_response(doc, headers={"ETag": _etag(doc["_rev"])})


async def put_local(request: web.Request) -> web.Response:
    """``PUT /{db}/_local/{id}``: revs count ``0-1``, ``0-2``, ..."""
    the_id = local_id(request)
    body: dict[str, Any] = await read_json_object(request, lenient_type=True)
    doc = parse_local_doc(body, the_id)  # the URL's id wins over the body's, as in CouchDB
    doc.rev = _local_rev(request, doc.rev)
    result = await services(request).documents.put_local(db_name(request), the_id, doc)
    return json_response(result, status=201, headers={"ETag": _etag(result["rev"])})


async def delete_local(request: web.Request) -> web.Response:
    """``DELETE /{db}/_local/{id}?rev=0-N``."""
    the_id = local_id(request)
    result = await services(request).documents.delete_local(
        db_name(request), the_id, _local_rev(request, None)
    )
    return json_response(result)


def _local_rev(request: web.Request, body_rev: object) -> str | None:
    if body_rev is not None and not isinstance(body_rev, str):
        raise bad_request("Invalid rev format")  # before the set below: a list is unhashable
    given = {r for r in (request.query.get("rev"), body_rev) if r is not None}
    if len(given) > 1:
        raise bad_request("Document rev from request body and query string have different values")
    return given.pop() if given else None
