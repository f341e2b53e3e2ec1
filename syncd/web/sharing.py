"""Routes for shared packs, abuse reports and moderation."""

from __future__ import annotations

from aiohttp import web

from syncd.web.auth import require_identity
from syncd.web.http import json_response, read_json_object
from syncd.web.keys import services


async def publish(request: web.Request) -> web.Response:
    """``POST /v1/shares`` ``{doc_id}``: share a pack of your database (again: update it)."""
    body = await read_json_object(request)
    share, created = await services(request).sharing.publish(
        require_identity(request), body.get("doc_id")
    )
    return json_response(share, status=201 if created else 200)


async def read(request: web.Request) -> web.Response:
    """``GET /v1/shares/{code}``: the shared pack (no account needed)."""
    shared = await services(request).sharing.read(request.match_info["code"])
    return json_response(shared, headers={"Cache-Control": "no-cache"})


async def withdraw(request: web.Request) -> web.Response:
    """``DELETE /v1/shares/{code}``: the owner withdraws a share; its code answers 410."""
    await services(request).sharing.withdraw(require_identity(request), request.match_info["code"])
    return json_response({"ok": True})


async def install(request: web.Request) -> web.Response:
    """``POST /v1/shares/{code}/install``: copy the pack into your database."""
    result = await services(request).sharing.install(
        require_identity(request), request.match_info["code"]
    )
    return json_response(result, status=200 if result["status"] == "unchanged" else 201)


async def report(request: web.Request) -> web.Response:
    """``POST /v1/reports`` ``{share_code, prompt_id?, reason, note?}``."""
    body = await read_json_object(request)
    filed, created = await services(request).moderation.report(require_identity(request), body)
    return json_response(filed, status=201 if created else 200)


async def list_reports(request: web.Request) -> web.Response:
    """``GET /v1/moderation/reports?status&reason&cursor``."""
    query = request.query
    page = await services(request).moderation.list_reports(
        query.get("status"), query.get("reason"), query.get("cursor")
    )
    return json_response(page)


async def resolve_report(request: web.Request) -> web.Response:
    """``POST /v1/moderation/reports/{report_id}/resolve`` ``{action, comment?}``."""
    body = await read_json_object(request)
    resolved = await services(request).moderation.resolve(
        require_identity(request), request.match_info["report_id"], body
    )
    return json_response(resolved)


async def audit_log(request: web.Request) -> web.Response:
    """``GET /v1/moderation/audit?cursor``: every moderation action (admins)."""
    return json_response(await services(request).moderation.audit_log(request.query.get("cursor")))
