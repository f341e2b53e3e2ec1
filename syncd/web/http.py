"""Small helpers every handler uses: JSON in and out, query parameters, the app's services."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from syncd.errors import CouchError, bad_request

JSON_TYPE = "application/json"


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
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise bad_request("invalid UTF-8 JSON") from None


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
    return value


def query_json(request: web.Request, name: str) -> Any:
    """A JSON-encoded query parameter (``key="abc"``); ``None`` when absent."""
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise bad_request(f"Invalid JSON in query parameter {name}") from None


class CountedStreamResponse(web.StreamResponse):
    """A streamed response that counts the body bytes written (the access log's ``bytes``).

    aiohttp's ``body_length`` of a streamed response counts what went on the wire, headers and
    chunk framing included; the access log reports body bytes for every response alike.
    """

    body_bytes = 0

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        await super().write(data)
        self.body_bytes += memoryview(data).nbytes
