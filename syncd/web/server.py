"""Server-level CouchDB routes: welcome, health, uuids, database list."""

from __future__ import annotations

import uuid

from aiohttp import web

from syncd import __version__
from syncd.errors import bad_request
from syncd.web.http import json_response, query_int
from syncd.web.keys import services

COUCHDB_VERSION = "3.3.3"  # the CouchDB API level we answer as
MAX_UUIDS = 1000


async def welcome(request: web.Request) -> web.Response:
    """``GET /``: CouchDB's welcome object."""
    return json_response(
        {
            "couchdb": "Welcome",
            "version": COUCHDB_VERSION,
            "uuid": services(request).server_uuid,
            "features": [],
            "vendor": {"name": "syncd", "version": __version__},
        }
    )


async def up(request: web.Request) -> web.Response:
    """``GET /_up``: the server and its database answer."""
    await services(request).documents.all_dbs()
    return json_response({"status": "ok", "seeds": {}})


async def uuids(request: web.Request) -> web.Response:
    """``GET /_uuids?count=N``: fresh random ids."""
    count = query_int(request, "count", 1, minimum=1)
    assert count is not None
    if count > MAX_UUIDS:
        raise bad_request(f"count must not exceed {MAX_UUIDS}")
    return json_response(
        {"uuids": [uuid.uuid4().hex for _ in range(count)]},
        headers={"Cache-Control": "must-revalidate, no-cache", "Pragma": "no-cache"},
    )


async def all_dbs(request: web.Request) -> web.Response:
    """``GET /_all_dbs``: every database name, sorted."""
    return json_response(await services(request).documents.all_dbs())
