"""Small helpers every handler uses: JSON in and out, query parameters, the app's services."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from syncd.errors import CouchError, bad_request
from syncd.store.sqlite import MAX_INTEGER

JSON_TYPE = "application/json"
# SQLite's INTEGER range: a larger limit, skip or seq would fail inside the query (500).
MAX_INT = MAX_INTEGER
# orjson reads 1024 levels of nesting but writes at most 254, and a stored document goes back
# out inside up to 5 more (``_bulk_get``); deeper input is refused with 400 instead of a 500.
MAX_JSON_DEPTH = 128
_ORJSON_MAX_DEPTH = 254


def check_depth(data: Any, containers: int) -> None:
    """400 for JSON nested more than ``MAX_JSON_DEPTH`` levels.

    ``containers`` (the ``[`` and ``{`` bytes of the text) bounds the depth, so almost every
    body is cleared without a look; otherwise orjson tries to write ``data`` wrapped in enough
    lists that it fails exactly when ``data`` is too deep.
    """
    if containers <= MAX_JSON_DEPTH:
        return
    wrapped = data
    for _ in range(_ORJSON_MAX_DEPTH - MAX_JSON_DEPTH):
        wrapped = [wrapped]
    try:
        orjson.dumps(wrapped)
    except orjson.JSONEncodeError:
        raise bad_request(f"JSON nested more than {MAX_JSON_DEPTH} levels deep") from None


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON response encoded with orjson."""
    return web.Response(
        body=orjson.dumps(data), status=status, content_type=JSON_TYPE, headers=headers
    )


def _is_json_type(content_type: str) -> bool:
    return content_type == JSON_TYPE or content_type.endswith("+json")


async def read_json(request: web.Request, *, lenient_type: bool = False) -> Any:
    """Parse the request body as JSON.

    A body must be declared JSON (else 415), except where CouchDB itself parses whatever comes
    (``lenient_type``: document PUTs, which ``curl -d`` sends as form data).
    """
    raw = await request.read()
    if not raw:
        raise bad_request("Request body must be a JSON object")
    if not lenient_type and not _is_json_type(request.content_type):
        raise CouchError(415, "bad_content_type", "Content-Type must be application/json")
    if lenient_type and request.content_type.startswith("multipart/"):
        raise CouchError(415, "bad_content_type", "multipart documents are not supported")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise bad_request("invalid UTF-8 JSON") from None
    check_depth(data, raw.count(b"[") + raw.count(b"{"))
    return data


async def read_json_object(request: web.Request, *, lenient_type: bool = False) -> dict[str, Any]:
    """Parse the body as a JSON object (400 for any other JSON value)."""
    data = await read_json(request, lenient_type=lenient_type)
    if not isinstance(data, dict):
        raise bad_request("Request body must be a JSON object")
    return data


def query_bool(request: web.Request, name: str, default: bool = False) -> bool:
    """A true/false query parameter (400 for anything else)."""
    raw = request.query.get(name)
    if raw is None:
        return default
    if raw == "true":
        return True
    if raw == "false":
        return False
    raise bad_request(f"Invalid boolean parameter: {name}={raw}")


def query_int(
    request: web.Request, name: str, default: int | None = None, *, minimum: int = 0
) -> int | None:
    """A whole-number query parameter of at least ``minimum`` (400 otherwise)."""
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"Invalid value for {name}: {raw!r}, expected an integer") from None
    if value < minimum:
        raise bad_request(f"Invalid value for {name}: must be at least {minimum}")
    if value > MAX_INT:
        raise bad_request(f"Invalid value for {name}: must be at most {MAX_INT}")
    return value


def query_json(request: web.Request, name: str) -> Any:
    """A JSON-encoded query parameter (``key="abc"``); ``None`` when absent."""
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise bad_request(f"Invalid JSON in query parameter {name}") from None
    check_depth(data, raw.count("[") + raw.count("{"))
    return data


class CountedStreamResponse(web.StreamResponse):
    """A streamed response that counts the body bytes written (the access log's ``bytes``).

    aiohttp's ``body_length`` of a streamed response counts what went on the wire, headers and
    chunk framing included; the access log reports body bytes for every response alike.
    """

    body_bytes = 0

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        await super().write(data)
        self.body_bytes += memoryview(data).nbytes
