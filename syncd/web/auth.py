"""Authentication: the middleware that tells who is calling, and the sign-in routes.

App routes live under ``/v1/auth``; CouchDB clients use ``/_session`` (cookie) and HTTP Basic.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from syncd.errors import CouchError, bad_request
from syncd.services.accounts import Identity, SignIn, account_json, unauthorized
from syncd.services.authz import Access
from syncd.web.http import json_response, read_json_object
from syncd.web.keys import RATE_LIMITS, SETTINGS, services

IDENTITY = web.RequestKey("identity", Identity)
COOKIE = "AuthSession"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def identity(request: web.Request) -> Identity | None:
    """Who the request acts as (None: nobody signed in)."""
    return request.get(IDENTITY)


def require_identity(request: web.Request) -> Identity:
    """The caller, for routes that need one (the route table already checked it)."""
    who = identity(request)
    if who is None:
        raise unauthorized("Authentication required.")
    return who


def _basic(header: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(header, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise unauthorized("Malformed Basic credentials.") from None
    name, sep, password = decoded.partition(":")
    if not sep:
        raise unauthorized("Malformed Basic credentials.")
    return name, password


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Resolve credentials (Bearer, Basic, or the AuthSession cookie) into an Identity."""
    accounts = services(request).accounts
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    fresh_cookie = None
    who: Identity | None = None
    stale_cookie = False
    if scheme.lower() == "bearer" and value:
        who = await accounts.authenticate_bearer(value.strip())
    elif scheme.lower() == "basic" and value:
        who = await _basic_identity(request, *_basic(value.strip()))
    elif header:
        raise unauthorized("Unsupported Authorization scheme.")
    elif request.cookies.get(COOKIE):
        try:
            who, fresh_cookie = await accounts.authenticate_cookie(request.cookies[COOKIE])
        except CouchError as exc:
            if exc.status != 401:
                raise
            # An expired or revoked cookie: carry on signed out (so /_session can sign in
            # again) and clear it, rather than lock the browser out until it expires.
            stale_cookie = True
    if who is not None:
        request[IDENTITY] = who
    await _guard_design_writes(request, who)
    response = await handler(request)
    if not response.prepared:
        if fresh_cookie:
            _set_cookie(request, response, fresh_cookie)
        elif stale_cookie and COOKIE not in response.cookies:
            response.del_cookie(COOKIE, path="/")
    return response


async def _basic_identity(request: web.Request, name: str, password: str) -> Identity:
    """HTTP Basic: verified (or cached) credentials; failures count towards a 429."""
    accounts = services(request).accounts
    if accounts.is_cached_basic(name, password):
        return await accounts.authenticate_basic(name, password)
    limits = request.app[RATE_LIMITS]
    await limits.check_credentials_allowed(request, name)
    try:
        return await accounts.authenticate_basic(name, password)
    except CouchError as exc:
        if exc.status == 401:
            await limits.record_failed_credentials(request, name)
        raise


async def _guard_design_writes(request: web.Request, who: Identity | None) -> None:
    # ``/{db}/_design%2Fx`` reaches the plain document routes with docid "_design/x": writing
    # a design document that way needs a database admin, as ``/{db}/_design/x`` does.
    docid = request.match_info.get("docid", "")
    if docid.startswith("_design/") and request.method not in ("GET", "HEAD"):
        await services(request).authz.check(Access.DB_ADMIN, who, request.match_info.get("db"))


def _set_cookie(request: web.Request, response: web.StreamResponse, value: str) -> None:
    settings = request.app[SETTINGS]
    response.set_cookie(
        COOKIE,
        value,
        max_age=settings.session_timeout,
        path="/",
        httponly=True,
        samesite="Lax",
        secure=settings.cookie_secure,
    )


def _signed_in(result: SignIn, status: int = 200) -> web.Response:
    body: dict[str, Any] = {"account": account_json(result.account), **result.tokens.to_json()}
    if result.password is not None:
        body["credentials"] = {"username": result.account.username, "password": result.password}
    return json_response(body, status=status)


# /v1/auth -----------------------------------------------------------------------------------


async def anonymous(request: web.Request) -> web.Response:
    """``POST /v1/auth/anonymous``: a new device account, signed in, able to sync at once."""
    return _signed_in(await services(request).accounts.create_anonymous(), status=201)


async def register(request: web.Request) -> web.Response:
    """``POST /v1/auth/register`` ``{username, password}``."""
    body = await read_json_object(request)
    result = await services(request).accounts.register(body.get("username"), body.get("password"))
    return _signed_in(result, status=201)


