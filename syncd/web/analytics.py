"""Routes for anonymous analytics: ingestion (no account) and daily summaries (admins)."""

from __future__ import annotations

import orjson
from aiohttp import web

from syncd.errors import CouchError, bad_request
from syncd.services.analytics import MAX_BATCH_BYTES
from syncd.web.http import JSON_TYPE, json_response
from syncd.web.keys import services


async def ingest(request: web.Request) -> web.Response:
    """``POST /v1/analytics/events`` ``{"events": [...]}``: each event accepted or rejected."""
    if request.content_length is not None and request.content_length > MAX_BATCH_BYTES:
        raise CouchError(413, "too_large", f"A batch is at most {MAX_BATCH_BYTES} bytes")
    raw = await _read_body(request)
    if request.content_type != JSON_TYPE:
        raise CouchError(415, "bad_content_type", "Content-Type must be application/json")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise bad_request("invalid UTF-8 JSON") from None
    answer = services(request).analytics.ingest(body)
    del body  # the service lets the parsed events go before it waits for the commit
    return json_response(await answer)


async def _read_body(request: web.Request) -> bytes:
    # ``read(n)`` returns what has arrived so far, up to n bytes: read on until the end.
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(MAX_BATCH_BYTES + 1 - size):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BATCH_BYTES:
            raise CouchError(413, "too_large", f"A batch is at most {MAX_BATCH_BYTES} bytes")
    return b"".join(chunks)


async def summary(request: web.Request) -> web.Response:
    """``GET /v1/analytics/summary?from&to&name``: daily counts."""
    query = request.query
    return json_response(
        await services(request).analytics.summary(
            query.get("from"), query.get("to"), query.get("name")
        )
    )
