"""Routing by shape (``syncd.web.shape_index``) picks what aiohttp's own walk would pick.

The reference is a plain aiohttp router holding the same ``ROUTES`` in the same order; for
every path below and every method, both must give the same route, or the same 404/405 with
the same allowed methods.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from syncd.web.routes import ROUTES, mount

PATHS = [
    "/",
    "/_up",
    "/_session",
    "/_all_dbs",
    "/_unknown",
    "/db",
    "/db/",
    "/_db",
    "/db/doc",
    "/db/doc/",
    "/db/pack:1%2F2",
    "/db/doc/att.png",
    "/db/doc/dir/att.png",
    "/db/_changes",
    "/db/_changes/",
    "/db/_bulk_docs",
    "/db/_bulk_get",
    "/db/_revs_diff",
    "/db/_all_docs",
    "/db/_security",
    "/db/_revs_limit",
    "/db/_compact",
    "/db/_ensure_full_commit",
    "/db/_export",
    "/db/_import",
    "/db/_local",
    "/db/_local/",
    "/db/_local/checkpoint",
    "/db/_local/a/b",
    "/db/_design",
    "/db/_design/app",
    "/db/_design/app/logo.png",
    "/db/_design/app/dir/logo.png",
    "/db/_unknown",
    "/db/_unknown/x",
    "/db//doc",
    "/db/doc//att",
    "/v1/store/packs",
    "/v1/store/packs/p1",
    "/v1/shares/code",
    "/v1/nothing",
]
METHODS = ["GET", "HEAD", "PUT", "POST", "DELETE", "PATCH"]


async def _noop(request: web.Request) -> web.StreamResponse:
    return web.Response()


def _shape_app() -> web.Application:
    app = web.Application()
    mount(app.router, [(route, _noop) for route in ROUTES])
    return app


def _plain_app() -> web.Application:
    app = web.Application()
    for route in ROUTES:
        if route.method == "GET":
            app.router.add_get(route.path, _noop, name=route.name)
        else:
            app.router.add_route(route.method, route.path, _noop, name=route.name)
    return app


async def _outcome(app: web.Application, method: str, path: str) -> tuple[Any, ...]:
    match = await app.router.resolve(make_mocked_request(method, path, app=app))
    if match.http_exception is not None:
        exc = match.http_exception
        allowed = sorted(getattr(exc, "allowed_methods", ()))
        return ("error", exc.status, allowed)
    return ("route", match.route.resource.name if match.route.resource else None, dict(match))


@pytest.mark.parametrize("path", PATHS)
async def test_shape_index_resolves_like_aiohttp(path: str) -> None:
    shaped, plain = _shape_app(), _plain_app()
    for method in METHODS:
        assert await _outcome(shaped, method, path) == await _outcome(plain, method, path), (
            method,
            path,
        )


async def test_shape_index_lists_every_route_it_holds() -> None:
    served = [r for r in _shape_app().router.routes() if r.method != "HEAD"]
    assert sorted(r.resource.name for r in served if r.resource) == sorted(r.name for r in ROUTES)
