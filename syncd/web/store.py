"""The pack store routes: browsing, content, install, purchases, entitlements, and admin."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from syncd.errors import bad_request
from syncd.services.catalog import ListParams, pack_json
from syncd.services.idempotency import request_fingerprint
from syncd.web.auth import identity, require_identity
from syncd.web.http import JSON_TYPE, json_response, query_int, read_json, read_json_object
from syncd.web.keys import services

CACHE_CONTROL = "public, max-age=60"


def _cached_json(request: web.Request, data: Any) -> web.Response:
    """A cacheable JSON answer with a content ETag; 304 when the client has it."""
    body = orjson.dumps(data)
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    if etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, content_type=JSON_TYPE, headers=headers)


async def _idempotent(
    request: web.Request, action: Callable[[], Awaitable[tuple[int, Any]]]
) -> web.Response:
    """Run a mutation once per ``Idempotency-Key`` (when the header is sent)."""
    key = request.headers.get("Idempotency-Key")

    async def encoded() -> tuple[int, bytes]:
        status, data = await action()
        return status, orjson.dumps(data)

    if key is None:
        status, body = await encoded()
        return web.Response(body=body, status=status, content_type=JSON_TYPE)
    who = identity(request)
    scope = who.account_id or who.name if who else "anonymous"
    fingerprint = request_fingerprint(request.method, request.path, await request.read())
    stored = await services(request).idempotency.run(scope, key, fingerprint, encoded)
    headers = {"Idempotent-Replayed": "true"} if stored.replayed else {}
    return web.Response(
        body=stored.body, status=stored.status, content_type=JSON_TYPE, headers=headers
    )


# public -------------------------------------------------------------------------------------


async def list_packs(request: web.Request) -> web.Response:
    """``GET /v1/store/packs``: ``{"items", "next_cursor"}``, filters and sort."""
    query = request.query
    params = ListParams(
        language=query.get("language"),
        tag=query.get("tag"),
        tier=query.get("tier"),
        q=query.get("q"),
        sort=query.get("sort", "updated"),
        limit=query_int(request, "limit", 20, minimum=1) or 20,
        cursor=query.get("cursor"),
    )
    return _cached_json(request, await services(request).catalog.list_packs(params))


async def get_pack(request: web.Request) -> web.Response:
    """``GET /v1/store/packs/{pack_id}``: metadata."""
    pack = await services(request).catalog.get(request.match_info["pack_id"])
    return _cached_json(request, pack_json(pack))


async def pack_content(request: web.Request) -> web.Response:
    """``GET /v1/store/packs/{pack_id}/content``: the prompts (premium needs an entitlement)."""
    content = await services(request).catalog.content(
        request.match_info["pack_id"], identity(request)
    )
    response = _cached_json(request, content)
    response.headers["Cache-Control"] = "private, max-age=60"
    return response


# accounts -----------------------------------------------------------------------------------


async def install(request: web.Request) -> web.Response:
    """``POST /v1/store/packs/{pack_id}/install``: into the caller's own database."""
    who = require_identity(request)

    async def action() -> tuple[int, Any]:
        result = await services(request).catalog.install(request.match_info["pack_id"], who)
        return (201 if result["status"] != "unchanged" else 200), result

    return await _idempotent(request, action)


async def purchase(request: web.Request) -> web.Response:
    """``POST /v1/store/purchases`` ``{sku, platform, receipt}``."""
    who = require_identity(request)
    body = await read_json_object(request)
    if who.account_id is None:
        raise bad_request("The configured server admin cannot make purchases.")
    account_id = who.account_id

    async def action() -> tuple[int, Any]:
        return 201, await services(request).entitlements.purchase(account_id, body)

    return await _idempotent(request, action)


async def my_entitlements(request: web.Request) -> web.Response:
    """``GET /v1/store/entitlements``: the caller's entitlements."""
    who = require_identity(request)
    items = await services(request).entitlements.mine(who.account_id) if who.account_id else []
    return json_response({"items": items, "next_cursor": None})


# admin --------------------------------------------------------------------------------------


async def admin_create_pack(request: web.Request) -> web.Response:
    """``POST /v1/admin/store/packs``: publish a curated pack."""
    body = await read_json(request)

    async def action() -> tuple[int, Any]:
        return 201, pack_json(await services(request).catalog.create(body))

    return await _idempotent(request, action)


async def admin_update_pack(request: web.Request) -> web.Response:
    """``PUT /v1/admin/store/packs/{pack_id}``: replace content; bumps ``version``."""
    body = await read_json(request)

    async def action() -> tuple[int, Any]:
        pack = await services(request).catalog.update(request.match_info["pack_id"], body)
        return 200, pack_json(pack)

    return await _idempotent(request, action)


async def admin_unpublish_pack(request: web.Request) -> web.Response:
    """``DELETE /v1/admin/store/packs/{pack_id}``: unpublish."""

    async def action() -> tuple[int, Any]:
        pack = await services(request).catalog.unpublish(request.match_info["pack_id"])
        return 200, {"ok": True, "id": pack.id, "published": False}

    return await _idempotent(request, action)


async def admin_grant(request: web.Request) -> web.Response:
    """``POST /v1/admin/store/entitlements`` ``{account_id, sku}``."""
    body = await read_json_object(request)

    async def action() -> tuple[int, Any]:
        await services(request).entitlements.grant(body.get("account_id"), body.get("sku"))
        return 201, {"ok": True, "account_id": body.get("account_id"), "sku": body.get("sku")}

    return await _idempotent(request, action)


async def admin_revoke(request: web.Request) -> web.Response:
    """``DELETE /v1/admin/store/entitlements/{account_id}/{sku}``."""
    info = request.match_info
    await services(request).entitlements.revoke(info["account_id"], info["sku"])
    return json_response({"ok": True})


async def admin_mint_receipt(request: web.Request) -> web.Response:
    """``POST /v1/admin/store/receipts`` ``{sku}``: a receipt for the built-in verifier."""
    body = await read_json_object(request)
    sku = body.get("sku")
    if not isinstance(sku, str) or not sku:
        raise bad_request("sku is required")
    receipt = services(request).receipts.mint(sku)
    return json_response({"platform": "syncd", "sku": sku, "receipt": receipt}, status=201)
