"""Middlewares: request ids, CouchDB-shaped errors, and the access log.

Every error a client sees leaves through ``error_middleware``: ``CouchError`` from any layer,
aiohttp's own HTTP errors (unknown route, wrong method, body too large) and unexpected
exceptions (logged, answered 500 without details).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web

from syncd.errors import CouchError
from syncd.replication.documents import validate_db_name
from syncd.web.auth import IDENTITY as IDENTITY_KEY
from syncd.web.keys import METRICS

log = logging.getLogger("syncd.web")
access_log = logging.getLogger("syncd.access")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REQUEST_ID = web.RequestKey("request_id", str)
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_RESERVED_DB_PATH = re.compile(r"^/(_[^/]*)/?$")
# Request ids: a random prefix per process and a counter, unique across restarts and workers
# and ~10x cheaper than uuid4 (which reads the kernel's randomness for every request).
_ID_PREFIX = os.urandom(8).hex()
_id_counter = itertools.count(1)


def new_request_id() -> str:
    """A fresh request id: 32 hex digits (like a uuid4's), 16 for the process, 16 counting."""
    return f"{_ID_PREFIX}{next(_id_counter):016x}"


def _error_response(
    request: web.Request, exc: CouchError, headers: dict[str, str] | None = None
) -> web.Response:
    body = {"error": exc.error, "reason": exc.reason, "request_id": request[REQUEST_ID]}
    merged = {**exc.headers, **(headers or {})}
    return web.Response(
        body=b"" if request.method == "HEAD" else orjson.dumps(body),
        status=exc.status,
        content_type="application/json",
        headers=merged,
    )


def _from_http_error(exc: web.HTTPException) -> tuple[CouchError, dict[str, str]]:
    headers: dict[str, str] = {}
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ",".join(sorted(exc.allowed_methods))
        headers["Allow"] = allowed
        return CouchError(405, "method_not_allowed", f"Only {allowed} allowed"), headers
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return CouchError(413, "too_large", "the request entity is too large"), headers
    if isinstance(exc, web.HTTPNotFound):
        return CouchError(404, "not_found", "missing"), headers
    return CouchError(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason), headers


def _body_size(request: web.Request, response: web.StreamResponse) -> int:
    if request.method == "HEAD":
        return 0  # the headers say how long the body would be; none is sent
    if response.prepared:
        counted = getattr(response, "body_bytes", None)  # CountedStreamResponse
        return counted if isinstance(counted, int) else response.body_length
    body = getattr(response, "body", None)
    return len(body) if isinstance(body, bytes) else 0


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Accept a sane ``X-Request-ID`` or make one; echo it on the response."""
    given = request.headers.get("X-Request-ID", "")
    request[REQUEST_ID] = given if _SANE_REQUEST_ID.match(given) else new_request_id()
    started = time.perf_counter()
    status = 500
    size = 0
    try:
        response = await handler(request)
        status = response.status
        if not response.prepared:
            response.headers["X-Request-ID"] = request[REQUEST_ID]
            response.headers["X-Couch-Request-ID"] = request[REQUEST_ID]
        size = _body_size(request, response)
        return response
    except asyncio.CancelledError:
        status = 499  # the client went away (nginx's code for it)
        raise
    finally:
        seconds = time.perf_counter() - started
        resource = request.match_info.route.resource
        name = request.match_info.route.name or (resource.name if resource else None)
        request.app[METRICS].observe_request(name or "unmatched", request.method, status, seconds)
        who = request.get(IDENTITY_KEY)
        access_log.info(
            "request",
            extra={
                "request_id": request[REQUEST_ID],
                "method": request.method,
                "route": resource.canonical if resource is not None else "unmatched",
                "status": status,
                "duration_ms": round(seconds * 1000, 2),
                "bytes": size,
                "account": getattr(who, "account_id", None) or getattr(who, "name", None),
            },
        )


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure into CouchDB's error body with the request id."""
    try:
        return await handler(request)
    except CouchError as exc:
        return _error_response(request, exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        reserved = _RESERVED_DB_PATH.match(request.path)
        if isinstance(exc, web.HTTPNotFound) and request.method == "PUT" and reserved:
            # No route creates a database named "_..."; CouchDB refuses the name with 400.
            try:
                validate_db_name(reserved.group(1))
            except CouchError as illegal:
                return _error_response(request, illegal)
        couch, headers = _from_http_error(exc)
        return _error_response(request, couch, headers)
    except Exception:
        log.exception("unhandled error", extra={"request_id": request[REQUEST_ID]})
        return _error_response(
            request, CouchError(500, "internal_server_error", "An unexpected error occurred.")
        )
