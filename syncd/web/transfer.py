"""``GET /{db}/_export`` and ``POST /{db}/_import``: the packs of a database as one JSON file.

The export is streamed (chunked, a page of packs at a time), so its size does not matter.
Both routes are for database admins: the owner of a userdb, and server admins.
"""

from __future__ import annotations

import re

from aiohttp import web

from syncd.errors import CouchError
from syncd.services.transfer import TransferService
from syncd.web.databases import db_name
from syncd.web.http import JSON_TYPE, CountedStreamResponse, json_response
from syncd.web.keys import services
from syncd.web.middlewares import REQUEST_ID

_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


def _transfer(request: web.Request) -> TransferService:
    return TransferService(services(request).documents)


def _filename(name: str, pack_id: str | None) -> str:
    stem = name if pack_id is None else f"{name}-{pack_id}"
    return _UNSAFE_FILENAME.sub("_", stem)[:150] + ".packs.json"


async def export_packs(request: web.Request) -> web.StreamResponse:
    """``GET /{db}/_export[?pack=<doc id>]``: 404 for a missing db or pack, else the file."""
    name = db_name(request)
    pack_id = request.query.get("pack")
    export = await _transfer(request).start_export(name, pack_id)
    response = CountedStreamResponse(
        headers={
            "Content-Type": JSON_TYPE,
            "Content-Disposition": f'attachment; filename="{_filename(name, pack_id)}"',
            "Cache-Control": "no-store",
            "X-Request-ID": request[REQUEST_ID],
        }
    )
    response.enable_chunked_encoding()
    await response.prepare(request)
    if request.method != "HEAD":
        async for chunk in export.chunks():
            await response.write(chunk)
    await response.write_eof()
    return response


async def import_packs(request: web.Request) -> web.Response:
    """``POST /{db}/_import`` with an export file: per-pack outcomes and counts."""
    content_type = request.content_type
    if content_type != JSON_TYPE and not content_type.endswith("+json"):
        raise CouchError(415, "bad_content_type", "Content-Type must be application/json")
    raw = await request.read()
    report = await _transfer(request).import_file(db_name(request), raw)
    return json_response(report.to_json())
