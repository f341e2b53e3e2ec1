"""Database-level CouchDB routes: create, info, delete, revs_limit, compaction."""

from __future__ import annotations

from aiohttp import web

from syncd.errors import bad_request
from syncd.store.sqlite import is_integer
from syncd.web.http import json_response, read_json
from syncd.web.keys import services


def db_name(request: web.Request) -> str:
    """The database named in the path."""
    return request.match_info["db"]


async def create_db(request: web.Request) -> web.Response:
    """``PUT /{db}``."""
    name = db_name(request)
    await services(request).documents.create_db(name)
    services(request).authz.forget(name)
    return json_response({"ok": True}, status=201, headers={"Location": f"/{name}"})


async def delete_db(request: web.Request) -> web.Response:
    """``DELETE /{db}``."""
    if "rev" in request.query:
        # Like CouchDB: a doc DELETE whose id came out empty must not drop the database.
        raise bad_request(
            "You tried to DELETE a database with a ?=rev parameter. "
            "Did you mean to DELETE a document instead?"
        )
    await services(request).documents.delete_db(db_name(request))
    services(request).authz.forget(db_name(request))
    return json_response({"ok": True})


async def db_info(request: web.Request) -> web.Response:
    """``GET /{db}`` and ``HEAD /{db}``."""
    info = await services(request).documents.db_info(db_name(request))
    row = info.row
    return json_response(
        {
            "db_name": row.name,
            "update_seq": row.update_seq,
            "purge_seq": 0,
            "doc_count": row.doc_count,
            "doc_del_count": row.doc_del_count,
            "sizes": {
                "file": info.file_size,
                "external": info.external_size,
                "active": info.external_size,
            },
            "compact_running": False,
            "disk_format_version": 8,
            "cluster": {"q": 1, "n": 1, "w": 1, "r": 1},
            "instance_start_time": "0",
            "props": {},
        }
    )


async def get_revs_limit(request: web.Request) -> web.Response:
    """``GET /{db}/_revs_limit``."""
    return json_response(await services(request).documents.get_revs_limit(db_name(request)))


async def put_revs_limit(request: web.Request) -> web.Response:
    """``PUT /{db}/_revs_limit`` with a positive integer body."""
    limit = await read_json(request, lenient_type=True)
    if not is_integer(limit, minimum=1):
        raise bad_request("Invalid revs limit: must be a positive integer")
    await services(request).documents.set_revs_limit(db_name(request), limit)
    return json_response({"ok": True})


async def compact(request: web.Request) -> web.Response:
    """``POST /{db}/_compact``: drop bodies of non-leaf revisions (done before answering)."""
    await _require_json_ctype(request)
    await services(request).documents.compact(db_name(request))
    return json_response({"ok": True}, status=202)


async def ensure_full_commit(request: web.Request) -> web.Response:
    """``POST /{db}/_ensure_full_commit``: every acknowledged write is already durable."""
    await _require_json_ctype(request)
    await services(request).documents.db_info(db_name(request))
    return json_response({"ok": True, "instance_start_time": "0"}, status=201)


async def _require_json_ctype(request: web.Request) -> None:
    # CouchDB insists on the JSON content type here even though the body is empty.
    if await request.read():
        await read_json(request)