async def login(request: web.Request) -> web.Response:
    """``POST /v1/auth/login`` ``{username, password}``."""
    body = await read_json_object(request)
    return _signed_in(
        await services(request).accounts.login(body.get("username"), body.get("password"))
    )


async def refresh(request: web.Request) -> web.Response:
    """``POST /v1/auth/refresh`` ``{refresh_token}``: a new pair; the old token is spent."""
    body = await read_json_object(request)
    tokens = await services(request).accounts.refresh(body.get("refresh_token"))
    return json_response(tokens.to_json())


async def logout(request: web.Request) -> web.Response:
    """``POST /v1/auth/logout``: end this session."""
    await services(request).accounts.logout(require_identity(request))
    return json_response({"ok": True})


async def me(request: web.Request) -> web.Response:
    """``GET /v1/auth/me``."""
    who = require_identity(request)
    account = await services(request).accounts.get(who.account_id) if who.account_id else None
    return json_response(
        {
            "account": account_json(account) if account else None,
            "name": who.name,
            "roles": list(who.roles),
        }
    )


async def delete_me(request: web.Request) -> web.Response:
    """``DELETE /v1/auth/me``: the account, its database and its tokens go."""
    await services(request).accounts.delete(require_identity(request))
    return json_response({"ok": True})


async def change_password(request: web.Request) -> web.Response:
    """``POST /v1/auth/password`` ``{old_password, new_password}``; other sessions end."""
    body = await read_json_object(request)
    await services(request).accounts.change_password(
        require_identity(request), body.get("old_password"), body.get("new_password")
    )
    return json_response({"ok": True})


async def upgrade(request: web.Request) -> web.Response:
    """``POST /v1/auth/upgrade`` ``{username, password}``: anonymous to named, data kept."""
    body = await read_json_object(request)
    account = await services(request).accounts.upgrade(
        require_identity(request), body.get("username"), body.get("password")
    )
    return json_response({"account": account_json(account)})


async def set_roles(request: web.Request) -> web.Response:
    """``PUT /v1/admin/accounts/{account_id}/roles`` ``{roles}`` (server admins)."""
    body = await read_json_object(request)
    account = await services(request).accounts.set_roles(
        request.match_info["account_id"], body.get("roles")
    )
    return json_response({"account": account_json(account)})


# /_session (CouchDB) ------------------------------------------------------------------------


def _user_ctx(who: Identity | None) -> dict[str, Any]:
    if who is None:
        return {"name": None, "roles": []}
    return {"name": who.name, "roles": list(who.roles)}


async def get_session(request: web.Request) -> web.Response:
    """``GET /_session``: who this request is, CouchDB's shape."""
    who = identity(request)
    info: dict[str, Any] = {"authentication_handlers": ["cookie", "default", "bearer"]}
    if who is not None:
        info["authenticated"] = who.method
    return json_response({"ok": True, "userCtx": _user_ctx(who), "info": info})


async def post_session(request: web.Request) -> web.Response:
    """``POST /_session`` with ``name`` and ``password`` (JSON or form): sets AuthSession."""
    if request.content_type == "application/x-www-form-urlencoded":
        form = await request.post()
        name, password = form.get("name"), form.get("password")
    elif request.content_type == "application/json":
        body = await read_json_object(request)
        name, password = body.get("name"), body.get("password")
    else:
        raise CouchError(415, "bad_content_type", "Content-Type must be application/json")
    if not isinstance(name, str) or not isinstance(password, str):
        raise bad_request("name and password are required")
    who, cookie = await services(request).accounts.start_cookie_session(name, password)
    response = json_response({"ok": True, **_user_ctx(who)})
    _set_cookie(request, response, cookie)
    return response


async def delete_session(request: web.Request) -> web.Response:
    """``DELETE /_session``: log out (the cookie is cleared and its session ended)."""
    who = identity(request)
    if who is not None and who.method == "cookie":
        await services(request).accounts.logout(who)
    response = json_response({"ok": True})
    response.del_cookie(COOKIE, path="/")
    return response


# /{db}/_security ----------------------------------------------------------------------------


async def get_security(request: web.Request) -> web.Response:
    """``GET /{db}/_security``."""
    security = await services(request).authz.security(request.match_info["db"])
    if security is None:
        raise CouchError(404, "not_found", "Database does not exist.")
    return json_response(security)


async def put_security(request: web.Request) -> web.Response:
    """``PUT /{db}/_security`` ``{admins: {names, roles}, members: {names, roles}}``."""
    body = await read_json_object(request)
    await services(request).authz.set_security(request.match_info["db"], body)
    return json_response({"ok": True})
