"""``GET/POST /{db}/_changes`` in the four feed modes CouchDB offers.

``normal`` answers at once; ``longpoll`` answers at once when there are changes after ``since``
and otherwise waits for the next commit; ``continuous`` streams one JSON object per line and
ends with a ``last_seq`` line; ``eventsource`` streams Server-Sent Events with ``id:`` = seq.
Waiting feeds hold no database connection; they are woken by the writer after a commit.
Responses are never compressed, so every line reaches ``curl -N`` as it is written.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from syncd.errors import CouchError, bad_request, not_found
from syncd.replication.selector import SelectorError, compile_selector
from syncd.services.changes import PAGE, ChangesPage, ChangesQuery
from syncd.services.documents import ReadOptions
from syncd.store.sqlite import is_integer
from syncd.web.databases import db_name
from syncd.web.http import (
    MAX_INT,
    CountedStreamResponse,
    json_response,
    query_bool,
    query_int,
    query_json,
    read_json_object,
)
from syncd.web.keys import services
from syncd.web.middlewares import REQUEST_ID

FEEDS = ("normal", "longpoll", "continuous", "eventsource")
DEFAULT_TIMEOUT_MS = 60_000
_SEQ = re.compile(r"^(\d{1,19})(?:-.*)?$")  # 19 digits at most: SQLite INTEGER range


@dataclass(slots=True)
class FeedParams:
    """A parsed ``_changes`` request."""

    feed: str
    since: int | None  # None: "now"
    limit: int | None
    query: ChangesQuery
    heartbeat: float | None  # seconds
    timeout: float | None  # seconds; None waits for ever (heartbeat given)


def _parse_since(raw: Any) -> int | None:
    if raw is None:
        return 0
    if raw == "now":
        return None
    if is_integer(raw):
        return raw
    match = _SEQ.match(str(raw)) if type(raw) is not int else None
    if match is None or int(match.group(1)) > MAX_INT:
        raise bad_request(f"Invalid since: {raw!r}; expected an integer or 'now'")
    return int(match.group(1))


def _milliseconds(request: web.Request, name: str) -> float | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    if raw == "true":
        return DEFAULT_TIMEOUT_MS / 1000
    value = query_int(request, name, minimum=0)
    assert value is not None
    return max(value, 1) / 1000


async def _parse(request: web.Request) -> FeedParams:
    body = (
        await read_json_object(request)
        if request.method == "POST" and request.can_read_body
        else {}
    )
    feed = request.query.get("feed", "normal")
    if feed not in FEEDS:
        raise bad_request(f"Unknown feed '{feed}'; use one of {', '.join(FEEDS)}")
    style = request.query.get("style", "main_only")
    if style not in ("main_only", "all_docs"):
        raise bad_request("style must be main_only or all_docs")
    query_int(request, "seq_interval", minimum=1)  # accepted; every row carries its seq anyway
    query = ChangesQuery(
        descending=query_bool(request, "descending"),
        include_docs=query_bool(request, "include_docs"),
        all_docs_style=style == "all_docs",
        conflicts=query_bool(request, "conflicts"),
        attachments=query_bool(request, "attachments"),
        att_encoding_info=query_bool(request, "att_encoding_info"),
    )
    await _apply_filter(request, body, query)
    heartbeat = _milliseconds(request, "heartbeat")
    timeout = _milliseconds(request, "timeout")
    if timeout is None:
        timeout = DEFAULT_TIMEOUT_MS / 1000
    if heartbeat is not None and request.query.get("timeout") is None:
        timeout = None  # CouchDB: a heartbeat keeps the feed alive indefinitely
    return FeedParams(
        feed=feed,
        since=_parse_since(request.query.get("since", body.get("since"))),
        limit=query_int(request, "limit", minimum=0),
        query=query,
        heartbeat=heartbeat,
        timeout=timeout,
    )


async def _apply_filter(request: web.Request, body: dict[str, Any], query: ChangesQuery) -> None:
    name = request.query.get("filter")
    if name is None:
        return
    if name == "_doc_ids":
        doc_ids = body.get("doc_ids", query_json(request, "doc_ids"))
        if not isinstance(doc_ids, list) or not all(isinstance(d, str) for d in doc_ids):
            raise bad_request("filter=_doc_ids needs `doc_ids`, a JSON array of document ids")
        if len(doc_ids) > 10_000:
            raise bad_request("too many doc_ids (at most 10000)")
        query.doc_ids = doc_ids
    elif name == "_selector":
        if "selector" not in body:
            raise bad_request("filter=_selector needs a `selector` in the POST body")
        try:
            query.selector = compile_selector(body["selector"])
        except SelectorError as exc:
            raise CouchError(400, exc.error, str(exc)) from None
    elif name == "_design":
        query.design_only = True
    elif name == "_view":
        await _javascript_function(request, request.query.get("view"), "views")
    else:
        await _javascript_function(request, name, "filters")


async def _javascript_function(request: web.Request, name: str | None, kind: str) -> None:
    """A design-document function: 404 when it does not exist, else 400 (no JavaScript here)."""
    ddoc, sep, function = (name or "").partition("/")
    if not sep or not ddoc or not function:
        raise bad_request(f"`{'view' if kind == 'views' else 'filter'}` must be ddoc/name")
    doc, _ = await services(request).documents.get_doc(
        db_name(request), "_design/" + ddoc, ReadOptions()
    )
    functions = doc.get(kind)
    if not isinstance(functions, dict) or function not in functions:
        raise not_found(f"missing json key: {function}")
    raise bad_request(
        "syncd does not run server-side JavaScript; use filter=_doc_ids, _selector or _design"
    )


async def changes(request: web.Request) -> web.StreamResponse:
    """``GET``/``POST /{db}/_changes``."""
    params = await _parse(request)
    changes_service = services(request).changes
    name = db_name(request)
    since = params.since
    if since is None:
        since = await changes_service.update_seq(name)
    elif params.feed in ("continuous", "eventsource") and not params.query.descending:
        # 404 for a missing database before the stream starts. Normal and longpoll feeds get
        # it from their first page read, before anything is sent: one read (a thread hop and
        # its GIL handoffs) fewer per poll.
        await changes_service.update_seq(name)
    if params.feed == "normal":
        return await _normal(request, name, params, since)
    if params.feed == "longpoll":
        return await _longpoll(request, name, params, since)
    return await _stream(request, name, params, since)


def _json_line(row: dict[str, Any]) -> bytes:
    return orjson.dumps(row) + b"\n"


async def _normal(
    request: web.Request, name: str, params: FeedParams, since: int
) -> web.StreamResponse:
    """All changes after ``since`` (up to ``limit``), streamed page by page."""
    changes_service = services(request).changes
    page = await changes_service.page(
        name, params.query, since, params.limit, count_pending=_may_be_last(params.limit)
    )
    if page.exhausted or (params.limit is not None and len(page.results) >= params.limit):
        return json_response(
            {"results": page.results, "last_seq": page.last_seq, "pending": page.pending}
        )
    response = _stream_response(request, "application/json")
    await response.prepare(request)
    await response.write(b'{"results":[\n')
    sent = 0
    first = True
    while True:
        if page.results:
            chunk = b",\n".join(orjson.dumps(r) for r in page.results)
            await response.write(chunk if first else b",\n" + chunk)
            first = False
        sent += len(page.results)
        remaining = None if params.limit is None else params.limit - sent
        if page.exhausted or remaining == 0:
            break
        descending = params.query.descending
        page = await changes_service.page(
            name,
            params.query,
            since if descending else page.last_seq,
            remaining,
            before=page.last_seq if descending else None,
            count_pending=_may_be_last(remaining),
        )
    tail = {"last_seq": page.last_seq, "pending": page.pending}
    await response.write(b"\n],\n" + orjson.dumps(tail)[1:-1] + b"}\n")
    await response.write_eof()
    return response


def _may_be_last(limit: int | None) -> bool:
    """Whether a page read with this limit can end a normal feed before its end, so that
    its ``pending`` is reported (an exhausted page has none; other pages' are not sent)."""
    return limit is not None and limit <= PAGE


def _stream_response(request: web.Request, content_type: str) -> web.StreamResponse:
    response = CountedStreamResponse(
        headers={
            "Content-Type": content_type,
            "Cache-Control": "must-revalidate, no-cache",
            "X-Accel-Buffering": "no",  # tell a reverse proxy not to buffer the feed
            "X-Request-ID": request[REQUEST_ID],
        }
    )
    response.enable_chunked_encoding()
    return response


async def _wait(
    request: web.Request,
    name: str,
    since: int,
    params: FeedParams,
    response: web.StreamResponse | None,
    heartbeat_line: bytes,
) -> tuple[bool, web.StreamResponse | None]:
    """Wait for a change after ``since``; send heartbeats meanwhile. (changed?, response)."""
    hub = services(request).changes.hub
    deadline = None if params.timeout is None else time.monotonic() + params.timeout
    while True:
        remaining = None if deadline is None else max(deadline - time.monotonic(), 0)
        step = params.heartbeat if params.heartbeat is not None else remaining
        if remaining is not None and step is not None:
            step = min(step, remaining)
        if await hub.wait(name, since, step):
            return True, response
        if hub.closing or (deadline is not None and time.monotonic() >= deadline):
            return False, response
        if response is None:
            response = _stream_response(request, "application/json")
            await response.prepare(request)
        await response.write(heartbeat_line)


async def _longpoll(
    request: web.Request, name: str, params: FeedParams, since: int
) -> web.StreamResponse:
    """Answer at once if there are changes after ``since``; else wait for one (or the timeout)."""
    changes_service = services(request).changes
    hub = changes_service.hub
    hub.open_feeds["longpoll"] += 1
    try:
        if hub.nothing_after(name, since) and not params.query.descending:
            # A live client re-polling from the last seq it got: nothing to read yet.
            page = ChangesPage([], since, 0, True)
        else:
            page = await changes_service.page(name, params.query, since, params.limit)
        response: web.StreamResponse | None = None
        # CouchDB: a change the filter rejects does not end the wait; limit=0 is reached
        # before any row, so it ends the feed at once (waiting could never be satisfied).
        while not page.results and params.limit != 0:
            changed, response = await _wait(request, name, page.last_seq, params, response, b"\n")
            if not changed:
                break
            try:
                page = await changes_service.page(name, params.query, page.last_seq, params.limit)
            except CouchError as exc:
                if exc.status != 404 or response is None:
                    raise  # not sent yet: the client gets the 404
                break  # deleted while heartbeats were going out: end with no results
        body = {"results": page.results, "last_seq": page.last_seq, "pending": page.pending}
        if response is None:
            return json_response(body)
        await response.write(orjson.dumps(body) + b"\n")
        await response.write_eof()
        return response
    finally:
        hub.open_feeds["longpoll"] -= 1


async def _stream(
    request: web.Request, name: str, params: FeedParams, since: int
) -> web.StreamResponse:
    """``continuous`` (JSON lines) and ``eventsource`` (SSE) feeds."""
    changes_service = services(request).changes
    hub = changes_service.hub
    sse = params.feed == "eventsource"
    response = _stream_response(request, "text/event-stream" if sse else "application/json")
    heartbeat = b"event: heartbeat\ndata: \n\n" if sse else b"\n"
    hub.open_feeds[params.feed] += 1
    try:
        await response.prepare(request)
        sent = 0
        while True:
            remaining = None if params.limit is None else params.limit - sent
            try:
                page = await changes_service.page(
                    name, params.query, since, remaining, count_pending=False
                )
            except CouchError as exc:
                if exc.status != 404:
                    raise
                break  # the database was deleted while the feed ran: end the feed
            for row in page.results:
                if sse:
                    await response.write(
                        b"data: "
                        + orjson.dumps(row)
                        + b"\nid: "
                        + str(row["seq"]).encode()
                        + b"\n\n"
                    )
                else:
                    await response.write(_json_line(row))
            sent += len(page.results)
            since = page.last_seq
            if params.limit is not None and sent >= params.limit:
                break
            if not page.exhausted:
                continue
            changed, _ = await _wait(request, name, since, params, response, heartbeat)
            if not changed:
                break
        if not sse:
            await response.write(_json_line({"last_seq": since, "pending": 0}))
        await response.write_eof()
    finally:
        hub.open_feeds[params.feed] -= 1
    return response
