"""Standalone attachment routes: ``PUT/GET/HEAD/DELETE /{db}/{docid}/{attname}``."""

from __future__ import annotations

import re

from aiohttp import web

from syncd.errors import CouchError
from syncd.services.attachments import check_name, etag_of
from syncd.web.databases import db_name
from syncd.web.documents import doc_id, rev_from_request
from syncd.web.http import json_response
from syncd.web.keys import services

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _att_name(request: web.Request) -> str:
    return check_name(request.match_info["attname"])


async def get_attachment(request: web.Request) -> web.StreamResponse:
    """The attachment's bytes with its content type; ``Range`` gives 206."""
    rev = request.query.get("rev")
    meta, data = await services(request).documents.get_attachment(
        db_name(request), doc_id(request), _att_name(request), rev
    )
    etag = etag_of(meta["digest"])
    headers = {
        "ETag": etag,
        "Accept-Ranges": "bytes",
        "Content-MD5": meta["digest"].removeprefix("md5-"),
        "Cache-Control": "must-revalidate",
    }
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers=headers)
    status = 200
    range_header = request.headers.get("Range")
    match = _RANGE.match(range_header.strip()) if range_header else None
    # Another unit or a list of ranges is ignored (RFC 9110 14.2, as CouchDB's mochiweb does):
    # the whole body, 200. Only a single byte range that cannot be satisfied is a 416.
    if match is not None and data:
        start, end = _byte_range(match, len(data))
        if start is None or end is None:
            raise CouchError(
                416,
                "requested_range_not_satisfiable",
                "Requested range not satisfiable",
                {"Content-Range": f"bytes */{len(data)}"},
            )
        headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        data = data[start : end + 1]
        status = 206
    return web.Response(
        body=data,
        status=status,
        content_type=None,
        headers={**headers, "Content-Type": meta["content_type"]},
    )


def _byte_range(match: re.Match[str] | None, size: int) -> tuple[int | None, int | None]:
    if match is None or (not match.group(1) and not match.group(2)):
        return None, None
    if not match.group(1):  # suffix: the last N bytes
        count = int(match.group(2))
        return (max(size - count, 0), size - 1) if count else (None, None)
    start = int(match.group(1))
    end = int(match.group(2)) if match.group(2) else size - 1
    if start >= size or end < start:
        return None, None
    return start, min(end, size - 1)


async def put_attachment(request: web.Request) -> web.Response:
    """Add or replace an attachment; the body is the raw bytes, kept with its Content-Type."""
    the_id = doc_id(request)
    data = await request.read()
    content_type = request.headers.get("Content-Type", "application/octet-stream")
    rev = await services(request).documents.put_attachment(
        db_name(request), the_id, _att_name(request), rev_from_request(request), content_type, data
    )
    return json_response(
        {"ok": True, "id": the_id, "rev": rev}, status=201, headers={"ETag": f'"{rev}"'}
    )


async def delete_attachment(request: web.Request) -> web.Response:
    """Remove an attachment: a new revision without it."""
    the_id = doc_id(request)
    rev = rev_from_request(request)
    if rev is None:
        raise CouchError(409, "conflict", "Document update conflict.")
    new_rev = await services(request).documents.put_attachment(
        db_name(request), the_id, _att_name(request), rev, None, None
    )
    return json_response(
        {"ok": True, "id": the_id, "rev": new_rev}, headers={"ETag": f'"{new_rev}"'}
    )
